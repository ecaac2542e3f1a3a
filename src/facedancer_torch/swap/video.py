"""Swap a video: decode, detect, track, batch faces across frames, generate, blend, encode.

docs/reference.md §7 applied to every frame, plus what users of video swappers expect:

- **Overlap.** A background thread decodes frames and detects faces in upcoming frames while the
  main thread runs the generator; another thread encodes finished frames. Queues are bounded,
  so memory stays flat however long the video is.
- **Batching across frames.** Faces of consecutive frames are collected until a batch of
  ``batch_size`` crops is full, then the generator runs once for all of them.
- **Detection every N frames.** With ``detect_every`` > 1 the whole frame is searched every
  N frames only; in between each known face is re-detected in a small crop around where it
  was (``faces/roi.py``, the live loop's method): real landmarks every frame at a fraction of
  the cost. New faces are found at the next full detection (see :class:`_FaceFinder`).
- **Tracking.** Faces are linked across frames by box IoU (``faces/tracking.py``) and their
  landmarks smoothed so that the crops do not jitter. ``--reference``/``--map`` decide per
  track (on the mean identity of its first views), not per frame, so one person does not
  flicker between swapped and not swapped. At a shot cut (``faces/shots.py``) every track ends
  and the whole frame is searched: the next shot's person is never taken for the last one's;
  a large face's identity is checked again every IDENTITY_RECHECK frames (a cross-fade is no
  cut).
- **No ghost faces.** Frames wait in a short look-ahead window (``confirm_frames - 1`` frames,
  at least :data:`BRIDGE_FRAMES`) before they are swapped, so each face can be judged on what
  comes next: a track is swapped only once the detector has confirmed it ``confirm_frames``
  times (a one-frame false detection never is; a real face is swapped from its first frame),
  and a face the detector misses for a few frames is bridged from its track only when the
  detector finds it again afterwards: when a person leaves, nothing is painted where they were.
  Faces smaller than ``min_face_size`` of the frame are left alone (with a hysteresis, so a face
  near the limit does not blink).
- A frame without a face to swap is passed through unchanged (the same array).
- The output keeps fps exactly, the size, frame count, rotation, colour description, start
  timecode and the audio streams (copied, not re-encoded); it is written to a temporary file
  and renamed on success. A video in which no face was swapped at all is written unchanged and
  unlabelled (see ``report.py``).
"""

from __future__ import annotations

import dataclasses
import queue
import shutil
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..faces.detect import frame_rotate, full_first_pass
from ..faces.roi import NEW_FACE_IOU, detect_in_rois
from ..faces.shots import ShotCuts
from ..faces.align import transform_points
from ..faces.tracking import FaceTracker, box_iou, move_box
from ..io import video as video_io
from ..io.atomic import atomic_path
from ..io.codecs import choose_codec
from ..io.fidelity import keep_source, written_like
from ..io.sequence import (SequenceWriter, clip_reader, first_frame_number,
                           is_sequence_pattern, probe_clip, sequence_files)
from ..io.queues import END, put_until_stopped
from .checks import check_codec, check_output, check_video_output
from .compose import fade_weight
from .image import finish_image
from .matte import check_matte, matte_frame, matte_metadata, new_coverage
from .options import SwapOptions, format_time, starts_after
from .report import FileReport
from .select import face_extent, min_face_pixels, split_cut, split_profiles

# Faces per track whose identities are averaged before a --reference/--map decision is final.
IDENTITY_VIEWS: int = 5
# ... and then, with --reference/--map, every this many frames one more view is embedded: a
# face further than IDENTITY_CHANGE (cosine distance) from its track's identity is another
# person who took the track over (a cross-fade between two speakers framed alike, which no cut
# marks), and the track's identity starts again from it. Only faces whose eyes are at least
# IDENTITY_RECHECK_EYES pixels apart: on the talking clips (eyes 88-123 px apart) a person's
# views lie within 0.23 of their track's first ones and two people's 0.7 or more apart, but a
# crowd's small faces turning away drift up to 0.79 from their own (docs/swap.md "Videos").
IDENTITY_RECHECK: int = 10
IDENTITY_CHANGE: float = 0.5
IDENTITY_RECHECK_EYES: float = 40.0
# Frames detected per detector call (the detector pads a batch to one size; video frames share
# one size, so batching costs nothing and saves per-call overhead).
DETECT_BATCH: int = 4
# Frames a track may be missed by the detector and still be bridged (if it is found again).
BRIDGE_FRAMES: int = 4
# A face that is being swapped stays swapped until it shrinks below this share of the minimum
# size (hysteresis against blinking at the limit).
_SIZE_HYSTERESIS: float = 0.8
# Blend each batch in a worker thread while the main thread generates the next one (False:
# both in the main thread, one after the other). Compositing costs the demo generator's time
# 2-3 times over; run one after the other they left one of two cores idle half the time
# (docs/swap.md "Speed"). The output is the same to the bit: one worker blends the batches in
# their order, and only it touches the compositor's per-track memory.
BLEND_THREAD: bool = True
# Move tracks and followed faces with the camera where it jumped (faces/shots.py fits the
# move): a shaken crowd's small faces kept their tracks (False: boxes stay where they were).
CAMERA_MOVE: bool = True


@dataclass
class _TrackIdentity:
    """Running identity of one track for ``--reference``/``--map`` decisions."""

    total: np.ndarray | None = None
    views: int = 0
    checked: int = -1  # frame index of the latest view embedded

    def add(self, unit: np.ndarray) -> None:
        self.total = unit.copy() if self.total is None else self.total + unit
        self.views += 1

    @property
    def unit(self) -> np.ndarray:
        return self.total / max(float(np.linalg.norm(self.total)), 1e-12)


@dataclass
class _Pending:
    frame: np.ndarray
    jobs: list = field(default_factory=list)
    payload: object = None
    others: list = field(default_factory=list)  # boxes of faces not swapped (protected)


@dataclass
class VideoStats:
    """Counts of one video swap (filled in by :func:`swap_stream`); with ``record`` also the
    swapped faces of every frame in ``faces``: ``[(track id, (5, 2) landmarks, (4,) box), ...]``
    per frame, in frame pixels, the smoothed ones the crops were aligned with (what the
    benchmark and tests compare between detection modes)."""

    frames: int = 0
    frames_swapped: int = 0
    detected: int = 0
    swapped: int = 0
    too_small: int = 0
    profiles: int = 0
    cut: int = 0  # faces the frame's edge cuts too deeply (select.split_cut)
    cuts: int = 0  # shot cuts (faces/shots.py): the tracker started afresh there
    nearest: float | None = None  # the closest a candidate came to a wanted person (select.py)
    record: bool = False
    faces: list = field(default_factory=list)
    weights: list = field(default_factory=list)  # with record: each face's compose.fade_weight


@dataclass
class _Window:
    """One frame in the look-ahead window: its tracked faces, decided when it leaves."""

    index: int
    payload: object
    frame: np.ndarray
    faces: list


@dataclass
class _TrackState:
    hits: int = 0  # detections so far (including the look-ahead window)
    last_seen: int = -1  # frame index of the latest detection
    large: bool = False  # currently above the minimum size (with hysteresis)


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Put unless the consumer has stopped (then give up: nobody will read it)."""
    return put_until_stopped(q, item, stop)


def _rgb(item) -> np.ndarray:
    return item if isinstance(item, np.ndarray) else item.rgb


class _FaceFinder:
    """The faces of each frame, in order: full-frame detection every ``detect_every`` frames,
    and each known face re-detected in a crop around its last box (``faces/roi.py``; about
    5 ms a face instead of 35-85 ms a frame).

    - A face that appears between full detections is found at the next one.
    - A known face's landmarks always come from its crop, also on full-detection frames (crop
      and whole frame see the face at different scales, and their landmarks differ by 2-5 % of
      the eye distance: switching between them every N frames made the face jump). Its score
      is the full detection's, carried over the frames between: a crop's score is not the
      whole frame's (a face the picture's edge cuts a fifth of scored 0.93-0.97 in its crop,
      0.997 in the whole frame), and the cut fade (faces/masks.cut_weight) reads the whole
      frame's, as still images give it.
    - The full detection decides which faces are there: a followed face it does not find is
      dropped (a crop sees the face smaller than the whole frame does, where a heavy blur or a
      wallpaper pattern can still look like a face), and the next frame gets a full detection
      too, so that a face the detector missed once is bridged as with full detection on every
      frame.
    - A face the crop detection loses between full detections is searched for around its last
      box for :data:`BRIDGE_FRAMES` more frames (a detector miss can be bridged) but not
      reported: when a person leaves, no face is found where they were.
    - Faces too small to be swapped (below the size hysteresis of :func:`_decide`) are not
      searched for in crops: they are reported where the last full detection found them (never
      swapped; counted as too small and protected from their neighbours' masks, as with full
      detection). When no face is followed every frame gets a full detection.

    Returns raw detections in frame pixels: tracking and smoothing are the main thread's, as
    with full detection on every frame.
    """

    def __init__(self, swapper, options: SwapOptions) -> None:
        self.swapper = swapper
        self.options = options
        # The 640 px first pass (faces.detect.full_first_pass): a crowd's small faces.
        self.detector = full_first_pass(swapper.detector)
        self.index = 0
        self.recheck = False  # a full detection dropped a face: detect the next frame fully
        self.followed: list[tuple[object, int]] = []  # (last face found, frames missed since)

    def __call__(self, frames: list[np.ndarray], cuts: list[bool] | None = None,
                 moves: list | None = None) -> list[list]:
        """Faces per frame; ``cuts``: which frames begin a new shot, ``moves``: where the
        camera moved each frame's picture (``faces/shots.py``, None where it did not jump)."""
        if self.options.detect_every == 1:
            with self.swapper.timer.measure("detect", len(frames)):
                return self.detector.detect_batch(frames,
                                                  rotate=frame_rotate(self.swapper.detector))
        cuts = cuts or [False] * len(frames)
        moves = moves or [None] * len(frames)
        return [self._one(frame, cut, move) for frame, cut, move in zip(frames, cuts, moves)]

    def _one(self, frame: np.ndarray, cut: bool = False, move=None) -> list:
        timer, detector = self.swapper.timer, self.detector
        rotate = frame_rotate(self.swapper.detector)
        if cut:  # the last shot's faces are not where this one's are: search the whole frame
            self.followed, self.recheck = [], False
        elif move is not None and CAMERA_MOVE:  # look for followed faces where the camera
            # moved them
            self.followed = [(dataclasses.replace(
                face, box=move_box(face.box, move),
                landmarks=transform_points(face.landmarks, move).astype(np.float32)), missed)
                for face, missed in self.followed]
        due = self.recheck or self.index % self.options.detect_every == 0 or not self.followed
        self.index += 1
        smallest = min_face_pixels(frame.shape, self.options, video=True) * _SIZE_HYSTERESIS
        followed = [item for item in self.followed if face_extent(item[0].box) >= smallest]
        small = [face for face, missed in self.followed
                 if face_extent(face.box) < smallest and missed == 0]
        found: list = []
        if followed:
            with timer.measure("track"):
                # small faces at their native resolution: half the cost on a crowd
                found = detect_in_rois(detector, frame, [face.box for face, _ in followed],
                                       rotate=rotate, upscale=False,
                                       turns=[face.rotation for face, _ in followed])
        if due:
            with timer.measure("detect"):
                full = detector.detect_batch([frame], rotate=rotate)[0]
            return self._confirm(followed, found, full)
        faces = [dataclasses.replace(face, score=item[0].score)
                 for item, face in zip(followed, found) if face is not None]
        lost = [item for item, face in zip(followed, found) if face is None]
        boxes = [np.asarray(face.box, np.float64)[:4] for face in faces]
        self.followed = [(face, 0) for face in faces + small]
        for face, missed in lost:
            if missed + 1 <= BRIDGE_FRAMES and not _overlaps(face.box, boxes):
                self.followed.append((face, missed + 1))
        return faces + small

    def _confirm(self, followed: list, found: list, full: list) -> list:
        """The faces of a full-detection frame: each followed face the full detection finds
        (with its crop landmarks when the crop found it too), then the full detection's other
        faces; followed faces it does not find are dropped."""
        free = [np.asarray(face.box, np.float64)[:4] for face in full]
        faces, dropped = [], False
        for (previous, _), face in zip(followed, found):
            match = _best_overlap(face.box if face is not None else previous.box, free)
            if match is None:
                dropped = True
                continue
            faces.append(dataclasses.replace(face, score=full[match].score)
                         if face is not None else full[match])
            free[match] = None
        faces += [full[i] for i, box in enumerate(free) if box is not None]
        self.followed = [(face, 0) for face in faces]
        self.recheck = dropped
        return faces


def _best_overlap(box, boxes: list) -> int | None:
    """Index of the box of ``boxes`` (None entries skipped) overlapping ``box`` most, if by at
    least :data:`~facedancer_torch.faces.roi.NEW_FACE_IOU`."""
    best, best_iou = None, NEW_FACE_IOU
    for i, other in enumerate(boxes):
        if other is None:
            continue
        iou = float(box_iou(other, box)[0, 0])
        if iou >= best_iou:
            best, best_iou = i, iou
    return best


def _overlaps(box, boxes: list) -> bool:
    return _best_overlap(box, boxes) is not None


def _frame_time(item, index: int, fps: float) -> float:
    """When a frame is shown, in seconds: its decoded time, else its index at ``fps``."""
    seconds = getattr(item, "time", None)
    return float(seconds) if seconds is not None else index / max(fps, 1e-6)


def _detected_frames(swapper, options: SwapOptions, frames: Iterable, stop: threading.Event,
                     out: queue.Queue, fps: float = 25.0) -> None:
    """Background thread: decode and detect, in order, into ``out``; ends with ``END``.

    ``frames`` yields arrays or objects with an ``.rgb`` array (``io.video.DecodedFrame``).
    Frames outside ``options.start``..``options.end`` are not searched (no faces: they pass
    through unchanged).
    """
    try:
        finder = _FaceFinder(swapper, options)
        shots = ShotCuts()
        iterator = iter(frames)
        index = 0
        finished = False
        while not finished and not stop.is_set():
            chunk = []
            start = time.perf_counter()
            for frame in iterator:
                chunk.append(frame)
                if len(chunk) == DETECT_BATCH:
                    break
            else:
                finished = True
            swapper.timer.add("decode", time.perf_counter() - start, len(chunk))
            if not chunk:
                break
            # Turned faces are searched only where a face looks read sideways (frame_rotate):
            # a sideways search of frames the person has left finds faces in blur and
            # wallpaper, and a video with a rotation tag is already upright after decoding.
            rgbs = [_rgb(item) for item in chunk]
            cuts, returns, moves = [], [], []
            for rgb in rgbs:
                cuts.append(shots(rgb))
                returns.append(shots.returned)
                moves.append(shots.move)
            inside = [options.in_span(_frame_time(item, index + k, fps))
                      for k, item in enumerate(chunk)]
            index += len(chunk)
            found = iter(finder([r for r, i in zip(rgbs, inside) if i],
                                [c for c, i in zip(cuts, inside) if i],
                                [m for m, i in zip(moves, inside) if i]) if any(inside) else [])
            detections = [next(found) if i else [] for i in inside]
            for item in zip(chunk, detections, cuts, returns, moves):
                if not _put(out, item, stop):
                    return
    except BaseException as exc:  # handed to the main thread, which re-raises it
        _put(out, _Failure(exc), stop)
        return
    _put(out, END, stop)


def swap_frames(swapper, frames: Iterable[np.ndarray], source, options: SwapOptions,
                tracker=None) -> Iterator[np.ndarray]:
    """Swap a stream of ``(H, W, 3)`` uint8 RGB frames; yields output frames in order.

    Frames without a face to swap are yielded unchanged (the very same array). ``tracker``
    defaults to a new ``FaceTracker``; pass ``False`` to swap frame by frame without tracking.
    No watermark here (see :func:`swap_video_file`).
    """
    for _, rgb in swap_stream(swapper, frames, source, options, tracker):
        yield rgb


def swap_stream(swapper, frames: Iterable, source, options: SwapOptions, tracker=None,
                fps: float = 25.0, stats: VideoStats | None = None, mattes: bool = False
                ) -> Iterator[tuple]:
    """Like :func:`swap_frames` for items that are arrays or carry one in ``.rgb``
    (``io.video.DecodedFrame``); yields ``(item, swapped rgb)`` so timestamps travel along,
    with ``mattes`` (and ``options.matte`` set) ``(item, swapped rgb, coverage)``: the frame's
    matte as ``swap/matte.py`` makes it, None where no face was swapped. ``stats``
    (optional) is filled in with what was done."""
    plan = swapper.plan(source, options)
    if tracker is None:
        tracker = _new_tracker(fps)
    stats = stats if stats is not None else VideoStats()
    stop = threading.Event()
    detected: queue.Queue = queue.Queue(maxsize=max(2 * options.batch_size, 2 * DETECT_BATCH))
    worker = threading.Thread(target=_detected_frames,
                              args=(swapper, options, frames, stop, detected, fps),
                              name="facedancer-detect", daemon=True)
    worker.start()
    lookahead = 0 if tracker is False else max(options.confirm_frames - 1, BRIDGE_FRAMES)
    window: deque[_Window] = deque()
    tracks: dict[int, _TrackState] = {}
    identities: dict[int, _TrackIdentity] = {}
    early: dict[tuple[int, int], np.ndarray] = {}  # views embedded ahead: (frame, track) -> unit
    beaten: dict[int, set[int]] = {}  # people a track lost to a nearer face (select.py)
    memories: dict[int, dict] = {}  # what the compositor keeps per track (compose.FaceJob)
    pending: list[_Pending] = []
    waiting = 0
    index = 0
    blender = _Blender(swapper, options)

    def handed(blended: Iterable[tuple]) -> Iterator[tuple]:
        for payload, rgb, coverage in blended:
            yield (payload, rgb, coverage) if mattes else (payload, rgb)

    def leave(entry: _Window) -> _Pending:
        faces, others = _decide(entry, tracks, options, stats, tracker is not False)
        faces, cut = split_cut(faces, entry.frame.shape, options)
        others = others + [np.asarray(f.box) for f in cut]
        track_ids = [getattr(f, "track_id", None) for f in faces]
        units = _track_units(swapper, plan, entry.frame, faces, identities,
                             wanted=swapper.identity_strength_for(options) > 0,
                             index=entry.index, ahead=window, early=early, beaten=beaten)
        jobs = swapper.jobs_for(entry.frame, faces, plan, units, track_ids,
                                memories, beaten) if faces else []
        nearest = plan.nearest(units)
        if nearest is not None:
            stats.nearest = nearest if stats.nearest is None else min(stats.nearest, nearest)
        jobs, turned = split_profiles(jobs, options)
        chosen = {job.index for job in jobs}
        others = others + [np.asarray(f.box) for i, f in enumerate(faces) if i not in chosen]
        if stats.record:
            stats.faces.append([(track_ids[job.index], job.landmarks, job.box) for job in jobs])
            stats.weights.append([fade_weight(job, entry.frame.shape, options) for job in jobs])
        stats.frames += 1
        stats.swapped += len(jobs)
        stats.profiles += len(turned)
        stats.cut += len(cut)
        stats.frames_swapped += bool(jobs)
        return _Pending(entry.frame, jobs, entry.payload, others)

    try:
        while True:
            item = detected.get()
            if item is END:
                break
            if isinstance(item, _Failure):
                raise item.error
            payload, faces, cut, returned, move = item
            stats.cuts -= returned  # a cut a few frames back was a flash (faces/shots.py)
            frame = _rgb(payload)
            stats.detected += len(faces)
            if cut:
                # A new shot: its faces start new tracks (their own --reference / --map
                # decision, smoothing and compositor memory), even where the last shot's were.
                stats.cuts += 1
                if tracker is not False:
                    tracker.reset()
            if move is not None and CAMERA_MOVE and tracker is not False:
                tracker.move(move)  # tracks follow the camera (faces/tracking.py)
            faces = _tracked(tracker, faces)
            for face in faces:
                if not getattr(face, "refilled", False) and getattr(face, "track_id", None) \
                        is not None:
                    state = tracks.setdefault(face.track_id, _TrackState())
                    state.hits += 1
                    state.last_seen = index
            window.append(_Window(index, payload, frame, faces))
            index += 1
            while len(window) > lookahead:
                ready = leave(window.popleft())
                pending.append(ready)
                waiting += len(ready.jobs)
                if waiting >= options.batch_size or (waiting == 0 and len(pending) > 0):
                    yield from handed(blender.submit(pending))
                    pending, waiting = [], 0
        while window:
            pending.append(leave(window.popleft()))
        yield from handed(blender.submit(pending))
        yield from handed(blender.finish())
    finally:
        stop.set()
        blender.close()
        worker.join(timeout=5)


def _decide(entry: _Window, tracks: dict[int, _TrackState], options: SwapOptions,
            stats: VideoStats, tracking: bool) -> tuple[list, list[np.ndarray]]:
    """The faces of a frame leaving the look-ahead window that may be swapped, and the boxes
    of those that may not (protected from their neighbours' masks)."""
    smallest = min_face_pixels(entry.frame.shape, options, video=True)
    kept, others = [], []
    for face in entry.faces:
        state = tracks.get(getattr(face, "track_id", -1)) if tracking else None
        extent = face_extent(face.box)
        if state is None:
            large = extent >= smallest
        else:
            state.large = extent >= (smallest * _SIZE_HYSTERESIS if state.large else smallest)
            large = state.large
        refilled = bool(getattr(face, "refilled", False))
        if not large:
            stats.too_small += not refilled
            others.append(np.asarray(face.box))
            continue
        if state is not None:
            confirmed = state.hits >= options.confirm_frames
            # A missed face is bridged only when the detector finds it again later: when the
            # person has left, nothing is painted where they were.
            if not confirmed or (refilled and state.last_seen <= entry.index):
                if not refilled:
                    others.append(np.asarray(face.box))
                continue
        kept.append(face)
    return kept, others


def _blend_batch(swapper, pending: list[_Pending], swapped: np.ndarray, options: SwapOptions
                 ) -> list[tuple[object, np.ndarray, np.ndarray | None]]:
    """The frames of one generated batch, blended (a frame without jobs as it is), each with
    its matte's coverage (``options.matte``; None without, or with no face in the frame)."""
    out, offset = [], 0
    for item in pending:
        if not item.jobs:
            out.append((item.payload, item.frame, None))
            continue
        count = len(item.jobs)
        coverage = None if options.matte is None else new_coverage(item.frame.shape)
        out.append((item.payload, swapper.blend(item.frame, item.jobs,
                                                swapped[offset:offset + count], options,
                                                item.others, coverage), coverage))
        offset += count
    return out


class _Blender:
    """Generation in the calling thread, blending one batch behind it in a worker thread
    (:data:`BLEND_THREAD`), frames handed on in their order."""

    def __init__(self, swapper, options: SwapOptions) -> None:
        self.swapper, self.options = swapper, options
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="facedancer-blend") \
            if BLEND_THREAD else None
        self.inflight: Future | None = None

    def submit(self, pending: list[_Pending]) -> Iterator[tuple]:
        """Generate ``pending``'s faces, start blending them, and yield the previous batch."""
        if not pending:
            return
        swapped = self.swapper.swap_jobs([(item.frame, item.jobs) for item in pending],
                                         self.options)
        if self.pool is None:
            yield from _blend_batch(self.swapper, pending, swapped, self.options)
            return
        yield from self.finish()
        self.inflight = self.pool.submit(_blend_batch, self.swapper, pending, swapped,
                                         self.options)

    def finish(self) -> Iterator[tuple]:
        """The batch being blended, once it is done (a failure in it is raised here)."""
        inflight, self.inflight = self.inflight, None
        if inflight is not None:
            yield from inflight.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _new_tracker(fps: float) -> FaceTracker:
    # Bridging is decided here with look-ahead (see swap_stream), so the tracker may report a
    # missed face for as many frames as the window can confirm.
    return FaceTracker(fps=fps, max_missing=BRIDGE_FRAMES)


def _tracked(tracker, faces):
    """Tracked faces (smoothed landmarks, refills) or the raw detections without a tracker."""
    if tracker is False or tracker is None:
        return list(faces)
    return list(tracker.update(faces))


def _track_units(swapper, plan, frame: np.ndarray, faces, identities: dict[int, _TrackIdentity],
                 wanted: bool = False, index: int = 0, ahead: Iterable[_Window] = (),
                 early: dict[tuple[int, int], np.ndarray] | None = None,
                 beaten: dict[int, set[int]] | None = None) -> np.ndarray | None:
    """Unit identity per face for ``--reference``/``--map`` (or, ``wanted``, for
    ``--identity-strength``), decided per track: a track's first IDENTITY_VIEWS detections are
    embedded and averaged, later frames reuse that (one encoder pass per face and frame would
    cost 4x the demo generator's time). With ``--reference``/``--map`` a decided track is
    checked again every IDENTITY_RECHECK frames (``index``: the frame's) and starts afresh
    when another person has taken it over (its ``beaten`` record goes with it).

    A track with fewer views so far is judged on the views to come as well: its faces in the
    look-ahead window (``ahead``) are embedded now, kept in ``early`` for when their frames
    come, and averaged in. On the crowd clip one view of a boy at the start, alone, lay within
    the threshold of another person picked as the reference (the average of five did not),
    and he was swapped for a frame."""
    if not (plan.needs_identity or wanted) or not faces:
        return None
    early = {} if early is None else early
    for key in [key for key in early if key[0] < index]:
        del early[key]  # a view embedded ahead whose face was not asked for after all
    track_ids = [getattr(f, "track_id", None) for f in faces]

    def needed(face, tid) -> bool:
        if tid is None:
            return True
        if getattr(face, "refilled", False):
            return False
        state = identities.get(tid, _TrackIdentity())
        if state.views < IDENTITY_VIEWS:
            return True
        points = np.asarray(face.landmarks, np.float64)
        return plan.needs_identity and index - state.checked >= IDENTITY_RECHECK and \
            float(np.linalg.norm(points[1] - points[0])) >= IDENTITY_RECHECK_EYES

    need = [i for i, (face, tid) in enumerate(zip(faces, track_ids)) if needed(face, tid)]
    kept = {i: early.pop((index, track_ids[i])) for i in need
            if track_ids[i] is not None and (index, track_ids[i]) in early}
    embed = [i for i in need if i not in kept]
    fresh = dict(zip(embed, swapper.identify(frame, [faces[i].landmarks for i in embed]))) \
        if embed else {}
    views = {**kept, **fresh}
    units = []
    for i, tid in enumerate(track_ids):
        if tid is None:
            units.append(views[i])
            continue
        state = identities.setdefault(tid, _TrackIdentity())
        if i in views:
            view = views[i]
            if state.views >= IDENTITY_VIEWS and \
                    1.0 - float(view @ state.unit) > IDENTITY_CHANGE:
                state = identities[tid] = _TrackIdentity()  # another person: start again
                if beaten is not None:
                    beaten.pop(tid, None)
            if state.views < IDENTITY_VIEWS:
                state.add(view)
            state.checked = index
        if state.total is None:  # refilled before ever being seen (should not happen)
            units.append(np.zeros(plan_dim(plan), np.float32))
        elif state.views < IDENTITY_VIEWS:
            coming = _views_ahead(swapper, tid, ahead, IDENTITY_VIEWS - state.views, early)
            total = state.total + sum(coming) if coming else state.total
            units.append(total / max(float(np.linalg.norm(total)), 1e-12))
        else:
            units.append(state.unit)
    return np.stack(units)


def _views_ahead(swapper, track: int, ahead: Iterable[_Window], count: int,
                 early: dict[tuple[int, int], np.ndarray]) -> list[np.ndarray]:
    """Unit embeddings of up to ``count`` detections of ``track`` in the look-ahead window
    ``ahead`` (refills are no views), each embedded once: kept in ``early`` by
    ``(frame index, track)``."""
    views = []
    for entry in ahead:
        if len(views) >= count:
            break
        for face in entry.faces:
            if getattr(face, "track_id", None) != track or getattr(face, "refilled", False):
                continue
            key = (entry.index, track)
            if key not in early:
                early[key] = swapper.identify(entry.frame, [face.landmarks])[0]
            views.append(early[key])
            break
    return views


def plan_dim(plan) -> int:
    identity = plan.source or plan.mapping[0][1]
    return int(identity.unit.shape[0])


class _Timestamps:
    """Source timestamps for the writer: kept as decoded (variable frame timing survives);
    a frame without one gets the previous one plus one frame duration."""

    def __init__(self, info) -> None:
        self.time_base = info.time_base
        self.step = None
        if info.time_base:
            self.step = max(1, round(1 / (info.fps * info.time_base)))
        self.last: int | None = None

    def __call__(self, decoded) -> int | None:
        if self.time_base is None:
            return None
        pts = getattr(decoded, "pts", None)
        if pts is None or (self.last is not None and pts <= self.last):
            pts = 0 if self.last is None else self.last + self.step
        self.last = int(pts)
        return self.last


def swap_video_file(swapper, target: str | Path, output: str | Path, source,
                    options: SwapOptions, progress: bool = True,
                    stats: VideoStats | None = None) -> FileReport:
    """Swap ``target`` (a video file) into ``output``; returns what was done.

    H.264 (yuv420p; yuv444p for odd sizes) with ``options.crf``/``options.preset`` for
    MP4/MOV/MKV, VP9 for WebM, or GIF/WebP/APNG, by the output suffix; a ProRes, DNxHR or
    FFV1 source keeps its codec, and ``options.codec`` picks another (``io.codecs``). A
    transparent source keeps its alpha where the output can hold it. The source's fps, size,
    frame count, timestamps and rotation are kept and its audio copied unchanged. The
    invisible watermark goes into every frame unless switched off and the provenance tag into
    the container metadata. With ``options.max_frames`` the video stops early and the audio is
    cut where the last frame ends. A video in which no face was swapped is written unchanged
    (a byte copy, or re-encoded without tag and watermark when the format or length differs).
    ``target`` and ``output`` may be frame patterns (``shot_%04d.png``, ``io.sequence``): an
    image sequence is read as a clip at ``options.fps``, and frames written as one carry the
    tag and watermark only where a face was swapped. ``stats`` (optional) is filled in as
    :func:`swap_stream` does.
    """
    target, output = Path(target), Path(output)
    check_output(output, options.overwrite, target)
    check_video_output(output, target)
    check_codec(output, options.codec)
    if options.matte is not None:
        check_matte(options.matte, output, target, "video", options.overwrite)
    info = probe_clip(target, options.fps)
    codec = (None, None) if is_sequence_pattern(output) else choose_codec(
        video_io.container_kind(output), options.codec, info.codec, info.profile,
        info.has_alpha, path=output, hdr=info.hdr and info.bit_depth > 8)  # (encoder, profile)
    if info.has_audio and is_sequence_pattern(output):
        warnings.warn(f"{target.name}: its sound is not kept in an image sequence",
                      stacklevel=2)
    plan = swapper.plan(source, options)
    total = info.frame_count or None
    if options.max_frames is not None:
        total = min(total, options.max_frames) if total else options.max_frames
    stats = stats if stats is not None else VideoStats()
    _encode(swapper, target, output, info, options, total,
            frames=lambda reader: swap_stream(swapper, reader, plan, options,
                                              fps=float(info.fps), stats=stats,
                                              mattes=options.matte is not None),
            metadata=swapper.provenance(plan, **_span_tag(options)),
            watermark=options.watermark, progress=progress, codec=codec, matte=options.matte)
    report = FileReport(path=output, kind="video", detected=stats.detected,
                        swapped=stats.swapped, too_small=stats.too_small,
                        profiles=stats.profiles, cut=stats.cut, frames=stats.frames,
                        frames_swapped=stats.frames_swapped, cuts=stats.cuts,
                        span=options.span_text(), length=format_time(info.duration)
                        if starts_after(options.start, info.duration) else None,
                        nearest=stats.nearest, threshold=plan.threshold)
    if not report.changed and not is_sequence_pattern(output):  # (frames: labelled one by one)
        # Nothing in it is synthetic: replace the labelled encode with the untouched video.
        if output.suffix.lower() == target.suffix.lower() and options.max_frames is None \
                and not is_sequence_pattern(target):
            with atomic_path(output) as tmp:
                shutil.copyfile(target, tmp)
        else:
            _encode(swapper, target, output, info, options, total,
                    frames=lambda reader: ((item, _rgb(item)) for item in reader),
                    metadata=None, watermark=False, progress=progress, codec=codec)
    return report


def _span_tag(options: SwapOptions) -> dict[str, str]:
    """The provenance tag's note of a time range (which part of the file is synthetic)."""
    span = options.span_text()
    return {"faces_swapped": f"only {span}"} if span else {}


def _encode(swapper, target: Path, output: Path, info, options: SwapOptions,
            total: int | None, frames, metadata: dict | None, watermark: bool,
            progress: bool, codec: tuple[str, str | None], matte: Path | None = None) -> None:
    """Decode ``target``, pass the frames through ``frames(reader)`` (yielding ``(decoded,
    rgb)``, or ``(decoded, rgb, coverage)`` for a ``matte``), watermark (if asked) and encode
    them into ``output`` atomically with ``codec`` (``io.codecs.choose_codec``'s encoder and
    profile); the mattes into ``matte`` (``swap/matte.py``), atomically too."""
    timestamps = _Timestamps(info)
    bar = _progress(total, target.name, progress)
    encode_queue: queue.Queue = queue.Queue(maxsize=8)
    stop = threading.Event()
    errors: list[BaseException] = []
    # Watermarking and encoding run in their own thread (numpy and FFmpeg release the GIL),
    # overlapping generation; timed for the benchmark.
    if is_sequence_pattern(output):  # numbered stills, moved into place by close()
        first, like = 1, {}
        if is_sequence_pattern(target):  # numbered, profiled and compressed like the input's
            first, source = sequence_files(target)[0]
            like = written_like(source)  # black-and-white frames stay so
        writer = SequenceWriter(output, start_number=first, metadata=metadata,
                                alpha=info.has_alpha, **like)
    else:
        writer = video_io.VideoWriter(  # opens a temporary file; abort() removes it
            output, info.fps, width=info.width, height=info.height, crf=options.crf,
            preset=options.preset,
            audio_from=None if is_sequence_pattern(target) else target,  # audio, subtitles
            metadata=metadata, rotation=info.rotation,
            time_base=info.time_base if timestamps.time_base else None, background=False,
            trim_audio=options.max_frames is not None, colour=info.colour,
            timecode=info.timecode, alpha=info.has_alpha, codec=codec[0], profile=codec[1],
            deep=info.bit_depth > 8)
    matte_writer = None
    if matte is not None:
        try:
            # Numbered as the target's frames are (an image sequence's), else from 1.
            matte_writer = _matte_writer(matte, output, info, options, timestamps,
                                         first_frame_number(target))
        except BaseException:
            writer.abort()
            raise
    # The matte is moved into place first: a folder run that finds an output takes it as done.
    writers = [w for w in (matte_writer, writer) if w is not None]
    # A 10-bit source written by a 10-bit codec: frames also come at 16 bits, and what the
    # swap did not change keeps the source's precision (io.fidelity.deep_with_change).
    try:
        reader = clip_reader(target, options.fps, max_frames=options.max_frames,
                             deep=writer.deep)
    except BaseException:
        for each in writers:
            each.abort()
        if bar is not None:
            bar.close()
        raise

    def encode() -> None:
        try:
            while not stop.is_set():  # stop: the main thread failed, the output is discarded
                try:
                    item = encode_queue.get(timeout=0.1)
                except queue.Empty:
                    continue
                if item is END:
                    return
                decoded, frame, pts, coverage = item
                _write_frame(swapper, writer, decoded, frame, pts, watermark, options)
                if matte_writer is not None:
                    with swapper.timer.measure("encode"):
                        matte_writer.write(matte_frame(coverage, frame.shape), pts,
                                           decoded.duration)
        except BaseException as exc:
            errors.append(exc)
            stop.set()

    thread = threading.Thread(target=encode, name="facedancer-encode", daemon=True)
    thread.start()
    try:
        for decoded, frame, *coverage in frames(reader):
            if not _put(encode_queue, (decoded, frame, timestamps(decoded),
                                       coverage[0] if coverage else None), stop):
                break
            if bar is not None:
                bar.update(1)
        _put(encode_queue, END, stop)
        thread.join()
        if errors:
            raise errors[0]
        with swapper.timer.measure("encode", count=0):  # flush: time, but no frame
            for each in writers:
                each.close()
    except BaseException:
        stop.set()
        thread.join()
        for each in writers:
            each.abort()
        raise
    finally:
        reader.close()
        if bar is not None:
            bar.close()


def _matte_writer(matte: Path, output: Path, info, options: SwapOptions, timestamps,
                  first: int):
    """The writer of a clip's matte: numbered grey stills from ``first`` for a frame pattern,
    else a movie of the output's rate, timestamps, timecode and rotation, no sound, its codec
    chosen by its suffix as the output's is (no alpha, 8 bits)."""
    if is_sequence_pattern(matte):
        return SequenceWriter(matte, start_number=first, metadata=matte_metadata(output),
                              grey=True)
    encoder, profile = choose_codec(video_io.container_kind(matte), "auto", info.codec,
                                    info.profile, False, path=matte)
    return video_io.VideoWriter(
        matte, info.fps, width=info.width, height=info.height, crf=options.crf,
        preset=options.preset, metadata=matte_metadata(output), rotation=info.rotation,
        time_base=info.time_base if timestamps.time_base else None, background=False,
        timecode=info.timecode, codec=encoder, profile=profile)


def _write_frame(swapper, writer, decoded, swapped: np.ndarray, pts: int | None,
                 watermark: bool, options: SwapOptions) -> None:
    """Watermark (if asked) and write one swapped frame as the source's ``decoded`` frame was:
    with its alpha where the writer keeps alpha, at its bit depth where the writer is 10-bit
    (``io.fidelity.keep_source``), and, for numbered stills, labelled only if the swap
    changed it."""
    changed = not writer.labels_each_frame or not np.array_equal(swapped, decoded.rgb)
    frame = swapped
    if watermark and changed:  # in the encode thread, so that it overlaps the generator too
        with swapper.timer.measure("watermark"):
            frame = finish_image(frame, options)
    frame, alpha, deep = keep_source(frame, swapped, decoded.rgb, decoded.rgba, decoded.deep,
                                     keep_alpha=writer.alpha)
    with swapper.timer.measure("encode"):
        writer.write(frame, pts, decoded.duration, alpha, deep, changed=changed)


def _progress(total: int | None, name: str, enabled: bool):
    """A tqdm bar on stderr: frames done, frames/s and ETA."""
    if not enabled:
        return None
    return tqdm(total=total, unit="frame", desc=name, dynamic_ncols=True, leave=False)
