"""Brows in focus: the swap's brows sharpened to the photo's focus on large faces (docs/swap.md
"Brows in focus").

On a face larger than the generator's crop the compositor keeps the target's detail above the
model's resolution wherever swap and target agree in structure (swap/compose.py
``detail_change``): the skin, the hair, the lids come out as sharp as the photo. Where the
model puts its own brow (the source's: thicker, lower, straighter than the target's) that
detail is skin, or is gated out, and the middle band of a large face is the swap's anyway: the
brow is a 128 px model's brow upsampled, a soft dark band between sharp skin and sharp hair
(a 600 px face swapped with a thick-browed source: two smudges over crisp lids). This pass
gives the swap's brows the edges of a brow in focus: unsharp masking of the lightness (the
same change in the three channels, so no colour fringes) with a Gaussian of
:data:`BROW_FOCUS_SIGMA` of a generator pixel, by :data:`BROW_FOCUS`, weighted by how dark the
swap's brow is there (from :data:`BROW_FOCUS_FROM` of its brow's depth, fully from
:data:`BROW_FOCUS_FULL`), in a band :data:`BROW_FOCUS_ZONE` brow-to-eye distances thick around
each of the target's brow lines (the source's brow may lie lower or higher), the eyes left out.
Faces under :data:`BROW_FOCUS_MIN_WORK` generator crops across are left alone: there the brow is
the model's own resolution, as sharp as it can be.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..faces import masks
from ..faces.color import feature_darkness, to_lab

# Unsharp masking amount (0 = off).
BROW_FOCUS: float = 1.0
# The Gaussian's sigma in pixels of the generator's S crop (times the work factor at the work
# size): the band just above what the model paints sharply.
BROW_FOCUS_SIGMA: float = 0.5
# Only on work crops at least this many generator crops across.
BROW_FOCUS_MIN_WORK: float = 2.0
# Darkness (L* below a grey-level closing, faces/color.py feature_darkness) with a disc of this
# share of S, as the brow passes measure it (swap/compose.py BROW_DEPTH_RADIUS).
BROW_FOCUS_RADIUS: float = 0.08
# Where the swap's brow is looked for: the target's brow lines this many brow-to-eye distances
# thick (a source's brow a third of a distance lower or higher is inside).
BROW_FOCUS_ZONE: float = 1.2
# The eyes' outlines grown by this many eye widths are left out (lids, lashes, eye make-up).
BROW_FOCUS_EYES: float = 0.35
# The weight: 0 below this share of the swap brow's depth (the 90th percentile of its darkness
# in the zone), 1 from the next.
BROW_FOCUS_FROM: float = 0.3
BROW_FOCUS_FULL: float = 0.6
# A swap brow shallower than this (L*) is no brow: nothing is sharpened.
BROW_FOCUS_MIN_DEPTH: float = 6.0
# Luma weights of the lightness the mask sharpens (Rec. 601).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def brow_weight(swap: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """``(S, S)`` float32 in [0, 1]: how much of a brow the swap (``(S, S, 3)`` uint8) paints
    around the target's brows (its 68 ``points`` on the crop), or None when it paints none."""
    size = swap.shape[0]
    dark = feature_darkness(to_lab(swap)[..., 0], BROW_FOCUS_RADIUS * size)
    eyes = masks.eye_zone(points, size, grow=BROW_FOCUS_EYES)
    weight = np.zeros((size, size), np.float32)
    for brow in (0, 1):
        zone = (masks.one_brow_zone(points, brow, size, BROW_FOCUS_ZONE) > 0.5) & ~eyes
        if int(np.count_nonzero(zone)) < 4:
            continue
        depth = float(np.percentile(dark[zone], 90))
        if depth < BROW_FOCUS_MIN_DEPTH:
            continue
        start, full = BROW_FOCUS_FROM * depth, BROW_FOCUS_FULL * depth
        share = np.clip((dark - start) / (full - start), 0.0, 1.0).astype(np.float32)
        np.maximum(weight, share * zone, out=weight)
    if float(weight.max()) <= 0.0:
        return None
    # Softened over a pixel of the 128 px crop: the weight's steps are not edges to sharpen.
    return masks.gaussian_blur(weight, size / 128.0)


def brow_focus(detailed: np.ndarray, points: np.ndarray, size: int,
               amount: float | None = None) -> tuple[slice, np.ndarray] | None:
    """The change that sharpens the swap's brows, as ``(rows, change)``: the band of rows of
    the work crop it lies in and, for those rows, float32 ``(R, W)`` grey levels (the same
    change for each channel; nothing elsewhere), or None where there is nothing to sharpen.

    ``detailed``: the colour-corrected swap with the target's detail kept, at the work size
    (float32 ``(W, W, 3)``: what is pasted); ``points``: the target's 68 landmarks on the
    ``size`` (S) crop; ``amount``: :data:`BROW_FOCUS` unless given."""
    amount = BROW_FOCUS if amount is None else amount
    work = detailed.shape[0]
    if amount <= 0 or work < BROW_FOCUS_MIN_WORK * size:
        return None
    clipped = np.clip(detailed, 0, 255).astype(np.uint8)
    weight = brow_weight(cv2.resize(clipped, (size, size), interpolation=cv2.INTER_AREA),
                         points)
    if weight is None:
        return None
    weight = cv2.resize(weight, (work, work), interpolation=cv2.INTER_LINEAR)
    rows = np.flatnonzero(weight.max(axis=1) > 1e-3)
    if rows.size == 0:
        return None
    sigma = BROW_FOCUS_SIGMA * work / size
    # Only the rows around the brows, with room for the blur.
    reach = int(math.ceil(3.0 * sigma)) + 1
    band = slice(max(int(rows[0]) - reach, 0), min(int(rows[-1]) + 1 + reach, work))
    luma = np.ascontiguousarray(detailed[band] @ _LUMA)
    sharp = (luma - cv2.GaussianBlur(luma, (0, 0), sigmaX=sigma, sigmaY=sigma)) * \
        (np.float32(amount) * weight[band])
    return band, sharp
