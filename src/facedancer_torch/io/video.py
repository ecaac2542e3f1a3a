"""Video in and out through PyAV (FFmpeg inside the wheel): probe, decode to RGB, encode.

Conventions:

- Frames are ``(H, W, 3)`` uint8 **RGB**, rows top to bottom, already turned upright by the
  stream's display matrix (phone videos store portrait clips as landscape pictures plus a
  rotation tag). ``VideoInfo.width/height`` are these upright (displayed) sizes.
- Frame rates are exact :class:`fractions.Fraction` values (NTSC is ``30000/1001``, never
  ``29.97``); a writer given the reader's ``fps`` and frame count reproduces both exactly.
- ``rotation`` is FFmpeg's display-matrix angle, counter-clockwise degrees in ``(-180, 180]``
  (``VideoFrame.rotation``): a decoded picture is shown after turning it counter-clockwise by
  ``rotation`` degrees. Phone portrait clips usually carry ``-90``.

Writing (:class:`VideoWriter`): H.264 (libx264) in MP4/MOV/MKV by default, VP9 in WebM,
animated GIF and animated WebP. Outputs appear atomically (a temporary file renamed on
success). Odd frame sizes are kept exactly: yuv420p cannot represent them in H.264 (its
chroma planes and cropping work in 2-pixel units), so odd sizes are encoded as yuv444p
(High 4:4:4 profile), which FFmpeg, VLC and mpv play; some hardware/browser decoders don't.
Audio of a source file is copied packet by packet (no re-encode) when the output container
can hold its codec. Codec and muxer options are built by the small pure functions below.
"""

from __future__ import annotations

import contextlib
import json
import queue
import struct
import threading
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import numpy as np

from ..errors import FacedancerError, InputError
from .atomic import atomic_path

DEFAULT_CRF: int = 18  # x264 "visually lossless" region; 23 is x264's own default
DEFAULT_PRESET: str = "medium"
DEFAULT_WEBP_QUALITY: int = 90
X264_PRESETS: tuple[str, ...] = ("ultrafast", "superfast", "veryfast", "faster", "fast",
                                 "medium", "slow", "slower", "veryslow", "placebo")

# output container kind -> (FFmpeg muxer, default video codec)
_KINDS: dict[str, tuple[str, str]] = {
    "mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "mkv": ("matroska", "libx264"),
    "webm": ("webm", "libvpx-vp9"), "gif": ("gif", "gif"), "webp": ("webp", "libwebp_anim"),
}
_SUFFIX_KIND = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "mkv", ".webm": "webm",
                ".gif": "gif", ".webp": "webp"}
VIDEO_OUTPUT_SUFFIXES: tuple[str, ...] = tuple(sorted(_SUFFIX_KIND))  # what VideoWriter writes
# Audio codecs each container can carry as-is (stream copy). Matroska takes anything.
_AUDIO_COPY_OK: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac", "mp2"}),
    "mov": frozenset({"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac", "mp2",
                      "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s32le", "pcm_f32le"}),
    "mkv": None,
    "webm": frozenset({"opus", "vorbis"}),
    "gif": frozenset(), "webp": frozenset(),
}
_AUDIO_REENCODE = {"mp4": "aac", "mov": "aac", "mkv": "aac", "webm": "libopus"}
_METADATA_MARKER = "facedancer-metadata"  # same wrapper images.py uses for EXIF JSON


# --------------------------------------------------------------------------- pure helpers


def container_kind(path: str | Path) -> str:
    """Output container kind from the suffix: mp4 (.mp4/.m4v), mov, mkv, webm, gif or webp."""
    suffix = Path(path).suffix.lower()
    kind = _SUFFIX_KIND.get(suffix)
    if kind is None:
        raise FacedancerError(f"cannot write videos with suffix '{suffix}' (use one of "
                              f"{', '.join(sorted(_SUFFIX_KIND))})", path)
    return kind


def default_video_codec(kind: str) -> str:
    """The FFmpeg encoder used for a container kind (libx264, libvpx-vp9, gif, libwebp_anim)."""
    return _KINDS[kind][1]


def pixel_format_for(codec: str, width: int, height: int) -> str:
    """Encoder pixel format that keeps ``width x height`` exactly.

    H.264 yuv420p needs even sizes (chroma and SPS cropping are in 2-pixel units), so odd
    sizes go to yuv444p rather than being padded or cropped.
    """
    if codec == "libx264":
        return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    if codec == "gif":
        return "pal8"
    return "yuv420p"  # VP9 and WebP store odd sizes in 4:2:0 natively


def video_codec_options(codec: str, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                        quality: int = DEFAULT_WEBP_QUALITY) -> dict[str, str]:
    """Private encoder options (FFmpeg ``-crf``/``-preset`` style) for ``codec``.

    ``crf`` is on x264's 0..51 scale for every codec (VP9's 0..63 scale is mapped linearly);
    ``quality`` (0..100) applies to WebP only. Bad values raise :class:`FacedancerError`.
    """
    if not 0 <= int(crf) <= 51:
        raise FacedancerError(f"--crf must be between 0 and 51, got {crf}")
    if codec == "libx264":
        if preset not in X264_PRESETS:
            raise FacedancerError(f"--preset must be one of {', '.join(X264_PRESETS)}, "
                                  f"got '{preset}'")
        return {"crf": str(int(crf)), "preset": preset}
    if codec == "libvpx-vp9":
        # constant-quality mode needs b=0; row-mt uses both cores at no quality cost
        return {"crf": str(round(int(crf) * 63 / 51)), "b": "0", "row-mt": "1"}
    if codec == "libwebp_anim":
        if not 0 <= int(quality) <= 100:
            raise FacedancerError(f"WebP quality must be between 0 and 100, got {quality}")
        return {"quality": str(int(quality)), "lossless": "0"}
    return {}


def muxer_options(kind: str, loop: int = 0) -> dict[str, str]:
    """Container (muxer) options: MP4/MOV get ``faststart``; GIF/WebP loop ``loop`` times (0 =
    forever)."""
    if kind in ("mp4", "mov"):
        return {"movflags": "+faststart"}  # index first: plays while downloading
    if kind in ("gif", "webp"):
        return {"loop": str(int(loop))}
    return {}


def can_copy_audio(kind: str, audio_codec: str) -> bool:
    """Whether an audio stream of codec ``audio_codec`` can be stream-copied into ``kind``."""
    allowed = _AUDIO_COPY_OK.get(kind, frozenset())
    return True if allowed is None else audio_codec in allowed


def rotation_quarter_turns(rotation: float) -> int:
    """Counter-clockwise display rotation in degrees -> ``k`` for ``np.rot90(frame, k)``."""
    turns = round(float(rotation) / 90.0)
    if abs(turns * 90.0 - float(rotation)) > 1.0:
        raise FacedancerError(f"only multiples of 90 degrees are supported, got {rotation}")
    return turns % 4


def as_fraction(fps: Fraction | float | int | str) -> Fraction:
    """An exact frame rate: Fractions pass through, ``29.97``-style floats snap to the
    NTSC rates (``30000/1001`` ...), other floats to the nearest denominator <= 1001."""
    if isinstance(fps, Fraction):
        rate = fps
    elif isinstance(fps, str):
        rate = Fraction(fps)
    else:
        rate = Fraction(fps).limit_denominator(1001)
        for ntsc in (24, 30, 60, 120):
            exact = Fraction(ntsc * 1000, 1001)
            if abs(float(rate) - float(exact)) < 5e-3:
                rate = exact
    if rate <= 0:
        raise FacedancerError(f"frame rate must be positive, got {fps}")
    return rate


def gif_insert_comment(data: bytes, text: str) -> bytes:
    """Insert a GIF89a Comment Extension right after the header and global colour table."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF file")
    flags = data[10]
    offset = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    raw = text.encode("utf-8")
    blocks = b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255]
                      for i in range(0, len(raw), 255))
    return b"GIF89a" + data[6:offset] + b"\x21\xfe" + blocks + b"\x00" + data[offset:]


def gif_comments(data: bytes) -> list[str]:
    """Every Comment Extension of a GIF file, walking its block structure."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF file")

    def skip_sub_blocks(pos: int) -> tuple[int, bytes]:
        chunks = []
        while pos < len(data) and data[pos] != 0:
            size = data[pos]
            chunks.append(data[pos + 1:pos + 1 + size])
            pos += 1 + size
        return pos + 1, b"".join(chunks)

    flags = data[10]
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    comments = []
    while pos < len(data):
        block = data[pos]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension
            label = data[pos + 1]
            pos, payload = skip_sub_blocks(pos + 2)
            if label == 0xFE:
                comments.append(payload.decode("utf-8", "replace"))
        elif block == 0x2C:  # image descriptor (+ local colour table) + LZW data
            local = data[pos + 9]
            pos += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0)
            pos, _ = skip_sub_blocks(pos + 1)  # +1: LZW minimum code size
        else:
            break  # corrupt: stop rather than loop
    return comments


def xmp_packet(metadata: dict[str, str]) -> bytes:
    """An XMP packet carrying ``metadata`` as JSON in ``dc:description`` (readers such as
    exiftool show it; :func:`parse_xmp` reads it back)."""
    text = json.dumps({_METADATA_MARKER: {str(k): str(v) for k, v in metadata.items()}},
                      ensure_ascii=True, sort_keys=True)
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            '<dc:description><rdf:Alt><rdf:li xml:lang="x-default">'
            f'{escape(text)}</rdf:li></rdf:Alt></dc:description>'
            '</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode("utf-8")


def parse_xmp(xmp: bytes) -> dict[str, str]:
    """The metadata :func:`xmp_packet` stored, or ``{}`` for other XMP."""
    try:
        root = ET.fromstring(xmp.decode("utf-8", "replace").strip("\x00"))
    except ET.ParseError:
        return {}
    for element in root.iter():
        payload = _unwrap_metadata_json(element.text or "")
        if payload:
            return payload
    return {}


def _unwrap_metadata_json(text: str) -> dict[str, str]:
    try:
        payload = json.loads(text)
    except ValueError:
        return {}
    if isinstance(payload, dict) and isinstance(payload.get(_METADATA_MARKER), dict):
        return {str(k): str(v) for k, v in payload[_METADATA_MARKER].items()}
    return {}


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(fourcc, payload offset, payload size) of each top-level chunk of a WebP file."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP file")
    pos = 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield fourcc, pos + 8, size
        pos += 8 + size + (size & 1)


def webp_insert_xmp(data: bytes, xmp: bytes) -> bytes:
    """Append an ``XMP `` chunk to an extended (VP8X) WebP file and set its XMP flag."""
    chunks = list(_riff_chunks(data))
    if not chunks or chunks[0][0] != b"VP8X":
        raise ValueError("only extended (VP8X) WebP files can carry XMP")
    body = bytearray(data[12:])
    body[8] |= 0x04  # VP8X flags byte: XMP metadata present
    chunk = b"XMP " + struct.pack("<I", len(xmp)) + xmp + (b"\x00" if len(xmp) & 1 else b"")
    body += chunk
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + bytes(body)


def webp_xmp(data: bytes) -> bytes | None:
    """The payload of the first ``XMP `` chunk of a WebP file, or None."""
    for fourcc, offset, size in _riff_chunks(data):
        if fourcc == b"XMP ":
            return data[offset:offset + size]
    return None


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` finds. Sizes are upright (after ``rotation``)."""

    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration: float  # seconds
    rotation: int  # counter-clockwise display rotation in degrees (0, 90, 180, -90)
    codec: str
    pix_fmt: str | None
    time_base: Fraction | None
    has_audio: bool
    audio_codec: str | None
    container: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def coded_size(self) -> tuple[int, int]:
        """(width, height) of the pictures as stored, before rotation."""
        if rotation_quarter_turns(self.rotation) % 2:
            return self.height, self.width
        return self.width, self.height


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("file does not exist", path)
    if not path.is_file():
        raise InputError("not a regular file", path)
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)", path)


def _ffmpeg_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _is_animated_webp(path: Path) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(64)
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP" and b"ANIM" in head


def probe_video(path: str | Path) -> VideoInfo:
    """Describe a video file; decodes its first frame to be sure it is usable.

    Raises:
        InputError: missing, empty, not a video, no video stream, or undecodable; the
            message names the file.
    """
    import av

    path = Path(path)
    _check_file(path)
    if _is_animated_webp(path):  # FFmpeg has no animated-WebP decoder
        return _probe_webp(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"not a readable video ({_ffmpeg_reason(exc)})", path) from exc
    with container:
        if not container.streams.video:
            raise InputError("no video stream in file", path)
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate:
            raise InputError("video stream has no frame rate", path)
        first = None
        try:
            for first in container.decode(stream):
                break
        except (av.FFmpegError, ValueError) as exc:
            raise InputError(f"cannot decode video ({_ffmpeg_reason(exc)})", path) from exc
        if first is None:
            raise InputError("video stream has no decodable frame", path)
        # normalised to 0, 90, 180, -90 (FFmpeg may report 180 as -180)
        rotation = (0, 90, 180, -90)[rotation_quarter_turns(first.rotation or 0)]
        frame_count = int(stream.frames or 0)
        if frame_count <= 0:
            frame_count = _count_packets(path)
        time_base = Fraction(stream.time_base) if stream.time_base else None
        if stream.duration and time_base:
            duration = float(stream.duration * time_base)
        elif container.duration:
            duration = container.duration / 1_000_000
        else:
            duration = frame_count / float(rate)
        audio = container.streams.audio[0] if container.streams.audio else None
        width, height = first.width, first.height
        if rotation_quarter_turns(rotation) % 2:
            width, height = height, width
        return VideoInfo(
            path=path, width=width, height=height, fps=Fraction(rate), frame_count=frame_count,
            duration=duration, rotation=rotation, codec=stream.codec_context.name,
            pix_fmt=stream.codec_context.pix_fmt, time_base=time_base,
            has_audio=audio is not None,
            audio_codec=audio.codec_context.name if audio is not None else None,
            container=container.format.name,
            metadata={str(k).lower(): str(v) for k, v in container.metadata.items()})


def _count_packets(path: Path) -> int:
    """Frame count by demuxing (no decoding), for containers without a frame index."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def _probe_webp(path: Path) -> VideoInfo:
    from PIL import Image

    try:
        with Image.open(path) as image:
            n = getattr(image, "n_frames", 1)
            durations = []
            for i in range(n):
                image.seek(i)
                image.load()  # Pillow fills in the frame's duration on load
                durations.append(int(image.info.get("duration") or 0))
            width, height = image.size
    except Exception as exc:
        raise InputError(f"not a readable animated WebP ({exc})", path) from exc
    total_ms = sum(durations)
    fps = Fraction(1000 * n, total_ms).limit_denominator(1001) if total_ms else Fraction(25)
    metadata = {}
    xmp = webp_xmp(path.read_bytes())
    if xmp:
        metadata = {k.lower(): v for k, v in parse_xmp(xmp).items()}
    return VideoInfo(path=path, width=width, height=height, fps=fps, frame_count=n,
                     duration=total_ms / 1000, rotation=0, codec="webp", pix_fmt=None,
                     time_base=Fraction(1, 1000), has_audio=False, audio_codec=None,
                     container="webp", metadata=metadata)


def read_video_metadata(path: str | Path) -> dict[str, str]:
    """Container metadata (keys lower-cased); for GIF and WebP the dict that
    :class:`VideoWriter` stored in a GIF comment / WebP XMP chunk."""
    import av

    path = Path(path)
    _check_file(path)
    head = path.read_bytes()[:16]
    try:
        if head[:6] in (b"GIF87a", b"GIF89a"):
            found: dict[str, str] = {}
            for comment in gif_comments(path.read_bytes()):
                found.update(_unwrap_metadata_json(comment))
            return {k.lower(): v for k, v in found.items()}
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            xmp = webp_xmp(path.read_bytes())
            return {k.lower(): v for k, v in parse_xmp(xmp).items()} if xmp else {}
    except ValueError as exc:
        raise InputError(f"corrupt file ({exc})", path) from exc
    try:
        with av.open(str(path)) as container:
            return {str(k).lower(): str(v) for k, v in container.metadata.items()}
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"not a readable video ({_ffmpeg_reason(exc)})", path) from exc


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame: ``rgb`` is ``(H, W, 3)`` uint8 RGB, upright."""

    index: int  # position in the stream, 0-based, counting every frame (also skipped ones)
    pts: int | None  # presentation timestamp in the stream's time base
    time: float  # seconds
    rgb: np.ndarray


_END = object()


class VideoReader:
    """Iterate the frames of a video as :class:`DecodedFrame` (RGB uint8, upright).

    ``stride`` keeps every n-th frame (``index % stride == 0``) starting at ``start``;
    ``max_frames`` caps how many frames are yielded. Decoding and the YUV->RGB conversion run
    in a background thread (FFmpeg releases the GIL) ``prefetch`` frames ahead, so the caller's
    work on frame ``i`` overlaps decoding of ``i+1...``; FFmpeg's own frame threading is on too.

    Use as a context manager (or call :meth:`close`) to stop the thread when breaking early.
    Decode errors raise :class:`InputError` naming the file and the frame.
    """

    def __init__(self, path: str | Path, *, stride: int = 1, start: int = 0,
                 max_frames: int | None = None, prefetch: int = 8, threads: int = 0):
        if stride < 1 or start < 0 or (max_frames is not None and max_frames < 0):
            raise ValueError("stride must be >= 1, start and max_frames >= 0")
        self.path = Path(path)
        self.info = probe_video(self.path)
        self.stride, self.start, self.max_frames = stride, start, max_frames
        self.prefetch, self.threads = max(1, prefetch), threads
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=self.prefetch)

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
        import av

        turns = rotation_quarter_turns(self.info.rotation)
        yielded = 0
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            stream.codec_context.thread_count = self.threads
            index = -1
            try:
                for frame in container.decode(stream):
                    index += 1
                    if self.max_frames is not None and yielded >= self.max_frames:
                        return
                    if not self._wanted(index):
                        continue
                    rgb = frame.to_ndarray(format="rgb24")
                    rotation = frame.rotation
                    k = rotation_quarter_turns(rotation) if rotation else turns
                    if k:
                        rgb = np.ascontiguousarray(np.rot90(rgb, k))
                    time = float(frame.time) if frame.time is not None else index / float(
                        self.info.fps)
                    yield DecodedFrame(index=index, pts=frame.pts, time=time, rgb=rgb)
                    yielded += 1
            except (av.FFmpegError, ValueError) as exc:
                raise InputError(f"cannot decode frame {index + 1} "
                                 f"({_ffmpeg_reason(exc)})", self.path) from exc

    def _webp_frames(self) -> Iterator[DecodedFrame]:
        from PIL import Image

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
                rgb = np.asarray(image.convert("RGB"))
                yield DecodedFrame(index=index, pts=ms, time=ms / 1000, rgb=rgb)
                yielded += 1

    def _worker(self) -> None:
        try:
            for item in self._frames():
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._put_final(_END)
        except BaseException as exc:  # handed to the consumer, re-raised there
            self._put_final(exc)

    def _put_final(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[DecodedFrame]:
        if self._thread is not None:
            raise RuntimeError("a VideoReader can be iterated once; make a new one")
        self._thread = threading.Thread(target=self._worker, name="video-decode", daemon=True)
        self._thread.start()
        try:
            while True:
                item = self._queue.get()
                if item is _END:
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
    import av

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
        raise InputError(f"cannot decode video ({_ffmpeg_reason(exc)})", path) from exc
    return frames


# --------------------------------------------------------------------------- writing


class VideoWriter:
    """Encode RGB frames into a video file, atomically. Use as a context manager.

    Args:
        path: output file; the suffix picks the container (``.mp4 .m4v .mov .mkv .webm .gif
            .webp``).
        fps: exact frame rate (pass ``VideoInfo.fps`` to keep the source's).
        width, height: upright frame size; taken from the first frame when omitted.
        crf, preset: quality (x264 scale 0..51, lower is better) and x264 speed preset.
        quality: WebP quality 0..100.
        audio_from: a file whose first audio stream is copied packet by packet (no
            re-encode). When the output container cannot hold that codec it is re-encoded
            (AAC/Opus) with a warning; GIF and WebP have no audio.
        metadata: container tags. MP4/MOV keep the standard keys (``title``, ``comment``,
            ``description``, ``copyright``, ``artist``...); MKV/WebM keep any key; GIF and WebP
            get the whole dict as JSON in a comment extension / XMP chunk.
        rotation: ``0`` (default) writes frames as given (rotation baked in, right in every
            player). A source's ``VideoInfo.rotation`` instead stores the frames turned back to
            the source's coded orientation plus the same display matrix, so the file is laid
            out like the source; players show both the same. Ignored (baked) for GIF/WebP.
        time_base: with ``pts`` passed to :meth:`write`, the time base of those timestamps
            (``VideoInfo.time_base``), to keep variable frame timing exactly.
        background: encode in a worker thread so the caller's next frame overlaps encoding.
        trim_audio: stop the copied audio where the last written frame ends (for a video
            cut short, e.g. ``--max-frames``); by default the whole audio stream is copied.

    On an exception inside the ``with`` block nothing is left at ``path``.
    """

    def __init__(self, path: str | Path, fps: Fraction | float | int, *,
                 width: int | None = None, height: int | None = None,
                 crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                 quality: int = DEFAULT_WEBP_QUALITY, codec: str | None = None,
                 audio_from: str | Path | None = None, metadata: dict[str, str] | None = None,
                 rotation: int = 0, time_base: Fraction | None = None, loop: int = 0,
                 background: bool = True, trim_audio: bool = False):
        self.path = Path(path)
        self.kind = container_kind(self.path)
        self.fps = as_fraction(fps)
        self.codec = codec or default_video_codec(self.kind)
        self.codec_options = video_codec_options(self.codec, crf, preset, quality)
        self.width, self.height = width, height
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.rotation = 0 if self.kind in ("gif", "webp") else int(rotation)
        self._turns = rotation_quarter_turns(self.rotation)
        self.time_base = Fraction(time_base) if time_base is not None else None
        self.loop = loop
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.trim_audio = trim_audio
        self._video_end = 0.0  # seconds: where the last encoded frame ends
        self.frames_written = 0
        self._encoded = 0
        self._stack = contextlib.ExitStack()
        self._container: Any = None
        self._stream: Any = None
        self._audio: _AudioCopier | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._queue: queue.Queue | None = queue.Queue(maxsize=8) if background else None
        self._thread: threading.Thread | None = None
        if self.audio_from is not None and self.kind not in ("gif", "webp"):
            _check_file(self.audio_from)
            self._audio = _AudioCopier(self.audio_from, self.kind)  # warns here if re-encoding
        try:
            self._open()
        except BaseException:
            if self._audio is not None:
                self._audio.close()
            raise

    # -- setup
    def _open(self) -> None:
        import av

        self._tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._container = av.open(str(self._tmp), mode="w", format=_KINDS[self.kind][0],
                                      options=muxer_options(self.kind, self.loop))
        except BaseException:
            self._stack.close()
            raise
        if self.kind not in ("gif", "webp"):
            self._container.metadata.update(self.metadata)
        if self._queue is not None:
            self._thread = threading.Thread(target=self._worker, name="video-encode",
                                            daemon=True)
            self._thread.start()

    def _setup_stream(self, width: int, height: int) -> None:
        coded_w, coded_h = (height, width) if self._turns % 2 else (width, height)
        stream = self._container.add_stream(self.codec, rate=self.fps,
                                            options=self.codec_options)
        stream.width, stream.height = coded_w, coded_h
        stream.pix_fmt = pixel_format_for(self.codec, coded_w, coded_h)
        if self.time_base is not None:
            stream.codec_context.time_base = self.time_base
            stream.time_base = self.time_base
        if self._turns:
            stream.set_display_rotation(self.rotation)
        self._stream = stream
        if self._audio is not None:
            self._audio.attach(self._container)

    # -- writing
    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """Append one upright ``(H, W, 3)`` uint8 RGB frame; ``pts`` in ``time_base`` units
        (default: the frame number in ``1/fps``)."""
        if self._closed:
            raise RuntimeError("write() after close()")
        self._raise_worker_error()
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {rgb.shape} "
                             f"{rgb.dtype}")
        h, w = rgb.shape[:2]
        if self.width is None or self.height is None:
            self.width, self.height = w, h
        if (w, h) != (self.width, self.height):
            raise ValueError(f"frame {self.frames_written} is {w}x{h}, the video is "
                             f"{self.width}x{self.height}")
        self.frames_written += 1
        if self._queue is None:
            self._encode(rgb, pts)
            return
        while True:
            try:
                self._queue.put((rgb, pts), timeout=0.2)
                return
            except queue.Full:
                self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _worker(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is not None:
                continue  # drain so the producer never blocks
            try:
                self._encode(*item)
            except BaseException as exc:
                self._error = exc

    def _encode(self, rgb: np.ndarray, pts: int | None) -> None:
        import av

        if self._stream is None:
            self._setup_stream(rgb.shape[1], rgb.shape[0])
        if self._turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, -self._turns))
        if self.kind == "gif":
            frame = _palette_frame(rgb)
        else:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        index = self._encoded
        self._encoded += 1
        if pts is not None and self.time_base is not None:
            frame.pts, frame.time_base = int(pts), self.time_base
        else:
            frame.pts, frame.time_base = index, 1 / self.fps
        self._video_end = float(frame.pts * frame.time_base + 1 / self.fps)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.mux_until(float(frame.pts * frame.time_base))

    # -- finishing
    def close(self) -> None:
        """Flush the encoder, copy the remaining audio, and move the file into place."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_worker()
            self._raise_worker_error()
            if self._stream is None:
                raise FacedancerError("no frames were written", self.path)
            for packet in self._stream.encode():
                self._container.mux(packet)
            if self._audio is not None:
                self._audio.finish(self._video_end if self.trim_audio else float("inf"))
                self._audio.close()
            self._container.close()
            if self.kind == "gif" and self.metadata:
                self._tmp.write_bytes(gif_insert_comment(self._tmp.read_bytes(),
                                                         _metadata_text(self.metadata)))
            elif self.kind == "webp" and self.metadata:
                self._tmp.write_bytes(webp_insert_xmp(self._tmp.read_bytes(),
                                                      xmp_packet(self.metadata)))
        except BaseException as exc:
            self._abort()
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack.close()  # renames the temporary file onto path

    def _stop_worker(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(_END)
            self._thread.join()
            self._thread = None

    def _abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        with contextlib.suppress(Exception):
            self._stop_worker()
        if self._audio is not None:
            with contextlib.suppress(Exception):
                self._audio.close()
        with contextlib.suppress(Exception):
            self._container.close()

    def abort(self) -> None:
        """Discard the output: nothing is written at ``path``."""
        if self._closed:
            return
        self._closed = True
        self._abort()
        with contextlib.suppress(Exception):
            self._stack.__exit__(RuntimeError, RuntimeError("aborted"), None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _metadata_text(metadata: dict[str, str]) -> str:
    return json.dumps({_METADATA_MARKER: metadata}, ensure_ascii=True, sort_keys=True)


def _palette_frame(rgb: np.ndarray) -> Any:
    """A pal8 frame with its own 256-colour palette (Pillow's octree quantiser): much better
    colour than FFmpeg's fixed rgb8 conversion, without a two-pass palettegen."""
    import av
    from PIL import Image

    image = Image.fromarray(rgb).quantize(256, method=Image.Quantize.FASTOCTREE,
                                          dither=Image.Dither.FLOYDSTEINBERG)
    palette = np.zeros((256, 4), np.uint8)
    colours = np.asarray(image.getpalette()[:768], np.uint8).reshape(-1, 3)
    palette[:, 0] = 255  # PyAV takes the palette as ARGB rows
    palette[:len(colours), 1:] = colours
    return av.VideoFrame.from_ndarray((np.asarray(image), palette), format="pal8")


class _AudioCopier:
    """Moves the first audio stream of a source file into an output container, interleaved
    with the video by time. Packets are copied unchanged when the container can hold the
    codec, else decoded and re-encoded once."""

    def __init__(self, source: Path, kind: str):
        import av

        self.source = source
        try:
            self._input = av.open(str(source))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot read audio ({_ffmpeg_reason(exc)})", source) from exc
        self._in_stream = self._input.streams.audio[0] if self._input.streams.audio else None
        self._packets: Iterator[Any] | None = None
        self._pending: Any = None
        self._output: Any = None
        self.copy = True
        if self._in_stream is None:
            self._input.close()
            return
        codec = self._in_stream.codec_context.name
        self.copy = can_copy_audio(kind, codec)
        self._target = None if self.copy else _AUDIO_REENCODE[kind]
        if not self.copy:
            warnings.warn(f"{source}: audio codec '{codec}' cannot be stored in .{kind}; "
                          f"re-encoding it as {self._target}", stacklevel=4)

    def attach(self, output: Any) -> None:
        """Add the audio stream to ``output`` (after the video stream, so video stays #0)."""
        if self._in_stream is None:
            return
        if self.copy:
            self._out_stream = output.add_stream_from_template(self._in_stream)
        else:
            rate = self._in_stream.rate if self._target == "aac" else 48000
            self._out_stream = output.add_stream(self._target, rate=rate)
            with contextlib.suppress(Exception):
                self._out_stream.layout = self._in_stream.layout
        self._output = output
        self._packets = self._input.demux(self._in_stream)

    def mux_until(self, seconds: float) -> None:
        """Write every audio packet that starts before ``seconds``."""
        import av

        if self._packets is None:
            return
        while True:
            if self._pending is None:
                try:
                    self._pending = next(self._packets)
                except StopIteration:
                    self._packets = None
                    self._flush_encoder()
                    return
                except av.FFmpegError as exc:
                    raise InputError(f"cannot read audio ({_ffmpeg_reason(exc)})",
                                     self.source) from exc
            packet = self._pending
            if packet.dts is None:  # the demuxer's final empty flush packet
                self._pending = None
                continue
            start = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            if start > seconds:
                return
            self._pending = None
            if self.copy:
                packet.stream = self._out_stream
                self._output.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    for out in self._out_stream.encode(frame):
                        self._output.mux(out)

    def finish(self, seconds: float) -> None:
        """Write the packets that start before ``seconds``, drop the rest, flush."""
        self.mux_until(seconds - 1e-9)
        if self._packets is not None:
            self._packets = None
            self._flush_encoder()

    def _flush_encoder(self) -> None:
        if self._in_stream is not None and not self.copy:
            for out in self._out_stream.encode(None):
                self._output.mux(out)

    def close(self) -> None:
        if self._in_stream is not None:
            self._in_stream = None
            self._packets = None
            self._input.close()

