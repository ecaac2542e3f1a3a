"""Skin colour follows the swap's shading (faces/color.py ``shading_chroma``, swap/compose.py
``SKIN_SHADING``): on ``if_t1.jpg``'s warm faces the astronaut's swap came out grey where the
generator shades the face darker than the target is (a grey nose tip, shaded cheeks)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_brows import WORK, _before_and_after  # noqa: E402
from test_compose import SOURCE, _one_thread, demo  # noqa: E402, F401

from facedancer_torch.faces.color import (identity_transfer, on_skin_curve,  # noqa: E402
                                          shading_chroma, skin_curve)
from facedancer_torch.faces.masks import skin_zone  # noqa: E402


def _crops(demo, image: np.ndarray, face: int, monkeypatch) -> dict:
    """The ``face``-th face from the left of ``image`` swapped to the astronaut with the pass
    and without it (the same generator output): WORK px crops in L*a*b* smoothed as
    benchmarks/skin_match.py smooths them (colour, not texture), with the target's skin zone,
    bare and with the nose's underside."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from skin_match import smoothed_lab

    run = _before_and_after(demo, image, SOURCE, monkeypatch, {"SKIN_SHADING": 0.0}, face)
    smoothed = {name: smoothed_lab(crop) for name, crop in run["crops"].items()}
    return {**smoothed, "skin": skin_zone(run["points"], WORK),
            "nose": skin_zone(run["points"], WORK, nostrils=False)}


def test_skin_the_swap_shades_darker_takes_the_targets_darker_skin_colour(
        demo, photos_dir, monkeypatch):
    """Ross (the third face of if_t1.jpg): where the swap's skin is darker than the target's,
    its chroma now lies near what the target's own skin has at that lightness (it kept the
    lighter skin's, and read grey); where it is lighter, nothing changes."""
    from facedancer_torch.io.images import read_image

    run = _crops(demo, read_image(photos_dir / "if_t1.jpg"), 2, monkeypatch)
    skin, target = run["skin"], run["target"]
    assert skin.sum() > 10000, skin.sum()
    curve = skin_curve(target, skin.astype(np.float32))

    def shortfall(lab):
        """C* below the target skin's colour at the same lightness (positive: greyer)."""
        expected = np.linalg.norm(on_skin_curve(curve, lab[..., 0]), axis=-1)
        return expected - np.hypot(lab[..., 1], lab[..., 2])

    # With the nose's underside, where the grey nose tip is (the curve is the bare skin's).
    darker = run["nose"] & (run["before"][..., 0] < target[..., 0] - 5.0)
    lighter = run["nose"] & (run["before"][..., 0] > target[..., 0] + 2.0)
    assert darker.sum() > 1000 and lighter.sum() > 1000, (darker.sum(), lighter.sum())
    before, after = shortfall(run["before"])[darker].mean(), shortfall(run["after"])[darker].mean()
    assert before > 4.0, before
    assert after < 0.5 * before, (before, after)
    change = np.linalg.norm(run["after"][..., 1:] - run["before"][..., 1:], axis=-1)
    assert float(change[lighter].mean()) < 0.1 * float(change[darker].mean()), \
        (float(change[lighter].mean()), float(change[darker].mean()))
    # Lightness is the swap's: the pass moves chroma only.
    assert float(np.abs(run["after"][..., 0] - run["before"][..., 0])[skin].mean()) < 0.3


def test_shading_chroma_never_takes_chroma_away():
    """A synthetic skin whose curve loses chroma towards the dark (hair at a face's edge): a
    swap darker than the target there keeps its chroma; the same swap on a skin whose curve
    gains chroma towards the dark takes it."""
    size = 64
    rng = np.random.default_rng(0)
    light = rng.uniform(40.0, 90.0, (size, size)).astype(np.float32)

    def skin(saturates: bool) -> np.ndarray:
        lab = np.zeros((size, size, 3), np.float32)
        lab[..., 0] = light
        chroma = (100.0 - light) * 0.6 if saturates else light * 0.3
        lab[..., 1], lab[..., 2] = 0.6 * chroma, 0.8 * chroma
        rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
        return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)

    ones = np.ones((size, size), np.float32)
    for saturates in (True, False):
        target = skin(saturates)
        swapped = np.clip(target.astype(np.int16) - 30, 0, 255).astype(np.uint8)  # darker
        transfer = shading_chroma(identity_transfer(), swapped, target, ones, ones, 2.0)
        shift = np.zeros((size, size, 2)) if transfer.chroma is None else transfer.chroma
        along = (shift * np.array([0.6, 0.8])).sum(axis=-1)
        if saturates:
            assert float(along.mean()) > 5.0, float(along.mean())
        else:
            assert float(np.abs(shift).max()) < 1e-6, float(np.abs(shift).max())
