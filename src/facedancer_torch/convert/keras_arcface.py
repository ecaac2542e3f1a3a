"""Convert the authors' Keras ArcFace-Res50 (``ArcFace-Res50.h5`` / ``ArcFacePerceptual-Res50.h5``)
into our ``config.json`` + ``model.safetensors`` (docs/reference.md §4 and §9), with h5py only.

The reference loads the file with ``load_model(path)`` and takes ``.layers[1]`` as the IFSR
backbone, i.e. the ResNet50 is a *nested* Keras model inside the outer model, followed by the
embedding head. Both that nested layout and a flat one (all ResNet50 layers at the top level)
are accepted. Backbone layers are found by their fixed ``keras.applications.ResNet50`` names
(``conv1_conv``, ``conv2_block1_1_conv``, ...); head layers have auto-names, so the head is
rebuilt from the graph topology: the chain of layers that consumes the backbone output.

Weights of a nested model are stored as one list under the nested layer's name. With their
``weight_names`` (``conv1_conv/kernel:0``...) they are matched by name; without them the order
is Keras' ``trainable_weights + non_trainable_weights`` (or, for a frozen nested model, every
layer's weights in layer order) and the converter accepts the one ordering whose shapes fit.
Unknown layer types, strides or shapes are refused with an error naming the layer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..models.identity.arcface_res50 import (
    ARCHITECTURE,
    REFERENCE_IFSR_MARGINS,
    STAGE_STRIDES,
    ArcFaceRes50,
    block_names,
    default_config,
    save_arcface_res50,
)
from .keras_h5 import KerasLayer, KerasModelFile, parse_layers

_WEIGHTED = {"Conv2D", "BatchNormalization", "Dense"}
_NESTED = {"Functional", "Model"}


@dataclass
class _Layer:
    layer: KerasLayer
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # slot -> array

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def cls(self) -> str:
        return self.layer.class_name

    @property
    def config(self) -> dict[str, Any]:
        return self.layer.config


def _slots(layer: KerasLayer) -> list[tuple[str, bool]]:
    """The weight slots of a layer in Keras order, with whether each is trainable."""
    cfg = layer.config
    if layer.class_name in ("Conv2D", "Dense"):
        return [("kernel", True)] + ([("bias", True)] if cfg.get("use_bias", True) else [])
    if layer.class_name == "BatchNormalization":
        slots = [("gamma", True)] if cfg.get("scale", True) else []
        slots += [("beta", True)] if cfg.get("center", True) else []
        return slots + [("moving_mean", False), ("moving_variance", False)]
    return []


def _consistent(layer: KerasLayer, weights: dict[str, np.ndarray]) -> bool:
    """Whether the arrays assigned to a layer have ranks and sizes that fit together."""
    if layer.class_name == "Conv2D":
        kernel = weights.get("kernel")
        if kernel is None or kernel.ndim != 4:
            return False
        return "bias" not in weights or weights["bias"].shape == (kernel.shape[-1],)
    if layer.class_name == "Dense":
        kernel = weights.get("kernel")
        if kernel is None or kernel.ndim != 2:
            return False
        return "bias" not in weights or weights["bias"].shape == (kernel.shape[-1],)
    if layer.class_name == "BatchNormalization":
        shapes = {w.shape for w in weights.values()}
        return len(shapes) == 1 and len(next(iter(shapes))) == 1
    return True


def _split_by_names(inner: list[KerasLayer], arrays: list[np.ndarray], names: list[str]
                    ) -> dict[str, dict[str, np.ndarray]] | None:
    if len(names) != len(arrays):
        return None
    result: dict[str, dict[str, np.ndarray]] = {}
    known = {layer.name for layer in inner}
    for name, array in zip(names, arrays):
        parts = name.split("/")
        if len(parts) < 2 or parts[-2] not in known:
            return None
        result.setdefault(parts[-2], {})[parts[-1].split(":")[0]] = array
    return result


def _split_by_order(inner: list[KerasLayer], arrays: list[np.ndarray]
                    ) -> dict[str, dict[str, np.ndarray]] | None:
    """Assign a nested model's flat weight list to its layers (see the module docstring)."""
    trainable_first: list[tuple[str, str]] = []
    frozen: list[tuple[str, str]] = []
    non_trainable: list[tuple[str, str]] = []
    for layer in inner:
        layer_trainable = layer.config.get("trainable", True)
        for slot, is_trainable in _slots(layer):
            frozen.append((layer.name, slot))
            if is_trainable and layer_trainable:
                trainable_first.append((layer.name, slot))
            else:
                non_trainable.append((layer.name, slot))
    candidates = [trainable_first + non_trainable, frozen]
    by_name = {layer.name: layer for layer in inner}
    for order in candidates:
        if len(order) != len(arrays):
            continue
        result: dict[str, dict[str, np.ndarray]] = {}
        for (layer_name, slot), array in zip(order, arrays):
            result.setdefault(layer_name, {})[slot] = array
        if all(_consistent(by_name[n], w) for n, w in result.items()):
            return result
    return None


def _assign_slots(layer: KerasLayer, arrays: list[np.ndarray], names: list[str] | None
                  ) -> dict[str, np.ndarray]:
    slots = [s for s, _ in _slots(layer)]
    if names is not None and len(names) == len(arrays):
        named = {n.split("/")[-1].split(":")[0]: a for n, a in zip(names, arrays)}
        if set(named) == set(slots):
            return named
    if len(arrays) != len(slots):
        raise ModelError(f"layer '{layer.name}' ({layer.class_name}) has {len(arrays)} weight "
                         f"tensors, expected {len(slots)} ({', '.join(slots)})")
    return dict(zip(slots, arrays))


def _flatten_graph(model_file: KerasModelFile) -> tuple[dict[str, _Layer], list[KerasLayer], str | None]:
    """All layers (nested ones inlined) with their weights; the top-level layers; the nested
    backbone's name (None when the file is flat)."""
    names_attr: dict[str, list[str]] = getattr(model_file, "weight_names", None) or {}
    top = model_file.layers
    flat: dict[str, _Layer] = {}
    nested_name: str | None = None
    for layer in top:
        if layer.class_name in _NESTED:
            if nested_name is not None:
                raise ModelError(f"ArcFace file has more than one nested model ('{nested_name}', "
                                 f"'{layer.name}')")
            nested_name = layer.name
            inner = parse_layers({"class_name": "Functional", "config": layer.config})
            arrays = model_file.weights.get(layer.name, [])
            split = None
            if layer.name in names_attr:
                split = _split_by_names(inner, arrays, names_attr[layer.name])
            if split is None:
                split = _split_by_order(inner, arrays)
            if split is None:
                raise ModelError(f"cannot assign the {len(arrays)} weight tensors of nested model "
                                 f"'{layer.name}' to its layers")
            for sub in inner:
                if sub.name in flat:
                    raise ModelError(f"layer name '{sub.name}' appears twice in the ArcFace file")
                flat[sub.name] = _Layer(sub, split.get(sub.name, {}))
        else:
            arrays = model_file.weights.get(layer.name, [])
            weights = (_assign_slots(layer, arrays, names_attr.get(layer.name))
                       if layer.class_name in _WEIGHTED else {})
            flat[layer.name] = _Layer(layer, weights)
    return flat, top, nested_name


def is_arcface_model(model_file: KerasModelFile) -> bool:
    """True when the Keras file holds a ResNet50 (flat or nested) named as keras.applications."""
    def names(config: dict[str, Any]) -> set[str]:
        found: set[str] = set()
        for entry in config.get("layers", []):
            found.add(entry.get("name", entry.get("config", {}).get("name", "")))
            if entry.get("class_name") in _NESTED:
                found |= names(entry.get("config", {}))
        return found

    found = names(model_file.model_config.get("config", {}))
    return {"conv1_conv", "conv1_bn", "conv2_block1_out", "conv5_block1_out"} <= found


def _require(flat: dict[str, _Layer], name: str, cls: str) -> _Layer:
    layer = flat.get(name)
    if layer is None:
        raise ModelError(f"ArcFace file has no layer '{name}' (not a Keras ResNet50?)")
    if layer.cls != cls:
        raise ModelError(f"ArcFace layer '{name}' is a {layer.cls}, expected {cls}")
    return layer


def _conv(flat: dict[str, _Layer], name: str, kernel: int, stride: int, padding: str,
          cin: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    layer = _require(flat, name, "Conv2D")
    cfg = layer.config
    ks = tuple(cfg.get("kernel_size", (kernel, kernel)))
    strides = tuple(cfg.get("strides", (1, 1)))
    if (ks != (kernel, kernel) or strides != (stride, stride) or cfg.get("padding") != padding
            or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1) or cfg.get("groups", 1) != 1
            or cfg.get("data_format", "channels_last") != "channels_last"
            or cfg.get("activation", "linear") != "linear"):
        raise ModelError(f"ArcFace layer '{name}': kernel {ks}, strides {strides}, padding "
                         f"'{cfg.get('padding')}' differ from Keras ResNet50 "
                         f"({kernel}x{kernel}/{stride} {padding})")
    kernel_w = layer.weights.get("kernel")
    if kernel_w is None or kernel_w.shape[:2] != (kernel, kernel) or (
            cin is not None and kernel_w.shape[2] != cin):
        raise ModelError(f"ArcFace layer '{name}' has kernel shape "
                         f"{None if kernel_w is None else kernel_w.shape}")
    bias = layer.weights.get("bias", np.zeros(kernel_w.shape[-1], np.float32))
    return kernel_w, bias


def _bn(layer: _Layer, channels: int) -> tuple[dict[str, np.ndarray], float]:
    cfg = layer.config
    axis = cfg.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in (-1, 3, 1):
        raise ModelError(f"ArcFace layer '{layer.name}': BatchNormalization axis {axis} unsupported")
    w = layer.weights
    for slot in ("moving_mean", "moving_variance"):
        if slot not in w:
            raise ModelError(f"ArcFace layer '{layer.name}' has no {slot}")
    if w["moving_mean"].shape != (channels,):
        raise ModelError(f"ArcFace layer '{layer.name}' normalises {w['moving_mean'].shape[0]} "
                         f"channels, expected {channels}")
    return {
        "weight": w.get("gamma", np.ones(channels, np.float32)),
        "bias": w.get("beta", np.zeros(channels, np.float32)),
        "running_mean": w["moving_mean"],
        "running_var": w["moving_variance"],
    }, float(cfg.get("epsilon", 1e-3))


def _input_size(top: list[KerasLayer]) -> int | None:
    for layer in top:
        if layer.class_name == "InputLayer":
            shape = layer.config.get("batch_input_shape") or layer.config.get("batch_shape")
            if shape and len(shape) == 4 and shape[1] is not None:
                if shape[1] != shape[2] or shape[3] != 3:
                    raise ModelError(f"ArcFace input '{layer.name}' has shape {shape}, expected "
                                     "(None, S, S, 3)")
                return int(shape[1])
    return None


def arcface_from_keras(model_file: KerasModelFile, source: str = ""
                       ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Rebuild the config and the PyTorch state dict of an ArcFace-Res50 Keras file."""
    flat, top, nested_name = _flatten_graph(model_file)

    # -- backbone: names fixed by keras.applications.ResNet50 -----------------------------
    # A backbone-only export (Model(input, [block outputs])) drops the stages after the last
    # tapped block, so trailing stages may be empty; then there is no head either.
    stage_blocks = []
    for stage in range(4):
        count = 0
        while f"conv{stage + 2}_block{count + 1}_out" in flat:
            count += 1
        stage_blocks.append(count)
    if stage_blocks[0] == 0:
        raise ModelError("ArcFace file has no conv2_block1_out (not a Keras ResNet50?)")
    for stage in range(1, 4):
        if stage_blocks[stage] and not stage_blocks[stage - 1]:
            raise ModelError(f"ArcFace file has conv{stage + 2} blocks but no conv{stage + 1} blocks")
    state: dict[str, np.ndarray] = {}
    bn_eps: set[float] = set()
    expected: set[str] = set()

    def put_conv(name: str, kernel: int, stride: int, padding: str, cin: int) -> int:
        kernel_w, bias = _conv(flat, name, kernel, stride, padding, cin)
        state[f"layers.{name}.weight"] = kernel_w.transpose(3, 2, 0, 1)  # (kh,kw,in,out)->(out,in,kh,kw)
        state[f"layers.{name}.bias"] = bias
        expected.add(name)
        return kernel_w.shape[-1]

    def put_bn(name: str, channels: int) -> None:
        tensors, eps = _bn(_require(flat, name, "BatchNormalization"), channels)
        for key, value in tensors.items():
            state[f"layers.{name}.{key}"] = value
        bn_eps.add(eps)
        expected.add(name)

    pad = _require(flat, "conv1_pad", "ZeroPadding2D").config.get("padding")
    if pad not in (3, [3, 3], [[3, 3], [3, 3]], (3, 3)):
        raise ModelError(f"ArcFace layer 'conv1_pad' pads {pad}, expected 3")
    width = put_conv("conv1_conv", 7, 2, "valid", 3)
    put_bn("conv1_bn", width)
    pool = _require(flat, "pool1_pool", "MaxPooling2D").config
    if tuple(pool.get("pool_size", ())) != (3, 3) or tuple(pool.get("strides", ())) != (2, 2):
        raise ModelError("ArcFace layer 'pool1_pool' is not a 3x3/2 max-pool")
    expected |= {"conv1_pad", "conv1_relu", "pool1_pad", "pool1_pool"}
    cin = width
    for prefix, stage, index in block_names(tuple(stage_blocks)):
        filters = width * 2 ** stage
        stride = STAGE_STRIDES[stage] if index == 0 else 1
        if index == 0:
            put_bn(f"{prefix}_0_bn", put_conv(f"{prefix}_0_conv", 1, stride, "valid", cin))
        elif f"{prefix}_0_conv" in flat:
            raise ModelError(f"ArcFace layer '{prefix}_0_conv': a projection shortcut where "
                             "Keras ResNet50 has an identity shortcut")
        c = put_conv(f"{prefix}_1_conv", 1, stride, "valid", cin)
        if c != filters:
            raise ModelError(f"ArcFace layer '{prefix}_1_conv' has {c} filters, expected {filters}")
        put_bn(f"{prefix}_1_bn", c)
        put_bn(f"{prefix}_2_bn", put_conv(f"{prefix}_2_conv", 3, 1, "same", c))
        cin = put_conv(f"{prefix}_3_conv", 1, 1, "valid", c)
        put_bn(f"{prefix}_3_bn", cin)
        expected |= {f"{prefix}_1_relu", f"{prefix}_2_relu", f"{prefix}_add", f"{prefix}_out"}
    if len(bn_eps) != 1:
        raise ModelError(f"ArcFace backbone BatchNorm layers use different epsilons {sorted(bn_eps)}")

    # -- head: the chain consuming the backbone output ------------------------------------
    last_stage = max(i for i, count in enumerate(stage_blocks) if count)
    last_block = f"conv{last_stage + 2}_block{stage_blocks[last_stage]}_out"
    consumers: dict[str, list[KerasLayer]] = {}
    for layer in top:
        for src in layer.inbound:
            consumers.setdefault(src, []).append(layer)
    current = nested_name if nested_name is not None else last_block
    head_ops: list[dict[str, Any]] = []
    head_names: list[str] = []
    flattened = False
    while len(consumers.get(current, [])) == 1:
        layer = flat[consumers[current][0].name]
        cfg = layer.config
        if layer.cls == "BatchNormalization":
            channels = layer.weights.get("moving_mean", np.zeros(0)).shape[0]
            tensors, eps = _bn(layer, channels)
            for key, value in tensors.items():
                state[f"head.{len(head_ops)}.{key}"] = value
            head_ops.append({"type": "batchnorm", "eps": eps})
        elif layer.cls == "Dropout":
            head_ops.append({"type": "dropout", "rate": cfg.get("rate")})
        elif layer.cls == "Flatten":
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise ModelError(f"ArcFace layer '{layer.name}': only channels_last Flatten")
            head_ops.append({"type": "flatten_hwc"})
            flattened = True
        elif layer.cls == "Dense":
            if cfg.get("activation", "linear") != "linear" or not flattened:
                raise ModelError(f"ArcFace layer '{layer.name}': expected a linear Dense after "
                                 "Flatten")
            kernel = layer.weights["kernel"]
            state[f"head.{len(head_ops)}.weight"] = kernel.T
            if "bias" in layer.weights:
                state[f"head.{len(head_ops)}.bias"] = layer.weights["bias"]
            head_ops.append({"type": "dense", "units": int(kernel.shape[1]),
                             "bias": "bias" in layer.weights})
        elif layer.cls == "Activation" and cfg.get("activation") == "linear":
            pass
        else:
            raise ModelError(f"ArcFace head layer '{layer.name}' ({layer.cls}) is not supported")
        expected.add(layer.name)
        head_names.append(layer.name)
        current = layer.name

    for name, layer in flat.items():
        if name in expected or layer.cls == "InputLayer" or layer.name == nested_name:
            continue
        raise ModelError(f"ArcFace file has an unexpected layer '{name}' ({layer.cls})")

    if head_ops and last_stage != 3:
        raise ModelError("ArcFace file has an embedding head but no conv5 stage")
    # the declared input size (outer or nested InputLayer); ArcFace's 112 when none is declared,
    # and a wrong guess fails the dense-layer shape check in convert_arcface
    input_size = _input_size(top + [entry.layer for entry in flat.values()]) or 112
    config = default_config(
        input_size=input_size,
        base_width=int(width),
        stage_blocks=stage_blocks,
        bn_eps=bn_eps.pop(),
        head=head_ops,
        # the reference margins belong to the reference network only
        ifsr_margins=(dict(REFERENCE_IFSR_MARGINS)
                      if tuple(stage_blocks[:3]) == (3, 4, 6) and width == 64 else None),
        source=source,
        keras_head_layers=head_names,
        keras_nested_model=nested_name,
    )
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    return config, tensors


def convert_arcface(model_file: KerasModelFile, out_dir: str | Path, source: str = "") -> Path:
    """Convert a Keras ArcFace-Res50 file to ``out_dir`` (``config.json`` + ``model.safetensors``).

    ``source`` (e.g. the .h5 file name) is recorded in config.json. Returns ``out_dir``.
    Raises :class:`ModelError` naming the offending layer when the file is not the expected
    Keras ResNet50 + ArcFace head.
    """
    config, tensors = arcface_from_keras(model_file, source=source)
    with torch.device("meta"):
        model = ArcFaceRes50(config)
    expected = model.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.tensor(0)
            continue
        if key not in tensors:
            raise ModelError(f"ArcFace conversion produced no tensor for '{key}'")
        if tensors[key].shape != value.shape:
            raise ModelError(f"ArcFace tensor '{key}' has shape {tuple(tensors[key].shape)}, "
                             f"expected {tuple(value.shape)} (input size {config['input_size']})")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ModelError(f"ArcFace conversion produced unexpected tensors {extra[:3]}")
    model.load_state_dict(tensors, assign=True)
    return save_arcface_res50(model, out_dir)


__all__ = ["ARCHITECTURE", "arcface_from_keras", "convert_arcface", "is_arcface_model"]
