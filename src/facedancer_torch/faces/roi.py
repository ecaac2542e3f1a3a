"""Re-detect known faces in small crops around where they were (ROI detection).

Full-frame RetinaFace on a 512-720 px frame costs 35-85 ms on a 2-core CPU; the same detector
on a 224 px square crop around a face's previous box costs about 5 ms and still returns the
detector's own box and 5 landmarks. The live loop (``swap/live.py``) and video swapping with
``detect_every > 1`` (``swap/video.py``) follow faces this way between full-frame detections,
which they still need to find faces that enter the picture.

Coordinates are frame pixels; matrices are ``(2, 3)`` affines in the OpenCV convention.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .detect import Face
from .tracking import box_iou

# Side in pixels of the crop a face is re-detected in, and that crop's side as a multiple of
# the face box's longer side: the face fills about half the crop, so it may move a quarter of
# a face size per frame and stay inside (benchmarks/live.py measured 224 px against 160/320).
ROI_SIZE: int = 224
ROI_SCALE: float = 2.0
# Below this box IoU with every face followed so far, a detection is a new face.
NEW_FACE_IOU: float = 0.3
# Two boxes that find faces overlapping more than this found the same face.
_SAME_FACE_IOU: float = 0.5


def roi_matrix(box: np.ndarray, size: int, scale: float) -> np.ndarray:
    """``(2, 3)`` affine mapping frame pixels into a ``size`` x ``size`` square crop centred on
    ``box`` (x1, y1, x2, y2), ``scale`` times its longer side (OpenCV convention, frame -> crop).
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box)[:4])
    side = max(x2 - x1, y2 - y1, 1.0) * scale
    k = size / side
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[k, 0.0, size / 2 - k * cx], [0.0, k, size / 2 - k * cy]], np.float64)


def detect_in_rois(detector, frame: np.ndarray, boxes: Sequence[np.ndarray],
                   size: int = ROI_SIZE, scale: float = ROI_SCALE, rotate: str = "off"
                   ) -> list[Face | None]:
    """Re-detect one face around each of ``boxes`` in ``frame`` ``(H, W, 3)`` uint8 RGB.

    Returns, per box, the detected face nearest the crop's centre (the one the box was
    following) in frame pixels, or None when the crop holds no face or the face is one that an
    earlier box already found. ``detector`` is a ``faces.detect.FaceDetector``; all crops go
    through one ``detect_batch`` call. ``rotate`` is passed on: keep it ``"off"`` (a crop
    around an upright face scores below the rotation search's threshold in about half the
    frames, which doubles the cost and finds nothing more).
    """
    if not boxes:
        return []
    matrices = [roi_matrix(box, size, scale) for box in boxes]
    crops = [cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
             for m in matrices]
    found = detector.detect_batch(crops, rotate=rotate)
    centre = np.array([size / 2, size / 2])
    faces: list[Face | None] = []
    for m, candidates in zip(matrices, found):
        if not candidates:
            faces.append(None)
            continue
        best = min(candidates, key=lambda f: float(np.linalg.norm(
            (np.asarray(f.box[:2]) + np.asarray(f.box[2:4])) / 2 - centre)))
        k, offset = m[0, 0], np.array([m[0, 2], m[1, 2]], np.float32)
        landmarks = (np.asarray(best.landmarks, np.float32) - offset) / k
        box = ((np.asarray(best.box, np.float32)[:4].reshape(2, 2) - offset) / k).reshape(4)
        face = Face(box=box.astype(np.float32), score=float(best.score),
                    landmarks=landmarks.astype(np.float32))
        kept = [f.box for f in faces if f is not None]
        if kept and box_iou(np.stack(kept), face.box).max() > _SAME_FACE_IOU:
            faces.append(None)
            continue
        faces.append(face)
    return faces
