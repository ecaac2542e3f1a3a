"""PyTorch generator -> the authors' Keras HDF5 layout, for converter tests only.

Writes both the full-model form (``model.save``) and the checkpoint form (``save_weights`` +
``to_json``) with Keras 2 auto-names in the reference's build order, so that graphs other
than the fixtures' can be converted in tests without TensorFlow. Moved here from
``convert/keras_facedancer.py``: only tests use it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedancer_torch.models.generator import NUM_DOWN, FaceDancerGenerator


class _KerasGraphWriter:
    """Emit layers in the reference's build order with Keras-style auto-names."""

    _SNAKE = {"Conv2D": "conv2d", "Dense": "dense", "LeakyReLU": "leaky_re_lu",
              "InstanceNormalization": "instance_normalization", "AdaIN": "ada_in",
              "AveragePooling2D": "average_pooling2d", "UpSampling2D": "up_sampling2d",
              "Add": "add", "Concatenate": "concatenate", "AdaptiveAttention": "adaptive_attention",
              "InputLayer": "input"}

    def __init__(self, counter_offset: int = 0):
        self.counters: dict[str, int] = defaultdict(lambda: counter_offset)
        self.layers: list[dict[str, Any]] = []
        self.weights: dict[str, list[tuple[str, np.ndarray]]] = {}

    def _name(self, cls: str) -> str:
        base = self._SNAKE[cls]
        n = self.counters[base]
        self.counters[base] += 1
        if cls == "InputLayer":
            return f"input_{n + 1}"
        return base if n == 0 else f"{base}_{n}"

    def add(self, cls: str, inbound: list[str], config: dict[str, Any] | None = None,
            weights: list[tuple[str, np.ndarray]] | None = None, name: str | None = None) -> str:
        name = name or self._name(cls)
        class_name = "Addons>InstanceNormalization" if cls == "InstanceNormalization" else cls
        cfg = {"name": name, "trainable": True, "dtype": "float32", **(config or {})}
        self.layers.append({"class_name": class_name, "config": cfg, "name": name,
                            "inbound_nodes": [[[src, 0, 0, {}] for src in inbound]] if inbound else []})
        if weights:
            self.weights[name] = [(f"{name}/{wn}", arr) for wn, arr in weights]
        return name

    def conv(self, x: str, conv: torch.nn.Conv2d, activation: str = "linear",
             name: str | None = None) -> str:
        k = conv.kernel_size[0]
        cfg = {"filters": conv.out_channels, "kernel_size": [k, k], "strides": [1, 1],
               "padding": "same", "data_format": "channels_last", "dilation_rate": [1, 1],
               "groups": 1, "activation": activation, "use_bias": True}
        w = conv.weight.detach().cpu().numpy().transpose(2, 3, 1, 0)
        return self.add("Conv2D", [x], cfg, [("kernel:0", w),
                                             ("bias:0", conv.bias.detach().cpu().numpy())], name)

    def dense(self, x: str, lin: torch.nn.Linear) -> str:
        return self.add("Dense", [x], {"units": lin.out_features, "activation": "linear",
                                       "use_bias": True},
                        [("kernel:0", lin.weight.detach().cpu().numpy().T),
                         ("bias:0", lin.bias.detach().cpu().numpy())])

    def lrelu(self, x: str) -> str:
        return self.add("LeakyReLU", [x], {"alpha": 0.20000000298023224})

    def norm(self, x: str, norm: torch.nn.Module) -> str:
        cfg = {"groups": -1, "axis": -1, "epsilon": 0.001, "center": True, "scale": True}
        return self.add("InstanceNormalization", [x], cfg,
                        [("gamma:0", norm.weight.detach().cpu().numpy()),
                         ("beta:0", norm.bias.detach().cpu().numpy())])

    def adain(self, x: str, w: str, adain: torch.nn.Module) -> str:
        def t(p: torch.Tensor) -> np.ndarray:
            return p.detach().cpu().numpy()
        return self.add("AdaIN", [x, w], {}, [
            ("dense/kernel:0", t(adain.scale.weight).T), ("dense/bias:0", t(adain.scale.bias)),
            ("dense_1/kernel:0", t(adain.bias.weight).T), ("dense_1/bias:0", t(adain.bias.bias))])

    def down(self, x: str, block: Any) -> str:
        r = self.conv(x, block.shortcut)
        if block.resample:
            r = self.add("AveragePooling2D", [r], {"pool_size": [2, 2], "padding": "valid",
                                                   "strides": [2, 2], "data_format": "channels_last"})
        h = self.conv(self.lrelu(self.norm(x, block.norm)), block.conv)
        if block.resample:
            h = self.add("AveragePooling2D", [h], {"pool_size": [2, 2], "padding": "valid",
                                                   "strides": [2, 2], "data_format": "channels_last"})
        return self.add("Add", [h, r])

    def up(self, x: str, w: str, block: Any, name: str | None = None) -> str:
        r = self.conv(x, block.shortcut)
        if block.resample:
            r = self.add("UpSampling2D", [r], {"size": [2, 2], "data_format": "channels_last",
                                               "interpolation": "bilinear"})
        h = self.conv(self.lrelu(self.adain(self.norm(x, block.norm), w, block.adain)), block.conv)
        if block.resample:
            h = self.add("UpSampling2D", [h], {"size": [2, 2], "data_format": "channels_last",
                                               "interpolation": "bilinear"})
        return self.add("Add", [h, r], name=name)


def write_keras_generator(model: FaceDancerGenerator, path: str | Path,
                          graph_json: str | Path | None = None, counter_offset: int = 0) -> None:
    """Write ``model`` in the authors' Keras HDF5 layout.

    Without ``graph_json``: the full-model layout (``model_config`` attribute + ``model_weights``
    group, like ``model.save``). With it: the checkpoint layout (per-layer groups at the root,
    like ``save_weights``) and the graph as JSON (like ``to_json``). Layer names follow Keras 2
    auto-naming in the reference's build order; ``counter_offset`` shifts every counter, as
    happens when other models were built first in the same Keras session.
    """
    import h5py

    from facedancer_torch.io.atomic import atomic_path, atomic_write_text

    cfg = model.config
    kw = _KerasGraphWriter(counter_offset)
    x_in = kw.add("InputLayer", [], {"batch_input_shape": [None, cfg.image_size, cfg.image_size, 3],
                                     "sparse": False, "ragged": False})
    z_in = kw.add("InputLayer", [], {"batch_input_shape": [None, cfg.z_dim], "sparse": False,
                                     "ragged": False})
    w = z_in
    for i, lin in enumerate(model.mapping.layers):
        w = kw.dense(w, lin)
        if i < len(model.mapping.layers) - 1:
            w = kw.lrelu(w)
    skips = [kw.conv(x_in, model.stem)]
    for block in model.encoder:
        skips.append(kw.down(skips[-1], block))
    d = kw.up(skips[-1], w, model.bottleneck)
    size = cfg.image_size
    for s, fusion in enumerate(model.decoder):
        a = skips[NUM_DOWN - s]
        stage_name = f"{size // 2 ** (NUM_DOWN - s - 1)}" if s < NUM_DOWN else None
        stage_name = f"{stage_name}x{stage_name}" if stage_name else "final"
        if fusion.up_type == "affa":
            m = kw.add("Concatenate", [a, d], {"axis": -1})
            m = kw.conv(m, fusion.affa.conv)
            m = kw.norm(kw.lrelu(m), fusion.affa.norm)
            m = kw.conv(m, fusion.affa.mask, activation="sigmoid", name=stage_name)
            h = kw.add("AdaptiveAttention", [m, a, d])
        elif fusion.up_type == "concat":
            h = kw.add("Concatenate", [a, d], {"axis": -1})
        elif fusion.up_type == "add":
            h = kw.add("Add", [a, d])
        else:
            h = d
        # the reference names the output Add 'final' only for a concat output stage
        out_name = "final" if s == NUM_DOWN and fusion.up_type == "concat" else None
        d = kw.up(h, w, fusion.block, name=out_name)

    model_config = {"class_name": "Functional", "config": {
        "name": "model", "trainable": True, "layers": kw.layers,
        "input_layers": [[x_in, 0, 0], [z_in, 0, 0]], "output_layers": [[d, 0, 0]]},
        "keras_version": "2.15.0", "backend": "tensorflow"}
    layer_names = [layer["name"] for layer in kw.layers]
    str_dtype = h5py.string_dtype()

    def write_groups(root: Any) -> None:
        root.attrs["layer_names"] = np.array(layer_names, dtype=str_dtype)
        root.attrs["backend"] = "tensorflow"
        root.attrs["keras_version"] = "2.15.0"
        for name in layer_names:
            group = root.create_group(name)
            entries = kw.weights.get(name, [])
            group.attrs["weight_names"] = np.array([n for n, _ in entries], dtype=str_dtype) \
                if entries else np.array([], dtype=np.float64)
            for wname, arr in entries:
                group.create_dataset(wname, data=np.asarray(arr, dtype=np.float32))

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        if graph_json is None:
            handle.attrs["backend"] = "tensorflow"
            handle.attrs["keras_version"] = "2.15.0"
            handle.attrs["model_config"] = json.dumps(model_config)
            write_groups(handle.create_group("model_weights"))
        else:
            write_groups(handle)
    if graph_json is not None:
        atomic_write_text(graph_json, json.dumps(model_config))
