"""Faces tilted between the quarter turns: the crop that shows one level, and the way back.

RetinaFace finds faces upright and within about 30 degrees of it; a head tilted further (a
selfie, a child leaning on a shoulder, a photo scanned crooked) is still found, but its five
landmarks drift towards where an upright face's would be: on the shared photos turned by 30
degrees the eyes and mouth corners of the reading were 0.15 eye distances off (median), at 45
degrees 0.22, enough to turn and shift the aligned crop so that the swap smears. Read again on
a crop turned so that the reading's own eye line is level, the same faces are 0.07 off at every
tilt, as far as two readings of an upright face differ (docs/align.md "Tilted faces").

Geometry only (no detector): :func:`level_crop` cuts the crop, :func:`back_to_image` maps
points found in it back.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def eye_roll(landmarks: np.ndarray) -> float:
    """Degrees the eye line (image-left eye to image-right eye, the first two of the five
    points) turns clockwise from level in the image (y down)."""
    eyes = np.asarray(landmarks[1], np.float64) - np.asarray(landmarks[0], np.float64)
    return math.degrees(math.atan2(float(eyes[1]), float(eyes[0])))


def off_turn(landmarks: np.ndarray, turn: int) -> float:
    """:func:`eye_roll` measured from a face found at ``turn`` (its eye line is ``turn``
    degrees clockwise of level when read right), in [-180, 180)."""
    return (eye_roll(landmarks) - turn + 180.0) % 360.0 - 180.0


def nearest_turn(roll: float) -> int:
    """The quarter turn (0, 90, 180, 270) nearest to an eye line ``roll`` degrees clockwise."""
    return int(round(roll / 90.0)) % 4 * 90


def level_crop(image: np.ndarray, centre: tuple[float, float], roll: float, side: float,
               max_side: int, fill: tuple[float, float, float]
               ) -> tuple[np.ndarray, np.ndarray]:
    """A square crop of ``side`` image pixels around ``centre``, turned ``roll`` degrees
    counterclockwise (an eye line ``roll`` degrees clockwise of level comes out level), at most
    ``max_side`` pixels a side; beyond the image ``fill``. Returns ``(crop, matrix)``, the 2 x 3
    matrix from image to crop pixels.

    A crop that is scaled down is area-averaged first (bilinear sampling alone would alias a
    large face's fine detail, which the detector reads as texture), then turned at scale 1."""
    out = max(1, int(round(min(side, max_side))))
    scale = out / side
    cx, cy = centre
    source = image
    pre = np.eye(3)
    if scale < 0.75:
        # The axis-aligned square that holds the turned one, area-averaged to the crop's scale.
        half = side * 0.75
        left, top = int(math.floor(cx - half)), int(math.floor(cy - half))
        right, bottom = int(math.ceil(cx + half)), int(math.ceil(cy + half))
        x0, y0 = max(left, 0), max(top, 0)
        x1, y1 = min(right, image.shape[1]), min(bottom, image.shape[0])
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            width = max(1, int(round((x1 - x0) * scale)))
            height = max(1, int(round((y1 - y0) * scale)))
            source = cv2.resize(image[y0:y1, x0:x1], (width, height),
                                interpolation=cv2.INTER_AREA)
            sx, sy = width / (x1 - x0), height / (y1 - y0)
            pre = np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy], [0.0, 0.0, 1.0]])
            scale /= (sx + sy) / 2
            cx, cy = (cx - x0) * sx, (cy - y0) * sy
    turn = cv2.getRotationMatrix2D((float(cx), float(cy)), float(roll), float(scale))
    turn[0, 2] += out / 2 - cx
    turn[1, 2] += out / 2 - cy
    crop = cv2.warpAffine(source, turn, (out, out), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(float(v) for v in fill))
    matrix = (np.vstack([turn, [0.0, 0.0, 1.0]]) @ pre)[:2]
    return crop, matrix


def back_to_image(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(N, 2)`` crop pixels to image pixels, for ``matrix`` from :func:`level_crop`."""
    inverse = cv2.invertAffineTransform(np.asarray(matrix, np.float64))
    points = np.asarray(points, np.float64)
    return (points @ inverse[:, :2].T + inverse[:, 2]).astype(np.float32)
