"""Audio and subtitles of a source file carried into an encoded video: stream copy when the
output container can hold the codec, else (audio) one decode and re-encode (AAC, or Opus for
WebM); a subtitle stream the container cannot hold is left out with a warning."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av

from ..errors import InputError
from .probe import ffmpeg_reason

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
# Subtitle codecs each container can carry as-is (MP4/MOV: 3GPP timed text only; SRT or ASS
# would need converting, which is left to the user: write .mkv to keep them).
_SUBTITLE_COPY_OK: dict[str, frozenset[str] | None] = {
    "mp4": frozenset({"mov_text"}), "mov": frozenset({"mov_text"}), "mkv": None,
    "webm": frozenset({"webvtt"}), "gif": frozenset(), "webp": frozenset(),
}


def can_copy_audio(kind: str, audio_codec: str) -> bool:
    """Whether an audio stream of codec ``audio_codec`` can be stream-copied into ``kind``."""
    allowed = _AUDIO_COPY_OK.get(kind, frozenset())
    return True if allowed is None else audio_codec in allowed


def can_copy_subtitles(kind: str, codec: str) -> bool:
    """Whether a subtitle stream of ``codec`` can be stream-copied into ``kind``."""
    allowed = _SUBTITLE_COPY_OK.get(kind, frozenset())
    return True if allowed is None else codec in allowed



class AudioCopier:
    """Moves every audio stream of a source file into an output container, in their order and
    interleaved with the video by time (a camera's or an interview's second track, a
    commentary, other languages: a video editor loses none of them), with each stream's
    language and title. Packets are copied unchanged when the container can hold the codec,
    else decoded and re-encoded once. Subtitle streams follow the audio, copied where the
    container can hold their codec; one it cannot is left out, with a warning saying so."""

    def __init__(self, source: Path, kind: str):
        self.source = source
        try:
            self._input = av.open(str(source))
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot read audio ({ffmpeg_reason(exc)})", source) from exc
        self._in_streams = list(self._input.streams.audio)
        for stream in self._input.streams.subtitles:
            codec = stream.codec_context.name
            if can_copy_subtitles(kind, codec):
                self._in_streams.append(stream)
            else:
                warnings.warn(f"{source}: subtitle stream {stream.index} ({codec}) cannot be "
                              f"stored in .{kind} and is left out (an .mkv output keeps it)",
                              stacklevel=4)
        self._packets: Iterator[Any] | None = None
        self._pending: Any = None
        self._output: Any = None
        self._out: dict[int, Any] = {}  # input stream index -> output stream
        self._copy: dict[int, bool] = {}
        if not self._in_streams:
            self._input.close()
            return
        self._target = _AUDIO_REENCODE.get(kind)
        for stream in self._in_streams:
            codec = stream.codec_context.name
            if stream.type == "subtitle":
                self._copy[stream.index] = True
                continue
            self._copy[stream.index] = can_copy_audio(kind, codec)
            if not self._copy[stream.index]:
                audio = self._input.streams.audio
                which = f"audio stream {stream.index}" if len(audio) > 1 else "audio"
                warnings.warn(f"{source}: {which} codec '{codec}' cannot be stored in .{kind}; "
                              f"re-encoding it as {self._target}", stacklevel=4)

    @property
    def copy(self) -> bool:
        """True when every audio stream is copied as it is."""
        return all(self._copy.values())

    def attach(self, output: Any) -> None:
        """Add the audio (then subtitle) streams to ``output`` (after the video stream, so video
        stays #0)."""
        if not self._in_streams:
            return
        for stream in self._in_streams:
            if self._copy[stream.index]:
                out = output.add_stream_from_template(stream)
            else:
                rate = stream.rate if self._target == "aac" else 48000
                out = output.add_stream(self._target, rate=rate)
                with contextlib.suppress(Exception):
                    out.layout = stream.layout
            for key in ("language", "title", "handler_name"):  # which track is which
                if stream.metadata.get(key):
                    with contextlib.suppress(Exception):
                        out.metadata[key] = stream.metadata[key]
            self._out[stream.index] = out
        self._output = output
        self._packets = self._input.demux(*self._in_streams)

    def mux_until(self, seconds: float) -> None:
        """Write every audio packet that starts before ``seconds``."""
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
                    raise InputError(f"cannot read audio ({ffmpeg_reason(exc)})",
                                     self.source) from exc
            packet = self._pending
            if packet.dts is None:  # a demuxer's final empty flush packet
                self._pending = None
                continue
            start = float(packet.pts * packet.time_base) if packet.pts is not None else 0.0
            if start > seconds:
                return
            self._pending = None
            index = packet.stream.index
            out = self._out[index]
            if self._copy[index]:
                packet.stream = out
                self._output.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    for encoded in out.encode(frame):
                        self._output.mux(encoded)

    def finish(self, seconds: float) -> None:
        """Write the packets that start before ``seconds``, drop the rest, flush."""
        self.mux_until(seconds - 1e-9)
        if self._packets is not None:
            self._packets = None
            self._flush_encoder()

    def _flush_encoder(self) -> None:
        for index, out in self._out.items():
            if not self._copy[index]:
                for encoded in out.encode(None):
                    self._output.mux(encoded)

    def close(self) -> None:
        if self._in_streams:
            self._in_streams = []
            self._packets = None
            self._input.close()
