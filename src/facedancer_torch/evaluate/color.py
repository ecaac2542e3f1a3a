"""Colour-cast metric: how much of a face turns from a warm tone to green, blue or purple.

The failure users notice first in a swap from a small generator is not a wrong identity but a
wrong colour: teal eyebrows, purple eye rims, grey-green skin. Skin, lips and brown brows are
*warm* in CIE-Lab (a* > 0 reddish, b* > 0 yellowish); the artefacts are where the swap takes the
opposite sign: a* < 0 (green, teal) or b* < 0 (blue, purple). A global colour shift that keeps the
signs (a slightly redder face) is not counted; that is a colour *match* question, not a cast.

A pixel counts as a cast when, in at least one of the two chroma channels, the target is warm by
more than ``threshold`` and the swap is cold by more than ``threshold`` (``target > +t`` and
``swap < -t``). ``t = 4`` Lab units: the just-noticeable difference is about 2.3 (Sharma 2003),
so a flip across a 2t = 8 unit gap is clearly visible, while JPEG/H.264 chroma noise on dark
pixels (brows, nostrils) stays below it.
"""

from __future__ import annotations

import numpy as np

from ..faces.color import to_lab

CAST_THRESHOLD: float = 4.0  # Lab units, see the module docstring


def color_cast_map(target_rgb: np.ndarray, swap_rgb: np.ndarray,
                   threshold: float = CAST_THRESHOLD) -> np.ndarray:
    """``(H, W)`` bool: pixels whose a* or b* flips from warm in the target to cold in the swap."""
    if np.shape(target_rgb) != np.shape(swap_rgb):
        raise ValueError(f"target {np.shape(target_rgb)} and swap {np.shape(swap_rgb)} differ")
    t, s = to_lab(target_rgb), to_lab(swap_rgb)
    flip_a = (t[..., 1] > threshold) & (s[..., 1] < -threshold)
    flip_b = (t[..., 2] > threshold) & (s[..., 2] < -threshold)
    return flip_a | flip_b


def color_cast_fraction(target_rgb: np.ndarray, swap_rgb: np.ndarray,
                        region_mask: np.ndarray | None = None,
                        threshold: float = CAST_THRESHOLD) -> float:
    """Fraction (0..1) of the pixels of ``region_mask`` (bool, or float > 0.5; None = all) that
    are colour casts (see :func:`color_cast_map`). 0.0 for an empty region."""
    cast = color_cast_map(target_rgb, swap_rgb, threshold)
    if region_mask is None:
        region = np.ones(cast.shape, bool)
    else:
        region = np.asarray(region_mask)
        region = region > 0.5 if region.dtype != bool else region
        if region.shape != cast.shape:
            raise ValueError(f"region mask {region.shape} does not match the image {cast.shape}")
    count = int(region.sum())
    return float((cast & region).sum()) / count if count else 0.0
