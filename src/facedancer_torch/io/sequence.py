"""Image sequences as clips: ``shot_%04d.png`` in, ``out_%04d.png`` (or a video) out.

Renders, VFX plates, stop motion and time-lapses come as numbered frames. Swapped one image at
a time (a folder swap) they lose what a clip gets: tracked faces with smoothed landmarks, the
confirmation and shot-cut logic, one identity per person; a printf pattern (FFmpeg's
convention: ``%d`` or ``%04d`` in the file name) makes the frames a clip instead. The reader
yields :class:`~.video_reader.DecodedFrame` like :class:`~.video_reader.VideoReader` (transparent
frames with their RGBA), the writer takes what :class:`~.video_writer.VideoWriter` takes, and
:func:`probe_clip` / :func:`clip_reader` pick the file or the sequence kind for a path.

A sequence has no frame rate of its own: ``fps`` (default :data:`DEFAULT_SEQUENCE_FPS`, as
FFmpeg's) times the frames for the tracker and for a video written from them. Output frames are
numbered from the input's first number (1 for a video's frames), consecutively; each is written
atomically into a hidden folder beside them and moved into place when the clip is finished, so
an interrupted job leaves no partial sequence. Each frame is its own file, so only frames in
which a face was changed carry the provenance tag (and the watermark the caller adds).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import FacedancerError, InputError
from .atomic import current_umask, write_error
from .images import IMAGE_EXTENSIONS, pillow, pillow_has_alpha, read_image_rgba, write_image
from .probe import VideoInfo, probe_video
from .video_reader import DecodedFrame, VideoReader
from .video_writer import as_fraction

DEFAULT_SEQUENCE_FPS: Fraction = Fraction(25)
_NUMBER = re.compile(r"%(0?)(\d*)d")
# Stills a sequence frame can be written as with the provenance tag (as swap image outputs).
SEQUENCE_OUTPUT_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff")


def is_sequence_pattern(path: str | Path) -> bool:
    """True if the file name of ``path`` holds one printf frame number (``%d``, ``%04d``)
    and its suffix is an image's."""
    path = Path(path)
    return len(_NUMBER.findall(path.name)) == 1 and path.suffix.lower() in IMAGE_EXTENSIONS


def frame_path(pattern: str | Path, number: int) -> Path:
    """The file of frame ``number`` of ``pattern``."""
    pattern = Path(pattern)
    return pattern.with_name(_NUMBER.sub(lambda m: f"{number:{m.group(1)}{m.group(2)}d}",
                                         pattern.name))


def sequence_files(pattern: str | Path) -> list[tuple[int, Path]]:
    """``(number, file)`` of every existing frame of ``pattern``, by number (``%04d`` takes
    exactly four digits, ``%d`` any)."""
    pattern = Path(pattern)
    match = _NUMBER.search(pattern.name)
    if match is None:
        raise ValueError(f"not a frame pattern: {pattern}")
    width = int(match.group(2) or 0)
    digits = rf"(\d{{{width}}})" if match.group(1) and width else r"(\d+)"
    regex = re.compile(re.escape(pattern.name[:match.start()]) + digits
                       + re.escape(pattern.name[match.end():]) + r"\Z")
    folder = pattern.parent
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        hit = regex.match(entry.name)
        if hit and entry.is_file():
            found.append((int(hit.group(1)), entry))
    return sorted(found)


def first_frame_number(clip: str | Path) -> int:
    """The number of a clip's first frame, as people and editors count them: an image
    sequence's own first number (``shot_0101.png``: 101), 1 for a video file."""
    return sequence_files(clip)[0][0] if is_sequence_pattern(clip) else 1


def probe_sequence(pattern: str | Path, fps: Fraction | float | None = None,
                   files: list[tuple[int, Path]] | None = None) -> VideoInfo:
    """A :class:`VideoInfo` for a frame pattern: size and transparency from its first frame,
    ``fps`` (default :data:`DEFAULT_SEQUENCE_FPS`); no audio, no timestamps. ``files``: its
    :func:`sequence_files`, where the caller has them.

    Raises:
        InputError: no file matches, or the first frame is not a readable image.
    """
    pattern = Path(pattern)
    files = sequence_files(pattern) if files is None else files
    if not files:
        raise InputError("no frames match this pattern (e.g. shot_%04d.png for "
                         "shot_0001.png, shot_0002.png...)", pattern)
    rate = as_fraction(fps) if fps is not None else DEFAULT_SEQUENCE_FPS
    first = files[0][1]
    Image = pillow()
    try:
        with Image.open(first) as image:
            width, height = image.size
            alpha = pillow_has_alpha(image)
    except Exception as exc:
        raise InputError(f"not a readable image ({exc})", first) from exc
    return VideoInfo(path=pattern, width=width, height=height, fps=rate,
                     frame_count=len(files), duration=float(len(files) / rate), rotation=0,
                     codec=first.suffix.lower().lstrip("."), pix_fmt="rgba" if alpha
                     else "rgb24", time_base=None, has_audio=False, audio_codec=None,
                     container="sequence")


class SequenceReader(VideoReader):
    """The frames of a pattern as :class:`DecodedFrame` (a :class:`VideoReader` that reads
    numbered image files; decoding runs ahead in the same background thread). A frame of
    another size than the first is an :class:`InputError` naming it."""

    def __init__(self, pattern: str | Path, fps: Fraction | float | None = None, *,
                 stride: int = 1, start: int = 0, max_frames: int | None = None,
                 prefetch: int = 4):
        self._fps = fps
        super().__init__(pattern, stride=stride, start=start, max_frames=max_frames,
                         prefetch=prefetch)

    def _probe(self) -> VideoInfo:
        self.files = sequence_files(self.path)
        return probe_sequence(self.path, self._fps, self.files)

    def _frames(self) -> Iterator[DecodedFrame]:
        yielded = 0
        for index, (_, path) in enumerate(self.files):
            if self.max_frames is not None and yielded >= self.max_frames:
                return
            if not self._wanted(index):
                continue
            rgb, rgba = read_image_rgba(path)
            if rgb.shape[:2] != (self.info.height, self.info.width):
                raise InputError(f"frame is {rgb.shape[1]}x{rgb.shape[0]}, the sequence's "
                                 f"first frame {self.info.width}x{self.info.height}", path)
            yield DecodedFrame(index=index, pts=None, time=index / float(self.info.fps),
                               rgb=rgb, duration=1 / float(self.info.fps), rgba=rgba)
            yielded += 1


class SequenceWriter:
    """Write frames as numbered images (``out_%04d.png``), with the interface of
    :class:`VideoWriter` (``write``, ``close``, ``abort``, a context manager).

    ``metadata`` (the provenance tag) goes into the frames written with ``changed=True`` only:
    each frame is its own file, and an untouched one must not claim to be a swap. ``alpha``
    keeps a transparent source's alpha (PNG, WebP, TIFF); ``icc_profile`` and ``like``
    (``io.fidelity.read_save_settings``) are the source frames' profile and compression;
    ``grey`` writes black-and-white frames as one grey channel, as the source's were. Frames
    are numbered from ``start_number``. Nothing appears at the pattern until :meth:`close`.
    """

    labels_each_frame = True  # the caller tells write() which frames it changed
    deep = False  # 8-bit stills

    def __init__(self, pattern: str | Path, *, start_number: int = 1,
                 metadata: dict[str, str] | None = None, alpha: bool = False,
                 icc_profile: bytes | None = None, like: dict | None = None,
                 grey: bool = False):
        self.path = Path(pattern)
        if self.path.suffix.lower() not in SEQUENCE_OUTPUT_SUFFIXES:
            raise FacedancerError(f"cannot write frames as '{self.path.suffix}' (use one of "
                                  f"{' '.join(SEQUENCE_OUTPUT_SUFFIXES)})", self.path)
        self.metadata = dict(metadata or {})
        self.alpha = alpha and self.path.suffix.lower() in (".png", ".webp", ".tif", ".tiff")
        self.icc_profile, self.like, self.grey = icc_profile, like, grey
        self.start_number = int(start_number)
        self.frames_written = 0
        self._closed = False
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=".facedancer-frames.", suffix=".part",
                                              dir=folder))
        except OSError as exc:
            raise write_error(exc, self.path) from None

    def write(self, rgb: np.ndarray, pts: int | None = None, duration: float | None = None,
              alpha: np.ndarray | None = None, deep: np.ndarray | None = None,
              changed: bool = True) -> None:
        """Write the next frame (``pts``, ``duration`` and ``deep`` are accepted and unused:
        a still has no time and is 8-bit)."""
        if self._closed:
            raise RuntimeError("write() after close()")
        name = frame_path(self.path, self.start_number + self.frames_written).name
        try:
            write_image(self._tmp / name, rgb, metadata=self.metadata if changed else None,
                        icc_profile=self.icc_profile, alpha=alpha if self.alpha else None,
                        like=self.like, grey=self.grey)
        except OSError as exc:
            raise write_error(exc, self.path) from None
        self.frames_written += 1

    def close(self) -> None:
        """Move the finished frames into place (each by an atomic rename)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.frames_written == 0:
                raise FacedancerError("no frames were written", self.path)
            mode = 0o666 & ~current_umask()
            for entry in sorted(self._tmp.iterdir()):
                os.chmod(entry, mode)
                os.replace(entry, self.path.parent / entry.name)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def abort(self) -> None:
        """Drop everything written so far."""
        self._closed = True
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> SequenceWriter:
        return self

    def __exit__(self, exc_type, *rest: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def existing_frames(pattern: str | Path) -> list[Path]:
    """Files that already match an output pattern."""
    return [path for _, path in sequence_files(pattern)]


def probe_clip(path: str | Path, fps: Fraction | float | None = None) -> VideoInfo:
    """:func:`probe_sequence` for a frame pattern, else :func:`probe_video` (``fps`` applies
    to patterns only)."""
    return probe_sequence(path, fps) if is_sequence_pattern(path) else probe_video(path)


def clip_reader(path: str | Path, fps: Fraction | float | None = None, *,
                max_frames: int | None = None, deep: bool = False) -> VideoReader:
    """A :class:`SequenceReader` for a frame pattern, else a :class:`VideoReader`."""
    if is_sequence_pattern(path):
        return SequenceReader(path, fps, max_frames=max_frames)
    return VideoReader(path, max_frames=max_frames, deep=deep)
