"""Blend masks and colour matching for pasting a swapped face back (FACEDANCER.md section 7).

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

from collections.abc import Sequence

import cv2
import numpy as np

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
    radius ``int(4 * sigma + 0.5)``), via OpenCV. ``(H, W)`` float32 in, float32 out."""
    mask = np.asarray(mask, np.float32)
    if sigma <= 0:
        return mask.copy()
    radius = int(4.0 * sigma + 0.5)
    return cv2.GaussianBlur(mask, (2 * radius + 1, 2 * radius + 1), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT)


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


def color_match(swapped: np.ndarray, target: np.ndarray, mask: np.ndarray,
                strength: float = 1.0, max_gain: float = 2.0) -> np.ndarray:
    """Match the colour of a swapped crop to the target crop inside ``mask`` (LAB mean/std).

    Reinhard et al. 2001 colour transfer restricted to the face: per CIE-LAB channel, the
    mask-weighted mean and standard deviation of ``swapped`` are moved to those of
    ``target``. Useful when the generator shifts skin tone or white balance.

    Args:
        swapped: ``(S, S, 3)`` uint8 RGB generator output.
        target: ``(S, S, 3)`` uint8 RGB aligned target crop (the generator's input).
        mask: ``(S, S)`` float weights in ``[0, 1]`` (the blend mask); pixels the alignment
            filled with black outside the image should have weight 0.
        strength: 0 returns ``swapped`` unchanged, 1 applies the full transfer.
        max_gain: bound on the std ratio, so a flat crop cannot blow up the contrast.

    Returns:
        ``(S, S, 3)`` uint8 RGB.
    """
    swapped = np.asarray(swapped)
    target = np.asarray(target)
    if swapped.shape != target.shape or swapped.ndim != 3 or swapped.shape[2] != 3:
        raise ValueError(f"swapped {swapped.shape} and target {target.shape} must both be "
                         "(S, S, 3)")
    weights = np.asarray(mask, np.float32).reshape(swapped.shape[:2])
    total = float(weights.sum())
    if total < 1.0 or strength <= 0:
        return swapped.copy()
    lab_s = cv2.cvtColor(swapped.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lab_t = cv2.cvtColor(target.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    w = weights[..., None] / total
    mean_s, mean_t = (lab_s * w).sum((0, 1)), (lab_t * w).sum((0, 1))
    std_s = np.sqrt(((lab_s - mean_s) ** 2 * w).sum((0, 1)))
    std_t = np.sqrt(((lab_t - mean_t) ** 2 * w).sum((0, 1)))
    gain = np.clip(std_t / np.maximum(std_s, 1e-3), 1.0 / max_gain, max_gain)
    matched = (lab_s - mean_s) * gain + mean_t
    if strength < 1.0:
        matched = lab_s + (matched - lab_s) * float(strength)
    matched[..., 0] = np.clip(matched[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(matched.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)
