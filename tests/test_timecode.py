"""Times an editor gives: SMPTE timecodes with frames for --at, --start and --end
(io/timecode.py), counted at the clip's rate from its own start timecode."""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pytest

from facedancer_torch.errors import FacedancerError
from facedancer_torch.io.timecode import is_timecode, timecode_frame, timecode_seconds
from facedancer_torch.swap.options import clip_time

NTSC = Fraction(30000, 1001)


def test_timecodes_count_frames_at_the_rate():
    assert is_timecode("01:00:02:12") and is_timecode("00:01:00;02")
    assert not is_timecode("1:02.5") and not is_timecode("83.5") and not is_timecode(None)
    assert timecode_frame("00:00:07:00", 25) == 175
    assert timecode_frame("01:00:02:12", 25) == (3600 + 2) * 25 + 12
    assert timecode_seconds("01:00:02:12", 25, "01:00:00:00") == pytest.approx(2.48)
    assert timecode_seconds("00:00:07:00", 25) == 7.0
    # non-drop at 29.97 counts every frame: an hour of it is 3.6 s more than an hour
    assert timecode_seconds("01:00:00:00", NTSC) == pytest.approx(3603.6)


def test_drop_frame_timecode_keeps_to_the_clock():
    assert timecode_frame("00:00:59;29", NTSC) == 1799
    assert timecode_frame("00:01:00;02", NTSC) == 1800  # 00 and 01 of the minute are skipped
    assert timecode_frame("00:10:00;00", NTSC) == 17982  # not in every tenth minute
    assert timecode_seconds("01:00:00;00", NTSC) == pytest.approx(3600, abs=0.01)
    assert timecode_frame("00:01:00;04", NTSC * 2) == 3600  # 59.94: four skipped
    # a clip whose start timecode is drop-frame counts a timecode typed with ':' so too
    assert timecode_seconds("00:01:00:02", NTSC, "00:00:00;00") == pytest.approx(1800 / NTSC)


@pytest.mark.parametrize("text, fps, start, words", [
    ("00:00:01:25", 25, None, "numbers its frames 00-24"),
    ("00:01:00;00", NTSC, None, "skips frames 00-01 of this minute"),
    ("00:00:01;00", 25, None, "drop-frame timecode (;) is for 29.97 and 59.94"),
    ("00:61:00:00", 25, None, "minutes and seconds count 00-59"),
    ("00:59:59:00", 25, "01:00:00:00", "before the clip's first frame: its timecode starts "
                                       "at 01:00:00:00"),
])
def test_a_wrong_timecode_is_one_line(text, fps, start, words):
    with pytest.raises(FacedancerError, match="--at") as caught:
        timecode_seconds(text, fps, start)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def _clip_with_timecode(path, timecode: str, frames: int = 50):
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.metadata["timecode"] = timecode
        for index in range(frames):
            rgb = np.full((48, 64, 3), index * 5, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_timecode_counts_from_the_clips_own_start(tmp_path, photos_dir):
    clip = _clip_with_timecode(tmp_path / "camera.mov", "01:00:00:00")
    assert clip_time("01:00:01:05", "--at", clip) == pytest.approx(1.2)
    assert clip_time("1:05", "--at", clip) == 65.0  # MM:SS as before
    with pytest.raises(FacedancerError, match="starts at 01:00:00:00"):
        clip_time("00:00:01:05", "--at", clip)
    with pytest.raises(FacedancerError, match="give one clip, or the time in seconds"):
        clip_time("00:00:01:05", "--start", photos_dir / "df_img1.jpg")
    with pytest.raises(FacedancerError, match="give one clip"):
        clip_time("00:00:01:05", "--start", tmp_path)  # a folder: each clip has its own


def test_faces_and_swap_at_take_a_timecode(videos_dir, tmp_path, capsys):
    """`--at 00:00:01:00` on the 25 frames/s crowd clip (no start timecode) is the frame at
    1 s, as `--at 1` is."""
    from facedancer_torch.cli import main

    def run(*argv) -> str:
        saved, sys.argv = sys.argv, ["facedancer", *map(str, argv)]
        try:
            main()
        except SystemExit as exc:
            assert not exc.code, capsys.readouterr().err
        finally:
            sys.argv = saved
        return capsys.readouterr().out

    clip = videos_dir / "crowd_720p.mp4"
    by_timecode = run("faces", clip, "--at", "00:00:01:00")
    assert by_timecode == run("faces", clip, "--at", "1")
    assert by_timecode.startswith("crowd_720p.mp4, the frame at 1 s (frame 26)")
    assert run("faces", clip, "--at", "00:00:01:01").startswith(
        "crowd_720p.mp4, the frame at 1.04 s (frame 27)")


def test_the_ui_span_boxes_take_a_timecode(tmp_path):
    pytest.importorskip("gradio")
    from facedancer_torch.ui import app as ui_app

    clip = _clip_with_timecode(tmp_path / "camera.mov", "01:00:00:00")
    options = ui_app._options("all", 7.0, 0.0, False, start="01:00:00:10",
                              end="01:00:01:00", clip=str(clip))
    assert (options.start, options.end) == (pytest.approx(0.4), pytest.approx(1.0))


def test_a_frame_is_named_by_its_timecode_too(tmp_path, capsys):
    """`facedancer faces` (and `swap --at`, swap/preview.py) name the frame by the clip's own
    timecode when it has one; frame_timecode inverts timecode_seconds, drop-frame included."""
    from facedancer_torch.io.timecode import frame_timecode

    assert frame_timecode(62, 25, "01:00:00:00") == "01:00:02:12"
    assert frame_timecode(5, 25, None) is None
    for index in range(0, 120000, 7):
        assert timecode_frame(frame_timecode(index, NTSC, "00:00:00;00"), NTSC) == index
    assert frame_timecode(1800, NTSC, "00:00:00;00") == "00:01:00;02"
    clip = _clip_with_timecode(tmp_path / "camera.mov", "01:00:00:00")
    from facedancer_torch.cli import main

    saved, sys.argv = sys.argv, ["facedancer", "faces", str(clip), "--at", "01:00:01:05"]
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    finally:
        sys.argv = saved
    assert capsys.readouterr().out.startswith(
        "camera.mov, the frame at 1.2 s (timecode 01:00:01:05, frame 31): 0 faces")
