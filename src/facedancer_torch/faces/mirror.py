"""A second opinion on a face the picture's edge cuts: the picture read again mirrored.

A detector that reads a half face right reads its mirror image right too, at the mirrored
place; one that reads the visible eye as the other one, or the ear as an eye, is misled
differently by the mirrored picture. So the distance between a face's landmarks and those
found on the mirrored picture (mirrored back, left and right swapped) tells a right reading
from a broken one where the detector's score cannot: measured on the shared photos' cut faces
that score below 0.995 (docs/swap.md "Faces the frame cuts" item 6).
"""

from __future__ import annotations

import numpy as np

from .detect import Face
from .tracking import box_iou

# The five points mirrored: left and right eye, nose, left and right mouth corner.
_MIRRORED = [1, 0, 2, 4, 3]


def mirror_disagreement(detector, image: np.ndarray, faces: list[Face]) -> list[float]:
    """For each of ``faces`` (read on ``image``, ``(H, W, 3)`` RGB), the mean distance of its
    five landmarks from the same face read on the mirrored picture, in its eye distances
    (``inf`` where the mirrored picture has no face overlapping it by IoU > 0.3). One
    detection of the mirrored picture for all of them."""
    if not faces:
        return []
    width = image.shape[1]
    found = detector.detect(np.ascontiguousarray(image[:, ::-1]))
    boxes = np.array([[width - f.box[2], f.box[1], width - f.box[0], f.box[3]]
                      for f in found], np.float64).reshape(-1, 4)
    out = []
    for face in faces:
        overlaps = box_iou(boxes, np.asarray(face.box, np.float64)[:4])[:, 0] \
            if len(boxes) else np.zeros(0)
        if not len(overlaps) or overlaps.max() <= 0.3:
            out.append(float("inf"))
            continue
        match = found[int(np.argmax(overlaps))]
        points = np.asarray(match.landmarks, np.float64).copy()
        points[:, 0] = width - points[:, 0]
        points = points[_MIRRORED]
        own = np.asarray(face.landmarks, np.float64)
        eye = max(float(np.linalg.norm(own[1] - own[0])), 1e-6)
        out.append(float(np.linalg.norm(points - own, axis=1).mean()) / eye)
    return out
