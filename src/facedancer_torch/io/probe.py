"""What a video file holds: size, exact frame rate, frame count, rotation, codecs, tags.

Sizes are upright (displayed) sizes, after the stream's display matrix; ``rotation`` is FFmpeg's
display-matrix angle, counter-clockwise degrees (see :mod:`facedancer_torch.io.video`).
Animated WebP goes through Pillow because FFmpeg has no animated-WebP decoder. ``colour`` is
the stream's colour description (:class:`ColourTags`), which the writer gives the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from ..errors import FacedancerError, InputError
from .images import pillow_has_alpha
from .media_meta import gif_comments, parse_xmp, png_text, unwrap_metadata_json, webp_xmp


def rotation_quarter_turns(rotation: float) -> int:
    """Counter-clockwise display rotation in degrees -> ``k`` for ``np.rot90(frame, k)``."""
    turns = round(float(rotation) / 90.0)
    if abs(turns * 90.0 - float(rotation)) > 1.0:
        raise FacedancerError(f"only multiples of 90 degrees are supported, got {rotation}")
    return turns % 4



@dataclass(frozen=True)
class ColourTags:
    """A video stream's colour description, FFmpeg's numbering (ISO/IEC 23091-4, as H.264 and
    HEVC store it): ``primaries`` (1 BT.709, 9 BT.2020), ``transfer`` (1 BT.709, 16 PQ, 18 HLG),
    ``matrix`` (1 BT.709, 5/6 BT.601, 9 BT.2020), ``range`` (1 limited, 2 full); 2 (0 for the
    range) means unspecified.

    Decoding to RGB uses the stream's matrix and range (PyAV does), so an output that is to look
    like its input in a player must be converted back with the same ones and say so: untagged,
    a player takes an HD picture for BT.709 (and an SD one for BT.601), and HDR (PQ, HLG) for
    SDR, whatever the pixels were converted with.
    """

    primaries: int = 2
    transfer: int = 2
    matrix: int = 2
    range: int = 0

    @property
    def specified(self) -> bool:
        return (self.primaries, self.transfer, self.matrix, self.range) != (2, 2, 2, 0)


def colour_tags(codec_context, frame=None) -> ColourTags:
    """The colour description of a decoder (its first decoded frame where the stream leaves a
    field unspecified); unknown values count as unspecified."""

    def value(name: str, unspecified: int) -> int:
        for source in (codec_context, frame):
            number = getattr(source, name, None)
            try:
                number = int(number)
            except (TypeError, ValueError):
                continue
            if number != unspecified:
                return number
        return unspecified

    return ColourTags(primaries=value("color_primaries", 2), transfer=value("color_trc", 2),
                      matrix=value("colorspace", 2), range=value("color_range", 0))


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
    colour: ColourTags = field(default_factory=ColourTags)
    # SMPTE start timecode ("01:00:00:00"), as cameras and editors write it (a MOV/MP4 tmcd
    # track, a stream or container tag); an editor conforms a clip to its timeline by it.
    timecode: str | None = None
    profile: str | None = None  # the codec's profile as FFmpeg names it ("HQ" for ProRes HQ)

    @property
    def bit_depth(self) -> int:
        """Bits per sample of the pictures (8; 10 for ProRes, HDR HEVC, DNxHR HQX...)."""
        return pixel_format_depth(self.pix_fmt)

    @property
    def hdr(self) -> bool:
        """Whether the colour description says HDR: the PQ (16) or HLG (18) transfer."""
        return self.colour.transfer in (16, 18)

    @property
    def has_alpha(self) -> bool:
        """Whether the pictures carry an alpha channel (a sticker, an overlay): GIF, an APNG
        or WebP with transparency, ProRes 4444, PNG in MOV..."""
        return pixel_format_has_alpha(self.pix_fmt)

    @property
    def coded_size(self) -> tuple[int, int]:
        """(width, height) of the pictures as stored, before rotation."""
        if rotation_quarter_turns(self.rotation) % 2:
            return self.height, self.width
        return self.width, self.height


def pixel_format_has_alpha(pix_fmt: str | None) -> bool:
    """Whether an FFmpeg pixel format has an alpha component (``rgba``, ``bgra``,
    ``yuva420p``...)."""
    if not pix_fmt:
        return False
    try:
        return any(component.is_alpha for component in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return False


def pixel_format_depth(pix_fmt: str | None) -> int:
    """The largest bits per sample of an FFmpeg pixel format (8 where unknown)."""
    if not pix_fmt:
        return 8
    try:
        return max(component.bits for component in av.VideoFormat(pix_fmt).components)
    except (ValueError, av.FFmpegError):
        return 8


def check_input_file(path: Path) -> None:
    """Raise :class:`InputError` unless ``path`` is an existing, non-empty regular file."""
    if not path.exists():
        raise InputError("file does not exist", path)
    if not path.is_file():
        raise InputError("not a regular file", path)
    if path.stat().st_size == 0:
        raise InputError("empty file (0 bytes)", path)


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's error text on one line, for an ``error: FILE: problem`` message."""
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def _timecode(container) -> str | None:
    """The start timecode: the video stream's tag, a timecode (data) stream's, or the
    container's (FFmpeg puts a MOV/MP4 tmcd track's on the video stream and on its own)."""
    places = [container.streams.video[0], *container.streams, container]
    for place in places:
        for key, value in getattr(place, "metadata", {}).items():
            if str(key).lower() == "timecode" and value:  # Matroska writes TIMECODE
                return str(value)
    return None


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
    path = Path(path)
    check_input_file(path)
    if _is_animated_webp(path):  # FFmpeg has no animated-WebP decoder
        return _probe_webp(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"not a readable video ({ffmpeg_reason(exc)})", path) from exc
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
            raise InputError(f"cannot decode video ({ffmpeg_reason(exc)})", path) from exc
        if first is None:
            raise InputError("video stream has no decodable frame", path)
        # normalised to 0, 90, 180, -90 (FFmpeg may report 180 as -180)
        try:
            rotation = (0, 90, 180, -90)[rotation_quarter_turns(first.rotation or 0)]
        except FacedancerError as exc:
            raise InputError(f"display rotation: {exc}", path) from None
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
            metadata={str(k).lower(): str(v) for k, v in container.metadata.items()},
            colour=colour_tags(stream.codec_context, first), timecode=_timecode(container),
            profile=stream.codec_context.profile or None)


def _count_packets(path: Path) -> int:
    """Frame count by demuxing (no decoding), for containers without a frame index."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for packet in container.demux(stream) if packet.size)


def _probe_webp(path: Path) -> VideoInfo:
    try:
        with Image.open(path) as image:
            n = getattr(image, "n_frames", 1)
            durations = []
            for i in range(n):
                image.seek(i)
                image.load()  # Pillow fills in the frame's duration on load
                durations.append(int(image.info.get("duration") or 0))
            width, height = image.size
            alpha = pillow_has_alpha(image)
    except Exception as exc:
        raise InputError(f"not a readable animated WebP ({exc})", path) from exc
    total_ms = sum(durations)
    fps = Fraction(1000 * n, total_ms).limit_denominator(1001) if total_ms else Fraction(25)
    metadata = {}
    xmp = webp_xmp(path.read_bytes())
    if xmp:
        metadata = {k.lower(): v for k, v in parse_xmp(xmp).items()}
    return VideoInfo(path=path, width=width, height=height, fps=fps, frame_count=n,
                     duration=total_ms / 1000, rotation=0, codec="webp",
                     pix_fmt="rgba" if alpha else "rgb24",
                     time_base=Fraction(1, 1000), has_audio=False, audio_codec=None,
                     container="webp", metadata=metadata)


def read_video_metadata(path: str | Path) -> dict[str, str]:
    """Container metadata (keys lower-cased); for GIF, WebP and APNG the dict that
    :class:`VideoWriter` stored in a GIF comment / WebP XMP chunk / PNG text chunks."""
    path = Path(path)
    check_input_file(path)
    with path.open("rb") as handle:  # 16 bytes tell the format; the file may be gigabytes
        head = handle.read(16)
    try:
        if head[:6] in (b"GIF87a", b"GIF89a"):
            found: dict[str, str] = {}
            for comment in gif_comments(path.read_bytes()):
                found.update(unwrap_metadata_json(comment))
            return {k.lower(): v for k, v in found.items()}
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            xmp = webp_xmp(path.read_bytes())
            return {k.lower(): v for k, v in parse_xmp(xmp).items()} if xmp else {}
        if head[:8] == b"\x89PNG\r\n\x1a\n":  # an animated PNG: a text chunk per key
            return {k.lower(): v for k, v in png_text(path.read_bytes()).items()}
    except ValueError as exc:
        raise InputError(f"corrupt file ({exc})", path) from exc
    try:
        with av.open(str(path)) as container:
            return {str(k).lower(): str(v) for k, v in container.metadata.items()}
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"not a readable video ({ffmpeg_reason(exc)})", path) from exc

