"""Black-and-white pictures stay black and white.

The generator paints faces in colour, and the colour correction brings a swap's chroma close to
a grey target's, not to zero: on a greyscale photo a swap left pixels up to 17 levels apart
between channels (a faint tint on lips and eyes that no black-and-white photo has). A frame
whose channels are equal everywhere (within :data:`MONOCHROME_TOLERANCE`: a grey JPEG or a
black-and-white film decoded through YCbCr rounds a level or two apart) gets its swapped
pixels as grey: their BT.601 luma in all three channels, which is the lightness the swap
had. Pixels the swap did not change are left as they are.
"""

from __future__ import annotations

import cv2
import numpy as np

# Channels at most this many levels apart count as grey (YCbCr rounding of a grey picture).
MONOCHROME_TOLERANCE: int = 3
# The test looks at every STRIDE-th pixel of every STRIDE-th row: a colour picture has colour
# in large areas, and a 1080p frame is judged in a fraction of a millisecond.
_STRIDE = 3


def is_monochrome(rgb: np.ndarray) -> bool:
    """Whether ``rgb`` (uint8 ``(H, W, 3)``) is a grey picture: no sampled pixel has channels
    more than :data:`MONOCHROME_TOLERANCE` apart."""
    sample = np.ascontiguousarray(rgb[::_STRIDE, ::_STRIDE])
    red, green, blue = cv2.split(sample)
    spread = cv2.max(cv2.absdiff(red, green), cv2.absdiff(green, blue))
    return int(spread.max(initial=0)) <= MONOCHROME_TOLERANCE


def keep_monochrome(out: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """``out`` (a swap of ``frame``) with every pixel it changed turned grey when ``frame`` is
    monochrome (:func:`is_monochrome`), in place; ``out`` as it is otherwise."""
    if out is frame or not is_monochrome(frame):
        return out
    changed = np.any(out != frame, axis=2)
    if not changed.any():
        return out
    luma = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    out[changed] = luma[changed][:, None]
    return out
