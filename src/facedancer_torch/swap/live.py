"""Live face swapping: a camera or a stream in, swapped frames out with the lowest latency.

``facedancer live`` and the web UI's Live tab run this loop. It differs from the video
pipeline (``swap/video.py``) in what it optimises: a video file wants throughput (batch faces
across frames, queue work ahead); a live stream wants every frame out as soon as possible and
never a backlog, so frames are swapped one at a time, the newest captured frame first (older
ones are dropped when the swapper falls behind), and nothing waits on a slow stage.

Per frame, for one face on a 2-core CPU, full-frame RetinaFace costs about four times the demo
generator, so faces are not detected in every whole frame:

- **Tracking by ROI detection** (:class:`RoiTracker`): each known face is re-detected in a small
  square crop around where it was in the previous frame (``roi_scale`` times its size, resized
  to ``roi_size`` pixels): real landmarks every frame at a fraction of the cost, smoothed and
  linked across frames by :class:`~facedancer_torch.faces.tracking.FaceTracker`.
- **Full-frame detection every** ``detect_every`` **frames** finds faces that entered the
  picture, in a background thread (``background=True``) so that it never stalls a frame, or
  inline (the web UI, where frames arrive one request at a time). ``detect_every=1`` detects
  every whole frame inline and skips ROI detection (the video pipeline's quality, slowest).

``benchmarks/live.py`` measures the landmark error of this against full-frame detection on
every frame, and the frames/s and capture-to-output latency of the whole loop.

Every output is labelled: a visible "synthetic media" label drawn into the frames (switch off
with ``label=False``), and for files and virtual cameras the invisible watermark; a file also
carries the provenance tag in its metadata, written atomically.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import signal
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..errors import FacedancerError, InputError
from ..faces.detect import frame_rotate
from ..faces.roi import NEW_FACE_IOU, ROI_SCALE, ROI_SIZE, detect_in_rois
from ..faces.shots import ShotCuts
from ..faces.tracking import FaceTracker, box_iou
from ..io.video import VideoWriter
from .checks import check_output, check_video_output
from .options import SwapOptions
from .select import split_cut, split_profiles

LABEL_TEXT: str = "SYNTHETIC MEDIA - face swapped"


# -- tracking ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class LiveSettings:
    """How the live loop finds faces.

    Attributes:
        detect_every: full-frame detection every this many frames (1 = every frame, no ROI).
        roi_size: side in pixels of the crop a known face is re-detected in.
        roi_scale: that crop's side as a multiple of the face box's longer side.
        background: run full-frame detection in a background thread (never stalls a frame;
            its faces arrive a few frames late and seed the ROI tracker).
        max_missing: frames a face the ROI detection loses keeps its last position before its
            track ends (``FaceTracker.max_missing``).
    """

    detect_every: int = 10
    roi_size: int = ROI_SIZE
    roi_scale: float = ROI_SCALE
    background: bool = True
    max_missing: int = 3

    def __post_init__(self) -> None:
        if self.detect_every < 1:
            raise FacedancerError(f"--detect-every must be >= 1, got {self.detect_every}")
        if self.roi_size < 32:
            raise FacedancerError(f"the ROI size must be >= 32 pixels, got {self.roi_size}")
        if self.roi_scale < 1.2:
            raise FacedancerError(f"the ROI scale must be >= 1.2, got {self.roi_scale}")


class RoiTracker:
    """Faces of a live stream: ROI re-detection of known faces every frame, full-frame
    detection every ``settings.detect_every`` frames, smoothing and refills by
    :class:`~facedancer_torch.faces.tracking.FaceTracker`.

    ``detector`` is a ``faces.detect.FaceDetector`` (``detect``, ``detect_batch``). Call
    :meth:`update` once per frame, in order; :meth:`close` stops the background thread.
    """

    def __init__(self, detector, settings: LiveSettings = LiveSettings(), fps: float = 30.0,
                 timer=None) -> None:
        self.detector = detector
        self.settings = settings
        self.timer = timer
        self.tracker = FaceTracker(fps=fps, max_missing=settings.max_missing)
        self.shots = ShotCuts()
        self.frame_index = 0
        self.full_detections = 0
        self._faces: list = []  # the last frame's tracked faces (their boxes seed the ROIs)
        # Per track, the score the last full-frame detection gave its face: a crop's own score
        # is not the whole frame's (the cut fade, faces/masks.cut_weight, reads the whole
        # frame's), so faces found in crops carry it (as swap/video.py's do).
        self._scores: dict[int, float] = {}
        # boxes of faces from a full-frame detection, with the turn and score each was found at
        self._seeds: list[tuple[np.ndarray, int, float]] = []
        self._lock = threading.Lock()
        self._request: queue.Queue = queue.Queue(maxsize=1)
        self._busy = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # -- public
    def update(self, frame: np.ndarray) -> list:
        """Tracked faces (``faces.tracking.TrackedFace``) in ``frame`` ``(H, W, 3)`` uint8 RGB."""
        if self._error is not None:
            raise self._error
        index = self.frame_index
        self.frame_index += 1
        if self.shots(frame):
            # A new shot (a video input's cut): its faces start new tracks, found in the whole
            # frame now rather than where the last shot's faces were (faces/shots.py).
            self.tracker.reset()
            self._faces, self._scores = [], {}
            with self._lock:
                self._seeds = []
            return self._track(self._full(frame))
        if self.settings.detect_every == 1:
            return self._track(self._full(frame))
        # due, or nothing tracked (then there is no generator work to protect either)
        due = index % self.settings.detect_every == 0 or not self._faces
        if due and not self.settings.background:
            return self._track(self._full(frame))
        if due:
            self._request_full(frame)
        with self._lock:
            seeds, self._seeds = self._seeds, []
        boxes = [np.asarray(f.box, np.float64) for f in self._faces]
        turns = [int(f.rotation) for f in self._faces]
        scores = [self._scores.get(f.track_id, float(f.score)) for f in self._faces]
        for seed, turn, score in seeds:
            overlaps = _iou(np.stack(boxes), seed) if boxes else np.zeros(0)
            if not len(overlaps) or overlaps.max() < NEW_FACE_IOU:
                boxes.append(seed)
                turns.append(turn)
                scores.append(score)
            else:  # a followed face the full detection saw again: its whole-frame score
                scores[int(np.argmax(overlaps))] = score
        faces = self._roi_detect(frame, boxes, turns, scores) if boxes else []
        return self._track(faces)

    def close(self) -> None:
        """Stop the background detection thread (safe to call twice)."""
        self._closed = True
        if self._thread is not None:
            with contextlib.suppress(queue.Full):
                self._request.put_nowait(None)
            self._thread.join(timeout=5)
            self._thread = None

    # -- internals
    def _track(self, faces: list) -> list:
        self._faces = list(self.tracker.update(faces))
        # the tracker returns the detections first, in their order, then refilled tracks
        scores = {face.track_id: float(found.score) for face, found in zip(self._faces, faces)}
        self._scores = {face.track_id: scores.get(face.track_id,
                                                  self._scores.get(face.track_id, face.score))
                        for face in self._faces}
        return self._faces

    def _full(self, frame: np.ndarray) -> list:
        start = time.perf_counter()
        # As in swap/video.py: searched at the other turns only where a face looks read
        # sideways ("turned"; "auto" would run 4 detections whenever the best score is below
        # 0.999, and search frames without a face).
        faces = self.detector.detect_batch([frame], rotate=frame_rotate(self.detector))[0]
        self.full_detections += 1
        if self.timer is not None:
            self.timer.add("detect", time.perf_counter() - start)
        return faces

    def _add_seeds(self, faces: Sequence) -> None:
        with self._lock:
            self._seeds.extend((np.asarray(f.box, np.float64)[:4], int(f.rotation),
                                float(f.score)) for f in faces)

    def _request_full(self, frame: np.ndarray) -> None:
        if self._closed:
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._worker, name="facedancer-live-detect",
                                            daemon=True)
            self._thread.start()
        if self._busy:
            return  # the previous one is still running: skip rather than queue stale frames
        self._busy = True
        self._request.put(frame)

    def _worker(self) -> None:
        while not self._closed:
            frame = self._request.get()
            if frame is None:
                return
            try:
                self._add_seeds(self._full(frame))
            except BaseException as exc:  # re-raised by update() in the caller's thread
                self._error = exc
                return
            finally:
                self._busy = False

    def _roi_detect(self, frame: np.ndarray, boxes: list[np.ndarray],
                    turns: list[int] | None = None, scores: list[float] | None = None) -> list:
        """Re-detect each face in a crop around ``boxes`` (``faces/roi.py``), each read at
        its face's turn (``turns``) first; at most one face per box, frame pixels;
        duplicates (two boxes finding one face) kept once. ``scores``: per box, the score the
        face found there carries (the whole frame's, instead of the crop's)."""
        start = time.perf_counter()
        found = detect_in_rois(self.detector, frame, boxes, self.settings.roi_size,
                               self.settings.roi_scale, rotate=frame_rotate(self.detector),
                               turns=turns)
        if self.timer is not None:
            self.timer.add("track", time.perf_counter() - start)
        if scores is not None:
            found = [None if face is None else dataclasses.replace(face, score=score)
                     for face, score in zip(found, scores)]
        return [face for face in found if face is not None]


def _iou(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    return box_iou(boxes, np.asarray(box).reshape(1, 4))[:, 0]


# -- one frame ---------------------------------------------------------------------------------

# Blending for live frames: the reference's soft box without the per-frame extras of the video
# defaults (68-point hull, occlusion segmenter, colour transfer, detail restoration), which
# cost more than the generator itself at 640x480 (docs/live.md); each can be switched back on.
# The cut fade stays (faces/masks.cut_weight: a face leaving the camera's picture fades out
# instead of getting a smear over its eye): it costs a fraction of a millisecond a face, and
# faces found in crops carry the whole frame's score it reads (RoiTracker).
LIVE_BLEND: dict[str, object] = {"mask": "box", "color_match": "none", "detail": 0.0,
                                 "profile_fade": False}


def live_options(**changes) -> SwapOptions:
    """:class:`SwapOptions` for the live loop: :data:`LIVE_BLEND` (the fields this version of
    SwapOptions has), one face per generator call, then ``changes`` (None = keep)."""
    import dataclasses

    known = {f.name for f in dataclasses.fields(SwapOptions)}
    values = {k: v for k, v in LIVE_BLEND.items() if k in known}
    values.update({k: v for k, v in changes.items() if v is not None})
    values["batch_size"] = 1
    return SwapOptions(**values)


@dataclass
class LiveFrame:
    """One swapped frame: ``rgb`` ``(H, W, 3)`` uint8, ``captured`` (``time.perf_counter()``
    when the frame was captured), how many faces were swapped, and when it was finished."""

    rgb: np.ndarray
    captured: float
    faces: int = 0
    swapped_at: float = 0.0


class LiveSwapper:
    """Swap one frame at a time with face tracking; the core of ``facedancer live`` and the
    web UI's Live tab.

    ``swapper`` is a :class:`~facedancer_torch.swap.pipeline.Swapper`, ``plan`` a prepared
    selection plan (``swapper.plan(photos, options)``). Not thread-safe: one stream per
    instance.
    """

    def __init__(self, swapper, plan, options: SwapOptions | None = None,
                 settings: LiveSettings = LiveSettings(), fps: float = 30.0,
                 label: bool = True) -> None:
        self.swapper = swapper
        self.plan = swapper.plan(plan, options)
        self.options = options or SwapOptions()
        self.settings = settings
        self.label = label
        self.tracker = RoiTracker(swapper.detector, settings, fps=fps, timer=swapper.timer)
        self._memories: dict[int, dict] = {}  # what the compositor keeps per track

    def swap(self, rgb: np.ndarray, captured: float | None = None) -> LiveFrame:
        """Swap the selected faces of one frame (labelled when ``label``; no watermark)."""
        captured = time.perf_counter() if captured is None else captured
        rgb = np.ascontiguousarray(rgb)
        faces = self.tracker.update(rgb)
        faces, _ = split_cut(faces, rgb.shape, self.options)
        jobs = self.swapper.jobs_for(rgb, faces, self.plan,
                                     memories=self._memories) if faces else []
        jobs, _ = split_profiles(jobs, self.options)
        out = rgb
        if jobs:
            swapped = self.swapper.generate(np.stack([j.crop for j in jobs]),
                                            np.stack([j.face.source.embedding for j in jobs]),
                                            self.options.batch_size,
                                            self.swapper.exposure_gains(jobs, self.options))
            out = self.swapper.blend(rgb, jobs, swapped, self.options)
        if self.label:
            out = draw_label(out if out is not rgb else rgb.copy())
        return LiveFrame(rgb=out, captured=captured, faces=len(jobs),
                         swapped_at=time.perf_counter())

    def close(self) -> None:
        self.tracker.close()


def draw_label(rgb: np.ndarray, text: str = LABEL_TEXT) -> np.ndarray:
    """Draw the visible synthetic-media label in the bottom-left corner (in place; returned)."""
    height = rgb.shape[0]
    scale = max(0.35, height / 1000)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(3, h // 3)
    y = height - pad - base
    cv2.rectangle(rgb, (0, y - h - pad), (w + 2 * pad, height), (0, 0, 0), -1)
    cv2.putText(rgb, text, (pad, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                thickness, cv2.LINE_AA)
    return rgb


def draw_status(rgb: np.ndarray, text: str) -> np.ndarray:
    """Draw the frames/s and latency line in the top-left corner (window output only)."""
    scale = max(0.4, rgb.shape[0] / 900)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    cv2.rectangle(rgb, (0, 0), (w + 8, h + base + 8), (0, 0, 0), -1)
    cv2.putText(rgb, text, (4, h + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 0),
                thickness, cv2.LINE_AA)
    return rgb


# -- frame sources ------------------------------------------------------------------------------

_END = object()


@dataclass
class Captured:
    """A frame as captured: ``(H, W, 3)`` uint8 RGB and ``time.perf_counter()`` at capture."""

    rgb: np.ndarray
    time: float


class FrameSource:
    """Frames from a camera, a video file or a stream URL, read by a background thread.

    ``realtime=True`` behaves like a camera: frames arrive at their own pace (a file is played
    at its frame rate) and only the newest waits for the swapper, older ones are dropped
    (counted in ``dropped``). ``realtime=False`` hands over every frame, in order (a file is
    read as fast as the swapper takes it). Iterate it once; :meth:`close` stops the thread.
    """

    def __init__(self, open_frames: Callable[[], Iterator[np.ndarray]], *, fps: float,
                 width: int, height: int, name: str, realtime: bool = True,
                 paced: bool = False, max_frames: int | None = None) -> None:
        self.fps, self.width, self.height, self.name = float(fps), width, height, name
        self.realtime = realtime
        self.dropped = 0
        self.captured = 0
        self._open = open_frames
        self._paced = paced and realtime
        self._max_frames = max_frames
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __iter__(self) -> Iterator[Captured]:
        self._thread = threading.Thread(target=self._worker, name="facedancer-capture",
                                        daemon=True)
        self._thread.start()
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def _publish(self, item) -> bool:
        if self.realtime and item is not _END and not isinstance(item, BaseException):
            with contextlib.suppress(queue.Empty):
                self._queue.get_nowait()  # the swapper has not taken it: it is stale now
                self.dropped += 1
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(item)
            return not self._stop.is_set()
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                if self.realtime:  # the end marker must get through
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()
        return False

    def _worker(self) -> None:
        try:
            start = None
            for index, rgb in enumerate(self._open()):
                if self._stop.is_set() or (self._max_frames is not None
                                           and index >= self._max_frames):
                    break
                if self._paced:  # a file played like a camera: frame i at start + i / fps
                    now = time.perf_counter()
                    start = now if start is None else start
                    wait = start + index / self.fps - now
                    if wait > 0:
                        time.sleep(wait)
                self.captured += 1
                if not self._publish(Captured(rgb, time.perf_counter())):
                    return
        except BaseException as exc:
            self._publish(exc)
            return
        self._publish(_END)

    def request_stop(self) -> None:
        """End the iteration after the current frame (safe from a signal handler)."""
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            while self._thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                self._thread.join(timeout=0.05)


def is_stream_url(text: str) -> bool:
    return "://" in str(text)


def open_camera(index: int, width: int | None = None, height: int | None = None,
                fps: float | None = None, max_frames: int | None = None) -> FrameSource:
    """Camera ``index`` (OpenCV's numbering; ``/dev/videoN`` on Linux) as a :class:`FrameSource`.

    Raises:
        InputError: the camera cannot be opened or gives no frame.
    """
    with _quiet_opencv():  # OpenCV prints multi-line warnings for a missing camera
        capture = cv2.VideoCapture(int(index))
    name = f"camera {index}"
    if not capture.isOpened():
        capture.release()
        raise InputError(f"cannot open camera {index} (no such device, or it is in use; "
                         "list cameras with `v4l2-ctl --list-devices` on Linux)")
    if width:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
    if height:
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))
    if fps:
        capture.set(cv2.CAP_PROP_FPS, float(fps))
    return _capture_source(capture, name, max_frames)


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    before = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(before)


def _capture_source(capture, name: str, max_frames: int | None) -> FrameSource:
    ok, first = capture.read()
    if not ok or first is None:
        capture.release()
        raise InputError(f"{name} gives no frames")
    height, width = first.shape[:2]
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    fps = fps if 1.0 <= fps <= 240.0 else 30.0

    def frames() -> Iterator[np.ndarray]:
        try:
            yield cv2.cvtColor(first, cv2.COLOR_BGR2RGB)
            while True:
                ok, bgr = capture.read()
                if not ok:
                    return
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    return FrameSource(frames, fps=fps, width=width, height=height, name=name, realtime=True,
                       max_frames=max_frames)


def open_input(path: str | Path, realtime: bool = True, max_frames: int | None = None,
               decode_threads: int = 1) -> FrameSource:
    """A video file (played at its frame rate when ``realtime``, every frame otherwise) or a
    stream URL (``rtsp://``, ``http://``...; always live) as a :class:`FrameSource`.

    Raises:
        InputError: missing, unreadable, or no video (names the input).
    """
    if is_stream_url(str(path)):
        with _quiet_opencv():
            capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise InputError("cannot open the stream", str(path))
        return _capture_source(capture, str(path), max_frames)
    from ..io.video import VideoReader, probe_video

    info = probe_video(path)  # InputError naming the file

    def frames() -> Iterator[np.ndarray]:
        with VideoReader(path, prefetch=2, threads=decode_threads) as reader:
            for decoded in reader:
                yield decoded.rgb

    return FrameSource(frames, fps=float(info.fps), width=info.width, height=info.height,
                       name=Path(path).name, realtime=realtime, paced=True,
                       max_frames=max_frames)


# -- outputs ----------------------------------------------------------------------------------

class Output:
    """Where swapped frames go. ``write`` runs in the output thread (not for windows)."""

    name = "output"
    needs_watermark = False

    def write(self, rgb: np.ndarray, captured: float) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def abort(self) -> None:
        self.close()


class FileOutput(Output):
    """A video file, written atomically with the provenance tag (``io.video.VideoWriter``):
    finalised by :meth:`close` (also after Ctrl-C or SIGTERM), removed by :meth:`abort`.

    Frames keep their capture times (millisecond timestamps), so a live recording plays at the
    speed it happened even when the swapper ran slower than the camera.
    """

    needs_watermark = True

    def __init__(self, path: str | Path, fps: float, metadata: dict[str, str],
                 crf: int = 20, preset: str = "veryfast", overwrite: bool = False) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        check_output(self.path, overwrite)
        check_video_output(self.path, frames=False)
        self._fps = fps
        self._start: float | None = None
        self._last = -1
        # background=False: this already runs in the output thread
        self.writer = VideoWriter(self.path, fps, crf=crf, preset=preset, metadata=metadata,
                                  time_base=Fraction(1, 1000), background=False)

    def write(self, rgb: np.ndarray, captured: float) -> None:
        if self._start is None:
            self._start = captured
        pts = max(round((captured - self._start) * 1000), self._last + 1)
        self._last = pts
        self.writer.write(rgb, pts)

    def close(self) -> None:
        self.writer.close()

    def abort(self) -> None:
        self.writer.abort()


class VirtualCameraOutput(Output):
    """A virtual camera (``pyvirtualcam``: v4l2loopback on Linux, OBS on Windows/macOS) that
    video-call apps can pick as a webcam."""

    needs_watermark = True

    def __init__(self, width: int, height: int, fps: float, device: str | None = None) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise FacedancerError("--virtual-camera needs pyvirtualcam (pip install "
                                  "'facedancer-torch[live]') and a virtual camera device "
                                  "(v4l2loopback on Linux, OBS on Windows and macOS)") from exc
        try:
            self.camera = pyvirtualcam.Camera(width=width, height=height, fps=fps,
                                              fmt=pyvirtualcam.PixelFormat.RGB, device=device)
        except Exception as exc:  # pyvirtualcam raises RuntimeError with a long text
            reason = " ".join(str(exc).split())[:200]
            raise FacedancerError(f"no virtual camera device available ({reason}); on Linux "
                                  "load v4l2loopback (sudo modprobe v4l2loopback "
                                  "exclusive_caps=1)") from exc
        self.name = f"virtual camera {self.camera.device}"

    def write(self, rgb: np.ndarray, captured: float) -> None:
        self.camera.send(np.ascontiguousarray(rgb))

    def close(self) -> None:
        self.camera.close()


class WindowOutput:
    """An OpenCV window (``cv2.imshow``), drawn from the main thread; ``q`` or Esc stops."""

    name = "window"

    def __init__(self, title: str = "facedancer live (synthetic media)") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                     or os.environ.get("WAYLAND_DISPLAY")):
            raise FacedancerError("--window needs a display (DISPLAY is not set); write a file "
                                  "with --output or use --virtual-camera instead")
        self.title = title
        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise FacedancerError(f"cannot open a window (OpenCV has no GUI here: "
                                  f"{' '.join(str(exc).split())[:120]}); use --output "
                                  "instead") from exc

    def show(self, rgb: np.ndarray) -> bool:
        """Show a frame; False when the user closed the window or pressed q / Esc."""
        cv2.imshow(self.title, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            return False
        with contextlib.suppress(cv2.error):
            if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
                return False
        return True

    def close(self) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)


# -- the loop -----------------------------------------------------------------------------------

@dataclass
class LiveStats:
    """What a live run did: frames out, frames/s, latency from capture to output."""

    frames: int = 0
    faces: int = 0
    captured: int = 0
    dropped: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # seconds, capture -> output
    stopped_by: str = "end of input"

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def latency_ms(self, q: float = 0.5) -> float:
        if not self.latencies:
            return float("nan")
        values = sorted(self.latencies)
        return 1000 * values[min(len(values) - 1, int(q * len(values)))]

    def summary(self) -> str:
        return (f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.1f} frames/s), "
                f"{self.faces} faces swapped, latency capture->output median "
                f"{self.latency_ms(0.5):.0f} ms (p95 {self.latency_ms(0.95):.0f} ms), "
                f"{self.dropped} camera frames dropped; stopped by {self.stopped_by}")


class _Meter:
    """Frames/s and latency over the last second, for the status line and the window."""

    def __init__(self) -> None:
        self.times: deque[float] = deque()
        self.latency: deque[float] = deque(maxlen=30)

    def add(self, now: float, latency: float) -> None:
        self.times.append(now)
        self.latency.append(latency)
        while self.times and now - self.times[0] > 1.0:
            self.times.popleft()

    def text(self) -> str:
        fps = len(self.times) / max(1e-6, (self.times[-1] - self.times[0])) \
            if len(self.times) > 1 else 0.0
        latency = statistics.median(self.latency) * 1000 if self.latency else 0.0
        return f"{fps:5.1f} frames/s  latency {latency:4.0f} ms"


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event, stats: LiveStats,
                     on_stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT (Ctrl-C) and SIGTERM end the loop after the current frame, so that outputs are
    finalised; a second Ctrl-C interrupts at once (outputs are then discarded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, _frame) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stats.stopped_by = signal.Signals(signum).name
        stop.set()
        on_stop()  # wakes the loop if it waits for a frame that does not come

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_live(live: LiveSwapper, source: FrameSource, outputs: Sequence[Output] = (),
             window: WindowOutput | None = None, watermark: bool = True,
             status: Callable[[str], None] | None = None,
             stop: threading.Event | None = None) -> LiveStats:
    """Swap ``source`` frame by frame into ``outputs`` (and ``window``) until the input ends,
    the window is closed, ``stop`` is set, or Ctrl-C / SIGTERM arrives.

    Outputs that need it get the invisible watermark (in the output thread, overlapping the
    next frame's swap). On a normal stop every output is closed (a file is finalised); on an
    error they are aborted (a file is removed) and the error re-raised. ``status`` receives a
    "frames/s, latency" line about once a second.
    """
    from .image import finish_image

    stop = stop or threading.Event()
    stats = LiveStats()
    meter = _Meter()
    handoff: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []
    needs_watermark = watermark and any(o.needs_watermark for o in outputs)
    options = live.options.replace(watermark=needs_watermark)
    lock = threading.Lock()
    timer = getattr(live.swapper, "timer", None)

    def timed(stage: str, fn, *args):
        if timer is None:
            return fn(*args)
        with timer.measure(stage):
            return fn(*args)

    def deliver(frame: LiveFrame, now: float) -> None:
        with lock:
            stats.frames += 1
            stats.faces += frame.faces
            stats.latencies.append(now - frame.captured)
            meter.add(now, now - frame.captured)

    def output_worker() -> None:
        try:
            while True:
                frame = handoff.get()
                if frame is _END:
                    return
                rgb = timed("watermark", finish_image, frame.rgb, options) \
                    if needs_watermark else frame.rgb
                for output in outputs:
                    timed("encode" if isinstance(output, FileOutput) else "send",
                          output.write, rgb, frame.captured)
                if window is None:
                    deliver(frame, time.perf_counter())
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            # keep draining so that the main thread never blocks on a full queue
            while handoff.get() is not _END:
                pass

    worker = threading.Thread(target=output_worker, name="facedancer-live-output", daemon=True)
    worker.start()
    start = time.perf_counter()
    last_status = start
    failed = True
    try:
        with _stop_on_signals(stop, stats, source.request_stop):
            for captured in source:
                if stop.is_set():
                    break
                frame = live.swap(captured.rgb, captured.time)
                if window is not None:
                    shown = draw_status(frame.rgb.copy(), meter.text())
                    if not window.show(shown):
                        stats.stopped_by = "window closed"
                        stop.set()
                    deliver(frame, time.perf_counter())
                if outputs:
                    while not errors:
                        try:
                            handoff.put(frame, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                elif window is None:  # nowhere to go (benchmarks): delivered when swapped
                    deliver(frame, frame.swapped_at)
                now = time.perf_counter()
                if status is not None and now - last_status >= 1.0:
                    status(meter.text())
                    last_status = now
                if errors or stop.is_set():
                    break
        failed = bool(errors)
    finally:
        handoff.put(_END)
        worker.join()
        stats.seconds = time.perf_counter() - start
        stats.captured, stats.dropped = source.captured, source.dropped
        source.close()
        live.close()
        if window is not None:
            window.close()
        for output in outputs:
            if failed:
                with contextlib.suppress(Exception):
                    output.abort()
            else:
                output.close()
    if errors:
        raise errors[0]
    return stats
