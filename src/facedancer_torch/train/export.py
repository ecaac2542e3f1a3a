"""``facedancer export RUN_DIR OUT_DIR``: a training run's generator as a model directory.

The output is what ``facedancer swap --model`` loads: ``config.json`` + ``model.safetensors``,
whose config records ``identity_encoder`` (the encoder the generator was trained with and
whose raw embedding it must be fed) and whose ``source`` names the run and step.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import FacedancerError
from ..io.atomic import atomic_directory
from .checkpoint import checkpoint_dir, latest_checkpoint, list_checkpoints


def export_generator(run_dir: str | Path, out_dir: str | Path, step: int | None = None,
                     half: bool = False) -> Path:
    """Write the generator of checkpoint ``step`` (default: the latest) to ``out_dir``.

    The directory is assembled next to ``out_dir`` and renamed into place (atomic); an
    existing ``out_dir`` is replaced only if it is a generator directory.
    """
    from ..models.generator import load_generator

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if step is None:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise FacedancerError("no checkpoint in this run directory (train first, or check "
                                  "the path)", run_dir)
    else:
        checkpoint = checkpoint_dir(run_dir, step)
        if not checkpoint.is_dir():
            steps = ", ".join(str(s) for s, _ in list_checkpoints(run_dir)) or "none"
            raise FacedancerError(f"no checkpoint for step {step} (available: {steps})", run_dir)
    # the EMA of the generator weights, when the run keeps one, is the model to ship
    ema = checkpoint / "generator_ema"
    generator = load_generator(ema if ema.is_dir() else checkpoint / "generator")
    if out_dir.exists():
        if not (out_dir / "config.json").is_file():
            raise FacedancerError("exists and is not a model directory; choose another OUT_DIR",
                                  out_dir)
    with atomic_directory(out_dir) as tmp:
        generator.save_pretrained(tmp, dtype=torch.float16 if half else None,
                                  source=f"facedancer train run {run_dir.resolve()} "
                                         f"({checkpoint.name})")
    return out_dir
