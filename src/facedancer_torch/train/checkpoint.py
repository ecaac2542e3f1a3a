"""Training checkpoints: ``RUN/checkpoints/step_000001000/``.

Each checkpoint directory holds ``generator/`` and ``discriminator/`` (``config.json`` +
``model.safetensors``), ``state.pt`` (optimisers, loss scalers, step, every rank's RNG states,
the data position; plain tensors and numbers, read with ``torch.load(weights_only=True)``) and
``meta.json`` for humans. A checkpoint is assembled in a hidden temporary directory and
renamed into place, so a kill at any moment leaves either the whole checkpoint or none; only
the last ``keep`` are kept.
"""

from __future__ import annotations

import json
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
        if match and (path / "state.pt").is_file():
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
                    meta: dict[str, Any], keep: int) -> Path:
    """Write checkpoint ``step`` atomically and delete all but the last ``keep``."""
    final = checkpoint_dir(run_dir, step)
    # the same step saved again after a resume replaces the earlier one
    with atomic_directory(final) as tmp:
        generator.save_pretrained(tmp / "generator", source=f"training checkpoint step {step}")
        discriminator.save_pretrained(tmp / "discriminator",
                                      source=f"training checkpoint step {step}")
        torch.save(state, tmp / "state.pt")
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


def load_training_state(checkpoint: str | Path) -> dict[str, Any]:
    """``state.pt`` of a checkpoint (``weights_only=True``: tensors and plain data only)."""
    path = Path(checkpoint) / "state.pt"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:  # pickle errors surface as these
        raise FacedancerError(f"cannot read training state ({exc})", path) from exc
