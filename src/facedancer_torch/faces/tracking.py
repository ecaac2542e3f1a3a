"""Face tracking across video frames: IoU association, landmark smoothing, refilling misses.

The reference swaps every frame independently (docs/reference.md §7), so the aligned crop
follows the detector's landmark noise (the swapped face shimmers) and a face the detector
misses for one frame pops back to the original person. This module fixes both:

- **Association**: detections are linked to tracks by box IoU, greedily from the best pair
  (faces in one video rarely overlap, so greedy equals the optimal assignment in practice).
- **Smoothing**: each track runs a One-Euro filter (Casiez, Roussel, Vogel, CHI 2012) on its
  landmarks and box: a low cut-off frequency when the face is still (kills jitter), rising with
  speed (no lag when the head moves). Speed is measured in face sizes per second, so one
  setting fits small and large faces alike, and one cut-off is shared by all five points so
  the face moves as a whole (no shape distortion).
- **Refill**: a confirmed track (``min_hits`` detections) that gets no detection keeps being
  reported at its last smoothed position for up to ``max_missing`` frames, flagged
  ``refilled``, so the swap continues through a detector miss.

Coordinates are frame pixels, landmarks ``(5, 2)`` in RetinaFace order (see ``detect.Face``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .align import transform_points
from .detect import Face


@dataclass
class TrackedFace(Face):
    """A :class:`Face` with its track: ``landmarks``, ``box`` and ``score`` are the smoothed
    ones (the score: the mean of the track's last :data:`SCORE_FRAMES` detections').

    Attributes:
        track_id: stable id of the person's track in this video (0, 1, 2...).
        refilled: True when the detector missed the face in this frame and the track's last
            smoothed position stands in for it.
        raw_landmarks: the detector's own ``(5, 2)`` landmarks (None when refilled).
    """

    track_id: int = -1
    refilled: bool = False
    raw_landmarks: np.ndarray | None = None


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between every box of ``a`` ``(N, 4)`` and ``b`` ``(M, 4)`` (x1, y1, x2, y2) ->
    ``(N, M)``."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def move_box(box: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The box around the four corners of ``x1, y1, x2, y2`` moved by a ``(2, 3)`` affine."""
    box = np.asarray(box)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    corners = transform_points(np.array([[x1, y1], [x2, y1], [x1, y2], [x2, y2]]), matrix)
    moved = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
    return moved.astype(box.dtype)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` taken from the highest IoU down, each row and column once, only
    pairs with IoU >= ``threshold``."""
    pairs: list[tuple[int, int]] = []
    if iou.size == 0:
        return pairs
    order = np.argsort(-iou, axis=None, kind="stable")
    used_rows, used_cols = set(), set()
    for flat in order:
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < threshold:
            break
        if r in used_rows or c in used_cols:
            continue
        pairs.append((r, c))
        used_rows.add(r)
        used_cols.add(c)
    return pairs


@dataclass(frozen=True)
class OneEuroSmoothing:
    """One-Euro filter settings for :class:`FaceTracker`.

    ``min_cutoff`` (Hz): cut-off when the face is still; lower = smoother but laggier.
    ``beta``: how fast the cut-off rises with speed (speed in face sizes per second).
    ``d_cutoff`` (Hz): cut-off of the speed estimate itself.
    """

    min_cutoff: float = 1.5
    beta: float = 5.0
    d_cutoff: float = 1.0


_DEFAULT_SMOOTHING = OneEuroSmoothing()
# A tracked face's score is the mean of its last this many detections' scores. What follows
# the score (the fade of a face the frame cuts, faces/masks.cut_weight, over 0.97-0.995) moved
# with its frame-to-frame noise and its steps: a video swap with a full detection every 5
# frames carries each full detection's score over the frames between (swap/video.py), so a
# face leaving the picture stepped 0.999 -> 0.955 -> 0.921, and crops read around the face,
# whose scores are those of the live loop, alternated 0.99 and 0.976 from frame to frame.
# Four frames turn a step into a ramp and take out the alternation, for a lag of a frame and
# a half.
SCORE_FRAMES: int = 4


def _alpha(cutoff: float, dt: float) -> float:
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class _OneEuro:
    """One-Euro filter over a whole face (landmarks + box corners) with a shared cut-off."""

    def __init__(self, settings: OneEuroSmoothing, fps: float, points: np.ndarray,
                 scale: float):
        self.s = settings
        self.fps = fps
        self.x = points.astype(np.float64)
        self.dx = np.zeros_like(self.x)
        self.scale = max(scale, 1.0)

    def __call__(self, points: np.ndarray, frames: int = 1) -> np.ndarray:
        dt = frames / self.fps
        raw_dx = (points - self.x) / dt
        self.dx = self.dx + _alpha(self.s.d_cutoff, dt) * (raw_dx - self.dx)
        # speed of the face as a whole, in face sizes per second
        speed = float(np.linalg.norm(self.dx, axis=-1).mean()) / self.scale
        cutoff = self.s.min_cutoff + self.s.beta * speed
        self.x = self.x + _alpha(cutoff, dt) * (points - self.x)
        return self.x.copy()


def _face_scale(landmarks: np.ndarray, box: np.ndarray) -> float:
    """Face size in pixels: the eye-centre to mouth-centre distance is robust to the box
    shape of different detectors; fall back to the box diagonal."""
    eyes = landmarks[:2].mean(0)
    mouth = landmarks[3:5].mean(0)
    size = float(np.linalg.norm(mouth - eyes)) * 2.5
    return size if size > 1 else float(np.hypot(box[2] - box[0], box[3] - box[1]))


@dataclass
class _Track:
    track_id: int
    box: np.ndarray  # last smoothed box
    landmarks: np.ndarray  # last smoothed landmarks
    score: float
    filter: _OneEuro | None
    hits: int = 1
    missing: int = 0
    last_raw_box: np.ndarray = field(default_factory=lambda: np.zeros(4))
    rotation: int = 0  # the turn the face was last found at (Face.rotation)
    scores: list = field(default_factory=list)  # the last SCORE_FRAMES detections' scores

    def add_score(self, score: float) -> None:
        self.scores = [*self.scores, score][-SCORE_FRAMES:]
        self.score = float(np.mean(self.scores))


class FaceTracker:
    """Track faces through a video; call :meth:`update` once per frame, in order.

    Args:
        max_missing: frames a confirmed track is refilled after its face stops being detected
            (0 disables refilling); after that the track ends.
        iou_threshold: minimum box IoU to link a detection to a track.
        smoothing: :class:`OneEuroSmoothing` settings, or None for raw landmarks.
        fps: the video's frame rate (the filter's cut-offs are in Hz).
        min_hits: detections a track needs before it may be refilled (a one-frame false
            detection is never carried on).
    """

    def __init__(self, max_missing: int = 5, iou_threshold: float = 0.3,
                 smoothing: OneEuroSmoothing | None = _DEFAULT_SMOOTHING, fps: float = 25.0,
                 min_hits: int = 2):
        if max_missing < 0 or not 0 < iou_threshold <= 1 or min_hits < 1 or fps <= 0:
            raise ValueError("need max_missing >= 0, 0 < iou_threshold <= 1, min_hits >= 1, "
                             "fps > 0")
        self.fps = float(fps)
        self.max_missing = max_missing
        self.iou_threshold = iou_threshold
        self.smoothing = smoothing
        self.min_hits = min_hits
        self.tracks: list[_Track] = []
        self._next_id = 0

    def reset(self) -> None:
        """Forget every track (at a shot cut, ``faces/shots.py``). Track ids go on counting:
        a face of the new shot never takes the id, and so the state kept under it, of a face
        of the last one."""
        self.tracks = []

    def move(self, matrix: np.ndarray) -> None:
        """Move every track with the camera (``(2, 3)`` affine, previous frame -> this one;
        ``faces/shots.py`` ``ShotCuts.move``), before :meth:`update`: a small face the camera
        shook by more than half its size no longer overlaps its track's last box, and its
        track ended on every shake (each new track then waits to be confirmed)."""
        matrix = np.asarray(matrix, np.float64).reshape(2, 3)
        for track in self.tracks:
            track.landmarks = transform_points(track.landmarks, matrix)
            track.box = move_box(track.box, matrix)
            track.last_raw_box = move_box(track.last_raw_box, matrix)
            if track.filter is not None:
                track.filter.x = transform_points(track.filter.x, matrix)

    def update(self, faces: Sequence[Face]) -> list[TrackedFace]:
        """Link this frame's detections to tracks; returns the faces to swap in this frame:
        every detection (smoothed, in the input order) followed by refilled tracks."""
        boxes = np.array([np.asarray(f.box, np.float64)[:4] for f in faces]).reshape(-1, 4)
        track_boxes = np.array([t.last_raw_box for t in self.tracks]).reshape(-1, 4)
        pairs = greedy_match(box_iou(track_boxes, boxes), self.iou_threshold)
        track_of = {c: r for r, c in pairs}
        out: list[TrackedFace] = []
        seen: set[int] = set()
        for i, face in enumerate(faces):
            landmarks = np.asarray(face.landmarks, np.float64).reshape(5, 2)
            box = boxes[i]
            if i in track_of:
                track = self.tracks[track_of[i]]
                smoothed = self._smooth(track, landmarks, box)
                track.landmarks, track.box = smoothed[:5], smoothed[5:].reshape(4)
                track.hits += 1
                track.missing = 0
            else:
                track = self._new_track(landmarks, box, float(face.score))
            track.add_score(float(face.score))
            track.rotation = int(getattr(face, "rotation", 0))
            track.last_raw_box = box.copy()
            seen.add(track.track_id)
            out.append(TrackedFace(box=track.box.astype(np.float32), score=track.score,
                                   landmarks=track.landmarks.astype(np.float32),
                                   rotation=track.rotation, track_id=track.track_id,
                                   refilled=False, raw_landmarks=landmarks.astype(np.float32)))
        kept: list[_Track] = []
        for track in self.tracks:
            if track.track_id in seen:
                kept.append(track)
                continue
            track.missing += 1
            if track.hits >= self.min_hits and track.missing <= self.max_missing:
                kept.append(track)
                out.append(TrackedFace(box=track.box.astype(np.float32), score=track.score,
                                       landmarks=track.landmarks.astype(np.float32),
                                       rotation=track.rotation, track_id=track.track_id,
                                       refilled=True, raw_landmarks=None))
        self.tracks = kept
        return out

    def _new_track(self, landmarks: np.ndarray, box: np.ndarray, score: float) -> _Track:
        points = np.concatenate([landmarks, box.reshape(2, 2)])
        filt = None
        if self.smoothing is not None:
            filt = _OneEuro(self.smoothing, self.fps, points, _face_scale(landmarks, box))
        track = _Track(self._next_id, box.copy(), landmarks.copy(), score, filt,
                       last_raw_box=box.copy())
        self._next_id += 1
        self.tracks.append(track)
        return track

    def _smooth(self, track: _Track, landmarks: np.ndarray, box: np.ndarray) -> np.ndarray:
        points = np.concatenate([landmarks, box.reshape(2, 2)])
        if track.filter is None:
            return points
        track.filter.scale = _face_scale(landmarks, box)
        return track.filter(points, frames=track.missing + 1)
