"""Shot cuts: where an edited video jumps from one shot to the next.

A face tracker links faces by where they are. At a cut from one speaker to the next framed
the same way (an interview, a news edit), the second person's face lands where the first one's
was and would continue the first one's track: its ``--reference`` / ``--map`` decision (made
on a track's first views), its smoothed landmarks and what the compositor eases along the
track. Measured on two shared clips joined by a cut (docs/swap.md "Videos"): with
``--reference`` set to the first person both people were swapped, set to the second person
neither. At a cut the tracker therefore starts afresh, and the whole frame is searched for
faces instead of the places where the last shot's faces were.

A cut is a jump of the whole picture between two consecutive frames: of a 64 x 64 thumbnail,
the mean absolute grey difference or the total variation of the 8 x 8 x 8 colour histograms.
On the shared clips (682 consecutive frame pairs, talking heads and a walking crowd) the grey
difference is at most 8.3 but for three jumps in ``talking_1face_512.mp4`` where frames of the
same person were edited out (13-15.5: cuts too, by this measure), the histograms' at most
0.068; between the first and last frames of different clips at least 54 and 0.59.
"""

from __future__ import annotations

import cv2
import numpy as np

# Thumbnail side in pixels: the frame's layout and colours, none of its detail or noise.
SHOT_THUMBNAIL: int = 64
# A cut where the thumbnail's mean absolute grey difference from the previous frame reaches
# this (0-255)...
SHOT_CUT_GREY: float = 12.0
# ... or the total variation between their colour histograms this (0-1). A false cut in a
# continuous shot costs little: its faces start new tracks and are swapped as before.
SHOT_CUT_HISTOGRAM: float = 0.25


def picture(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a frame is compared by: its :data:`SHOT_THUMBNAIL` grey thumbnail (float32) and the
    8 x 8 x 8 colour histogram of that thumbnail (summing to 1)."""
    # Every few pixels sampled to 4x the thumbnail, then averaged down: 16 samples per
    # thumbnail pixel (enough against noise) for a fraction of a full-frame average.
    side = 4 * SHOT_THUMBNAIL
    sampled = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_NEAREST) \
        if min(rgb.shape[:2]) > side else rgb
    thumb = cv2.resize(sampled, (SHOT_THUMBNAIL, SHOT_THUMBNAIL), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(thumb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    histogram = cv2.calcHist([thumb], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
    histogram /= max(float(histogram.sum()), 1.0)
    return grey, histogram


def picture_jump(a: tuple, b: tuple) -> tuple[float, float]:
    """``(mean absolute grey difference, histogram total variation)`` between two
    :func:`picture` results."""
    return float(np.abs(a[0] - b[0]).mean()), 0.5 * float(np.abs(a[1] - b[1]).sum())


class ShotCuts:
    """Call once per frame, in order: True for the first frame of a new shot (never for the
    first frame of a stream)."""

    def __init__(self) -> None:
        self._previous: tuple[np.ndarray, np.ndarray] | None = None
        self.cuts = 0

    def __call__(self, rgb: np.ndarray) -> bool:
        previous, self._previous = self._previous, picture(rgb)
        if previous is None:
            return False
        grey, histogram = picture_jump(previous, self._previous)
        cut = grey >= SHOT_CUT_GREY or histogram >= SHOT_CUT_HISTOGRAM
        self.cuts += cut
        return cut
