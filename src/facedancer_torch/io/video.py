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
animated GIF, WebP and PNG. Outputs appear atomically (a temporary file renamed on
success). Odd frame sizes are kept exactly: yuv420p cannot represent them in H.264 (its
chroma planes and cropping work in 2-pixel units), so odd sizes are encoded as yuv444p
(High 4:4:4 profile), which FFmpeg, VLC and mpv play; some hardware/browser decoders don't.
Audio of a source file is copied packet by packet (no re-encode) when the output container
can hold its codec. Codec and muxer options are built by small pure functions.

This module gathers the public names of the modules that do each job, so callers import from
one place: :mod:`.probe` (:func:`probe_video`, :class:`VideoInfo`), :mod:`.video_reader`
(:class:`VideoReader`, :func:`read_frames`, :func:`sample_frames`), :mod:`.video_writer`
(:class:`VideoWriter` and its codec/muxer option builders), :mod:`.audio_mux` (audio copy) and
:mod:`.media_meta` (our metadata in GIF comments, WebP XMP and PNG text chunks).
"""

from __future__ import annotations

from .audio_mux import can_copy_audio
from .media_meta import (gif_comments, gif_insert_comment, parse_xmp, png_insert_text, png_text,
                         webp_insert_xmp, webp_xmp, xmp_packet)
from .probe import VideoInfo, probe_video, read_video_metadata, rotation_quarter_turns
from .video_reader import DecodedFrame, VideoReader, read_frames, sample_frames, to_8_bits
from .video_writer import (DEFAULT_CRF, DEFAULT_PRESET, DEFAULT_WEBP_QUALITY,
                           VIDEO_OUTPUT_SUFFIXES, X264_PRESETS, VideoWriter, as_fraction,
                           container_kind, default_video_codec, muxer_options,
                           pixel_format_for, video_codec_options)

__all__ = [
    "DEFAULT_CRF", "DEFAULT_PRESET", "DEFAULT_WEBP_QUALITY", "VIDEO_OUTPUT_SUFFIXES",
    "X264_PRESETS", "DecodedFrame", "VideoInfo", "VideoReader", "VideoWriter", "as_fraction",
    "can_copy_audio", "container_kind", "default_video_codec", "gif_comments",
    "gif_insert_comment", "muxer_options", "parse_xmp", "pixel_format_for", "png_insert_text",
    "png_text", "probe_video",
    "read_frames", "read_video_metadata", "rotation_quarter_turns", "sample_frames", "to_8_bits",
    "video_codec_options", "webp_insert_xmp", "webp_xmp", "xmp_packet",
]
