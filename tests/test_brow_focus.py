"""A large face's swapped brows are brought to the photo's focus (swap/brow_focus.py; docs/swap.md
"Brows in focus")."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from swaputil import with_and_without  # noqa: E402
from test_compose import _one_thread, _quality, demo  # noqa: E402, F401

CROP = 512  # crops measured at 4x the generator's size: the brows' detail at the photo's scale


def _with_and_without(demo, image, source, monkeypatch) -> dict:
    """:func:`swaputil.with_and_without` with the brow focus pass as the one switched off."""
    from facedancer_torch.swap import brow_focus

    return with_and_without(demo, image, source,
                            lambda: monkeypatch.setattr(brow_focus, "BROW_FOCUS", 0.0), CROP)


def test_a_thick_brow_on_a_large_face_comes_out_sharp(demo, photos_dir, lfw_dir, monkeypatch):
    """df_img1.jpg (a face about 800 px across) with Yao_Ming_0002.jpg, whose straight, thick
    brows the generator paints below her thin arched ones (session 48): without the pass they
    were soft smudges between her sharp lids and forehead. With it the brows' grey image has
    half as much Laplacian variance again or more, the change is grey (no colour fringe), and
    nothing below the eyes or outside the face changes."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.brow_focus import brow_weight

    run = _with_and_without(demo, read_image(photos_dir / "df_img1.jpg"),
                            lfw_dir / "images/Yao_Ming/Yao_Ming_0002.jpg", monkeypatch)
    before, after = run["crops"]["before"], run["crops"]["after"]
    small = cv2.resize(after, (CROP // 4, CROP // 4), interpolation=cv2.INTER_AREA)
    weight = brow_weight(small, (run["points"] + 0.5) / 4 - 0.5)
    assert weight is not None
    brows = cv2.resize(weight, (CROP, CROP), interpolation=cv2.INTER_LINEAR) >= 0.5
    assert brows.sum() > 2000, brows.sum()
    laplacian_variance = _quality().laplacian_variance
    sharp_before = laplacian_variance(before, brows)
    sharp_after = laplacian_variance(after, brows)
    assert sharp_after > 1.5 * sharp_before, (sharp_before, sharp_after)
    # The same change in each channel (rounding apart): lightness, not colour.
    frame_before, frame_after = (f.astype(np.int16) for f in run["frames"])
    change = frame_after - frame_before
    moved = np.abs(change).max(axis=2) > 0
    assert moved.sum() > 1000, moved.sum()
    unclipped = moved & (frame_after.max(axis=2) < 255) & (frame_after.min(axis=2) > 0)
    spread = change.max(axis=2) - change.min(axis=2)
    assert int(np.percentile(spread[unclipped], 99)) <= 1, np.percentile(spread[unclipped], 99)
    # Nothing below the eyes changes, and only around the brows' rows at all.
    rows = np.flatnonzero(moved.any(axis=1))
    eyes_bottom = run["points"][36:48, 1].max()
    below = np.abs(after.astype(np.int16) - before)[int(eyes_bottom) + 8:]
    assert int(below.max()) == 0, int(below.max())
    assert rows.size < 0.25 * moved.shape[0], rows.size


def test_a_face_about_the_models_size_is_left_alone(demo, lfw_dir, monkeypatch):
    """An LFW face (about 110 px, under two generator crops): its brows are the model's own
    resolution, nothing is sharpened."""
    from facedancer_torch.io.images import read_image

    image = read_image(lfw_dir / "images/Ray_Liotta/Ray_Liotta_0001.jpg")
    run = _with_and_without(demo, image, lfw_dir / "images/Yao_Ming/Yao_Ming_0002.jpg",
                            monkeypatch)
    before, after = run["frames"]
    assert np.array_equal(before, after)
