"""Re-detect known faces in small crops around where they were (ROI detection).

Full-frame RetinaFace on a 512-720 px frame costs 35-85 ms on a 2-core CPU; the same detector
on a 224 px square crop around a face's previous box costs about 5 ms and still returns the
detector's own box and 5 landmarks. The live loop (``swap/live.py``) and video swapping with
``detect_every > 1`` (``swap/video.py``) follow faces this way between full-frame detections,
which they still need to find faces that enter the picture.

Coordinates are frame pixels; matrices are ``(2, 3)`` affines in the OpenCV convention.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from .detect import Face, looks_turned
from .tracking import box_iou

# Side in pixels of the crop a face is re-detected in, and that crop's side as a multiple of
# the face box's longer side: the face fills about half the crop, so it may move a quarter of
# a face size per frame and stay inside (benchmarks/live.py measured 224 px against 160/320).
ROI_SIZE: int = 224
ROI_SCALE: float = 2.0
# Below this box IoU with every face followed so far, a detection is a new face.
NEW_FACE_IOU: float = 0.3
# The smallest crop side with upscale=False (two strides of the detector's coarsest level).
_MIN_SIDE: int = 64
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


def roi_side(box: np.ndarray, size: int, scale: float, upscale: bool) -> int:
    """Side in pixels of the crop around ``box``: ``size``, or with ``upscale=False`` for a face
    smaller than ``size / scale`` its own side times ``scale`` at native resolution (rounded up
    to the detector's 32 px stride, at least 64)."""
    if upscale:
        return size
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box)[:4])
    native = math.ceil(max(x2 - x1, y2 - y1, 1.0) * scale / 32) * 32
    return int(min(size, max(_MIN_SIDE, native)))


def _nearest(candidates: Sequence[Face], side: int) -> Face:
    """The face of a crop of ``side`` pixels whose box centre is nearest the crop's centre."""
    centre = np.array([side / 2, side / 2])
    return min(candidates, key=lambda f: float(np.linalg.norm(
        (np.asarray(f.box[:2]) + np.asarray(f.box[2:4])) / 2 - centre)))


def detect_in_rois(detector, frame: np.ndarray, boxes: Sequence[np.ndarray],
                   size: int = ROI_SIZE, scale: float = ROI_SCALE, rotate: str = "off",
                   upscale: bool = True, turns: Sequence[int] | None = None
                   ) -> list[Face | None]:
    """Re-detect one face around each of ``boxes`` in ``frame`` ``(H, W, 3)`` uint8 RGB.

    Returns, per box, the detected face nearest the crop's centre (the one the box was
    following) in frame pixels, or None when the crop holds no face or the face is one that an
    earlier box already found. ``detector`` is a ``faces.detect.FaceDetector``; crops of one
    side go through one ``detect_batch`` call. Each crop is ``scale`` times the box's longer
    side, resized to ``size`` pixels; with ``upscale=False`` a small face's crop keeps its
    native resolution instead (:func:`roi_side`; on the crowd clip's 60-90 px faces that
    halved the cost and matched full-frame landmarks better: 2.8 % of the face size instead of
    3.3 %). ``rotate`` is passed on: ``"off"`` or ``"turned"``, not ``"auto"`` (a crop around
    an upright face scores below the rotation search's threshold in about half the frames,
    which doubles the cost and finds nothing more; ``"turned"`` searches only a crop whose
    face looks read sideways). With ``"turned"``, ``turns`` (per box, the turn its face was
    found at, ``Face.rotation``) has each crop read at its face's turn first, and searched
    only when the face read there looks turned (:func:`~.detect.looks_turned`) or is not
    there: in a crop, the face read upside down from its turn can score as high as at its
    turn (0.996 against 0.998 on a face lying on its side), and a face keeps its turn from
    frame to frame. A face read at its turn and tilted past ``TILT_MIN`` off it is read level
    (the detector's ``level``), as detection with the turn search reads it.
    """
    if not boxes:
        return []
    sides = [roi_side(box, size, scale, upscale) for box in boxes]
    matrices = [roi_matrix(box, side, scale) for box, side in zip(boxes, sides)]
    crops = [cv2.warpAffine(frame, m, (side, side), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
             for m, side in zip(matrices, sides)]
    found: list = [None] * len(boxes)

    def detect(indices, how: list[str]) -> None:
        # crops of one side and one turn go through one detect_batch call
        for side, turn in sorted({(sides[i], how[i]) for i in indices}):
            group = [i for i in indices if (sides[i], how[i]) == (side, turn)]
            for i, candidates in zip(group, detector.detect_batch([crops[i] for i in group],
                                                                  rotate=turn)):
                found[i] = candidates

    first = [str(turn) if turn else rotate for turn in turns] \
        if rotate == "turned" and turns is not None else [rotate] * len(boxes)
    detect(range(len(boxes)), first)
    searched = [i for i in range(len(boxes)) if first[i] != rotate
                and (not found[i] or looks_turned(_nearest(found[i], sides[i])))]
    detect(searched, [rotate] * len(boxes))
    # A face read at its own turn comes as the network reads it there; tilted past TILT_MIN
    # off that turn (a head tilted 20 degrees in a clip filmed sideways) it is read level, as
    # the whole frame's detection reads it (talking_1face_512 turned 110 degrees: landmarks
    # 0.09 eye distances from full detection's in the mean, 0.04 level).
    level = getattr(detector, "level", None)
    for i in range(len(boxes)):
        if level is not None and found[i] and first[i] != rotate and i not in searched:
            found[i] = level(crops[i], [_nearest(found[i], sides[i])])
    faces: list[Face | None] = []
    for m, side, candidates in zip(matrices, sides, found):
        if not candidates:
            faces.append(None)
            continue
        best = _nearest(candidates, side)
        k, offset = m[0, 0], np.array([m[0, 2], m[1, 2]], np.float32)
        landmarks = (np.asarray(best.landmarks, np.float32) - offset) / k
        box = ((np.asarray(best.box, np.float32)[:4].reshape(2, 2) - offset) / k).reshape(4)
        face = Face(box=box.astype(np.float32), score=float(best.score),
                    landmarks=landmarks.astype(np.float32), rotation=best.rotation)
        kept = [f.box for f in faces if f is not None]
        if kept and box_iou(np.stack(kept), face.box).max() > _SAME_FACE_IOU:
            faces.append(None)
            continue
        faces.append(face)
    return faces
