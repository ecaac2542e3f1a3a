"""Pixel boost: a k x S swap from a generator that works at S pixels.

A face that covers more frame pixels than the generator's ``S x S`` crop loses everything above
the generator's resolution. Sampling the face on a grid ``k`` times finer (a ``k S x k S`` crop,
the work crop of ``swap/compose.py``) and splitting that crop into its ``k x k`` polyphase
components (rows ``i::k``, columns ``j::k``) gives ``k^2`` crops of ``S`` pixels, each the face
shifted by a different fraction of a pixel. The generator swaps each; putting its outputs back in
the same interleaved places gives a ``k S`` swap that carries whatever the generator reproduces of
those sub-pixel shifts (what other tools call "pixel boost"). It costs ``k^2`` generator calls
per face and helps in proportion to how sharp the generator is at its own size (measured in
docs/swap.md).

Pixel centres follow ``compose.scale_affine``: work pixel ``k u + i`` is crop pixel
``u + (i - (k - 1) / 2) / k``, so the ``k^2`` components are centred on the plain crop.
"""

from __future__ import annotations

import cv2
import numpy as np

from .compose import scale_affine, work_factor


def boost_factor(matrix: np.ndarray, size: int, boost: int) -> int:
    """The factor used for one face: ``boost``, but never finer than the frame's own pixels
    (``compose.work_factor``): a face smaller than ``2 S`` gets no boost."""
    return max(1, min(int(boost), work_factor(matrix, size)))


def boost_crops(frame: np.ndarray, matrix: np.ndarray, size: int, k: int) -> np.ndarray:
    """The ``(k*k, S, S, 3)`` polyphase crops of the ``k S`` work crop of ``frame`` (frame->crop
    affine ``matrix`` of the plain ``S`` crop), in row-major ``(i, j)`` order."""
    work = size * k
    big = cv2.warpAffine(frame, scale_affine(matrix, k), (work, work), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.stack([big[i::k, j::k] for i in range(k) for j in range(k)])


def interleave(outputs: np.ndarray, k: int) -> np.ndarray:
    """Inverse of the polyphase split: ``(k*k, S, S, C)`` -> ``(k S, k S, C)``."""
    count, size = outputs.shape[0], outputs.shape[1]
    if count != k * k:
        raise ValueError(f"expected {k * k} crops for a factor {k}, got {count}")
    out = np.empty((size * k, size * k) + outputs.shape[3:], dtype=outputs.dtype)
    for n in range(count):
        i, j = divmod(n, k)
        out[i::k, j::k] = outputs[n]
    return out
