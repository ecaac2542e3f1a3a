"""Video probing, decoding and encoding through PyAV (io/video.py), on real clips and
synthetic ones made here (odd sizes, 30000/1001 fps, rotation, GIF/WebP)."""

from __future__ import annotations

import io
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from facedancer_torch.errors import FacedancerError, InputError
from facedancer_torch.io import video as vio

NTSC = Fraction(30000, 1001)


def _decoded_audio(path) -> np.ndarray:
    import av

    with av.open(str(path)) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def _synthetic(count: int, width: int, height: int) -> list[np.ndarray]:
    """Smooth moving colour gradients with a bright top-left block (orientation marker)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for i in range(count):
        r = 128 + 100 * np.sin((xx + 3 * i) / 17.0)
        g = 128 + 100 * np.cos((yy - 2 * i) / 23.0)
        b = 128 + 60 * np.sin((xx + yy + 5 * i) / 31.0)
        rgb = np.stack([r, g, b], axis=-1)
        rgb[: height // 3, : width // 4] = 250
        frames.append(np.clip(rgb, 0, 255).astype(np.uint8))
    return frames


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# ------------------------------------------------------------------------- pure functions


def test_container_kind_and_codecs():
    assert vio.container_kind("a/b.MP4") == "mp4"
    assert vio.container_kind("x.m4v") == "mp4"
    assert vio.container_kind("x.gif") == "gif"
    assert vio.default_video_codec("webm") == "libvpx-vp9"
    assert vio.default_video_codec("webp") == "libwebp_anim"
    with pytest.raises(FacedancerError, match="out.avi"):
        vio.container_kind("out.avi")
    assert ".mp4" in vio.VIDEO_OUTPUT_SUFFIXES and ".gif" in vio.VIDEO_OUTPUT_SUFFIXES


def test_pixel_format_keeps_odd_sizes():
    assert vio.pixel_format_for("libx264", 640, 480) == "yuv420p"
    assert vio.pixel_format_for("libx264", 641, 480) == "yuv444p"
    assert vio.pixel_format_for("libx264", 640, 481) == "yuv444p"
    assert vio.pixel_format_for("gif", 3, 3) == "pal8"
    assert vio.pixel_format_for("libvpx-vp9", 641, 481) == "yuv420p"


def test_codec_options():
    assert vio.video_codec_options("libx264", 23, "fast") == {"crf": "23", "preset": "fast"}
    assert vio.video_codec_options("libvpx-vp9", 51)["crf"] == "63"
    assert vio.video_codec_options("libwebp_anim", quality=80)["quality"] == "80"
    assert vio.video_codec_options("gif") == {}
    with pytest.raises(FacedancerError, match="crf"):
        vio.video_codec_options("libx264", 52)
    with pytest.raises(FacedancerError, match="preset"):
        vio.video_codec_options("libx264", 18, "warp-speed")
    assert vio.muxer_options("mp4") == {"movflags": "+faststart"}
    assert vio.muxer_options("gif", loop=2) == {"loop": "2"}
    assert vio.muxer_options("mkv") == {}


def test_audio_copy_rules():
    assert vio.can_copy_audio("mp4", "aac")
    assert not vio.can_copy_audio("mp4", "pcm_s16le")
    assert vio.can_copy_audio("mov", "pcm_s16le")
    assert vio.can_copy_audio("mkv", "anything")
    assert not vio.can_copy_audio("webm", "aac")
    assert not vio.can_copy_audio("gif", "aac")


def test_rotation_and_rates():
    assert [vio.rotation_quarter_turns(r) for r in (0, 90, 180, -90, 270, -180)] == \
        [0, 1, 2, 3, 3, 2]
    with pytest.raises(FacedancerError):
        vio.rotation_quarter_turns(45)
    assert vio.as_fraction(29.97) == NTSC
    assert vio.as_fraction(23.976) == Fraction(24000, 1001)
    assert vio.as_fraction(25) == 25
    assert vio.as_fraction("30000/1001") == NTSC
    assert vio.as_fraction(NTSC) is NTSC
    with pytest.raises(FacedancerError):
        vio.as_fraction(0)


def test_gif_comment_round_trip():
    from PIL import Image

    buffer = io.BytesIO()
    frames = [Image.fromarray(f) for f in _synthetic(3, 40, 30)]
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=40)
    text = "synthetic media " * 40  # longer than one 255-byte sub-block
    tagged = vio.gif_insert_comment(buffer.getvalue(), text)
    assert vio.gif_comments(tagged) == [text]
    image = Image.open(io.BytesIO(tagged))  # still a valid GIF with all its frames
    assert image.n_frames == 3
    assert image.info["comment"].decode() == text
    with pytest.raises(ValueError):
        vio.gif_insert_comment(b"not a gif at all", "x")


def test_webp_xmp_round_trip():
    from PIL import Image

    buffer = io.BytesIO()
    frames = [Image.fromarray(f) for f in _synthetic(3, 40, 30)]
    frames[0].save(buffer, "WEBP", save_all=True, append_images=frames[1:], duration=40)
    metadata = {"comment": "synthetic <media> & more", "description": '{"a": "b"}'}
    tagged = vio.webp_insert_xmp(buffer.getvalue(), vio.xmp_packet(metadata))
    assert vio.parse_xmp(vio.webp_xmp(tagged)) == metadata
    image = Image.open(io.BytesIO(tagged))
    assert image.n_frames == 3
    assert b"synthetic &lt;media&gt;" in image.info["xmp"]
    assert vio.parse_xmp(b"<x:xmpmeta xmlns:x='adobe:ns:meta/'/>") == {}


# ------------------------------------------------------------------------- real clips


def test_probe_real_video(videos_dir):
    info = vio.probe_video(videos_dir / "talking_1face_512.mp4")
    assert (info.width, info.height) == (512, 512)
    assert info.fps == 25 and isinstance(info.fps, Fraction)
    assert info.frame_count == 200
    assert info.rotation == 0
    assert info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(8.0, abs=0.05)
    crowd = vio.probe_video(videos_dir / "crowd_720p.mp4")
    assert (crowd.width, crowd.height, crowd.frame_count) == (1280, 720, 105)


@pytest.mark.parametrize("name", ["talking_1face_512.mp4", "crowd_720p.mp4"])
def test_round_trip_keeps_count_fps_size_audio(videos_dir, tmp_path, name):
    source = videos_dir / name
    info = vio.probe_video(source)
    out = tmp_path / "out.mp4"
    first = None
    with vio.VideoReader(source) as reader, vio.VideoWriter(
            out, info.fps, crf=18, preset="ultrafast", audio_from=source,
            metadata={"comment": "round trip"}) as writer:
        for frame in reader:
            first = frame.rgb if first is None else first
            writer.write(frame.rgb)
    got = vio.probe_video(out)
    assert (got.width, got.height) == (info.width, info.height)
    assert got.fps == info.fps
    assert got.frame_count == info.frame_count
    assert got.codec == "h264" and got.pix_fmt == "yuv420p"
    assert got.has_audio and got.audio_codec == info.audio_codec
    np.testing.assert_array_equal(_decoded_audio(out), _decoded_audio(source))
    assert got.metadata["comment"] == "round trip"
    decoded = next(iter(vio.read_frames(out, max_frames=1))).rgb
    assert _mean_abs(decoded, first) < 3.0  # crf 18: close to the decoded input


def test_reader_stride_start_and_timestamps(videos_dir):
    path = videos_dir / "talking_1face_512.mp4"
    frames = list(vio.read_frames(path, stride=7, start=3, max_frames=5))
    assert [f.index for f in frames] == [3, 10, 17, 24, 31]
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in (3, 10, 17, 24, 31)])
    assert all(f.rgb.shape == (512, 512, 3) and f.rgb.dtype == np.uint8 for f in frames)
    reader = vio.VideoReader(path, stride=3)
    assert len(reader) == 67
    for count, _ in enumerate(reader):  # breaking early stops the decoding thread
        if count == 2:
            break
    reader.close()
    assert reader._thread is not None and not reader._thread.is_alive()


def test_source_timestamps_survive(videos_dir, tmp_path):
    source = videos_dir / "talking_a.mp4"
    info = vio.probe_video(source)
    frames = list(vio.read_frames(source, max_frames=12))
    out = tmp_path / "pts.mkv"
    with vio.VideoWriter(out, info.fps, time_base=info.time_base, preset="ultrafast") as w:
        for f in frames:
            w.write(f.rgb, pts=f.pts)
    again = list(vio.read_frames(out))
    assert len(again) == 12
    assert [f.time for f in again] == pytest.approx([f.time for f in frames], abs=1e-3)


def test_sample_frames_spread(videos_dir):
    frames = vio.sample_frames(videos_dir / "crowd_720p.mp4", 4)
    assert len(frames) == 4
    indices = [f.index for f in frames]
    assert indices == sorted(indices) and indices[0] == 0 and indices[-1] >= 60
    assert all(f.rgb.shape == (720, 1280, 3) for f in frames)


# ------------------------------------------------------------------------- synthetic clips


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".webm"])
def test_odd_size_and_ntsc_rate_exact(tmp_path, suffix):
    frames = _synthetic(15, 101, 77)
    out = tmp_path / f"odd{suffix}"
    with vio.VideoWriter(out, NTSC, crf=18, preset="ultrafast") as writer:
        for f in frames:
            writer.write(f)
    info = vio.probe_video(out)
    assert (info.width, info.height) == (101, 77)
    assert info.fps == NTSC
    assert info.frame_count == 15
    decoded = list(vio.read_frames(out))
    assert len(decoded) == 15
    assert decoded[14].time == pytest.approx(14 * 1001 / 30000, abs=1e-3)
    assert _mean_abs(decoded[5].rgb, frames[5]) < 4.0


def test_gif_and_webp_outputs(tmp_path):
    frames = _synthetic(10, 97, 64)
    tags = {"comment": "synthetic media", "description": "made by a test"}
    for suffix, tolerance in ((".gif", 8.0), (".webp", 4.0), (".png", 0.5), (".apng", 0.5)):
        out = tmp_path / f"anim{suffix}"
        with vio.VideoWriter(out, 25, metadata=tags) as writer:
            for f in frames:
                writer.write(f)
        info = vio.probe_video(out)
        assert (info.width, info.height, info.frame_count) == (97, 64, 10)
        assert info.fps == 25  # GIF stores 1/100 s and WebP 1/1000 s: 25 fps is exact
        decoded = list(vio.read_frames(out))
        assert len(decoded) == 10
        assert [f.time for f in decoded] == pytest.approx([i / 25 for i in range(10)])
        assert _mean_abs(decoded[7].rgb, frames[7]) < tolerance
        assert vio.read_video_metadata(out) == tags
    from PIL import Image

    for name in ("anim.gif", "anim.png", "anim.apng"):  # loop forever (FFmpeg's APNG: once)
        assert Image.open(tmp_path / name).info.get("loop") == 0, name
    assert Image.open(tmp_path / "anim.png").n_frames == 10


def test_png_text_round_trip():
    from PIL import Image

    buffer = io.BytesIO()
    frames = [Image.fromarray(f) for f in _synthetic(3, 40, 30)]
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=40)
    metadata = {"comment": "synthetic media", "model": "Gesicht \u00fcber \u00e9t\u00e9 \u2713"}
    tagged = vio.png_insert_text(buffer.getvalue(), metadata)
    assert vio.png_text(tagged) == metadata
    image = Image.open(io.BytesIO(tagged))  # still a valid APNG with all its frames
    assert image.n_frames == 3 and image.text == metadata
    with pytest.raises(ValueError):
        vio.png_insert_text(b"GIF89a not a png", metadata)


@pytest.mark.parametrize("rotation", [-90, 90, 180])
def test_rotation_written_and_applied(tmp_path, rotation):
    frames = _synthetic(4, 64, 48)  # upright frames, bright block top-left
    out = tmp_path / "rot.mp4"
    with vio.VideoWriter(out, 25, rotation=rotation, preset="ultrafast") as writer:
        for f in frames:
            writer.write(f)
    info = vio.probe_video(out)
    assert info.rotation == rotation
    assert (info.width, info.height) == (64, 48)
    swapped = vio.rotation_quarter_turns(rotation) % 2 == 1
    assert info.coded_size == ((48, 64) if swapped else (64, 48))
    decoded = next(iter(vio.read_frames(out))).rgb
    assert decoded.shape == (48, 64, 3)
    assert _mean_abs(decoded, frames[0]) < 4.0  # upright again, marker top-left
    assert decoded[:16, :16].mean() > 230


def test_audio_reencoded_when_container_cannot_hold_it(videos_dir, tmp_path):
    source = videos_dir / "talking_1face_512.mp4"  # AAC, which WebM cannot hold
    out = tmp_path / "out.webm"
    with pytest.warns(UserWarning, match="re-encoding"):
        with vio.VideoWriter(out, 25, audio_from=source, crf=40) as writer:
            for f in vio.read_frames(source, max_frames=5):
                writer.write(f.rgb)
    info = vio.probe_video(out)
    assert info.has_audio and info.audio_codec == "opus"
    assert info.frame_count == 5


def test_failure_leaves_nothing(tmp_path):
    out = tmp_path / "never.mp4"
    with pytest.raises(RuntimeError, match="boom"):
        with vio.VideoWriter(out, 25) as writer:
            writer.write(_synthetic(1, 32, 32)[0])
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="64x48"):
        with vio.VideoWriter(out, 25) as writer:
            writer.write(np.zeros((32, 32, 3), np.uint8))
            writer.write(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(FacedancerError, match="no frames"):
        with vio.VideoWriter(out, 25):
            pass
    assert list(tmp_path.iterdir()) == []


def test_bad_inputs_name_the_file(tmp_path):
    missing = tmp_path / "missing.mp4"
    with pytest.raises(InputError, match="missing.mp4: file does not exist"):
        vio.probe_video(missing)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4: empty file"):
        vio.probe_video(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video file at all\n" * 64)
    with pytest.raises(InputError, match="garbage.mp4"):
        vio.probe_video(garbage)
    with pytest.raises(InputError, match="garbage.mp4"):
        list(vio.read_frames(garbage))
    with pytest.raises(InputError, match="garbage.mp4"):
        vio.read_video_metadata(garbage)


def test_truncated_video_is_an_input_error(videos_dir, tmp_path):
    data = (videos_dir / "talking_a.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])  # moov atom at the end is gone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InputError, match="cut.mp4"):
            vio.probe_video(cut)


def _tagged_clip(path, frames, primaries, transfer, matrix, colour_range, pix_fmt="yuv420p",
                 codec="libx264"):
    """A clip whose stream carries a colour description, encoded with that matrix and range
    (as a phone or a camera writes them)."""
    import av

    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": "0"} if codec == "libx264" else \
            {"crf": "8", "x265-params": "log-level=error"}
        context = stream.codec_context
        context.color_primaries, context.color_trc = primaries, transfer
        context.colorspace, context.color_range = matrix, colour_range
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
                format=pix_fmt, dst_colorspace=matrix, dst_color_range=colour_range)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _as_a_player_shows(path) -> list[np.ndarray]:
    """Frames converted to RGB with the stream's own matrix and range, and where the stream
    says nothing, with what players assume (BT.709 for HD, BT.601 below; limited range)."""
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            matrix = frame.colorspace if frame.colorspace not in (0, 2) else \
                (1 if frame.width >= 1280 or frame.height >= 720 else 5)
            out.append(frame.reformat(format="rgb24", src_colorspace=matrix,
                                      src_color_range=frame.color_range or 1).to_ndarray())
    return out


@pytest.mark.parametrize("tags", [(1, 1, 1, 1), (1, 1, 1, 2), (9, 18, 9, 1)],
                         ids=["bt709", "bt709-full-range", "hlg-bt2020"])
def test_the_colour_description_is_kept(tmp_path, tags):
    """A tagged input (an HD phone video says BT.709; an HDR one BT.2020 with HLG) gives an
    output with the same description, converted back with its matrix and range, so a player
    shows it as it shows the input. Without it the output was BT.601 and untagged: shifted
    colours in HD, and HDR shown as SDR."""
    from facedancer_torch.io.probe import ColourTags

    frames = _synthetic(3, 1280, 720)
    source = tmp_path / "in.mp4"
    _tagged_clip(source, frames, *tags)
    info = vio.probe_video(source)
    assert info.colour == ColourTags(*tags)
    decoded = [f.rgb for f in vio.read_frames(source)]
    shown = _as_a_player_shows(source)
    errors = {}
    for keep in (False, True):
        out = tmp_path / f"out_{keep}.mp4"
        with vio.VideoWriter(out, 25, crf=0, preset="ultrafast",
                             colour=info.colour if keep else None) as writer:
            for rgb in decoded:
                writer.write(rgb)
        if keep:
            assert vio.probe_video(out).colour == info.colour
        errors[keep] = max(float(np.percentile(np.abs(a.astype(int) - b), 99.9))
                           for a, b in zip(shown, _as_a_player_shows(out)))
    # 4:2:0 chroma of saturated gradients: a few levels either way (measured 3); converted with
    # BT.601 and left untagged, as before: 29
    assert errors[True] <= 4 and errors[False] >= 10, errors


def test_an_untagged_input_gives_an_untagged_output_as_before(tmp_path):
    from facedancer_torch.io.probe import ColourTags

    frames = _synthetic(2, 320, 240)
    with vio.VideoWriter(tmp_path / "plain.mp4", 25, crf=0, preset="ultrafast") as writer:
        for rgb in frames:
            writer.write(rgb)
    assert vio.probe_video(tmp_path / "plain.mp4").colour == ColourTags()
    with vio.VideoWriter(tmp_path / "again.mp4", 25, crf=0, preset="ultrafast",
                         colour=ColourTags()) as writer:
        for rgb in frames:
            writer.write(rgb)
    assert (tmp_path / "plain.mp4").read_bytes() == (tmp_path / "again.mp4").read_bytes()


def test_every_audio_stream_is_carried(videos_dir, tmp_path):
    """A file with two audio tracks (an interview's second microphone, a commentary) keeps
    both, in their order, with their language and title, packet for packet; before only the
    first was copied."""
    import av

    source = videos_dir / "talking_a.mp4"
    two = tmp_path / "two_tracks.mkv"
    with av.open(str(source)) as original, av.open(str(two), "w") as out:
        video_in, audio_in = original.streams.video[0], original.streams.audio[0]
        video_out = out.add_stream_from_template(video_in)
        tracks = [out.add_stream_from_template(audio_in) for _ in range(2)]
        for track, (language, title) in zip(tracks, (("eng", "main"), ("fra", "commentary"))):
            track.metadata["language"], track.metadata["title"] = language, title
        for packet in original.demux(video_in, audio_in):
            if packet.dts is None:
                continue
            if packet.stream is video_in:
                packet.stream = video_out
                out.mux(packet)
            else:
                for track in tracks:
                    copy = av.Packet(bytes(packet))
                    copy.pts, copy.dts, copy.time_base = packet.pts, packet.dts, packet.time_base
                    copy.stream = track
                    out.mux(copy)
    frames = [f.rgb for f in vio.read_frames(two, max_frames=6)]
    output = tmp_path / "out.mkv"
    with vio.VideoWriter(output, vio.probe_video(two).fps, crf=30, preset="ultrafast",
                         audio_from=two, trim_audio=True) as writer:
        for rgb in frames:
            writer.write(rgb)
    with av.open(str(output)) as result:
        streams = result.streams.audio
        assert len(streams) == 2
        assert [(s.metadata.get("language"), s.metadata.get("title")) for s in streams] == \
            [("eng", "main"), ("fra", "commentary")]
    decoded = []
    for i in range(2):
        with av.open(str(output)) as result:
            decoded.append(np.concatenate([f.to_ndarray() for f in result.decode(audio=i)],
                                          axis=1))
    np.testing.assert_array_equal(decoded[0], decoded[1])
    assert decoded[0].shape[1] > 0


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_the_start_timecode_is_kept(tmp_path, suffix):
    """A camera's clip starts at a timecode (a MOV tmcd track) that an editor conforms it to
    the timeline by; the output starts at the same one (before: lost). GIF has none."""
    import av

    frames = _synthetic(3, 160, 120)
    source = tmp_path / "camera.mov"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.metadata["timecode"] = "10:20:30:12"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    info = vio.probe_video(source)
    assert info.timecode == "10:20:30:12"
    for out, expected in ((tmp_path / f"out{suffix}", "10:20:30:12"),
                          (tmp_path / "out.gif", None)):
        with vio.VideoWriter(out, info.fps, crf=30, preset="ultrafast",
                             timecode=info.timecode) as writer:
            for rgb in frames:
                writer.write(rgb)
        assert vio.probe_video(out).timecode == expected


def test_subtitles_are_carried_where_the_container_holds_them(videos_dir, tmp_path):
    """An MKV with an SRT subtitle stream: an .mkv output keeps it (the same cues); an .mp4
    cannot hold SRT, so it is left out with a warning naming it (before: dropped silently)."""
    import av

    srt = tmp_path / "cues.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:00,400\nHello\n\n"
                   "2\n00:00:00,400 --> 00:00:00,800\nWorld\n\n")
    source = tmp_path / "subtitled.mkv"
    with av.open(str(videos_dir / "talking_a.mp4")) as clip, av.open(str(srt)) as cues, \
            av.open(str(source), "w") as out:
        video = out.add_stream_from_template(clip.streams.video[0])
        text = out.add_stream_from_template(cues.streams.subtitles[0])
        for packet in clip.demux(clip.streams.video[0]):
            if packet.dts is not None:
                packet.stream = video
                out.mux(packet)
        for packet in cues.demux(cues.streams.subtitles[0]):
            if packet.dts is not None:
                packet.stream = text
                out.mux(packet)
    frames = [f.rgb for f in vio.read_frames(source, max_frames=30)]
    for suffix in (".mkv", ".mp4"):
        output = tmp_path / f"out{suffix}"
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with vio.VideoWriter(output, vio.probe_video(source).fps, crf=30,
                                 preset="ultrafast", audio_from=source,
                                 trim_audio=True) as writer:
                for rgb in frames:
                    writer.write(rgb)
        with av.open(str(output)) as result:
            streams = result.streams.subtitles
            cues = [bytes(p) for p in result.demux(*streams) if p.size] if streams else []
        messages = [str(w.message) for w in caught]
        if suffix == ".mkv":
            assert cues == [b"Hello", b"World"] and not messages
        else:
            assert cues == [] and any("subtitle stream 1 (srt) cannot be stored in .mp4" in m
                                      for m in messages), messages


def test_an_rgb_matrix_is_not_claimed_for_yuv_pixels(tmp_path):
    """A source coded as RGB (matrix 0, GBR) gives YUV pixels here: claiming matrix 0 for
    them would make players read Y, U, V as G, B, R; the output says nothing instead."""
    from facedancer_torch.io.probe import ColourTags

    red = [np.full((64, 64, 3), (200, 30, 40), np.uint8)] * 3
    with vio.VideoWriter(tmp_path / "out.mp4", 25, crf=0, preset="ultrafast",
                         colour=ColourTags(1, 13, 0, 2)) as writer:
        for rgb in red:
            writer.write(rgb)
    assert vio.probe_video(tmp_path / "out.mp4").colour == ColourTags(1, 13, 2, 2)
    decoded = [f.rgb for f in vio.read_frames(tmp_path / "out.mp4")][0]
    assert np.abs(decoded.astype(int) - red[0]).max() <= 2


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_an_animation_keeps_its_last_frame_on_screen(tmp_path, suffix):
    """FFmpeg's encoders guess the last frame's delay (66 ms for WebP, the previous delay for
    APNG, 1/fps for GIF): a one-second hold at the end of a loop was lost."""
    from PIL import Image

    frames = _synthetic(4, 40, 30)
    out = tmp_path / f"hold{suffix}"
    with vio.VideoWriter(out, Fraction(5), time_base=Fraction(1, 1000),
                         metadata={"comment": "synthetic media"}) as writer:
        for frame, pts, duration in zip(frames, (0, 40, 160, 200), (0.04, 0.12, 0.04, 1.0)):
            writer.write(frame, pts, duration)
    with Image.open(out) as image:
        shown = []
        for index in range(image.n_frames):
            image.seek(index)
            image.load()
            shown.append(int(image.info["duration"]))
    assert shown == [40, 120, 40, 1000]
    assert vio.read_video_metadata(out) == {"comment": "synthetic media"}
    assert [round(f.duration, 3) for f in vio.read_frames(out)] == [0.04, 0.12, 0.04, 1.0]


def test_the_codec_an_output_gets():
    """auto keeps an editor's intermediate (ProRes, DNxHR, FFV1) with its profile; delivery
    codecs get the container's default; a container that cannot hold a choice is refused."""
    from facedancer_torch.io.codecs import choose_codec, encoder_keeps_alpha

    assert choose_codec("mov", "auto", "prores", "HQ") == ("prores_ks", "hq")
    assert choose_codec("mkv", "auto", "prores", "XQ") == ("prores_ks", "4444xq")
    assert choose_codec("mov", "auto", "prores", "LT", alpha=True) == ("prores_ks", "4444")
    assert choose_codec("mp4", "auto", "prores", "HQ") == ("libx264", None)  # MP4 holds none
    assert choose_codec("mov", "auto", "dnxhd", "DNXHR HQX") == ("dnxhd", "dnxhr_hqx")
    assert choose_codec("mov", "auto", "dnxhd", "DNXHD") == ("dnxhd", "dnxhr_hq")
    assert choose_codec("mkv", "auto", "ffv1") == ("ffv1", None)
    assert choose_codec("mov", "auto", "hevc", "Main 10") == ("libx264", None)
    assert choose_codec("webm", "auto", "h264") == ("libvpx-vp9", None)
    assert choose_codec("mp4", "h265", "h264") == ("libx265", None)
    assert choose_codec("mov", "prores", "h264") == ("prores_ks", "hq")
    assert choose_codec("gif", "auto", "prores", "HQ") == ("gif", None)
    # HDR from a phone (HEVC Main 10, HLG): 8 bits would band, H.264 High 10 plays nowhere
    assert choose_codec("mov", "auto", "hevc", "Main 10", hdr=True) == ("libx265", None)
    assert choose_codec("webm", "auto", "hevc", "Main 10", hdr=True) == ("libvpx-vp9", None)
    for kind, choice in (("mp4", "prores"), ("mov", "ffv1"), ("gif", "h264"), ("mp4", "x")):
        with pytest.raises(FacedancerError):
            choose_codec(kind, choice)
    assert encoder_keeps_alpha("prores_ks", "4444", "mov")
    assert not encoder_keeps_alpha("prores_ks", "hq", "mov")
    assert not encoder_keeps_alpha("libx264", None, "mp4")
    assert encoder_keeps_alpha("libvpx-vp9", None, "webm")


@pytest.mark.parametrize("suffix,codec,profile,expected", [
    (".mov", "prores_ks", "4444", ("prores", "4444", True)),
    (".mkv", "ffv1", None, ("ffv1", None, True)),
    (".mp4", "libx265", None, ("hevc", "Main", False)),
    (".mov", "dnxhd", "dnxhr_sq", ("dnxhd", "DNXHR SQ", False)),
])
def test_intermediate_codecs_round_trip(tmp_path, suffix, codec, profile, expected):
    frames = _synthetic(3, 256, 144)
    alpha = np.zeros((144, 256), np.uint8)
    alpha[20:120, 40:200] = 255
    out = tmp_path / f"clip{suffix}"
    with vio.VideoWriter(out, 25, codec=codec, profile=profile, alpha=True) as writer:
        for frame in frames:
            writer.write(frame, alpha=alpha)
    info = vio.probe_video(out)
    assert (info.codec, info.profile, info.has_alpha) == expected
    decoded = list(vio.read_frames(out))
    # the picture came back (4:2:2 and 4:2:0 blur the synthetic frames' saturated edges)
    assert len(decoded) == 3 and _mean_abs(decoded[1].rgb[20:120, 40:200],
                                           frames[1][20:120, 40:200]) < 10.0
    if expected[2]:  # the alpha channel came back
        np.testing.assert_array_equal(decoded[1].rgba[:, :, 3] > 127, alpha > 127)
    if codec == "libx265":
        import av

        with av.open(str(out)) as container:  # QuickTime plays HEVC tagged hvc1 only
            assert container.streams.video[0].codec_tag == "hvc1"


def test_ten_bit_frames_round_trip_at_ten_bits(tmp_path):
    """A 16-bit gradient through a 10-bit writer and a deep reader keeps 10-bit steps (the
    8-bit frames round it to a quarter of the levels)."""
    from facedancer_torch.io.codecs import encoder_keeps_depth

    assert encoder_keeps_depth("ffv1", None) and encoder_keeps_depth("prores_ks", "hq")
    assert not encoder_keeps_depth("libx264", None)
    assert not encoder_keeps_depth("dnxhd", "dnxhr_hq") and encoder_keeps_depth("dnxhd",
                                                                                "dnxhr_hqx")
    deep = np.repeat(np.linspace(20000, 21000, 96)[None, :, None], 48, axis=0)
    deep = np.repeat(deep, 3, axis=2).astype(np.uint16)
    eight = ((deep.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    out = tmp_path / "deep.mkv"
    with vio.VideoWriter(out, 25, codec="ffv1", deep=True) as writer:
        writer.write(eight, deep=deep)
    info = vio.probe_video(out)
    assert (info.pix_fmt, info.bit_depth) == ("yuv444p10le", 10)
    decoded = next(iter(vio.VideoReader(out, deep=True)))
    assert decoded.deep.dtype == np.uint16
    np.testing.assert_array_equal(decoded.rgb, vio.to_8_bits(decoded.deep))
    error = np.abs(decoded.deep.astype(int) - deep)
    assert error.max() <= 64, error.max()  # within one 10-bit step
    assert len(np.unique(decoded.deep[:, :, 1])) > 2 * len(np.unique(eight[:, :, 1]))
    assert next(iter(vio.VideoReader(out))).deep is None  # only on request


def test_frame_patterns(tmp_path):
    from PIL import Image

    from facedancer_torch.io import sequence as seq

    assert seq.is_sequence_pattern("plate/shot_%04d.png") and seq.is_sequence_pattern("f%d.jpg")
    assert not seq.is_sequence_pattern("shot.png") and not seq.is_sequence_pattern("a_%d.mp4")
    assert seq.frame_path("plate/shot_%04d.png", 7) == Path("plate/shot_0007.png")
    for name in ("s_0001.png", "s_0002.png", "s_0010.png", "s_12345.png", "s_0003.jpg",
                 "t_0004.png"):
        Image.new("RGB", (8, 6)).save(tmp_path / name)
    assert [n for n, _ in seq.sequence_files(tmp_path / "s_%04d.png")] == [1, 2, 10]
    assert [n for n, _ in seq.sequence_files(tmp_path / "s_%d.png")] == [1, 2, 10, 12345]
    info = seq.probe_sequence(tmp_path / "s_%04d.png", 24)
    assert (info.width, info.height, info.frame_count, info.fps) == (8, 6, 3, 24)
    with pytest.raises(InputError, match="no frames match"):
        seq.probe_sequence(tmp_path / "none_%04d.png")
    Image.new("RGB", (9, 6)).save(tmp_path / "s_0011.png")
    with pytest.raises(InputError, match="s_0011.png"):
        list(seq.SequenceReader(tmp_path / "s_%04d.png"))


def test_sequence_writer_labels_changed_frames_and_leaves_nothing_on_failure(tmp_path):
    from facedancer_torch.io.images import read_image, read_image_metadata
    from facedancer_torch.io.sequence import SequenceWriter

    frames = _synthetic(3, 32, 24)
    pattern = tmp_path / "out" / "f_%03d.png"
    with SequenceWriter(pattern, start_number=5, metadata={"comment": "synthetic media"}) as w:
        for index, frame in enumerate(frames):
            w.write(frame, changed=index != 1)
    assert sorted(p.name for p in pattern.parent.iterdir()) == ["f_005.png", "f_006.png",
                                                               "f_007.png"]
    np.testing.assert_array_equal(read_image(pattern.parent / "f_006.png"), frames[1])
    assert read_image_metadata(pattern.parent / "f_005.png") == {"comment": "synthetic media"}
    assert read_image_metadata(pattern.parent / "f_006.png") == {}  # not changed, not labelled
    failed = tmp_path / "failed" / "f_%03d.png"
    with pytest.raises(RuntimeError):
        with SequenceWriter(failed) as writer:
            writer.write(frames[0])
            raise RuntimeError("interrupted")
    assert list(failed.parent.iterdir()) == []  # no partial sequence, no hidden folder
