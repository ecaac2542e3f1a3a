"""Dark lenses: sunglasses over a target's eyes, found from the target's own pixels.

The face segmenter (faces/occlusion.py) was trained on synthetic occluders and calls most real
dark sunglasses face (occluder probability 0.00 on LFW's Carla_Sullivan_0001.jpg, whose
lenses are black), so the compositor swapped over them: the generator paints an eye inside a
grey, see-through lens. A dark lens is plain to see from the pixels, though: no white of the
eye and no skin inside the eye's opening, and the top of the cheek under it as dark, while
the cheeks below are lit. This module judges that per face and gives the lens's extent on
the crop; the compositor keeps the target there (swap/compose.py ``LENS_*``).
"""

from __future__ import annotations

import cv2
import numpy as np

from . import masks
from .color import to_lab


def skin_lightness(lightness: np.ndarray, landmarks68: np.ndarray) -> float | None:
    """The median L* of the bare skin below the eyes (cheeks, nose; ``masks.skin_zone``
    below the eyes' lowest point by half an eye width): the lit skin a lens is judged
    against, which no lens, brim or fringe covers. None for a face with too little of it."""
    size = lightness.shape[0]
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    width = float(np.ptp(points[36:42, 0]) + np.ptp(points[42:48, 0])) / 2.0
    below = np.arange(size)[:, None] > points[36:48, 1].max() + 0.5 * width
    skin = masks.skin_zone(points, size) & below
    if int(skin.sum()) < 20:
        return None
    return float(np.median(lightness[skin]))


def lens_gaps(crop: np.ndarray, landmarks68: np.ndarray, under: tuple[float, float]
              ) -> np.ndarray:
    """Per eye (0: image-left, 1: image-right), how much darker than the skin below the eyes
    (:func:`skin_lightness`) the eye is: the smaller of two gaps, skin minus the brightest
    tenth of the opening (an open eye shows its white there, a lens nothing) and skin minus
    the median of a band just under the eye (from ``under[0]`` to ``under[1]`` eye widths
    below its lowest point, across the middle 0.8 of its width: a lens reaches over the top of
    the cheek, where an eye in shade or a deep-set one has lit skin). ``(2,)`` float, NaN
    where the face or an eye is too small to judge. ``crop``: the ``(S, S, 3)`` uint8 RGB
    target crop; ``landmarks68`` on it."""
    lightness = to_lab(crop)[..., 0]
    size = lightness.shape[0]
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    gaps = np.full(2, np.nan)
    skin = skin_lightness(lightness, points)
    if skin is None:
        return gaps
    for eye in (0, 1):
        opening = masks.eye_opening(points, eye, size)
        outline = points[36:42] if eye == 0 else points[42:48]
        width = float(np.ptp(outline[:, 0]))
        centre, bottom = float(outline[:, 0].mean()), float(outline[:, 1].max())
        rows = slice(max(int(bottom + under[0] * width), 0),
                     max(int(bottom + under[1] * width) + 1, 0))
        columns = slice(max(int(centre - 0.4 * width), 0), max(int(centre + 0.4 * width) + 1, 0))
        band = lightness[rows, columns]
        if int(opening.sum()) < 4 or band.size < 4:
            continue
        gaps[eye] = min(skin - float(np.percentile(lightness[opening], 90)),
                        skin - float(np.median(band)))
    return gaps


def lens_zone(crop: np.ndarray, landmarks68: np.ndarray, reach: float, dark: float
              ) -> np.ndarray:
    """Soft ``(S, S)`` float32 mask of the target's dark lenses: within each eye's outline
    grown by ``reach`` eye widths, the pixels more than ``dark`` L* darker than the skin below
    the eyes that are connected to the eye's opening (a lens, its frame, the bridge between
    two lenses where it reaches), each piece filled to its convex hull (a reflection on the
    lens), grown by a pixel of a 128 px crop and feathered by half as much; the openings
    themselves always. Zeros where the skin cannot be judged."""
    lightness = to_lab(crop)[..., 0]
    size = lightness.shape[0]
    skin = skin_lightness(lightness, landmarks68)
    zone = np.zeros((size, size), np.float32)
    if skin is None:
        return zone
    window = masks.eye_zone(landmarks68, size, grow=reach)
    candidate = ((lightness < skin - dark) & window).astype(np.uint8)
    _, labels = cv2.connectedComponents(candidate, connectivity=8)
    openings = masks.eye_opening(landmarks68, 0, size) | masks.eye_opening(landmarks68, 1, size)
    touching = np.unique(labels[openings & (candidate > 0)])
    lens = openings.astype(np.uint8)
    for label in touching[touching > 0]:
        # Each piece's convex hull: a lens is convex, and its reflections (a light band, a
        # catch light) are holes or bites in the dark pixels.
        ys, xs = np.nonzero(labels == label)
        hull = cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32))
        cv2.fillConvexPoly(lens, hull, 1)
    radius = max(1, int(round(size / 128.0)))
    # Grown by a pixel over the lens's anti-aliased rim, feathered by half as much.
    lens = cv2.dilate(lens, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    return masks.gaussian_blur(lens.astype(np.float32), 0.5 * radius)
