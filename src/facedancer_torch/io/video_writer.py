"""Encoding RGB frames into a video file, atomically: H.264 (libx264) in MP4/MOV/MKV, VP9 in
WebM, animated GIF, WebP and PNG, with the source's audio carried over; on request (or to keep
an editor's intermediate, :mod:`.codecs`) HEVC, ProRes, DNxHR or FFV1.

Codec and muxer options are built by the small pure functions below; see
:mod:`facedancer_torch.io.video` for the conventions (odd sizes, exact frame rates, rotation).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

from ..errors import FacedancerError
from .atomic import atomic_path
from .audio_mux import AudioCopier
from .codecs import encoder_keeps_alpha, encoder_keeps_depth
from .media_meta import (gif_insert_comment, png_insert_text, set_last_frame_duration,
                         webp_insert_xmp, wrap_metadata_json, xmp_packet)
from .probe import ColourTags, check_input_file, rotation_quarter_turns
from .queues import END, put_until_stopped

DEFAULT_CRF: int = 18  # x264 "visually lossless" region; 23 is x264's own default
DEFAULT_PRESET: str = "medium"
DEFAULT_WEBP_QUALITY: int = 90
X264_PRESETS: tuple[str, ...] = ("ultrafast", "superfast", "veryfast", "faster", "fast",
                                 "medium", "slow", "slower", "veryslow", "placebo")

# output container kind -> (FFmpeg muxer, default video codec)
_KINDS: dict[str, tuple[str, str]] = {
    "mp4": ("mp4", "libx264"), "mov": ("mov", "libx264"), "mkv": ("matroska", "libx264"),
    "webm": ("webm", "libvpx-vp9"), "gif": ("gif", "gif"), "webp": ("webp", "libwebp_anim"),
    "apng": ("apng", "apng"),
}
_SUFFIX_KIND = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "mkv", ".webm": "webm",
                ".gif": "gif", ".webp": "webp", ".png": "apng", ".apng": "apng"}
# Animated pictures: RGB frames, no audio, no rotation tag, no colour description; they loop.
_PICTURE_KINDS = frozenset({"gif", "webp", "apng"})
VIDEO_OUTPUT_SUFFIXES: tuple[str, ...] = tuple(sorted(_SUFFIX_KIND))  # what VideoWriter writes


def container_kind(path: str | Path) -> str:
    """Output container kind from the suffix: mp4 (.mp4/.m4v), mov, mkv, webm, gif, webp or
    apng (.png/.apng: an animated PNG)."""
    suffix = Path(path).suffix.lower()
    kind = _SUFFIX_KIND.get(suffix)
    if kind is None:
        raise FacedancerError(f"cannot write videos with suffix '{suffix}' (use one of "
                              f"{', '.join(sorted(_SUFFIX_KIND))})", path)
    return kind


def default_video_codec(kind: str) -> str:
    """The FFmpeg encoder used for a container kind (libx264, libvpx-vp9, gif, libwebp_anim,
    apng)."""
    return _KINDS[kind][1]


def pixel_format_for(codec: str, width: int, height: int, alpha: bool = False,
                     profile: str | None = None, deep: bool = False) -> str:
    """Encoder pixel format that keeps ``width x height`` exactly (and, with ``alpha``, an
    alpha channel where the codec has one: WebP, APNG, ProRes 4444, FFV1, VP9; GIF keeps it
    as a transparent palette entry). ``profile``: ProRes's or DNxHR's (``io.codecs``).
    ``deep``: 10 bits per sample for HEVC and FFV1 (ProRes and DNxHR HQX are always 10).

    H.264 and HEVC yuv420p need even sizes (chroma and SPS cropping are in 2-pixel units), so
    odd sizes go to yuv444p rather than being padded or cropped.
    """
    if codec in ("libx264", "libx265"):
        layout = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        return layout + "10le" if deep and codec == "libx265" else layout
    if codec == "prores_ks":  # 10-bit 4:2:2, or 4:4:4 (with alpha) for the 4444 profiles
        if profile in ("4444", "4444xq"):
            return "yuva444p10le" if alpha else "yuv444p10le"
        return "yuv422p10le"
    if codec == "dnxhd":
        return {"dnxhr_hqx": "yuv422p10le", "dnxhr_444": "yuv444p10le"}.get(profile or "",
                                                                           "yuv422p")
    if codec == "ffv1":
        return ("yuva444p" if alpha else "yuv444p") + ("10le" if deep else "")
    if codec == "libvpx-vp9" and alpha:
        return "yuva420p"
    if codec == "gif":
        return "pal8"
    if codec == "apng":
        return "rgba" if alpha else "rgb24"  # lossless, as the frames are
    if codec == "libwebp_anim" and alpha:
        return "yuva420p"
    return "yuv420p"  # VP9 and WebP store odd sizes in 4:2:0 natively


def video_codec_options(codec: str, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                        quality: int = DEFAULT_WEBP_QUALITY,
                        profile: str | None = None) -> dict[str, str]:
    """Private encoder options (FFmpeg ``-crf``/``-preset`` style) for ``codec``.

    ``crf`` is on x264's 0..51 scale for every codec that takes one (x265 the same scale,
    VP9's 0..63 scale is mapped linearly); ProRes and DNxHR take their quality from
    ``profile``, FFV1 is lossless; ``quality`` (0..100) applies to WebP only. Bad values raise
    :class:`FacedancerError`.
    """
    if not 0 <= int(crf) <= 51:
        raise FacedancerError(f"--crf must be between 0 and 51, got {crf}")
    if codec == "libx264":
        if preset not in X264_PRESETS:
            raise FacedancerError(f"--preset must be one of {', '.join(X264_PRESETS)}, "
                                  f"got '{preset}'")
        return {"crf": str(int(crf)), "preset": preset}
    if codec == "libx265":
        if preset not in X264_PRESETS:  # x265 has the same preset names
            raise FacedancerError(f"--preset must be one of {', '.join(X264_PRESETS)}, "
                                  f"got '{preset}'")
        # x265 prints a page of settings to stderr on every open: errors only
        return {"crf": str(int(crf)), "preset": preset, "x265-params": "log-level=error"}
    if codec == "prores_ks":  # vendor apl0: what Apple's encoder writes (some apps check)
        return {"profile": profile or "hq", "vendor": "apl0"}
    if codec == "dnxhd":
        return {"profile": profile or "dnxhr_hq"}
    if codec == "ffv1":  # version 3: sliced (both cores), with a CRC per slice, as archives use
        return {"level": "3", "slicecrc": "1"}
    if codec == "libvpx-vp9":
        # constant-quality mode needs b=0; row-mt uses both cores at no quality cost
        return {"crf": str(round(int(crf) * 63 / 51)), "b": "0", "row-mt": "1"}
    if codec == "libwebp_anim":
        if not 0 <= int(quality) <= 100:
            raise FacedancerError(f"WebP quality must be between 0 and 100, got {quality}")
        return {"quality": str(int(quality)), "lossless": "0"}
    return {}


def muxer_options(kind: str, loop: int = 0) -> dict[str, str]:
    """Container (muxer) options: MP4/MOV get ``faststart``; GIF/WebP/APNG loop ``loop`` times
    (0 = forever)."""
    if kind in ("mp4", "mov"):
        return {"movflags": "+faststart"}  # index first: plays while downloading
    if kind in ("gif", "webp"):
        return {"loop": str(int(loop))}
    if kind == "apng":  # FFmpeg's APNG muxer counts plays (0 = forever) and plays once by default
        return {"plays": str(int(loop))}
    return {}



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



class VideoWriter:
    """Encode RGB frames into a video file, atomically. Use as a context manager.

    Args:
        path: output file; the suffix picks the container (``.mp4 .m4v .mov .mkv .webm .gif
            .webp``, and ``.png .apng`` for an animated PNG).
        fps: exact frame rate (pass ``VideoInfo.fps`` to keep the source's).
        width, height: upright frame size; taken from the first frame when omitted.
        crf, preset: quality (x264 scale 0..51, lower is better) and x264 speed preset.
        quality: WebP quality 0..100.
        audio_from: a file whose first audio stream is copied packet by packet (no
            re-encode). When the output container cannot hold that codec it is re-encoded
            (AAC/Opus) with a warning; GIF, WebP and APNG have no audio.
        metadata: container tags. MP4/MOV keep the standard keys (``title``, ``comment``,
            ``description``, ``copyright``, ``artist``...); MKV/WebM keep any key; GIF and WebP
            get the whole dict as JSON in a comment extension / XMP chunk, APNG a text chunk
            per key (as a still PNG).
        rotation: ``0`` (default) writes frames as given (rotation baked in, right in every
            player). A source's ``VideoInfo.rotation`` instead stores the frames turned back to
            the source's coded orientation plus the same display matrix, so the file is laid
            out like the source; players show both the same. Ignored (baked) for GIF/WebP/APNG.
        time_base: with ``pts`` passed to :meth:`write`, the time base of those timestamps
            (``VideoInfo.time_base``), to keep variable frame timing exactly.
        background: encode in a worker thread so the caller's next frame overlaps encoding.
        trim_audio: stop the copied audio where the last written frame ends (for a video
            cut short, e.g. ``--max-frames``); by default the whole audio stream is copied.
        codec, profile: the FFmpeg encoder and its profile (``io.codecs.choose_codec``);
            by default the container's own (H.264, VP9 in WebM, the picture encoders).
        deep: keep the 16-bit ``deep`` frames passed to :meth:`write` (a source of more than
            8 bits) at 10 bits where the codec has them (``io.codecs.encoder_keeps_depth``).
        alpha: keep the ``alpha`` passed to :meth:`write` (a transparent source): WebP,
            APNG, ProRes 4444, FFV1 and VP9 in WebM store it, GIF as a transparent palette
            entry (below half opacity); other codecs have none and are written the RGB
            given.

    On an exception inside the ``with`` block nothing is left at ``path``.
    """

    labels_each_frame = False  # one file, labelled as a whole (as io.sequence.SequenceWriter)

    def __init__(self, path: str | Path, fps: Fraction | float | int, *,
                 width: int | None = None, height: int | None = None,
                 crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET,
                 quality: int = DEFAULT_WEBP_QUALITY, codec: str | None = None,
                 audio_from: str | Path | None = None, metadata: dict[str, str] | None = None,
                 rotation: int = 0, time_base: Fraction | None = None, loop: int = 0,
                 background: bool = True, trim_audio: bool = False,
                 colour: ColourTags | None = None, timecode: str | None = None,
                 alpha: bool = False, profile: str | None = None, deep: bool = False):
        self.path = Path(path)
        self.kind = container_kind(self.path)
        self.fps = as_fraction(fps)
        self.codec = codec or default_video_codec(self.kind)
        self.profile = profile
        self.codec_options = video_codec_options(self.codec, crf, preset, quality, profile)
        self.width, self.height = width, height
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.rotation = 0 if self.kind in _PICTURE_KINDS else int(rotation)
        self.alpha = alpha and encoder_keeps_alpha(self.codec, profile, self.kind)
        self.deep = deep and encoder_keeps_depth(self.codec, profile)
        self._turns = rotation_quarter_turns(self.rotation)
        self.time_base = Fraction(time_base) if time_base is not None else None
        self.loop = loop
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.trim_audio = trim_audio
        # GIF, WebP and APNG are RGB pictures: no colour description to keep.
        self.colour = colour if colour is not None and colour.specified and \
            self.kind not in _PICTURE_KINDS else None
        # The source's start timecode (VideoInfo.timecode), where the container can hold one.
        self.timecode = timecode if self.kind in ("mp4", "mov", "mkv") else None
        self._video_end = 0.0  # seconds: where the last encoded frame ends
        self._last_duration: float | None = None  # seconds the last frame is shown, if known
        self.frames_written = 0
        self._encoded = 0
        self._stack = contextlib.ExitStack()
        self._container: Any = None
        self._stream: Any = None
        self._audio: AudioCopier | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._queue: queue.Queue | None = queue.Queue(maxsize=8) if background else None
        self._thread: threading.Thread | None = None
        if self.audio_from is not None and self.kind not in _PICTURE_KINDS:
            check_input_file(self.audio_from)
            self._audio = AudioCopier(self.audio_from, self.kind)  # warns here if re-encoding
        try:
            self._open()
        except BaseException:
            if self._audio is not None:
                self._audio.close()
            raise

    # -- setup
    def _open(self) -> None:
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        try:
            self._container = av.open(str(self._tmp), mode="w", format=_KINDS[self.kind][0],
                                      options=muxer_options(self.kind, self.loop))
        except BaseException:
            self._stack.close()
            raise
        if self.kind not in _PICTURE_KINDS:
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
        stream.pix_fmt = pixel_format_for(self.codec, coded_w, coded_h, self.alpha,
                                          self.profile, self.deep)
        if self.codec == "libx265" and self.kind in ("mp4", "mov"):
            stream.codec_tag = "hvc1"  # QuickTime and Apple devices refuse HEVC tagged hev1
        if self.time_base is not None:
            stream.codec_context.time_base = self.time_base
            stream.time_base = self.time_base
        if self._turns:
            stream.set_display_rotation(self.rotation)
        if self.timecode:  # MOV/MP4: the muxer writes a tmcd track; MKV: a stream tag
            stream.metadata["timecode"] = self.timecode
        if self.colour is not None:  # the input's description, so players show it the same
            context = stream.codec_context
            context.color_primaries, context.color_trc = self.colour.primaries, \
                self.colour.transfer
            # Matrix 0 is "RGB" (a GBR-coded source): the output is YUV, converted with
            # BT.601 as PyAV does by default, so it says nothing rather than something wrong.
            context.colorspace = self.colour.matrix if self.colour.matrix != 0 else 2
            context.color_range = self.colour.range
        self._stream = stream
        if self._audio is not None:
            self._audio.attach(self._container)

    # -- writing
    def write(self, rgb: np.ndarray, pts: int | None = None, duration: float | None = None,
              alpha: np.ndarray | None = None, deep: np.ndarray | None = None,
              changed: bool = True) -> None:
        """Append one upright ``(H, W, 3)`` uint8 RGB frame; ``pts`` in ``time_base`` units
        (default: the frame number in ``1/fps``). ``duration`` (seconds, the source frame's
        ``DecodedFrame.duration``) is kept for the last frame of a GIF, WebP or APNG, whose
        time on screen no next frame gives. ``alpha`` (``(H, W)`` uint8, ``rgb`` then being
        straight colours) is kept by a writer made with ``alpha=True``; None is opaque.
        ``deep`` (``(H, W, 3)`` uint16, the same picture at 16 bits) is what a writer made with
        ``deep=True`` encodes instead of ``rgb``. ``changed`` is accepted and unused: a video
        file is labelled as a whole (``io.sequence.SequenceWriter`` labels frame by frame)."""
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
            self._encode(rgb, pts, duration, alpha, deep)
            return
        put_until_stopped(self._queue, (rgb, pts, duration, alpha, deep), poll=0.2,
                          on_full=self._raise_worker_error)

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _worker(self) -> None:
        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is END:
                return
            if self._error is not None:
                continue  # drain so the producer never blocks
            try:
                self._encode(*item)
            except BaseException as exc:
                self._error = exc

    def _encode(self, rgb: np.ndarray, pts: int | None, duration: float | None = None,
                alpha: np.ndarray | None = None, deep: np.ndarray | None = None) -> None:
        self._last_duration = duration
        if self._stream is None:
            self._setup_stream(rgb.shape[1], rgb.shape[0])
        if not self.alpha:
            alpha = None
        if self.deep and deep is not None:  # the 16-bit picture is the one encoded
            rgb = deep
            alpha = None if alpha is None else alpha.astype(np.uint16) * 257
        if self._turns:
            rgb = np.ascontiguousarray(np.rot90(rgb, -self._turns))
            alpha = None if alpha is None else np.ascontiguousarray(np.rot90(alpha, -self._turns))
        if self.kind == "gif":
            frame = _palette_frame(rgb, alpha)
        else:
            wide = rgb.dtype == np.uint16
            if self.alpha:
                opacity = alpha if alpha is not None else np.full(
                    rgb.shape[:2], 65535 if wide else 255, rgb.dtype)
                frame = av.VideoFrame.from_ndarray(
                    np.ascontiguousarray(np.dstack([rgb, opacity])),
                    format="rgba64le" if wide else "rgba")
            else:
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if wide else "rgb24")
            if self.colour is not None:
                # RGB back to YUV with the matrix and range the input was decoded with (PyAV's
                # own conversion would take BT.601 limited, whatever the stream says).
                matrix = self.colour.matrix if self.colour.matrix not in (0, 2) else None
                frame = frame.reformat(format=self._stream.pix_fmt, dst_colorspace=matrix,
                                       dst_color_range=self.colour.range or None)
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
            if self.kind in _PICTURE_KINDS and self._last_duration:
                self._tmp.write_bytes(set_last_frame_duration(self._tmp.read_bytes(),
                                                              self._last_duration))
            if self.kind == "gif" and self.metadata:
                self._tmp.write_bytes(gif_insert_comment(self._tmp.read_bytes(),
                                                         wrap_metadata_json(self.metadata)))
            elif self.kind == "webp" and self.metadata:
                self._tmp.write_bytes(webp_insert_xmp(self._tmp.read_bytes(),
                                                      xmp_packet(self.metadata)))
            elif self.kind == "apng" and self.metadata:
                self._tmp.write_bytes(png_insert_text(self._tmp.read_bytes(), self.metadata))
        except BaseException as exc:
            self._abort()
            self._stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._stack.close()  # renames the temporary file onto path

    def _stop_worker(self) -> None:
        if self._thread is not None and self._queue is not None:
            self._queue.put(END)
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


def _palette_frame(rgb: np.ndarray, alpha: np.ndarray | None = None) -> Any:
    """A pal8 frame with its own 256-colour palette (Pillow's octree quantiser): much better
    colour than FFmpeg's fixed rgb8 conversion, without a two-pass palettegen. With ``alpha``,
    255 colours and the last entry transparent, for the pixels below half opacity (GIF has
    no partial transparency)."""
    colours_wanted = 256 if alpha is None else 255
    image = Image.fromarray(rgb).quantize(colours_wanted, method=Image.Quantize.FASTOCTREE,
                                          dither=Image.Dither.FLOYDSTEINBERG)
    palette = np.zeros((256, 4), np.uint8)
    colours = np.asarray(image.getpalette()[:3 * colours_wanted], np.uint8).reshape(-1, 3)
    palette[:, 0] = 255  # PyAV takes the palette as ARGB rows
    palette[:len(colours), 1:] = colours
    indices = np.asarray(image)
    if alpha is not None:
        palette[255] = 0
        indices = np.where(alpha < 128, np.uint8(255), indices).astype(np.uint8)
    return av.VideoFrame.from_ndarray((np.ascontiguousarray(indices), palette), format="pal8")

