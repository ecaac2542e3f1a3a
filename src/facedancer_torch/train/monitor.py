"""Training logs: ``RUN/stats.jsonl`` (one JSON object per line), TensorBoard
(``RUN/tensorboard``) and image grids (``RUN/images/*.png``, target | source | swap per row).

On resume, records after the checkpoint's step are dropped from ``stats.jsonl`` and purged
from TensorBoard, so the logs continue the same curve instead of doubling the lost interval.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io.atomic import atomic_write_text

STATS_FILE = "stats.jsonl"
SYNTHETIC_LABEL = {"synthetic_media": "FaceDancer training grid: target | source | swap (swap "
                                      "is machine-generated)"}


def image_grid(columns: list[torch.Tensor], max_rows: int = 8) -> np.ndarray:
    """Grid (rows = samples, columns = e.g. target | source | swap) as RGB uint8 (H, W, 3).

    Each column is (B, 3, S, S) in [-1, 1]; values are clipped like the reference's output.
    """
    rows = min(max_rows, columns[0].shape[0])
    tiles = [c[:rows].detach().float().cpu().clamp(-1, 1) for c in columns]
    grid = torch.cat([torch.cat([t[r] for t in tiles], dim=2) for r in range(rows)], dim=1)
    return ((grid.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def _truncate_stats(path: Path, last_step: int) -> None:
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= last_step:
                kept.append(line)
        except ValueError:
            continue  # a line cut by a kill
    atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class RunLogger:
    """Writes stats and images for rank 0 (a disabled logger does nothing)."""

    def __init__(self, run_dir: str | Path, enabled: bool = True, resume_step: int | None = None,
                 tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.writer = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.stats_path = self.run_dir / STATS_FILE
        if resume_step is not None:
            _truncate_stats(self.stats_path, resume_step)
        elif self.stats_path.exists():
            self.stats_path.unlink()
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                warnings.warn("tensorboard is not installed: logging to stats.jsonl only "
                              "(pip install 'facedancer-torch[train]')", stacklevel=2)
            else:
                purge = None if resume_step is None else resume_step + 1
                self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"),
                                            purge_step=purge)
        self._stats = open(self.stats_path, "a", encoding="utf-8")  # noqa: SIM115

    def scalars(self, step: int, kind: str, values: dict[str, Any]) -> None:
        """One ``stats.jsonl`` record ``{"kind", "step", "time", **values}`` + TensorBoard."""
        if not self.enabled:
            return
        record = {"kind": kind, "step": step, "time": round(time.time(), 3), **values}
        self._stats.write(json.dumps(record) + "\n")
        self._stats.flush()
        if self.writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{kind}/{key}", value, step)

    def image(self, step: int, tag: str, grid: np.ndarray) -> Path | None:
        """Save an RGB uint8 grid as ``images/TAG_STEP.png`` (labelled synthetic) + TensorBoard."""
        if not self.enabled:
            return None
        from ..io.images import write_image

        path = self.run_dir / "images" / f"{tag}_{step:09d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, grid, metadata=SYNTHETIC_LABEL)
        if self.writer is not None:
            self.writer.add_image(f"images/{tag}", grid, step, dataformats="HWC")
        self.scalars(step, "image", {"tag": tag, "path": str(path.relative_to(self.run_dir))})
        return path

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        self._stats.close()
        if self.writer is not None:
            self.writer.close()
