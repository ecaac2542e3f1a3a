"""Decoding videos to upright RGB frames: a prefetching reader and an even sampler.

Frames are ``(H, W, 3)`` uint8 RGB, turned upright by the stream's display matrix; see
:mod:`facedancer_torch.io.video` for the conventions.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from ..errors import InputError
from .images import split_alpha
from .probe import VideoInfo, ffmpeg_reason, probe_video, rotation_quarter_turns
from .queues import END, put_until_stopped


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame: ``rgb`` is ``(H, W, 3)`` uint8 RGB, upright."""

    index: int  # position in the stream, 0-based, counting every frame (also skipped ones)
    pts: int | None  # presentation timestamp in the stream's time base
    time: float  # seconds
    rgb: np.ndarray
    duration: float | None = None  # seconds the frame is shown, where the file says it
    # A transparent frame's straight (H, W, 4) RGBA (rgb is then composited onto black, as
    # read_image gives a transparent image); None for an opaque one.
    rgba: np.ndarray | None = None
    # VideoReader(deep=True) on a source of more than 8 bits: its straight RGB as (H, W, 3)
    # uint16 (0..65535), of which rgb / rgba are the rounded 8-bit versions.
    deep: np.ndarray | None = None



class VideoReader:
    """Iterate the frames of a video as :class:`DecodedFrame` (RGB uint8, upright).

    ``stride`` keeps every n-th frame (``index % stride == 0``) starting at ``start``;
    ``max_frames`` caps how many frames are yielded. ``from_time`` (seconds) starts at the
    first frame shown at or after that time, found by seeking to the keyframe before it (a
    frame deep in a long clip without decoding all before it; the frames' ``index`` is then
    counted from their time at the clip's rate); it takes no ``stride`` or ``start``. Decoding
    and the YUV->RGB conversion run in a background thread (FFmpeg releases the GIL)
    ``prefetch`` frames ahead, so the caller's work on frame ``i`` overlaps decoding of
    ``i+1...``; FFmpeg's own frame threading is on too.

    Use as a context manager (or call :meth:`close`) to stop the thread when breaking early.
    Decode errors raise :class:`InputError` naming the file and the frame. With ``deep`` a
    source of more than 8 bits per sample (ProRes, HDR HEVC) also gives each frame at 16 bits
    (``DecodedFrame.deep``), so that a writer can keep the precision of what was not changed.
    """

    def __init__(self, path: str | Path, *, stride: int = 1, start: int = 0,
                 max_frames: int | None = None, prefetch: int = 8, threads: int = 0,
                 deep: bool = False, from_time: float | None = None):
        if stride < 1 or start < 0 or (max_frames is not None and max_frames < 0):
            raise ValueError("stride must be >= 1, start and max_frames >= 0")
        if from_time is not None and (from_time < 0 or stride != 1 or start != 0):
            raise ValueError("from_time must be >= 0, without stride or start")
        self.path = Path(path)
        self.info = self._probe()
        self.from_time = from_time or None
        self.stride, self.start, self.max_frames = stride, start, max_frames
        self.prefetch, self.threads = max(1, prefetch), threads
        self.deep = deep and self.info.bit_depth > 8
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=self.prefetch)

    def _probe(self) -> VideoInfo:
        """What the frames will be (``io.sequence.SequenceReader`` probes a frame pattern)."""
        return probe_video(self.path)

    def __len__(self) -> int:
        """Number of frames this reader yields (from the container's frame count)."""
        available = max(0, self.info.frame_count - self.start)
        n = (available + self.stride - 1) // self.stride
        return n if self.max_frames is None else min(n, self.max_frames)

    def _wanted(self, index: int) -> bool:
        return index >= self.start and (index - self.start) % self.stride == 0

    def _frames(self) -> Iterator[DecodedFrame]:
        """Decode in the calling thread (used by the background thread)."""
        if self.info.codec == "webp" and self.info.container == "webp":
            yield from self._webp_frames()
            return
        yielded = 0
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
            if self.from_time is not None and self.info.time_base is not None:
                yield from self._frames_from(container, stream)
                return
            index = -1
            try:
                for frame in container.decode(stream):
                    index += 1
                    if self.max_frames is not None and yielded >= self.max_frames:
                        return
                    if not self._wanted(index):
                        continue
                    yield self._decoded(frame, index)
                    yielded += 1
            except (av.FFmpegError, ValueError) as exc:
                raise InputError(f"cannot decode frame {index + 1} "
                                 f"({ffmpeg_reason(exc)})", self.path) from exc
        # A file cut short after its index (an MP4 with 'moov' first) decodes without an error
        # and just ends: compare with the frame count the container promised. A little slack
        # for edit lists that hide a frame or two at the start.
        expected = self.info.frame_count
        if index + 1 < expected - max(2, expected // 100):
            raise InputError(f"the video ends after frame {index + 1} of the {expected} its "
                             "header lists: the file is truncated or damaged", self.path)

    def _frames_from(self, container, stream) -> Iterator[DecodedFrame]:
        """The frames from ``from_time`` on: seek to the keyframe at or before it, decode from
        there, skip what is shown before it. Where the seek lands past the time (a container
        without an exact index: MPEG-TS) or fails, the clip is decoded from its start
        instead."""
        start = stream.start_time or 0
        target = start + int(self.from_time / self.info.time_base)
        try:
            try:
                container.seek(target, stream=stream, backward=True, any_frame=False)
                frames = container.decode(stream)
                first = next(frames, None)
                landed = first is None or first.pts is None or first.pts <= target
            except (av.FFmpegError, ValueError):  # a format that cannot seek (GIF)
                landed = False
            if landed:
                yield from self._shown_from(
                    itertools.chain([] if first is None else [first], frames), target, start)
                return
            with av.open(str(self.path)) as again:
                stream = again.streams.video[0]
                stream.thread_type = "AUTO"
                stream.codec_context.thread_count = self.threads
                yield from self._shown_from(again.decode(stream), target, start)
        except (av.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot decode the frames from {self.from_time:g} s "
                             f"({ffmpeg_reason(exc)})", self.path) from exc

    def _shown_from(self, frames, target: int, start: int) -> Iterator[DecodedFrame]:
        """Of decoded ``frames``, those at ``target`` (stream ticks) and after, up to
        ``max_frames``, indexed by their time at the clip's rate."""
        yielded, index = 0, -1
        for frame in frames:
            if frame.pts is not None and frame.pts < target:
                continue
            if self.max_frames is not None and yielded >= self.max_frames:
                return
            index = round(float(frame.pts - start) * self.info.time_base * self.info.fps) \
                if frame.pts is not None else index + 1
            yield self._decoded(frame, index)
            yielded += 1

    def _decoded(self, frame, index: int) -> DecodedFrame:
        """One decoded PyAV frame as a :class:`DecodedFrame`: upright, 8 bits (and 16 with
        ``deep``), its alpha apart."""
        alpha = self.info.has_alpha
        if self.deep:
            pixels = frame.to_ndarray(format="rgba64le" if alpha else "rgb48le")
        else:
            pixels = frame.to_ndarray(format="rgba" if alpha else "rgb24")
        rotation = frame.rotation
        k = rotation_quarter_turns(rotation) if rotation else \
            rotation_quarter_turns(self.info.rotation)
        if k:
            pixels = np.ascontiguousarray(np.rot90(pixels, k))
        deep = None
        if self.deep:
            deep = np.ascontiguousarray(pixels[:, :, :3])
            pixels = to_8_bits(pixels)
        rgb, rgba = split_alpha(pixels) if alpha else (pixels, None)
        time = float(frame.time) if frame.time is not None else index / float(self.info.fps)
        shown = float(frame.duration * frame.time_base) \
            if frame.duration and frame.time_base else None
        return DecodedFrame(index=index, pts=frame.pts, time=time, rgb=rgb, duration=shown,
                            rgba=rgba, deep=deep)

    def _webp_frames(self) -> Iterator[DecodedFrame]:
        yielded = 0
        with Image.open(self.path) as image:
            for index in range(getattr(image, "n_frames", 1)):
                if self.max_frames is not None and yielded >= self.max_frames:
                    return
                image.seek(index)
                if not self._wanted(index):
                    continue
                image.load()
                ms = int(image.info.get("timestamp", 0))
                if self.from_time is not None and ms / 1000 < self.from_time - 1e-9:
                    continue  # (an animation is decoded from its start: no keyframe index)
                rgba = None
                if self.info.has_alpha:
                    rgb, rgba = split_alpha(np.asarray(image.convert("RGBA")))
                else:
                    rgb = np.asarray(image.convert("RGB"))
                shown = int(image.info.get("duration") or 0) / 1000 or None
                yield DecodedFrame(index=index, pts=ms, time=ms / 1000, rgb=rgb, duration=shown,
                                   rgba=rgba)
                yielded += 1

    def _worker(self) -> None:
        try:
            for item in self._frames():
                if not put_until_stopped(self._queue, item, self._stop):
                    return
            put_until_stopped(self._queue, END, self._stop)
        except BaseException as exc:  # handed to the consumer, re-raised there
            put_until_stopped(self._queue, exc, self._stop)

    def __iter__(self) -> Iterator[DecodedFrame]:
        if self._thread is not None:
            raise RuntimeError("a VideoReader can be iterated once; make a new one")
        self._thread = threading.Thread(target=self._worker, name="video-decode", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.close()

    def close(self) -> None:
        """Stop the decoding thread (safe to call more than once)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            while self._thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
                self._thread.join(timeout=0.05)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_8_bits(pixels: np.ndarray) -> np.ndarray:
    """16-bit samples (0..65535) rounded to 8 bits (0..255)."""
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def read_frames(path: str | Path, *, stride: int = 1, start: int = 0,
                max_frames: int | None = None, prefetch: int = 8) -> Iterator[DecodedFrame]:
    """Yield the frames of ``path`` as :class:`DecodedFrame` (see :class:`VideoReader`)."""
    with VideoReader(path, stride=stride, start=start, max_frames=max_frames,
                     prefetch=prefetch) as reader:
        yield from reader


def sample_frames(path: str | Path, count: int = 8) -> list[DecodedFrame]:
    """About ``count`` frames spread evenly over the video, found by seeking (cheap on long
    videos: only the GOPs around the chosen times are decoded). Upright RGB like
    :class:`VideoReader`; always at least the first frame."""
    info = probe_video(path)
    path = Path(path)
    if count < 1:
        raise ValueError("count must be >= 1")
    if info.frame_count <= count * 4 or info.container == "webp" or info.time_base is None:
        stride = max(1, info.frame_count // count)
        return list(read_frames(path, stride=stride, max_frames=count))
    turns = rotation_quarter_turns(info.rotation)
    frames: list[DecodedFrame] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = stream.start_time or 0
            for i in range(count):
                seconds = info.duration * i / count
                target = start + int(seconds / info.time_base)
                container.seek(target, stream=stream, backward=True, any_frame=False)
                for frame in container.decode(stream):
                    if frame.pts is None or frame.pts >= target:
                        rgb = frame.to_ndarray(format="rgb24")
                        if turns:
                            rgb = np.ascontiguousarray(np.rot90(rgb, turns))
                        index = round(float((frame.pts or 0) - start) * info.time_base
                                      * info.fps)
                        frames.append(DecodedFrame(index, frame.pts, float(frame.time or 0),
                                                   rgb))
                        break
    except (av.FFmpegError, ValueError) as exc:
        raise InputError(f"cannot decode video ({ffmpeg_reason(exc)})", path) from exc
    return frames

