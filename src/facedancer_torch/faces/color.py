"""Colour correction of a swapped crop against its target crop, before it is pasted back.

A small generator shifts colours in two ways, and each needs its own fix:

- **Globally** (the whole face a little too pink or too grey): :func:`color_match`, Reinhard
  et al. 2001 colour transfer restricted to the face (per CIE-Lab channel, the mask-weighted
  mean and standard deviation moved to the target's).
- **Locally** (teal eyebrows, purple eye rims, a green shadow under the nose while the cheeks are
  fine): no global transform can fix a cast that covers 2 % of the face. :func:`local_color_match`
  moves the swap's *chroma* (Lab a*, b*) towards the target's at every pixel, averaged over a
  small neighbourhood (a masked, normalised Gaussian of ``sigma`` pixels), and leaves the swap's
  lightness alone. Lightness carries the face's shape and identity; chroma carries skin tone,
  lighting colour and make-up, which the output should take from the scene anyway. Where the
  swap's features moved relative to the target's by less than ``sigma``, the correction is a
  smooth field and does not copy the target's features.

All functions take ``(S, S, 3)`` uint8 RGB and a ``(S, S)`` float weight in ``[0, 1]`` that
says where the statistics may be taken from (the blend mask times the part of the crop that lies
inside the frame: alignment fills the rest with black).
"""

from __future__ import annotations

import cv2
import numpy as np

from .masks import gaussian_blur


def _check_pair(swapped: np.ndarray, target: np.ndarray) -> None:
    if swapped.shape != target.shape or swapped.ndim != 3 or swapped.shape[2] != 3:
        raise ValueError(f"swapped {swapped.shape} and target {target.shape} must both be "
                         "(S, S, 3)")


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 CIE-Lab (L 0..100)."""
    return cv2.cvtColor(np.asarray(rgb).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def from_lab(lab: np.ndarray) -> np.ndarray:
    """float32 CIE-Lab -> uint8 RGB (L clipped to 0..100, RGB to 0..255)."""
    lab = lab.astype(np.float32, copy=True)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def color_match(swapped: np.ndarray, target: np.ndarray, mask: np.ndarray,
                strength: float = 1.0, max_gain: float = 2.0) -> np.ndarray:
    """Match the colour statistics of a swapped crop to the target crop inside ``mask``.

    Per CIE-Lab channel, the mask-weighted mean and standard deviation of ``swapped`` are moved
    to those of ``target`` (Reinhard et al. 2001). ``strength`` 0 returns ``swapped`` unchanged,
    1 applies the full transfer; ``max_gain`` bounds the std ratio, so a flat crop cannot blow
    up the contrast. Returns ``(S, S, 3)`` uint8 RGB.
    """
    swapped = np.asarray(swapped)
    target = np.asarray(target)
    _check_pair(swapped, target)
    weights = np.asarray(mask, np.float32).reshape(swapped.shape[:2])
    total = float(weights.sum())
    if total < 1.0 or strength <= 0:
        return swapped.copy()
    lab_s, lab_t = to_lab(swapped), to_lab(target)
    w = weights[..., None] / total
    mean_s, mean_t = (lab_s * w).sum((0, 1)), (lab_t * w).sum((0, 1))
    std_s = np.sqrt(((lab_s - mean_s) ** 2 * w).sum((0, 1)))
    std_t = np.sqrt(((lab_t - mean_t) ** 2 * w).sum((0, 1)))
    gain = np.clip(std_t / np.maximum(std_s, 1e-3), 1.0 / max_gain, max_gain)
    matched = (lab_s - mean_s) * gain + mean_t
    if strength < 1.0:
        matched = lab_s + (matched - lab_s) * float(strength)
    return from_lab(matched)


def local_color_match(swapped: np.ndarray, target: np.ndarray, mask: np.ndarray,
                      sigma: float) -> np.ndarray:
    """Move the swap's chroma (a*, b*) to the target's, pixel by pixel, smoothed over ``sigma``
    pixels; lightness is left as it is (see the module docstring).

    The correction at a pixel is the mask-weighted Gaussian average of ``target - swapped``
    chroma around it (normalised convolution), so pixels without weight (the black border of
    an alignment that left the frame) neither contribute nor receive a jump.
    """
    swapped = np.asarray(swapped)
    target = np.asarray(target)
    _check_pair(swapped, target)
    weights = np.asarray(mask, np.float32).reshape(swapped.shape[:2])
    if float(weights.sum()) < 1.0:
        return swapped.copy()
    lab_s, lab_t = to_lab(swapped), to_lab(target)
    norm = gaussian_blur(weights, sigma)
    valid = norm > 1e-3
    out = lab_s.copy()
    for channel in (1, 2):
        difference = gaussian_blur((lab_t[..., channel] - lab_s[..., channel]) * weights, sigma)
        correction = np.where(valid, difference / np.maximum(norm, 1e-3), 0.0)
        out[..., channel] += correction
    return from_lab(out)
