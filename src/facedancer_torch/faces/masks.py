"""Blend masks for pasting a swapped face back (docs/reference.md §7), face-shaped masks from
landmarks, and the weights that fade profiles and faces the frame cuts back to the target.

Masks live in **crop space**: ``(S, S)`` float32 in ``[0, 1]`` on the aligned ``S x S`` crop
(1 = take the swapped pixel). :func:`facedancer_torch.faces.align.paste_back` warps them back
into the frame with the inverse alignment.

The reference mask (section 7, ``swap_func.py`` of the authors' code): on the 256 crop,
``mask[77:240, 32:224] = 1`` (rows 77..239, columns 32..223), then
``scipy.ndimage.gaussian_filter(sigma=7)`` (reflecting border, kernel radius 4 sigma). The
box covers brows to chin and leaves the hairline and ears to the target. Other crop sizes
scale every number by ``S / 256``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .align import ARCFACE_SIZE, alignment_matrix, invert_affine, transform_points

REFERENCE_SIZE: int = 256
# rows [top, bottom), columns [left, right) of the reference box on the 256 crop
REFERENCE_BOX: tuple[int, int, int, int] = (77, 240, 32, 224)
REFERENCE_BLUR: float = 7.0  # Gaussian sigma in pixels of the 256 crop


def _padding4(padding: float | Sequence[float]) -> tuple[float, float, float, float]:
    if isinstance(padding, (int, float)):
        return (float(padding),) * 4
    values = tuple(float(p) for p in padding)
    if len(values) != 4:
        raise ValueError("padding is one number or four (top, right, bottom, left)")
    return values  # type: ignore[return-value]


def gaussian_blur(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur equal to ``scipy.ndimage.gaussian_filter(mask, sigma)`` (reflect border,
    radius ``int(4 * sigma + 0.5)``), via OpenCV. ``(H, W)`` float32 in, float32 out (or
    ``(H, W, C)``, each channel blurred alike)."""
    mask = np.asarray(mask, np.float32)
    if sigma <= 0:
        return mask.copy()
    radius = blur_reach(sigma)
    return cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT)


def blur_reach(sigma: float) -> int:
    """How many pixels :func:`gaussian_blur` with ``sigma`` reaches beyond a mask's edge."""
    return int(4.0 * sigma + 0.5)


def low_pass(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (float32 ``(W, W, C)``) low-passed at ``size`` pixels: area-averaged down to
    ``size``, bicubic back up (the compositor's detail split, which keeps frequencies up to
    about ``size / 2W`` cycles per pixel); ``image`` itself when ``size`` reaches ``W``."""
    work = image.shape[0]
    if size >= work:
        return image
    small = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (work, work), interpolation=cv2.INTER_CUBIC)


def guided_filter(mask: np.ndarray, guide: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of ``mask`` ``(H, W)`` by a colour ``guide`` ``(H, W, 3)`` uint8
    (the guided filter of He, Sun and Tang, 2010): in every ``(2 radius + 1)``-square window
    the output is a linear function of the guide's colour fitted to the mask, so a mask edge
    that follows an edge of the image stays as sharp as that edge, and one that crosses a
    flat area (less colour variance than ``eps``, in squared units of [0, 1]) is smoothed
    over the window. float32 in ``[0, 1]`` out; pixels farther than ``2 radius`` from every
    nonzero mask pixel stay 0 (only the box around those is computed)."""
    mask = np.asarray(mask, np.float32)
    if radius < 1:
        return mask.copy()
    rows, cols = np.nonzero(mask)
    out = np.zeros(mask.shape, np.float32)
    if not len(rows):
        return out
    margin = 2 * radius + 2
    y0, y1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, mask.shape[0])
    x0, x1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, mask.shape[1])
    p = mask[y0:y1, x0:x1]
    image = guide[y0:y1, x0:x1].astype(np.float32) * np.float32(1.0 / 255.0)
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    window = (2 * radius + 1, 2 * radius + 1)
    # Every window mean in one box filter: the guide, the mask, the guide's second moments
    # and its products with the mask.
    means = cv2.blur(np.dstack([r, g, b, p, r * r, r * g, r * b, g * g, g * b, b * b,
                                r * p, g * p, b * p]), window, borderType=cv2.BORDER_REFLECT)
    mr, mg, mb, mp = (means[..., i] for i in range(4))
    vrr = means[..., 4] - mr * mr + eps
    vrg = means[..., 5] - mr * mg
    vrb = means[..., 6] - mr * mb
    vgg = means[..., 7] - mg * mg + eps
    vgb = means[..., 8] - mg * mb
    vbb = means[..., 9] - mb * mb + eps
    cr, cg, cb = (means[..., 10 + i] - m * mp for i, m in enumerate((mr, mg, mb)))
    # (covariance + eps I)^-1 (covariance with the mask), the symmetric 3x3 inverse by cofactors
    irr, irg, irb = vgg * vbb - vgb * vgb, vgb * vrb - vrg * vbb, vrg * vgb - vgg * vrb
    igg, igb, ibb = vrr * vbb - vrb * vrb, vrb * vrg - vrr * vgb, vrr * vgg - vrg * vrg
    det = vrr * irr + vrg * irg + vrb * irb
    ar = (irr * cr + irg * cg + irb * cb) / det
    ag = (irg * cr + igg * cg + igb * cb) / det
    ab = (irb * cr + igb * cg + ibb * cb) / det
    coefficients = cv2.blur(np.dstack([ar, ag, ab, mp - ar * mr - ag * mg - ab * mb]), window,
                            borderType=cv2.BORDER_REFLECT)
    smooth = (coefficients[..., 0] * r + coefficients[..., 1] * g + coefficients[..., 2] * b
              + coefficients[..., 3])
    out[y0:y1, x0:x1] = np.clip(smooth, 0.0, 1.0)
    return out


def box_mask(size: int = REFERENCE_SIZE, *, blur: float | None = REFERENCE_BLUR,
             padding: float | Sequence[float] = 0.0) -> np.ndarray:
    """The reference soft box mask on an ``(size, size)`` crop, float32 in ``[0, 1]``.

    Args:
        size: crop side in pixels; the box and the blur scale with ``size / 256``.
        blur: Gaussian sigma in pixels **of a 256 crop** (reference 7; ``None`` = 7; 0 = a
            hard box). Larger values feather the seam more.
        padding: fraction of the crop size added to the box on each side (negative shrinks
            it), one number or ``(top, right, bottom, left)``; 0 is the reference box.

    With the defaults and ``size=256`` this equals the reference
    (``gaussian_filter(box, 7)``) to float32 precision.
    """
    if size < 8:
        raise ValueError(f"crop size must be >= 8, got {size}")
    blur = REFERENCE_BLUR if blur is None else float(blur)
    if blur < 0:
        raise ValueError(f"blur must be >= 0, got {blur}")
    scale = size / REFERENCE_SIZE
    top, bottom, left, right = (v * scale for v in REFERENCE_BOX)
    pad_top, pad_right, pad_bottom, pad_left = (p * size for p in _padding4(padding))
    rows = (int(round(top - pad_top)), int(round(bottom + pad_bottom)))
    cols = (int(round(left - pad_left)), int(round(right + pad_right)))
    mask = np.zeros((size, size), np.float32)
    mask[max(rows[0], 0):max(min(rows[1], size), 0),
         max(cols[0], 0):max(min(cols[1], size), 0)] = 1.0
    return np.clip(gaussian_blur(mask, blur * scale), 0.0, 1.0)


# -- face-shaped masks ----------------------------------------------------------------------
# How far the brow points are lifted, as a fraction of the brow-to-chin height: the mask then
# ends on smooth forehead skin instead of cutting through the brows (where a seam shows most);
# 0.2 measured a higher identity gain than 0.1 (benchmarks/quality.py).
HULL_BROW_LIFT: float = 0.20
# Feathering of the face-shaped mask, as a fraction of the face height (brow to chin), centred
# on the target's outline.
HULL_FEATHER: float = 0.035


def face_polygon(landmarks68: np.ndarray, brow_lift: float = HULL_BROW_LIFT) -> np.ndarray:
    """The outline of the face from 68 landmarks: the jaw (0..16) and the brows (26..17) lifted
    by ``brow_lift`` of the brow-to-chin height, as a ``(27, 2)`` float32 polygon."""
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    jaw, brows = points[0:17], points[17:27][::-1].copy()
    chin = points[8]
    brow_centre = points[17:27].mean(axis=0)
    height = float(np.linalg.norm(chin - brow_centre))
    # Lift away from the chin along the face's own vertical axis (works for tilted faces too).
    up = (brow_centre - chin) / max(height, 1e-6)
    brows += up * (brow_lift * height)
    return np.concatenate([jaw, brows]).astype(np.float32)


def polygon_mask(polygon: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """A hard ``(H, W)`` float32 0/1 mask of a filled polygon (its convex hull), anti-aliased
    by drawing at 4x sub-pixel precision."""
    height, width = (size, size) if isinstance(size, int) else size
    mask = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(np.asarray(polygon, np.float32).reshape(-1, 1, 2))
    shift = 2  # fixed point: 2 fractional bits
    points = np.rint(hull.reshape(-1, 2) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_AA, shift=shift)
    return mask.astype(np.float32) / 255.0


def hull_mask(landmarks68: np.ndarray, size: int, *, brow_lift: float = HULL_BROW_LIFT,
              feather: float = HULL_FEATHER) -> np.ndarray:
    """Soft face-shaped mask ``(size, size)`` float32 on the crop the landmarks are in.

    The convex hull of :func:`face_polygon` blurred by ``feather`` of the brow-to-chin
    height, so the blend's half-way line is the target's own outline. (An erosion by one sigma
    first, keeping the seam further inside, measured a lower identity gain for no visible
    gain: benchmarks/quality.py.)
    """
    polygon = face_polygon(landmarks68, brow_lift)
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    height = float(np.linalg.norm(points[8] - points[17:27].mean(axis=0)))
    sigma = max(feather * height, 0.5)
    return np.clip(gaussian_blur(polygon_mask(polygon, size), sigma), 0.0, 1.0)


# The eye zone: each eye's outline (68-point landmarks 36-41, 42-47) grown by this fraction of
# the eye's width, enough to hold the lid crease, eyeliner and lashes above and below the eye.
EYE_ZONE_GROW: float = 0.35


def _eye_points(landmarks68: np.ndarray, eye: int) -> np.ndarray:
    """One eye's six outline points of 68 landmarks (0: image-left, 1: image-right)."""
    return np.asarray(landmarks68, np.float32).reshape(68, 2)[36 + 6 * eye:42 + 6 * eye]


def _grown_eye(landmarks68: np.ndarray, eye: int, size: int | tuple[int, int], grow: float
               ) -> tuple[np.ndarray, float]:
    """One eye's outline (0: image-left, 1: image-right) grown by ``grow`` eye widths, as a
    hard ``(H, W)`` uint8 0/1 mask (``size``: an int for a square crop), and the eye's width
    in pixels."""
    return _grown_outline(_eye_points(landmarks68, eye), size, grow)


def _grown_outline(points: np.ndarray, size: int | tuple[int, int], grow: float
                   ) -> tuple[np.ndarray, float]:
    """A closed outline of landmarks whose two corners are its first point and the one half
    way round (an eye's six, the mouth's twelve), filled and grown by ``grow`` times the
    distance between the corners, as a hard ``(H, W)`` uint8 0/1 mask, and that width."""
    width = float(np.linalg.norm(points[len(points) // 2] - points[0]))
    inside = (polygon_mask(points, size) > 0.5).astype(np.uint8)
    radius = max(1, int(round(grow * width)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2)
    # Only around the outline: the same mask (the rest stays 0) for the cost of its box, not
    # of the canvas (a whole video frame in benchmarks/quality.py).
    x0, y0 = np.maximum(np.floor(points.min(axis=0)).astype(int) - radius - 2, 0)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + radius + 3
    around = inside[y0:y1, x0:x1]
    if around.size:
        around[...] = cv2.dilate(around, disc)
    return inside, width


def eye_zone(landmarks68: np.ndarray, size: int | tuple[int, int],
             grow: float = EYE_ZONE_GROW, eyes: Sequence[int] = (0, 1)) -> np.ndarray:
    """A hard ``(H, W)`` bool mask (``size``: an int for a square crop) of the eyes' outlines
    (``eyes``: 0 image-left, 1 image-right; both by default) grown by ``grow`` eye widths."""
    height, width = (size, size) if isinstance(size, int) else size
    zone = np.zeros((height, width), np.uint8)
    for eye in eyes:
        zone |= _grown_eye(landmarks68, eye, size, grow)[0]
    return zone.astype(bool)


# The brow zone: each brow's line (68-point landmarks 17-21, 22-26) drawn this thick, as a
# fraction of the distance from the brow to its eye's centre: the brow and a little skin on
# either side, not the upper lid below it.
BROW_ZONE_THICKNESS: float = 0.6


_BROWS = ((slice(17, 22), slice(36, 42)), (slice(22, 27), slice(42, 48)))  # brow, its eye


def brow_zone(landmarks68: np.ndarray, size: int,
              thickness: float = BROW_ZONE_THICKNESS) -> np.ndarray:
    """Soft ``(size, size)`` float32 mask of both brows: each brow's line drawn ``thickness``
    times its brow-to-eye distance thick, the edge blurred over a tenth of that distance."""
    return _brow_lines(landmarks68, (0, 1), size, thickness)


def one_brow_zone(landmarks68: np.ndarray, brow: int, size: int,
                  thickness: float = BROW_ZONE_THICKNESS) -> np.ndarray:
    """:func:`brow_zone` of one brow (0: image-left, 1: image-right)."""
    return _brow_lines(landmarks68, (brow,), size, thickness)


def brow_line(brow: int) -> slice:
    """The 68-point landmarks of a brow's line (0: image-left, 17-21; 1: image-right, 22-26)."""
    return _BROWS[brow][0]


def brow_rise(landmarks68: np.ndarray, brow: int) -> np.ndarray:
    """``(2,)`` float64 vector from an eye's mean point to its brow's (0: image-left, 1:
    image-right): the way up from the eye, one brow-to-eye distance long."""
    points = np.asarray(landmarks68, np.float64).reshape(68, 2)
    line, eye = _BROWS[brow]
    return points[line].mean(axis=0) - points[eye].mean(axis=0)


def brow_gap(landmarks68: np.ndarray, brow: int) -> float:
    """Distance from a brow's mean point to its eye's (0: image-left, 1: image-right): the
    scale the brow zones are drawn in."""
    return float(np.linalg.norm(brow_rise(landmarks68, brow)))


def above_brows(landmarks68: np.ndarray, size: int, below: float = 0.0,
                soften: float = 0.0) -> np.ndarray:
    """``(size, size)`` float32 weights of the rows above the brows: 1 down to the brows'
    lowest point plus ``below`` brow-to-eye distances, then 0 (``soften`` > 0: falling to 0
    over that many distances more)."""
    points = np.asarray(landmarks68, np.float32)
    gap = 0.5 * (brow_gap(points, 0) + brow_gap(points, 1))
    end = float(points[17:27, 1].max()) + below * gap
    rows = np.arange(size, dtype=np.float32)
    ramp = np.clip(1.0 - (rows - end) / (soften * gap), 0.0, 1.0) if soften > 0 \
        else (rows <= end).astype(np.float32)
    return np.repeat(ramp[:, None], size, axis=1)


def forehead_zone(landmarks68: np.ndarray, size: int, brows: float, soften: float = 0.3
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(hard, soft)``: the face outline (:func:`hull_mask`) above the brows' lowest point,
    less the brows (each drawn ``brows`` of its brow-to-eye distance thick): where a brim, a
    hat's shade or a fringe crosses the part of the forehead a swap replaces. ``soft`` is
    float32 with those soft edges, its bottom fading over ``soften`` distances centred on
    that point (a row cut would draw a line across the temples wherever the target is darker
    on both sides of it); ``hard`` where it is over a half."""
    soft = hull_mask(landmarks68, size) * above_brows(landmarks68, size, -0.5 * soften,
                                                      soften) * \
        (1.0 - brow_zone(landmarks68, size, brows))
    return soft > 0.5, soft.astype(np.float32)


def brow_window(landmarks68: np.ndarray, brow: int, size: int, above: float,
                above_lid: float) -> tuple[slice, slice]:
    """``(rows, columns)`` of the crop around one brow: from ``above`` brow-to-eye distances
    over the brow's highest point down to ``above_lid`` of them over its eye's upper lid
    (landmarks 37-38 / 43-44), across the brow's ends; empty slices where that leaves nothing."""
    points = np.asarray(landmarks68, np.float64).reshape(68, 2)
    line, eye = _BROWS[brow]
    gap = brow_gap(points, brow)
    lid = float(points[eye][1:3, 1].min())
    top = int(np.clip(math.floor(points[line][:, 1].min() - above * gap), 0, size))
    bottom = int(np.clip(math.ceil(lid - above_lid * gap), top, size))
    left = int(np.clip(math.floor(points[line][:, 0].min()), 0, size))
    right = int(np.clip(math.ceil(points[line][:, 0].max()) + 1, left, size))
    return slice(top, bottom), slice(left, right)


def _brow_lines(landmarks68: np.ndarray, which: Sequence[int], size: int, thickness: float
                ) -> np.ndarray:
    points = np.asarray(landmarks68, np.float64).reshape(68, 2)
    zone = np.zeros((size, size), np.uint8)
    gaps = []
    for index in which:
        brow = _BROWS[index][0]
        gap = brow_gap(points, index)
        gaps.append(gap)
        line = np.rint(points[brow] * 4).astype(np.int32)  # 2 fractional bits
        cv2.polylines(zone, [line], False, 1, thickness=max(1, int(round(thickness * gap))),
                      lineType=cv2.LINE_8, shift=2)
    return gaussian_blur(zone.astype(np.float32), max(0.5, 0.1 * float(np.mean(gaps))))


# The nostrils' zone: the nose's lower outline (68-point landmarks 31-35: the wings' bases,
# the septum's foot) and the same wing points moved this fraction of the way from the septum's
# foot (33) to the tip (30), where the nostrils open on a face seen from the front or below.
NOSTRIL_RISE: float = 0.8


def nostril_zone(landmarks68: np.ndarray, size: int, rise: float = NOSTRIL_RISE,
                 grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The nostrils' zone on a square crop: a hard ``(size, size)`` bool mask (the nose's
    lower outline, landmarks 31-35, and those wings raised by ``rise`` times the septum's
    height towards the tip) and a soft float32 one: the same outline grown by ``grow`` times
    the nose's width, 1 inside and feathered outwards over a tenth of that width (a zone a
    few pixels tall would lose half its weight to a blur across its own edge). The hard zone
    is where a nose is judged, the soft one where it is changed."""
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    up = rise * (points[30] - points[33])
    # First point and the one half way round are the wings: _grown_outline's corners.
    outline = np.stack([points[31], points[31] + up, points[35] + up, points[35],
                        points[34], points[33], points[32]])
    zone = polygon_mask(outline, size) > 0.5
    grown, width = _grown_outline(outline, size, grow) if grow > 0 else \
        (zone.astype(np.uint8), float(np.linalg.norm(points[35] - points[31])))
    hard = grown.astype(np.float32)
    soft = np.maximum(hard, gaussian_blur(hard, max(0.5, 0.1 * width)))
    return zone, soft


def under_eye_zone(landmarks68: np.ndarray, eye: int, size: int, top: float, bottom: float,
                   side: float, cheek: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """The skin under one eye (0: image-left, 1: image-right) on a square crop, and the cheek
    below it: a soft ``(size, size)`` float32 zone (the lower lid's line, corner to corner and
    ``side`` eye widths beyond each corner, moved ``top`` to ``bottom`` eye widths away from
    the eye, square to its axis, the edge blurred over a tenth of the eye's width) and a hard
    bool strip of the same width from ``cheek[0]`` to ``cheek[1]`` eye widths below the lid,
    less the nostrils (the skin the zone is compared with)."""
    points = _eye_points(landmarks68, eye).astype(np.float64)
    # The lower lid from corner to corner: points 0, 5, 4, 3 of the six (36, 41, 40, 39 and
    # 42, 47, 46, 45).
    lid = points[[0, 5, 4, 3]].copy()
    axis = lid[-1] - lid[0]
    width = float(np.linalg.norm(axis))
    if width < 1.0:
        return np.zeros((size, size), np.float32), np.zeros((size, size), bool)
    axis /= width
    down = np.array([-axis[1], axis[0]])
    if down[1] < 0:  # away from the brows: down the aligned crop
        down = -down
    lid[0] -= side * width * axis
    lid[-1] += side * width * axis

    def band(near: float, far: float) -> np.ndarray:
        outline = np.concatenate([lid + near * width * down, (lid + far * width * down)[::-1]])
        mask = np.zeros((size, size), np.uint8)
        cv2.fillPoly(mask, [np.rint(outline).astype(np.int32)], 1)
        return mask

    zone = gaussian_blur(band(top, bottom).astype(np.float32), max(0.5, 0.1 * width))
    strip = (band(*cheek) > 0) & ~nostril_zone(landmarks68, size)[0]
    return zone, strip


def mouth_zone(landmarks68: np.ndarray, size: int, grow: float) -> np.ndarray:
    """A hard ``(size, size)`` bool mask of the mouth: the outer lip line (68-point landmarks
    48-59) grown by ``grow`` times the mouth's width (corner to corner)."""
    mouth = np.asarray(landmarks68, np.float32).reshape(68, 2)[48:60]
    return _grown_outline(mouth, size, grow)[0].astype(bool)


def lip_ring(landmarks68: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The lips on a square crop: the outer lip line (68-point landmarks 48-59) less the inner
    one (60-67, the open mouth and teeth), as a hard ``(size, size)`` bool mask (where lips
    are judged) and a soft float32 one (1 inside, feathered outwards by half a pixel of a
    128 px crop: where they are changed); None for lips under 12 pixels (a small face's
    closed mouth: nothing to judge). Not eroded: a lipstick's darkest part is often its edge."""
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    ring = np.zeros((size, size), np.uint8)
    cv2.fillPoly(ring, [np.rint(points[48:60]).astype(np.int32)], 1)
    cv2.fillPoly(ring, [np.rint(points[60:68]).astype(np.int32)], 0)
    hard = ring > 0
    if int(hard.sum()) < 12:
        return None
    return hard, np.maximum(ring.astype(np.float32), soft_opening(ring))


def upper_lip_band(landmarks68: np.ndarray, size: int) -> np.ndarray:
    """The skin between the nose's base and the upper lip (where a moustache grows) as a hard
    ``(size, size)`` bool mask: the polygon of the nose's lower points 31-35 and the outer
    upper lip 48-54, less the lips' outline grown by 0.05 of the mouth's width (the lips' own
    edge)."""
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    band = np.zeros((size, size), np.uint8)
    polygon = np.concatenate([points[31:36], points[48:55][::-1]])
    cv2.fillPoly(band, [np.rint(polygon).astype(np.int32)], 1)
    return (band > 0) & ~mouth_zone(points, size, 0.05)


def skin_zone(landmarks68: np.ndarray, size: int, nostrils: bool = True) -> np.ndarray:
    """A hard ``(size, size)`` bool mask of a face's bare skin: inside the 68-point outline
    (:func:`hull_mask`), outside the eyes (grown by 0.3 eye widths), the brows, the mouth
    (grown by 0.15 of its width) and, with ``nostrils``, the nostrils (grown by 0.2 of the
    nose's width), all grown by a further 2 px of a 256 px crop."""
    features = eye_zone(landmarks68, size, grow=0.3) | (brow_zone(landmarks68, size) > 0.3) \
        | mouth_zone(landmarks68, size, 0.15)
    if nostrils:
        features |= nostril_zone(landmarks68, size, grow=0.2)[0]
    reach = max(1, int(round(2 * size / 256)))
    features = cv2.dilate(features.astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8)) > 0
    return (hull_mask(landmarks68, size) > 0.5) & ~features


def feature_keep(landmarks68: np.ndarray, size: int, mouth: bool, eyes: bool,
                 grow: float, soften: float) -> np.ndarray:
    """Soft ``(size, size)`` float32 mask of the target's own features to keep: the mouth (its
    outer lip line) and/or each eye (its outline), each grown by ``grow`` times its width and
    its edge blurred by ``soften`` times that width, so the seam falls on skin around it."""
    points = np.asarray(landmarks68, np.float32).reshape(68, 2)
    keep = np.zeros((size, size), np.float32)
    outlines = ([points[48:60]] if mouth else []) + \
        ([_eye_points(points, 0), _eye_points(points, 1)] if eyes else [])
    for outline in outlines:
        np.maximum(keep, _soft_outline(outline, size, grow, soften), out=keep)
    return keep


def eye_aspect_ratios(landmarks68: np.ndarray) -> np.ndarray:
    """``(2,)`` eye aspect ratio (lid opening over eye width: Soukupova & Cech 2016) of the
    image-left and image-right eye of 68 landmarks: about 0.3 open, under 0.2 closing."""
    points = np.asarray(landmarks68, np.float64).reshape(68, 2)
    out = []
    for start in (36, 42):
        p = points[start:start + 6]
        width = max(float(np.linalg.norm(p[3] - p[0])), 1e-6)
        out.append((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * width))
    return np.asarray(out)


def eye_opening(landmarks68: np.ndarray, eye: int, size: int | tuple[int, int]) -> np.ndarray:
    """A hard ``(H, W)`` bool mask (``size``: an int for a square crop) of one eye's opening
    (0: image-left, 1: image-right): the polygon of its six 68-point landmarks, iris, pupil
    and white, no lid."""
    return polygon_mask(_eye_points(landmarks68, eye), size) > 0.5


def soft_opening(opening: np.ndarray) -> np.ndarray:
    """An eye's opening (:func:`eye_opening` on a square crop) feathered by half a pixel of a
    128 px crop: the zone of the eye passes that act inside the opening alone."""
    return gaussian_blur(opening.astype(np.float32), opening_feather(opening.shape[0]))


def opening_feather(size: int) -> float:
    """The blur of :func:`soft_opening` on a ``size`` px crop: half a pixel of a 128 px one."""
    return max(0.5, 0.5 * size / 128.0)


def one_eye_zone(landmarks68: np.ndarray, eye: int, size: int,
                 grow: float = EYE_ZONE_GROW) -> np.ndarray:
    """Soft ``(size, size)`` float32 mask of one eye (0: image-left, 1: image-right): its
    outline grown by ``grow`` eye widths, the edge blurred over a tenth of the eye's width."""
    return _soft_outline(_eye_points(landmarks68, eye), size, grow, 0.1)


def _soft_outline(points: np.ndarray, size: int, grow: float, soften: float) -> np.ndarray:
    """:func:`_grown_outline` as a soft float32 mask: its edge blurred over ``soften`` times
    the outline's width (corner to corner)."""
    zone, width = _grown_outline(points, size, grow)
    return gaussian_blur(zone.astype(np.float32), max(0.5, soften * width))


def ellipse_polygon(box: np.ndarray, scale: float = 1.0, points: int = 32) -> np.ndarray:
    """An ellipse inscribed in a face box ``(x1, y1, x2, y2)`` (axes times ``scale``), as a
    ``(points, 2)`` polygon: a cheap stand-in for the region of a face that is not swapped."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    ax, ay = (x2 - x1) / 2.0 * scale, (y2 - y1) / 2.0 * scale
    angles = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    return np.stack([cx + ax * np.cos(angles), cy + ay * np.sin(angles)], 1).astype(np.float32)


# -- pose -----------------------------------------------------------------------------------
# The yaw proxy of :func:`yaw_ratio` where a swap starts to fade back to the target, and where
# it is gone (a profile). See :func:`pose_weight`. Measured (docs/swap.md, "Profiles"): 240 LFW
# faces in 8 bins of the proxy swapped without the fade by the demo model: below 0.7 (about 25
# degrees of dlib yaw) every swap looked at is a face in the target's pose; 0.8-0.9 is mixed
# (blotches, a smeared eye); from about 0.9 the model paints a bright, frontal smear
# (if_t1.jpg, 0.89). The first values, (0.35, 0.70), faded three-quarter views that swap well:
# 20 % of LFW's faces were partly or wholly left as they were (benchmarks/profile_fade.py).
PROFILE_FADE: tuple[float, float] = (0.70, 0.90)


def yaw_ratio(landmarks5: np.ndarray) -> float:
    """How far a face is turned, from its 5 landmarks: 0 frontal, 1 a full profile.

    The nose tip's position between the two eyes, measured along the eye axis (so roll does
    not matter): ``|d_left - d_right| / (d_left + d_right)`` with ``d`` the distances from the
    nose's projection to each eye. A frontal face has the nose half way (0); as the head turns
    the nose moves towards the far eye and past it (values >= 1 are clipped to 1).
    """
    points = np.asarray(landmarks5, np.float64).reshape(5, 2)
    left, right, nose = points[0], points[1], points[2]
    axis = right - left
    length = float(np.linalg.norm(axis))
    if length < 1e-6:
        return 1.0
    t = float(np.dot(nose - left, axis)) / (length * length)  # 0 at the left eye, 1 at the right
    d_left, d_right = abs(t), abs(1.0 - t)
    return float(min(abs(d_left - d_right) / max(d_left + d_right, 1e-6), 1.0))


def pose_weight(landmarks5: np.ndarray, fade: tuple[float, float] | None = None) -> float:
    """Blend weight of a face by its pose: 1 up to ``fade[0]`` of :func:`yaw_ratio`, falling
    linearly to 0 at ``fade[1]`` (default :data:`PROFILE_FADE`). A generator trained on mostly
    frontal faces paints a frontal face over a profile (a second eye on the cheek); fading back
    to the target is what a user would rather see."""
    start, stop = PROFILE_FADE if fade is None else fade
    ratio = yaw_ratio(landmarks5)
    if ratio <= start:
        return 1.0
    if ratio >= stop:
        return 0.0
    return float((stop - ratio) / (stop - start))


# -- faces the frame cuts -----------------------------------------------------------------------
# The face, in the 112 px ArcFace crop: an ellipse from the brows' top to the chin and from
# cheek to cheek (centre, semi-axes). What :func:`share_inside` counts.
FACE_ELLIPSE: tuple[float, float, float, float] = (56.0, 62.0, 40.0, 50.0)
# A face with less than this share of its ellipse inside the frame, or whose box reaches the
# frame's edge, is cut by the edge, and fades back to the target by its detection score
# (:func:`cut_weight`): from 1 at CUT_FADE[1] to 0 at CUT_FADE[0]. Why the score: once the
# edge hides more than about 40 % of a face, the detector's reading breaks (the visible eye
# read as the other one, the ear as an eye, and the swap is a smear over the eye), and its
# score falls with it, smoothly, frame by frame, as a face leaves the picture. Measured on the
# 58 shared photos whose largest face lies well inside them, cut from each side so that 10-60 %
# of the face box lies beyond the edge (1,392 cuts, 1,205 faces found, 116 with broken
# landmarks; docs/swap.md "Faces the frame cuts" item 5, benchmarks/cut_fade.py): no reading
# is broken while 60 % of the face's ellipse is inside; on the faces 25-75 % inside, a broken
# reading scores lower than a right one in 92 % of pairs; with this fade the broken ones keep
# 0.010 of their weight on average, right ones cut by a tenth / a fifth of the box 0.997 /
# 0.985. The ellipse's share itself says little once a reading is broken (the misread face is
# placed inside the picture), which is why it only decides whether a face is cut at all, and
# why a box that reaches the edge counts too (with the share alone, 5 broken readings of 116
# kept more than half their weight; a talking face a window pans away from was read inside
# the window at 0.956 where half of it had left).
CUT_SHARE: float = 0.95
CUT_FADE: tuple[float, float] = (0.97, 0.995)
_ELLIPSE_SAMPLES: int = 24  # per axis: share_inside's grid over the ellipse


def _ellipse_grid() -> np.ndarray:
    cx, cy, ax, ay = FACE_ELLIPSE
    steps = (np.arange(_ELLIPSE_SAMPLES) + 0.5) / _ELLIPSE_SAMPLES * 2.0 - 1.0
    u, v = np.meshgrid(steps, steps)
    inside = u * u + v * v <= 1.0
    return np.stack([cx + ax * u[inside], cy + ay * v[inside]], 1)


_ELLIPSE_POINTS: np.ndarray = _ellipse_grid()


def share_inside(landmarks5: np.ndarray, shape: tuple[int, ...]) -> float:
    """The share of a face (:data:`FACE_ELLIPSE` placed on its 5 landmarks) that lies inside a
    frame of ``shape`` ``(H, W, ...)``: 1 for a face wholly in the picture."""
    matrix = invert_affine(alignment_matrix(np.asarray(landmarks5, np.float64), ARCFACE_SIZE))
    points = transform_points(_ELLIPSE_POINTS, matrix)
    height, width = shape[:2]
    inside = (points[:, 0] >= 0) & (points[:, 0] < width) & \
        (points[:, 1] >= 0) & (points[:, 1] < height)
    return float(inside.mean())


def reaches_edge(box, shape: tuple[int, ...]) -> bool:
    """Whether a face box ``(x1, y1, x2, y2)`` reaches (within a pixel) or crosses an edge of
    a frame of ``shape``."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(-1)[:4])
    return min(x1, y1) < 1.0 or x2 > shape[1] - 1.0 or y2 > shape[0] - 1.0


def is_cut(landmarks5: np.ndarray, box, shape: tuple[int, ...]) -> bool:
    """Whether the edge of a frame of ``shape`` cuts a face: less than :data:`CUT_SHARE` of it
    inside (:func:`share_inside`), or its ``box`` reaching the edge."""
    return reaches_edge(box, shape) or share_inside(landmarks5, shape) < CUT_SHARE


def cut_weight(landmarks5: np.ndarray, box, score: float, shape: tuple[int, ...],
               fade: tuple[float, float] | None = None) -> float:
    """Blend weight of a face by how surely it was read where the frame cuts it: 1 for a face
    wholly (:data:`CUT_SHARE`) in the frame of ``shape`` whose ``box`` keeps off its edges;
    for a cut one, 1 from ``fade[1]`` of the detector's ``score`` down, falling linearly to 0
    at ``fade[0]`` (default :data:`CUT_FADE`). A face leaving a video fades out as its score
    falls instead of getting a smear over its eye and then vanishing."""
    start, stop = CUT_FADE if fade is None else fade
    if score >= stop or not is_cut(landmarks5, box, shape):
        return 1.0
    if score <= start:
        return 0.0
    return float((score - start) / (stop - start))


# A still image's cut face that the score doubts is read again on the mirrored picture
# (faces/mirror.py); where both readings agree it counts as surely read: from a disagreement
# of MIRROR_TRUST[0] eye distances down as a score of CUT_FADE[1], rising linearly from
# CUT_FADE[0] at MIRROR_TRUST[1] (never below its own score); faces scoring below
# MIRROR_MIN_SCORE keep theirs. Measured on the cuts of benchmarks/cut_fade.py (docs/swap.md
# "Faces the frame cuts" item 6): of the 355 cut faces scoring 0.9-0.995, 43 broken, the
# mirrored reading's disagreement is larger on a broken one than on a right one in 93 % of
# pairs (the score: 85 %); right readings keep 0.880 of their weight instead of 0.834, broken
# ones get 0.018 instead of 0.010.
MIRROR_TRUST: tuple[float, float] = (0.06, 0.10)
MIRROR_MIN_SCORE: float = 0.9


def mirror_trusted_score(score: float, disagreement: float) -> float:
    """The score a cut face counts with in :func:`cut_weight` once ``disagreement`` (its
    landmarks against the mirrored picture's reading, eye distances) is known; see
    :data:`MIRROR_TRUST`."""
    if score < MIRROR_MIN_SCORE:
        return score
    low, high = MIRROR_TRUST
    trust = float(np.clip((high - disagreement) / (high - low), 0.0, 1.0))
    start, stop = CUT_FADE
    return max(score, start + trust * (stop - start))
