"""Training checkpoints: ``RUN/checkpoints/step_000001000/``.

Each checkpoint directory holds ``generator/`` and ``discriminator/`` (``config.json`` +
``model.safetensors``), ``generator_ema/`` when the run keeps an EMA of the generator, and the
rest of the training state as ``state.safetensors`` (every tensor: both optimisers' Adam
moments and step counts, the torch and numpy RNG states) + ``state.json`` (everything else:
step, optimiser hyper-parameters, loss scalers, python RNG state, data position, config), with
no pickle anywhere, so a checkpoint copied to a fresh clone resumes bit-exactly. ``meta.json``
is for humans. A checkpoint is assembled in a hidden temporary directory and renamed into
place, so a kill at any moment leaves either the whole checkpoint or none; only the last
``keep`` are kept. Checkpoints of earlier versions (``state.pt``, read with
``torch.load(weights_only=True)``) still resume.
"""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FacedancerError
from ..io.atomic import atomic_directory

CHECKPOINTS = "checkpoints"
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"
LEGACY_STATE = "state.pt"
_TENSOR_REF = "__tensor__"
_NAME_RE = re.compile(r"^step_(\d{9})$")


def checkpoint_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:09d}"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run as ``(step, path)``, oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME_RE.match(path.name)
        if match and ((path / STATE_JSON).is_file() or (path / LEGACY_STATE).is_file()):
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def rng_state() -> dict[str, Any]:
    """This process's RNG states (torch CPU and CUDA, numpy, python) as weights_only-safe data."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np_state[1].numpy().astype(np.uint32), *np_state[2:]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_checkpoint(run_dir: str | Path, step: int, generator: torch.nn.Module,
                    discriminator: torch.nn.Module, state: dict[str, Any],
                    meta: dict[str, Any], keep: int,
                    ema_generator: torch.nn.Module | None = None) -> Path:
    """Write checkpoint ``step`` atomically and delete all but the last ``keep``."""
    final = checkpoint_dir(run_dir, step)
    # the same step saved again after a resume replaces the earlier one
    with atomic_directory(final) as tmp:
        generator.save_pretrained(tmp / "generator", source=f"training checkpoint step {step}")
        discriminator.save_pretrained(tmp / "discriminator",
                                      source=f"training checkpoint step {step}")
        if ema_generator is not None:
            ema_generator.save_pretrained(tmp / "generator_ema",
                                          source=f"training checkpoint step {step} (EMA)")
        write_training_state(tmp, state)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    for _, old in list_checkpoints(run_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_stale_temporaries(run_dir: str | Path) -> None:
    """Delete half-written checkpoint directories left by a killed run."""
    root = Path(run_dir) / CHECKPOINTS
    if root.is_dir():
        for path in root.glob(".step_*"):
            shutil.rmtree(path, ignore_errors=True)


def _split_tensors(value: Any, tensors: dict[str, torch.Tensor], path: str) -> Any:
    """``value`` with every tensor replaced by ``{"__tensor__": key}`` (stored in ``tensors``);
    tuples become lists, dict keys strings (restored by :func:`_join_tensors`)."""
    if isinstance(value, torch.Tensor):
        tensors[path] = value.detach().cpu().contiguous().clone()
        return {_TENSOR_REF: path}
    if isinstance(value, dict):
        return {"__dict__": [[k, _split_tensors(v, tensors, f"{path}.{k}")]
                             for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        items = [_split_tensors(v, tensors, f"{path}.{i}") for i, v in enumerate(value)]
        return {"__tuple__": items} if isinstance(value, tuple) else items
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def _join_tensors(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, list):
        return [_join_tensors(v, tensors) for v in value]
    if isinstance(value, dict):
        if _TENSOR_REF in value:
            return tensors[value[_TENSOR_REF]]
        if "__tuple__" in value:
            return tuple(_join_tensors(v, tensors) for v in value["__tuple__"])
        # keys keep their type (the optimiser state is keyed by int parameter index)
        return {k: _join_tensors(v, tensors) for k, v in value["__dict__"]}
    return value


def write_training_state(folder: str | Path, state: dict[str, Any]) -> None:
    """``state`` (nested dicts/lists of tensors and plain data) as ``state.safetensors`` +
    ``state.json`` in ``folder`` (a checkpoint being assembled, so already atomic)."""
    from ..models.pretrained import save_safetensors

    folder = Path(folder)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _split_tensors(state, tensors, "state")
    save_safetensors(tensors, folder / STATE_TENSORS)
    # floats are written with repr: they read back bit-identical
    (folder / STATE_JSON).write_text(json.dumps(skeleton) + "\n")


def load_training_state(checkpoint: str | Path) -> dict[str, Any]:
    """The training state of a checkpoint: ``state.safetensors`` + ``state.json``, or the
    ``state.pt`` of earlier versions (``weights_only=True``: tensors and plain data only)."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / STATE_JSON).is_file() and (checkpoint / LEGACY_STATE).is_file():
        path = checkpoint / LEGACY_STATE
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
            # Not the loader's own text: it advises weights_only=False, i.e. running whatever
            # code a corrupt or planted file holds.
            raise FacedancerError(f"cannot read training state ({type(exc).__name__}): the file "
                                  "is corrupt or was not written by facedancer", path) from exc
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = checkpoint / STATE_JSON
    try:
        skeleton = json.loads(path.read_text())
        path = checkpoint / STATE_TENSORS
        tensors = load_file(str(path))
        return _join_tensors(skeleton, tensors)
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        raise FacedancerError(f"cannot read training state ({exc})", path) from exc
