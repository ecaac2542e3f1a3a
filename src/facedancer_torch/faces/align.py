"""5-point face alignment to the ArcFace template, its inverse, and a differentiable torch warp.

Implements docs/reference.md §1 (alignment shared by training, swapping and evaluation) and the
paste-back of §7: a least-squares similarity (Umeyama 1991: rotation, uniform scale,
translation) maps the 5 detected landmarks onto the ArcFace template, optionally shrunk towards
the centre by ``shrink_factor`` and scaled from 112 px to the crop size; the image is warped with
bilinear sampling and border value 0.

Conventions (as OpenCV and kornia): points are ``(x, y)`` pixel coordinates with the origin at
the centre of the top-left pixel; an affine matrix ``M`` is ``(2, 3)`` and maps **image pixel
coordinates to crop pixel coordinates**, ``[u, v] = M @ [x, y, 1]``, exactly what
``cv2.warpAffine(image, M, (size, size))`` expects. The matrix equals insightface's
``norm_crop`` estimate (scikit-image ``SimilarityTransform.estimate(landmarks, template)``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import torch

# The ArcFace 112 x 112 template (insightface ``arcface_src``), in pixels, RetinaFace order:
# image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
ARCFACE_TEMPLATE: np.ndarray = np.array(
    [[38.2946, 51.6963],
     [73.5318, 51.5014],
     [56.0252, 71.7366],
     [41.5493, 92.3655],
     [70.7299, 92.2041]], dtype=np.float64)
ARCFACE_SIZE: int = 112


def template_points(size: int, shrink_factor: float = 1.0) -> np.ndarray:
    """The ArcFace template for a ``size`` x ``size`` crop, ``(5, 2)`` float64 pixels.

    ``template * s + (1 - s) * 56``, then scaled by ``size / 112`` (docs/reference.md §1): s = 1 is
    the exact ArcFace crop; s < 1 pulls the points towards the centre, keeping more background.
    """
    if size <= 0:
        raise ValueError(f"crop size must be positive, got {size}")
    if not 0.0 < shrink_factor <= 4.0:
        raise ValueError(f"shrink_factor must be in (0, 4], got {shrink_factor}")
    centre = ARCFACE_SIZE / 2.0
    points = ARCFACE_TEMPLATE * shrink_factor + (1.0 - shrink_factor) * centre
    return points * (size / ARCFACE_SIZE)


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``(2, 3)`` float64 mapping ``src`` points onto ``dst`` points.

    Umeyama's closed form without reflection, as scikit-image's ``SimilarityTransform`` (and
    so insightface's ``norm_crop``). ``src`` and ``dst`` are ``(N, 2)``, N >= 2.

    Raises:
        ValueError: the points are degenerate (all ``src`` points coincide).
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    if src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"need matching (N, 2) point sets with N >= 2, got {src.shape} and "
                         f"{dst.shape}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks contain NaN or infinity")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c ** 2).sum() / len(src)
    if src_var < 1e-12:
        raise ValueError("degenerate landmarks: all points coincide")
    cov = dst_c.T @ src_c / len(src)
    u, sigma, vt = np.linalg.svd(cov)
    # Umeyama's sign correction: a reflection is never a valid face alignment.
    d = np.array([1.0, 1.0 if np.linalg.det(u) * np.linalg.det(vt) > 0 else -1.0])
    rotation = u @ np.diag(d) @ vt
    scale = (sigma * d).sum() / src_var
    matrix = np.empty((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def alignment_matrix(landmarks5: np.ndarray, size: int, shrink_factor: float = 1.0) -> np.ndarray:
    """The ``(2, 3)`` matrix taking image pixels to a ``size`` crop aligned on ``landmarks5``."""
    return estimate_similarity(landmarks5, template_points(size, shrink_factor))


# Antialiased warps supersample at most this many times per side (a face 8x larger than its
# crop is averaged over 8 x 8 samples; beyond, the residual aliasing is below a grey level).
MAX_SUPERSAMPLE: int = 8


_BORDERS = {"black": cv2.BORDER_CONSTANT, "mirror": cv2.BORDER_REFLECT_101}


def warp_crop(image: np.ndarray, matrix: np.ndarray, size: int, antialias: bool = False,
              border: str = "black") -> np.ndarray:
    """``cv2.warpAffine(image, matrix, (size, size))``, bilinear, border 0 (``border="mirror"``:
    the image mirrored at its edges, see :func:`align_face`); with ``antialias``,
    a crop that shrinks the image by more than 1.25x is warped ``k`` times larger (``k`` the
    shrink factor rounded up) and area-averaged down, so each crop pixel averages the image
    pixels it covers instead of sampling four of them.

    Why: bilinear sampling of a face 3-5 times larger than the crop aliases its fine texture
    (hair, stubble, pores, a watermark's pattern) into coarse noise. A generator trained on
    crops of faces near its own size sees such a crop as a noisier face than it learnt, and an
    identity measure on it sees noise that a downscaled photo does not have
    (docs/swap.md, "Antialiased crops"). Pixel centres agree: crop pixel ``u`` is the mean of
    the large crop's pixels ``k u .. k u + k - 1``, whose centre is ``k u + (k - 1) / 2``.
    """
    matrix = np.asarray(matrix, dtype=np.float64).reshape(2, 3)
    k = 1
    if antialias:
        scale = math.sqrt(abs(float(np.linalg.det(matrix[:, :2]))))
        if 0 < scale < 0.8:
            k = min(MAX_SUPERSAMPLE, math.ceil(1.0 / scale - 1e-6))
    if border not in _BORDERS:
        raise ValueError(f"border must be one of {', '.join(_BORDERS)}, got {border!r}")
    mode = _BORDERS[border]
    if k == 1:
        return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=mode, borderValue=0)
    large = matrix * k
    large[:, 2] += (k - 1) / 2.0
    big = cv2.warpAffine(image, large, (size * k, size * k), flags=cv2.INTER_LINEAR,
                         borderMode=mode, borderValue=0)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def align_face(image: np.ndarray, landmarks5: np.ndarray, size: int,
               shrink_factor: float = 1.0, antialias: bool = False, border: str = "black"
               ) -> tuple[np.ndarray, np.ndarray]:
    """Crop and align one face (docs/reference.md §1).

    Args:
        image: ``(H, W, C)`` uint8 (RGB for the rest of the project).
        landmarks5: ``(5, 2)`` landmarks in image pixels, RetinaFace order.
        size: side of the square crop in pixels (256 for the generator, 112 for ArcFace).
        shrink_factor: see :func:`template_points`.
        antialias: area-average a face larger than the crop (:func:`warp_crop`) instead of
            the reference's plain bilinear sampling.
        border: what the crop shows beyond the image's edge: ``"black"`` (the reference's,
            and its training data's) or ``"mirror"`` (the image reflected at its edge, as
            OpenCV's ``BORDER_REFLECT_101``).

    Returns:
        ``(crop, M)``: the ``(size, size, C)`` crop (bilinear; beyond the image as ``border``
        says) and the ``(2, 3)``
        float64 matrix mapping image pixels to crop pixels.
    """
    matrix = alignment_matrix(landmarks5, size, shrink_factor)
    return warp_crop(image, matrix, size, antialias, border), matrix


def invert_affine(M: np.ndarray) -> np.ndarray:
    """The inverse ``(2, 3)`` affine matrix (crop pixels -> image pixels for an alignment)."""
    M = np.asarray(M, dtype=np.float64).reshape(2, 3)
    linear = M[:, :2]
    inverse = np.linalg.inv(linear)
    return np.concatenate([inverse, -inverse @ M[:, 2:]], axis=1)


def rescale_affine(M: np.ndarray, factor: float) -> np.ndarray:
    """The matrix for the same alignment at a crop ``factor`` times larger (e.g. 112 / 256)."""
    return np.asarray(M, dtype=np.float64).reshape(2, 3) * float(factor)


def transform_points(points: np.ndarray, M: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine matrix to ``(N, 2)`` points."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    M = np.asarray(M, dtype=np.float64).reshape(2, 3)
    return points @ M[:, :2].T + M[:, 2]


def frame_region(points: np.ndarray, shape: tuple) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)``: the frame pixels (of a frame of ``shape``) a crop warped back
    can touch, given where its corner pixels' centres land (``points``, frame pixels), with
    a pixel of margin (bilinear sampling reaches half a pixel beyond the corner centres),
    clipped to the frame; empty (x1 <= x0 or y1 <= y0) when it lies outside."""
    height, width = shape[:2]
    x0 = max(int(np.floor(points[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(points[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(points[:, 0].max())) + 2, width)
    y1 = min(int(np.ceil(points[:, 1].max())) + 2, height)
    return x0, y0, x1, y1


def nonzero_box(weight: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` (end-exclusive) of the pixels of a 2-D ``weight`` above
    0, or None when there are none."""
    rows = np.flatnonzero(weight.max(axis=1) > 0.0)
    if not len(rows):
        return None
    cols = np.flatnonzero(weight[rows[0]:rows[-1] + 1].max(axis=0) > 0.0)
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def paste_back(frame: np.ndarray, crop: np.ndarray, M: np.ndarray, mask: np.ndarray,
               change: bool = False, out: np.ndarray | None = None,
               coverage: np.ndarray | None = None) -> np.ndarray:
    """Warp ``crop`` back into ``frame`` with the inverse of ``M`` and blend it through ``mask``.

    ``frame * (1 - m) + crop * m`` with crop and mask warped bilinearly by ``invert_affine(M)``
    (border 0), docs/reference.md §7. Only the bounding box of the warped mask's nonzero part is
    touched; every pixel where the warped mask is 0 stays bit-identical to ``frame``.

    With ``change=True``, ``crop`` is a signed change (float) to add: ``frame + crop * m``.
    Whatever the change leaves alone keeps the frame's own pixels, including the detail that
    a round trip frame -> crop -> frame through two bilinear resamplings would soften.

    Args:
        frame: ``(H, W, 3)`` uint8 image the crop was aligned from.
        crop: ``(S, S, 3)`` uint8 (or float in ``[0, 255]``) crop in the aligned space.
        M: the ``(2, 3)`` image-to-crop matrix :func:`align_face` returned.
        mask: ``(S, S)`` float in ``[0, 1]`` in crop space (1 = take the crop).
        out: where to write the result (may be ``frame`` itself: pasted in place). Default: a
            new copy of ``frame``. A compositor pasting several faces into one frame copies
            the frame once instead of once per face.
        coverage: an ``(H, W)`` float32 array the warped mask is merged into, in place, as
            ``1 - (1 - coverage) * (1 - m)`` (how much of each pixel the pastes replaced: the
            matte of a swap), or None.

    Returns:
        The ``(H, W, 3)`` uint8 result (``out`` when given).
    """
    frame = np.asarray(frame)
    result = frame.copy() if out is None else out
    crop_h, crop_w = crop.shape[:2]
    mask = np.asarray(mask, dtype=np.float32).reshape(crop_h, crop_w)
    inverse = invert_affine(M)
    corners = np.array([[0, 0], [crop_w - 1, 0], [0, crop_h - 1], [crop_w - 1, crop_h - 1]])
    x0, y0, x1, y1 = frame_region(transform_points(corners, inverse), frame.shape)
    if x1 <= x0 or y1 <= y0:
        return result
    local = inverse.copy()
    local[:, 2] -= (x0, y0)  # warp only into the region of interest, in its own coordinates
    weight = cv2.warpAffine(mask, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # The mask (a face outline, a soft box) usually covers a part of the crop: the crop is
    # warped and blended only inside the bounding box of the warped mask's nonzero pixels
    # (everything outside it would be blended with weight 0, i.e. left as it is).
    box = nonzero_box(weight)
    if box is None:
        return result
    top, bottom, left, right = box
    weight = weight[top:bottom, left:right]
    np.clip(weight, 0.0, 1.0, out=weight)
    local[:, 2] -= (left, top)
    x0, y0 = x0 + left, y0 + top
    x1, y1 = x0 + (right - left), y0 + (bottom - top)
    if coverage is not None:
        covered = coverage[y0:y1, x0:x1]
        covered += weight * (1.0 - covered)  # = 1 - (1 - covered) (1 - weight)
    warped = cv2.warpAffine(np.asarray(crop, dtype=np.float32), local, (x1 - x0, y1 - y0),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if warped.ndim == 2:
        warped = warped[:, :, None]
    region = frame[y0:y1, x0:x1]
    channels = region.shape[2] if region.ndim == 3 else 1
    # Per-channel weight: OpenCV's arithmetic needs operands of one shape (no broadcasting).
    weight = cv2.merge([weight] * channels) if channels > 1 else weight[:, :, None]
    warped = warped.reshape(weight.shape)
    if change:
        blended = cv2.multiply(warped, weight)  # the change, weighted
    else:  # region * (1 - m) + crop * m = region + (crop - region) * m
        blended = cv2.multiply(cv2.subtract(warped, region, dtype=cv2.CV_32F), weight)
    # uint8 + float32 -> uint8: rounded to the nearest (ties to even) and saturated, as
    # np.clip(np.rint(...), 0, 255) does, without the float copies.
    result[y0:y1, x0:x1] = cv2.add(region, blended, dtype=cv2.CV_8U).reshape(region.shape)
    return result


def warp_affine_torch(images: torch.Tensor, M: torch.Tensor,
                      out_size: int | tuple[int, int]) -> torch.Tensor:
    """Batched, differentiable ``cv2.warpAffine`` (bilinear, border 0).

    Args:
        images: ``(B, C, H, W)`` float tensor (any value range).
        M: ``(B, 2, 3)`` or ``(2, 3)`` matrices in the OpenCV convention: source pixel ->
            destination pixel (pixel centres at integer coordinates). Gradients flow to both
            ``images`` and ``M``.
        out_size: ``S`` for a square output or ``(H_out, W_out)``.

    Returns:
        ``(B, C, H_out, W_out)`` tensor with ``out[b, :, v, u] = images[b, :, y, x]`` where
        ``[u, v] = M[b] @ [x, y, 1]``, bilinearly interpolated, 0 outside the image.
    """
    import torch
    import torch.nn.functional as F

    if images.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) images, got shape {tuple(images.shape)}")
    batch, _, height, width = images.shape
    out_h, out_w = (out_size, out_size) if isinstance(out_size, int) else out_size
    M = torch.as_tensor(M, dtype=images.dtype, device=images.device)
    if M.ndim == 2:
        M = M.unsqueeze(0)
    M = M.expand(batch, 2, 3)
    a, b, tx = M[:, 0, 0], M[:, 0, 1], M[:, 0, 2]
    c, d, ty = M[:, 1, 0], M[:, 1, 1], M[:, 1, 2]
    det = a * d - b * c
    # The inverse maps each destination pixel to the source pixel it samples (2x2 closed form).
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    itx, ity = -(ia * tx + ib * ty), -(ic * tx + id_ * ty)
    ys = torch.arange(out_h, dtype=images.dtype, device=images.device)
    xs = torch.arange(out_w, dtype=images.dtype, device=images.device)
    v, u = torch.meshgrid(ys, xs, indexing="ij")
    u, v = u[None], v[None]

    def per_batch(t: torch.Tensor) -> torch.Tensor:
        return t[:, None, None]

    src_x = per_batch(ia) * u + per_batch(ib) * v + per_batch(itx)
    src_y = per_batch(ic) * u + per_batch(id_) * v + per_batch(ity)
    # grid_sample with align_corners=False puts pixel centres at (2 i + 1) / size - 1.
    grid = torch.stack([(2 * src_x + 1) / width - 1, (2 * src_y + 1) / height - 1], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)
