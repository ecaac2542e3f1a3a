"""swap --at: one frame of a clip, swapped as the whole clip's swap shows it (swap/preview.py),
and the reader's seek that finds it (io.video_reader.VideoReader(from_time=))."""

from __future__ import annotations

import numpy as np
import pytest

from swaputil import single_thread


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def test_seeking_gives_the_frames_decoding_from_the_start_gives(videos_dir):
    """The frames from a time on, found by seeking to the keyframe before it, are the very
    frames (pixels, times, indices) that decoding the whole clip gives from that time on."""
    from facedancer_torch.io.video_reader import VideoReader

    clip = videos_dir / "crowd_720p.mp4"
    every = list(VideoReader(clip))
    for seconds in (0.0, 1.0, 2.37, every[-1].time):
        sought = list(VideoReader(clip, from_time=seconds, max_frames=3))
        decoded = [f for f in every if f.time >= seconds - 1e-9][:3]
        assert [(f.index, f.time) for f in sought] == [(f.index, f.time) for f in decoded]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(sought, decoded, strict=True))
    with pytest.raises(ValueError):
        VideoReader(clip, from_time=1.0, stride=2)


def test_a_seek_that_lands_past_the_time_decodes_from_the_start(videos_dir, tmp_path):
    """MPEG-TS has no exact index: a seek can land seconds past the time asked for. The
    reader notices and decodes from the clip's start instead: the same frames either way."""
    import av

    from facedancer_torch.io.video_reader import VideoReader

    ts = tmp_path / "clip.ts"
    with av.open(str(videos_dir / "talking_a.mp4")) as source, \
            av.open(str(ts), "w", format="mpegts") as out:
        stream = out.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    every = list(VideoReader(ts))
    for seconds in (1.0, 3.0):
        sought = list(VideoReader(ts, from_time=seconds, max_frames=3))
        decoded = [f for f in every if f.time >= seconds][:3]
        assert [f.time for f in sought] == [f.time for f in decoded]
        assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(sought, decoded, strict=True))


@pytest.mark.parametrize("suffix", [".webp", ".gif"])
def test_an_animation_starts_at_the_time_too(tmp_path, suffix):
    """An animated WebP (read by Pillow) and a GIF (no seeking in it) start at the time too."""
    from PIL import Image

    from facedancer_torch.io.video_reader import VideoReader

    path = tmp_path / f"anim{suffix}"
    frames = [Image.fromarray(np.full((64, 64, 3), i * 20, np.uint8)) for i in range(10)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    sought = list(VideoReader(path, from_time=0.3, max_frames=3))
    assert [(f.index, round(f.time, 3)) for f in sought] == [(3, 0.3), (4, 0.4), (5, 0.5)]
    assert np.allclose([int(f.rgb[0, 0, 0]) for f in sought], [60, 80, 100], atol=2)  # lossy


def test_the_frame_at_a_time_is_the_clips_swap_of_it(swapper, plan, videos_dir, tmp_path):
    """The still is the frame the whole clip's swap shows at that time: outside its matte the
    input frame bit for bit, inside within a grey level of the full run on average (the
    pipeline starts two seconds before instead of at the clip's start); tagged with which
    frame it is."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.io.video import read_frames
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import swap_stream

    clip = videos_dir / "talking_1face_512.mp4"  # 25 frames/s
    options = SwapOptions(watermark=False, batch_size=4)
    output, matte = tmp_path / "at.png", tmp_path / "at-matte.png"
    report = swapper.swap_clip_frame(clip, output, plan, 2.5,
                                     options.replace(matte=matte))
    # Frame 63 is shown from 2.48 to 2.52 s.
    assert report.changed and "the frame at 2.48 s, frame 63 of" in report.summary()
    frames = [f.rgb for f in read_frames(clip, max_frames=70)]
    whole = [rgb for _, rgb in swap_stream(swapper, iter(frames), plan, options, fps=25.0)]
    still, alpha = read_image(output), read_image(matte)[:, :, 0]
    assert np.array_equal(still[alpha == 0], frames[62][alpha == 0])
    inside = np.abs(still.astype(np.int16) - whole[62])[alpha > 0]
    change = np.abs(whole[62].astype(np.int16) - frames[62])[alpha > 0]
    assert inside.mean() < 1.0 and change.mean() > 10 * inside.mean(), (inside.mean(),
                                                                        change.mean())
    tag = read_provenance(output)
    assert tag["content"] == "synthetic media" and "frame 63 of" in tag["frame"]


def test_an_image_sequences_frame_is_named_by_its_number(swapper, plan, videos_dir, tmp_path):
    from facedancer_torch.io.images import write_image
    from facedancer_torch.io.video import read_frames
    from facedancer_torch.swap.options import SwapOptions

    for number, frame in enumerate(read_frames(videos_dir / "talking_1face_512.mp4",
                                               max_frames=10), start=101):
        write_image(tmp_path / f"shot_{number:04d}.png", frame.rgb)
    report = swapper.swap_clip_frame(tmp_path / "shot_%04d.png", tmp_path / "at.jpg", plan,
                                     0.2, SwapOptions(fps=25))
    assert "the frame at 0.2 s, frame 106 of shot_%04d.png" in report.summary()


def test_at_jobs_are_checked_before_any_model(photos_dir, videos_dir, tmp_path):
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.swap.checks import check_frame_job
    from facedancer_torch.swap.options import SwapOptions

    clip, photo = videos_dir / "talking_c.mp4", photos_dir / "fr_obama.jpg"
    still = tmp_path / "f.png"
    assert check_frame_job(clip, still, SwapOptions(), 1.0) == "video"
    for target, output, options, at, words in (
            (photo, still, SwapOptions(), 1.0, "not an image"),
            (photos_dir, still, SwapOptions(), 1.0, "not a folder"),
            (clip, tmp_path / "f.mp4", SwapOptions(), 1.0, "give an image as --output"),
            (clip, still, SwapOptions(start=1.0), 2.0, "--start / --end are for a whole clip"),
            (clip, still, SwapOptions(), 3600.0, "--at 1:00:00 is not inside the clip"),
            (clip, still, SwapOptions(matte=tmp_path / "m.mp4"), 1.0,
             "cannot write an image's matte")):
        with pytest.raises(FacedancerError, match=words):
            check_frame_job(target, output, options, at)
