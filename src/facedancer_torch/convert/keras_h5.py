"""Read Keras 2 HDF5 files (full models and ``save_weights`` checkpoints) with h5py only.

Two layouts exist (docs/reference.md §9):

* full model (``model.save``): root attribute ``model_config`` (JSON graph) and a group
  ``model_weights`` holding one group per layer;
* checkpoint (``save_weights``): the per-layer groups sit at the root, the graph is a
  separate JSON file (``model.to_json()``).

Every layer group has an attribute ``weight_names`` that orders its tensors
(e.g. ``['dense/kernel:0', 'dense/bias:0']``); that order is what Keras uses and what we keep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError


@dataclass
class KerasLayer:
    """One layer of a Keras functional graph."""

    name: str
    class_name: str
    config: dict[str, Any]
    inbound: list[str]  # names of the layers feeding this one, in call order


@dataclass
class KerasModelFile:
    """A Keras model read from HDF5: its graph and its weights by layer name."""

    model_config: dict[str, Any]
    weights: dict[str, list[np.ndarray]]  # layer name -> tensors in ``weight_names`` order
    # layer name -> the ``weight_names`` themselves (e.g. 'conv2d/kernel:0'), same order
    weight_names: dict[str, list[str]] = field(default_factory=dict)

    @property
    def layers(self) -> list[KerasLayer]:
        return parse_layers(self.model_config)

    @property
    def input_names(self) -> list[str]:
        return [entry[0] for entry in self.model_config["config"]["input_layers"]]

    @property
    def output_names(self) -> list[str]:
        return [entry[0] for entry in self.model_config["config"]["output_layers"]]


def _decode(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_layers(model_config: dict[str, Any]) -> list[KerasLayer]:
    """Flatten a functional ``model_config`` into layers with their inbound layer names."""
    if model_config.get("class_name") not in ("Functional", "Model"):
        raise ModelError(f"expected a Keras functional model, got '{model_config.get('class_name')}'")
    layers = []
    for entry in model_config["config"]["layers"]:
        inbound: list[str] = []
        for node in entry.get("inbound_nodes", []):
            # Keras 2 layout: a node is a list of [layer_name, node_index, tensor_index, kwargs]
            # ... except a TFOpLambda's node, which is one such entry on its own
            for item in ([node] if node and isinstance(node[0], str) else node):
                inbound.append(item[0])
                # A TFOpLambda passes its other tensors as keyword arguments, e.g.
                # tf.math.multiply(x, y=<layer>): {"y": ["64x64_hat", 0, 0]}.
                kwargs = item[3] if len(item) > 3 and isinstance(item[3], dict) else {}
                for value in kwargs.values():
                    if isinstance(value, list) and len(value) == 3 and isinstance(value[0], str):
                        inbound.append(value[0])
        layers.append(KerasLayer(entry.get("name", entry["config"]["name"]), entry["class_name"],
                                 entry["config"], inbound))
    return layers


def _read_weight_groups(group: Any) -> tuple[dict[str, list[np.ndarray]], dict[str, list[str]]]:
    weights: dict[str, list[np.ndarray]] = {}
    weight_names: dict[str, list[str]] = {}
    for layer_name in group.attrs.get("layer_names", list(group.keys())):
        layer_name = _decode(layer_name)
        layer_group = group[layer_name]
        names = [_decode(n) for n in layer_group.attrs.get("weight_names", [])]
        if names:
            weights[layer_name] = [np.asarray(layer_group[n], dtype=np.float32) for n in names]
            weight_names[layer_name] = names
    return weights, weight_names


def read_keras_h5(path: str | Path, graph_json: str | Path | None = None) -> KerasModelFile:
    """Read a Keras HDF5 file: a full model, or a checkpoint plus its JSON graph.

    Raises :class:`ModelError` naming the file when it is not HDF5, has no graph (and none was
    given), or is not a Keras functional model.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise ModelError("is a folder, not a Keras .h5 file" if path.is_dir() else
                         "file not found", path)
    try:
        handle = h5py.File(path, "r")
    except OSError as exc:
        raise ModelError(f"not a readable HDF5 file ({exc.__class__.__name__})", path) from exc
    with handle:
        if graph_json is not None:
            graph_json = Path(graph_json)
            if not graph_json.is_file():
                raise ModelError("graph JSON not found", graph_json)
            try:
                model_config = json.loads(graph_json.read_text())
            except (ValueError, UnicodeDecodeError) as exc:
                raise ModelError("not a Keras model JSON", graph_json) from exc
        elif "model_config" in handle.attrs:
            model_config = json.loads(_decode(handle.attrs["model_config"]))
        else:
            raise ModelError("this HDF5 file has no model graph (a save_weights checkpoint?); "
                             "pass its JSON graph with --graph", path)
        group = handle["model_weights"] if "model_weights" in handle else handle
        weights, weight_names = _read_weight_groups(group)
    return KerasModelFile(model_config=model_config, weights=weights, weight_names=weight_names)
