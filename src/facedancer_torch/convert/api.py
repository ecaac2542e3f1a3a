"""One entry point for every Keras file we convert: look inside, pick the converter.

* a FaceDancer generator (graph with ``AdaIN`` / ``AdaptiveAttention`` layers) ->
  :mod:`.keras_facedancer`;
* an ArcFace ResNet50 (layers named ``conv1_conv``, ``conv2_block1_...``) ->
  :mod:`.keras_arcface` (imported only when needed);
* the authors' RetinaFace-Res50 (``FPN`` / ``SSH`` / head layers) -> :mod:`.keras_retinaface`;
* anything else -> :class:`ModelError` naming the file.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ..errors import ModelError
from .keras_h5 import KerasModelFile, read_keras_h5


def _all_layer_names(model_config: dict) -> set[str]:
    """Layer names, including those of nested models (ArcFace files nest a ResNet50)."""
    names: set[str] = set()
    stack = [model_config]
    while stack:
        cfg = stack.pop()
        for layer in cfg.get("config", {}).get("layers", []) or []:
            names.add(layer.get("name", layer.get("config", {}).get("name", "")))
            if isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
                stack.append(layer)
    return names


def detect_keras_model(model_file: KerasModelFile) -> str:
    """``"facedancer-generator"``, ``"arcface-res50"`` or ``"unknown"``."""
    from .keras_facedancer import is_facedancer_generator

    names = _all_layer_names(model_file.model_config)
    try:
        if is_facedancer_generator(model_file):
            return "facedancer-generator"
    except (ModelError, KeyError, TypeError):
        pass
    if "conv1_conv" in names and any(n.startswith("conv2_block1_") for n in names):
        return "arcface-res50"
    return "unknown"


def find_checkpoint_graph(path: str | Path) -> Path | None:
    """The JSON graph that goes with a ``save_weights`` checkpoint, if it lies beside it:
    ``<name>.json``, else the name with trailing ``_parts`` dropped (``gen_300.h5`` ->
    ``gen.json``, ``ref_default_weights.h5`` -> ``ref_default.json``)."""
    path = Path(path)
    parts = path.stem.split("_")
    for n in range(len(parts), 0, -1):
        candidate = path.with_name("_".join(parts[:n]) + ".json")
        if candidate.is_file():
            return candidate
    return None


def h5_has_graph(path: str | Path) -> bool:
    """True if the HDF5 file carries its Keras graph (a full model, not a checkpoint)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            return "model_config" in handle.attrs
    except OSError:
        return True  # let read_keras_h5 report the unreadable file


def _is_retinaface_file(path: Path) -> bool:
    """True for the authors' RetinaFace-Res50 (checked on the graph, before any weight is read)."""
    import json

    import h5py

    from .keras_retinaface import is_retinaface_graph

    try:
        with h5py.File(path, "r") as handle:
            raw = handle.attrs.get("model_config")
            if raw is None:
                return False
            return is_retinaface_graph(json.loads(raw.decode() if isinstance(raw, bytes) else raw))
    except (OSError, ValueError):
        return False


def convert_keras_file(path: str | Path, out_dir: str | Path,
                       graph_json: str | Path | None = None) -> Path:
    """Convert a Keras ``.h5`` (full model, or checkpoint + ``graph_json``) to a model
    directory (``config.json`` + ``model.safetensors``) in ``out_dir``; returns ``out_dir``.

    For a checkpoint without ``graph_json``, a ``gen.json`` / ``<name>.json`` beside it is used.
    """
    path = Path(path)
    if graph_json is None and path.is_file() and not h5_has_graph(path):
        graph_json = find_checkpoint_graph(path)
    if graph_json is None and _is_retinaface_file(path):
        from .keras_retinaface import convert_retinaface

        return convert_retinaface(path, out_dir)
    model_file = read_keras_h5(path, graph_json)
    kind = detect_keras_model(model_file)
    if kind == "facedancer-generator":
        from .keras_facedancer import convert_generator

        return convert_generator(model_file, out_dir, source=path)
    if kind == "arcface-res50":
        module = importlib.import_module("facedancer_torch.convert.keras_arcface")
        return Path(module.convert_arcface(model_file, out_dir, source=path.name))
    raise ModelError("not a Keras model this tool converts (expected a FaceDancer generator, "
                     "an ArcFace ResNet50 or RetinaFace-Res50)", path)
