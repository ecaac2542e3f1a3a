"""Convert the authors' ``RetinaFace-Res50.h5`` (Keras, HDF5) to PyTorch, with h5py only.

The file is a ``model.save`` of retinaface-tf2's ``RetinaFaceModel`` (the authors'
``retinaface/`` package): the nested functional model ``ResNet50_extrator`` (keras.applications
names), the custom layers ``fpn``, ``ssh``, ``ssh_1``, ``ssh_2`` and the heads ``bbox_head*``,
``LandmarkHead_*``, ``ClassHead_*``, followed by about 200 TensorFlow-op layers that build the
priors, decode and run NMS (ported in :mod:`facedancer_torch.faces.retinaface_r50`).

Weight layout (checked, refused by name when it differs): inside each custom layer the
``ConvUnit`` sub-layers appear in construction order, all trainable tensors (kernel, gamma,
beta) before all ``moving_mean`` / ``moving_variance`` pairs; conv kernels are
``(kh, kw, in, out)``; ResNet convs carry biases, ``ConvUnit`` convs do not.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..faces.retinaface_r50 import KIND, STAGES, RetinaFaceR50

_CUSTOM = {"FPN": ("output1", "output2", "output3", "merge1", "merge2"),
           "SSH": ("conv_3x3", "conv_5x5_1", "conv_5x5_2", "conv_7x7_2", "conv_7x7_3")}
_HEADS = {"BboxHead": "bbox", "LandmarkHead": "landmark", "ClassHead": "cls"}


def is_retinaface_graph(model_config: dict) -> bool:
    """True for the authors' RetinaFace graph (an ``FPN`` and ``SSH`` layers)."""
    layers = model_config.get("config", {}).get("layers", [])
    classes = {layer.get("class_name") for layer in layers}
    return {"FPN", "SSH", "BboxHead", "ClassHead", "LandmarkHead"} <= classes


def _read_groups(path: Path) -> tuple[dict, dict[str, OrderedDict[str, np.ndarray]]]:
    import json

    import h5py

    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelError(f"not a readable HDF5 file ({exc.__class__.__name__})", path) from exc
    with handle:
        if "model_config" not in handle.attrs or "model_weights" not in handle:
            raise ModelError("not a full Keras model file (no model_config / model_weights)", path)
        raw = handle.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        groups: dict[str, OrderedDict[str, np.ndarray]] = {}
        root = handle["model_weights"]
        for name in root.attrs.get("layer_names", []):
            name = name.decode() if isinstance(name, bytes) else str(name)
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in root[name].attrs.get("weight_names", [])]
            if names:
                groups[name] = OrderedDict((n, np.asarray(root[name][n], dtype=np.float32))
                                           for n in names)
    return config, groups


def _conv(kernel: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))


def _t(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _bn(prefix: str, tensors: dict[str, np.ndarray], out: dict[str, torch.Tensor]) -> None:
    for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                         ("running_var", "moving_variance")):
        out[f"{prefix}.{ours}"] = _t(tensors[theirs])


def _by_sublayer(group: OrderedDict[str, np.ndarray], path: Path, layer: str
                 ) -> OrderedDict[str, dict[str, np.ndarray]]:
    """``{'conv_unit_3': {'kernel': ..., 'gamma': ..., ...}}`` in first-appearance order."""
    units: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
    for name, array in group.items():
        parts = name.split("/")
        if len(parts) not in (3, 4) or parts[0] != layer:
            raise ModelError(f"layer '{layer}' stores an unexpected tensor '{name}'", path)
        units.setdefault(parts[1], {})[parts[-1].split(":")[0]] = array
    return units


def state_dict_from_keras(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The :class:`RetinaFaceR50` state dict and config read from the authors' ``.h5``."""
    path = Path(path)
    if not path.is_file():
        raise ModelError("file not found", path)
    config, groups = _read_groups(path)
    if not is_retinaface_graph(config):
        raise ModelError("not the authors' RetinaFace graph (no FPN / SSH / head layers)", path)
    layers = {layer["name"]: layer for layer in config["config"]["layers"]}
    out: dict[str, torch.Tensor] = {}

    backbone = groups.get("ResNet50_extrator")
    if backbone is None:
        raise ModelError("no 'ResNet50_extrator' weights (not the ResNet50 RetinaFace)", path)
    res: dict[str, dict[str, np.ndarray]] = {}
    for name, array in backbone.items():
        layer, _, tensor = name.rpartition("/")
        res.setdefault(layer, {})[tensor.split(":")[0]] = array

    def conv_bn(prefix: str, keras: str) -> None:
        conv, bn = res.pop(f"{keras}_conv", None), res.pop(f"{keras}_bn", None)
        if conv is None or bn is None:
            raise ModelError(f"ResNet50 layer '{keras}_conv' / '{keras}_bn' is missing", path)
        out[f"{prefix}.conv.weight"] = _conv(conv["kernel"])
        out[f"{prefix}.conv.bias"] = _t(conv["bias"])
        _bn(f"{prefix}.bn", bn, out)

    conv_bn("backbone.conv1", "conv1")
    for s, (stage, blocks, _, _) in enumerate(STAGES):
        for b in range(blocks):
            prefix, keras = f"backbone.stages.{s}.{b}", f"{stage}_block{b + 1}"
            if b == 0:
                conv_bn(f"{prefix}.shortcut", f"{keras}_0")
            for i in (1, 2, 3):
                conv_bn(f"{prefix}.conv{i}", f"{keras}_{i}")
    if res:
        raise ModelError(f"ResNet50 layers this port does not know: {sorted(res)[:5]}", path)

    ssh_index = 0
    out_ch = None
    for name, layer in layers.items():
        cls = layer["class_name"]
        if cls in _CUSTOM:
            units = _by_sublayer(groups.get(name, OrderedDict()), path, name)
            roles = _CUSTOM[cls]
            if len(units) != len(roles):
                raise ModelError(f"layer '{name}' ({cls}) holds {len(units)} conv units, "
                                 f"expected {len(roles)}", path)
            if cls == "FPN":
                prefix = "fpn"
                out_ch = int(layer["config"].get("out_ch", 256))
                if out_ch <= 64:  # the reference switches to LeakyReLU(0.1) there
                    raise ModelError(f"layer '{name}': out_ch {out_ch} <= 64 (LeakyReLU "
                                     "variant) is not supported", path)
            else:
                prefix = f"ssh.{ssh_index}"
                ssh_index += 1
            for role, tensors in zip(roles, units.values()):
                expected = {"kernel", "gamma", "beta", "moving_mean", "moving_variance"}
                if set(tensors) != expected:
                    raise ModelError(f"layer '{name}': a conv unit stores {sorted(tensors)}, "
                                     f"expected {sorted(expected)}", path)
                out[f"{prefix}.{role}.conv.weight"] = _conv(tensors["kernel"])
                _bn(f"{prefix}.{role}.bn", tensors, out)
        elif cls in _HEADS:
            level = int(name.rsplit("_", 1)[1]) if name[-1].isdigit() else 0
            tensors = _by_sublayer(groups.get(name, OrderedDict()), path, name)
            if len(tensors) != 1:
                raise ModelError(f"head '{name}' holds {len(tensors)} convs, expected 1", path)
            conv = next(iter(tensors.values()))
            out[f"{_HEADS[cls]}.{level}.weight"] = _conv(conv["kernel"])
            out[f"{_HEADS[cls]}.{level}.bias"] = _t(conv["bias"])
        elif cls not in ("InputLayer", "Functional", "TFOpLambda", "SlicingOpLambda", "Softmax"):
            raise ModelError(f"layer '{name}' has the unknown type {cls}", path)
    if ssh_index != 3:
        raise ModelError(f"expected 3 SSH layers, found {ssh_index}", path)
    return out, {"kind": KIND, "out_ch": out_ch or 256, "num_anchor": 2}


def retinaface_from_keras(path: str | Path) -> RetinaFaceR50:
    """The PyTorch detector network (eval mode) built from the authors' ``.h5``."""
    state, config = state_dict_from_keras(path)
    model = RetinaFaceR50(out_ch=config["out_ch"], num_anchor=config["num_anchor"])
    expected = model.state_dict()
    for key, value in state.items():
        if key not in expected or tuple(expected[key].shape) != tuple(value.shape):
            shape = tuple(expected[key].shape) if key in expected else None
            raise ModelError(f"tensor for {key} has shape {tuple(value.shape)}, the network "
                             f"needs {shape}", path)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise ModelError(f"the file has no weights for {missing[:3]}", path)
    model.load_state_dict(state, strict=False)
    return model.eval()


def convert_retinaface(path: str | Path, out_dir: str | Path) -> Path:
    """Convert ``RetinaFace-Res50.h5`` into a model folder (``config.json`` +
    ``model.safetensors``); returns ``out_dir``."""
    return retinaface_from_keras(path).save_pretrained(out_dir, source=Path(path).name)


def load_detector(path: str | Path, device: str | torch.device = "cpu") -> RetinaFaceR50:
    """The authors' RetinaFace-Res50 as a PyTorch module, from the ``.h5`` itself (converted
    in memory) or from a converted model folder. ``raw_outputs(image)`` gives its heads."""
    path = Path(path)
    if path.is_dir():
        return RetinaFaceR50.from_pretrained(path, device=device)
    return retinaface_from_keras(path).to(device)
