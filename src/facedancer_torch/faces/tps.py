"""Thin-plate-spline displacement fields: a smooth field through given displacements at given
points, for moving one face's fine detail onto another face's features (swap/compose.py,
"detail follows the swap").

A thin-plate spline is the smoothest field (least bending energy) that takes the given values
at the control points, and it is affine far from them; with control points of zero
displacement around the region of interest (a face's outline, the crop's border) the field
stays inside it. Solved once per face on about 80 points, evaluated on a coarse grid and
resized: the field is smooth, and evaluating it per pixel of a 1024 px work crop would cost
80 kernel values a pixel for nothing.
"""

from __future__ import annotations

import cv2
import numpy as np

# The grid the field is evaluated on before it is resized to the crop (points per side).
GRID: int = 32


def _kernel(distance_squared: np.ndarray) -> np.ndarray:
    """The thin-plate kernel ``r^2 log r`` from ``r^2`` (0 at r = 0)."""
    out = np.zeros_like(distance_squared)
    positive = distance_squared > 0
    out[positive] = 0.5 * distance_squared[positive] * np.log(distance_squared[positive])
    return out


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(len(a), len(b))`` squared distances between two point sets (one matrix product, not
    an ``(A, B, 2)`` array of differences); rounding below zero clipped."""
    out = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    return np.maximum(out, 0.0, out=out)


def tps_field(points: np.ndarray, values: np.ndarray, size: int, out: int | None = None,
              smoothing: float = 0.0, grid: int = GRID) -> np.ndarray:
    """``(out, out, 2)`` float32: the thin-plate spline through ``values`` (``(N, 2)``, pixels
    of the ``size`` crop) at ``points`` (``(N, 2)``, pixel coordinates of that crop), on an
    ``out`` x ``out`` image of the same crop (pixel centres kept: an ``out`` pixel covers
    ``size / out`` crop pixels), in pixels of the ``size`` crop. ``smoothing`` (in units of
    the crop's side squared) lets the field pass near the values instead of through them.
    Duplicate points are allowed when their values agree."""
    out = size if out is None else out
    points = np.asarray(points, np.float64) / size  # conditioned: the crop is the unit square
    values = np.asarray(values, np.float64)
    count = len(points)
    system = np.zeros((count + 3, count + 3))
    system[:count, :count] = _kernel(_squared_distances(points, points)) + \
        smoothing * np.eye(count)
    system[:count, count] = 1.0
    system[:count, count + 1:] = points
    system[count, :count] = 1.0
    system[count + 1:, :count] = points.T
    right = np.zeros((count + 3, 2))
    right[:count] = values
    # lstsq: exact duplicates (two landmarks on one pixel) make the system singular.
    weights = np.linalg.lstsq(system, right, rcond=None)[0]
    side = min(grid, out)
    # the grid's cell centres in crop pixels, then as the points were conditioned
    centres = ((np.arange(side) + 0.5) * (size / side) - 0.5) / size
    u, v = np.meshgrid(centres, centres)
    at = np.stack([u.ravel(), v.ravel()], axis=1)
    field = _kernel(_squared_distances(at, points)) @ weights[:count]
    field += weights[count] + at @ weights[count + 1:]
    field = field.reshape(side, side, 2).astype(np.float32)
    if side != out:
        field = cv2.resize(field, (out, out), interpolation=cv2.INTER_LINEAR)
    return field
