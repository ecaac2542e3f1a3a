"""Hand-marked occluders of the shared photos (``benchmarks/data/occluders.json``, issue #12).

Each photo of ``../shared/data/photos`` where something covers a face (a microphone, a hand,
glasses...) lists its occluders as polygons in image pixel coordinates (x right, y down, as
the photo is stored, before any EXIF rotation: the shared photos have none), marked by hand by
drawing them on the photo and checking the overlay. A polygon may have ``holes`` (the clear
lenses inside a glasses frame are not occluders):

    {"photos": {"NAME": [{"label": "microphone", "polygon": [[x, y], ...],
                          "holes": [[[x, y], ...]]}]}}

``benchmarks/quality.py`` and ``benchmarks/segmenter.py`` read them through
:func:`occluder_mask`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "occluders.json"


@functools.lru_cache(maxsize=1)
def load_occluders() -> dict[str, list[dict]]:
    """``{photo name: [{"label", "polygon", ("holes")}, ...]}`` from the JSON file."""
    return json.loads(DATA.read_text())["photos"]


def marked_photos() -> list[str]:
    """Names (in ``shared/data/photos``) of the photos with marked occluders."""
    return sorted(load_occluders())


def _fill(mask: np.ndarray, polygon, value: int) -> None:
    # 4 fractional bits: vertices are placed at pixel centres exactly, as marked.
    points = np.round(np.asarray(polygon, dtype=np.float64) * 16).astype(np.int32)
    cv2.fillPoly(mask, [points], value, lineType=cv2.LINE_8, shift=4)


def occluder_mask(name: str, shape: tuple[int, ...], labels: tuple[str, ...] | None = None
                  ) -> np.ndarray:
    """``(H, W)`` bool: pixels of photo ``name`` covered by a marked occluder (all of them, or
    those whose label is in ``labels``). ``shape`` is the photo's ``(H, W[, C])``; a photo
    without marks gives an all-False mask."""
    height, width = int(shape[0]), int(shape[1])
    mask = np.zeros((height, width), dtype=np.uint8)
    for item in load_occluders().get(name, []):
        if labels is not None and item["label"] not in labels:
            continue
        layer = np.zeros_like(mask)
        _fill(layer, item["polygon"], 1)
        for hole in item.get("holes", []):
            _fill(layer, hole, 0)
        mask |= layer
    return mask.astype(bool)
