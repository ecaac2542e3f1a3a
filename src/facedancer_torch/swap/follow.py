"""The target's detail follows the swap's features (swap/compose.py, detail; docs/swap.md
"Detail follows the swap").

The compositor keeps the target's finest band wherever the swap agrees with the target at the
coarse scale. Where the generator puts an eye, a lid or a brow elsewhere than the target has it
(a source who squints, brows set lower, a narrower mouth) that band drew the target's lid
crease and lashes around the swap's narrower eye and its brow hairs beside the swap's brow: a
double exposure. Here the target is first moved so that its features lie on the swap's: by a
displacement field from the swap's 68 landmarks (dlib, read on the swap's crop) to the target's,
a thin-plate spline through the 51 inner points (brows, nose, eyes, mouth), zero on the target's
jaw line and on the crop's border (faces/tps.py).

Moved where? In the **frame**, once (:func:`move_frame`): the pixels under the face's mask are
resampled from their displaced places, and the detail change is then taken against the moved
frame's crop (:func:`moved_crop`). Moving the crop instead and pasting ``moved - target`` back
as a change left the frame's own finest detail in place beside a softer moved copy (two
resamplings of the moved band): the faces measured 0.62 of the target's sharpness against
0.88 with the detail in place (17 photos, two sources).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..faces import masks
from ..faces.align import frame_region, invert_affine, nonzero_box, transform_points
from ..faces.tps import tps_field

# The share of the swap-to-target displacement the target is moved by with --detail-follow
# (SwapOptions.detail_follow, off by default: docs/swap.md says why); 0 moves nothing.
DETAIL_FOLLOW: float = 1.0
# A swap whose inner points lie further than this fraction of S from the target's (median) is
# a misreading or another pose: its detail stays in place.
DETAIL_FOLLOW_LIMIT: float = 0.08
# Along a track the displacements move this share of the way a frame (the swap's landmarks,
# read on a 128 px generator's output, jitter by a pixel or two).
DETAIL_FOLLOW_EASE: float = 0.5
# Where the target moves: the eyes' outlines grown by this many eye widths, the mouth's by
# this many mouth widths, the brows' lines this many brow-to-eye distances thick (of either
# face), softened by FOLLOW_ZONE_SOFT of S. Skin elsewhere keeps its own pixels: every moved
# pixel is resampled, and moving the whole face measured softer (17 photos, sharpness -0.033
# per photo, 16 of 17 lower) for nothing seen.
FOLLOW_ZONE_EYE_GROW: float = 0.5
FOLLOW_ZONE_MOUTH_GROW: float = 0.15
FOLLOW_ZONE_BROW: float = 1.0
FOLLOW_ZONE_SOFT: float = 0.03
# The frame is resampled only inside the box of the work pixels the field moves this far.
MOVE_AT_LEAST: float = 0.01
# dlib's 68 points inside the face: brows, nose, eyes, mouth (0-16 are the jaw line).
INNER_POINTS = slice(17, 68)


def follow_shift(target_points: np.ndarray, swap_points: np.ndarray,
                 size: int) -> np.ndarray | None:
    """``(51, 2)``: each inner landmark's move from the swap's face to the target's (pixels of
    the ``size`` crop), or None when their median length exceeds :data:`DETAIL_FOLLOW_LIMIT`
    of the crop (dlib misread the swap, or the swap turned the head)."""
    shift = np.asarray(target_points, np.float64)[INNER_POINTS] - \
        np.asarray(swap_points, np.float64)[INNER_POINTS]
    if float(np.median(np.hypot(shift[:, 0], shift[:, 1]))) > DETAIL_FOLLOW_LIMIT * size:
        return None
    return shift


def feature_zone(target_points: np.ndarray, swap_points: np.ndarray, size: int) -> np.ndarray:
    """Soft ``(S, S)`` float32: where the target moves, around the eyes, brows and mouth of
    either face."""
    zone = np.zeros((size, size), np.float32)
    for points in (target_points, swap_points):
        hard = masks.eye_zone(points, size, grow=FOLLOW_ZONE_EYE_GROW) | \
            masks.mouth_zone(points, size, FOLLOW_ZONE_MOUTH_GROW) | \
            (masks.brow_zone(points, size, FOLLOW_ZONE_BROW) > 0.25)
        np.maximum(zone, hard.astype(np.float32), out=zone)
    return masks.gaussian_blur(zone, FOLLOW_ZONE_SOFT * size)


def follow_field(target_points: np.ndarray, shift: np.ndarray, size: int,
                 work: int) -> np.ndarray:
    """``(W, W, 2)`` float32, work pixels: where each pixel of the work crop takes the target
    from, relative to itself: :data:`DETAIL_FOLLOW` of ``shift`` at the swap's inner points
    (the target's minus ``shift``), nothing on the target's jaw line and on the crop's
    border, a thin-plate spline between, times the soft zone of :func:`feature_zone`."""
    target_points = np.asarray(target_points, np.float64)
    edge = np.linspace(-0.5, size - 0.5, 5)
    border = np.array([(x, y) for x in edge for y in edge
                       if x in (edge[0], edge[-1]) or y in (edge[0], edge[-1])])
    control = np.concatenate([target_points[INNER_POINTS] - shift, target_points[:17], border])
    values = np.zeros_like(control)
    values[:len(shift)] = DETAIL_FOLLOW * shift
    field = tps_field(control, values, size, work) * np.float32(work / size)
    swap_points = np.concatenate([target_points[:17], target_points[INNER_POINTS] - shift])
    zone = feature_zone(target_points, swap_points, size)
    field *= cv2.resize(zone, (work, work), interpolation=cv2.INTER_LINEAR)[..., None]
    return field


def moved_crop(frame: np.ndarray, matrix: np.ndarray, field: np.ndarray) -> np.ndarray:
    """The work crop of ``frame`` (frame->work ``matrix``) with each pixel taken from
    ``field`` work pixels away, bilinear, borders replicated as the plain crop's."""
    work = field.shape[0]
    u = np.arange(work, dtype=np.float32)
    x = field[..., 0] + u[None, :]
    y = field[..., 1] + u[:, None]
    inverse = invert_affine(matrix).astype(np.float32)
    map_x = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2]
    map_y = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2]
    return cv2.remap(frame, map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def move_frame(frame: np.ndarray, matrix: np.ndarray, field: np.ndarray, mask: np.ndarray,
               out: np.ndarray | None = None) -> np.ndarray:
    """``frame`` with the pixels under ``mask`` (work crop, ``(W, W)`` in [0, 1]) taken from
    where ``field`` (work pixels, :func:`follow_field`) points, blended by the mask: into
    ``out`` when given, else into a copy. Lanczos (8 x 8): every moved pixel is resampled at a
    fraction of a pixel, which blurs; on 17 photos (the whole face moved, Tom Hanks as the
    source) the face kept 0.85 of the target's sharpness with it, 0.79 bicubic, 0.55
    bilinear (0.89 with nothing moved)."""
    result = frame.copy() if out is None else out
    # Only the box around what moves (the features' zones, MOVE_AT_LEAST work pixels or more)
    # is resampled.
    moving = nonzero_box(np.maximum(np.abs(field[..., 0]), np.abs(field[..., 1])) >= MOVE_AT_LEAST)
    if moving is None:
        return result
    top, bottom, left, right = moving
    inverse = invert_affine(matrix)
    corners = transform_points(np.array([[left, top], [right - 1, top], [left, bottom - 1],
                                         [right - 1, bottom - 1]]), inverse)
    x0, y0, x1, y1 = frame_region(corners, frame.shape)
    if x1 <= x0 or y1 <= y0:
        return result
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32),
                         np.arange(y0, y1, dtype=np.float32))
    m = np.asarray(matrix, np.float32)
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    weight = cv2.remap(np.asarray(mask, np.float32), u, v, interpolation=cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    box = nonzero_box(weight)
    if box is None:
        return result
    top, bottom, left, right = box
    weight = np.clip(weight[top:bottom, left:right], 0.0, 1.0)
    u, v = u[top:bottom, left:right], v[top:bottom, left:right]
    shift = cv2.remap(field, u, v, interpolation=cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # Work pixels to frame pixels: the inverse's linear part.
    a = np.asarray(inverse, np.float32)
    map_x = xs[top:bottom, left:right] + a[0, 0] * shift[..., 0] + a[0, 1] * shift[..., 1]
    map_y = ys[top:bottom, left:right] + a[1, 0] * shift[..., 0] + a[1, 1] * shift[..., 1]
    moved = cv2.remap(frame, map_x, map_y, interpolation=cv2.INTER_LANCZOS4,
                      borderMode=cv2.BORDER_REPLICATE)
    y0, x0 = y0 + top, x0 + left
    region = frame[y0:y0 + (bottom - top), x0:x0 + (right - left)]
    blended = cv2.multiply(cv2.subtract(moved, region, dtype=cv2.CV_32F),
                           cv2.merge([weight] * region.shape[2]))
    result[y0:y0 + (bottom - top), x0:x0 + (right - left)] = cv2.add(region, blended,
                                                                      dtype=cv2.CV_8U)
    return result
