"""Shot cuts (faces/shots.py): an edited video's cut ends every track, so the person after a
cut is never taken for the one before it, even where their faces overlap. Real clips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facedancer_torch.faces.shots import ShotCuts


def _frames(path, count, size=None):
    from facedancer_torch.io.video import read_frames

    frames = [f.rgb for f in read_frames(path, max_frames=count)]
    if size is not None:
        frames = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames]
    return frames


@pytest.mark.parametrize("name", ["talking_a.mp4", "talking_b.mp4", "talking_c.mp4",
                                  "crowd_720p.mp4"])
def test_a_continuous_shot_has_no_cut(videos_dir, name):
    shots = ShotCuts()
    assert not any(shots(frame) for frame in _frames(videos_dir / name, 60))
    assert shots.cuts == 0


def test_a_cut_between_two_clips_is_found_once(videos_dir):
    a = _frames(videos_dir / "talking_a.mp4", 10, 512)
    b = _frames(videos_dir / "talking_b.mp4", 10, 512)
    shots = ShotCuts()
    cuts = [shots(frame) for frame in a + b]
    assert cuts == [False] * 10 + [True] + [False] * 9


def test_reference_decides_per_shot(swapper, videos_dir, tmp_path):
    """Two speakers framed alike, joined by a cut: --reference with the first swaps only the
    frames before the cut, with the second only those after it (before shot cuts: all 20 and
    none, the second person continued the first one's track)."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    a = _frames(videos_dir / "talking_a.mp4", 10, 512)
    b = _frames(videos_dir / "talking_b.mp4", 10, 512)
    boxes = [swapper.detector.detect(frames[5])[0].box for frames in (a, b)]
    from facedancer_torch.faces.tracking import box_iou

    assert box_iou(np.asarray([boxes[0]]), np.asarray(boxes[1]))[0, 0] > 0.3  # same place
    source = tmp_path / "source.png"
    cv2.imwrite(str(source), a[0][..., ::-1])  # anyone: the selection is what is tested
    for person, frames in (("a", a), ("b", b)):
        reference = tmp_path / f"{person}.png"
        cv2.imwrite(str(reference), frames[5][..., ::-1])
        options = SwapOptions(reference=[reference], batch_size=4)
        stats = VideoStats()
        out = [rgb for _, rgb in swap_stream(swapper, iter(a + b), swapper.plan([source],
                                                                                 options),
                                             options, stats=stats)]
        changed = [not np.array_equal(o, i) for o, i in zip(out, a + b)]
        expected = [True] * 10 + [False] * 10 if person == "a" else [False] * 10 + [True] * 10
        assert changed == expected, (person, changed)
        assert stats.cuts == 1


def test_live_tracker_starts_afresh_at_a_cut(swapper, videos_dir):
    """The live loop's tracker (a video file given to `facedancer live --input`): the face
    after a cut gets a new track, found by a whole-frame search on the cut frame itself."""
    from facedancer_torch.swap.live import LiveSettings, RoiTracker

    a = _frames(videos_dir / "talking_a.mp4", 6, 512)
    b = _frames(videos_dir / "talking_b.mp4", 6, 512)
    tracker = RoiTracker(swapper.detector, LiveSettings(detect_every=10, background=False))
    try:
        ids = []
        for frame in a + b:
            before = tracker.full_detections
            faces = tracker.update(frame)
            ids.append({f.track_id for f in faces if not f.refilled})
            if len(ids) == 7:
                assert tracker.full_detections == before + 1  # the cut frame: searched whole
    finally:
        tracker.close()
    assert all(i == ids[0] for i in ids[:6]) and all(i == ids[6] for i in ids[6:])
    assert ids[0] and ids[6] and not ids[0] & ids[6]


def test_the_video_summary_says_how_many_cuts():
    from pathlib import Path

    from facedancer_torch.swap.report import FileReport

    report = FileReport(path=Path("out.mp4"), kind="video", detected=80, swapped=40, frames=80,
                        frames_swapped=40, cuts=1)
    assert report.summary() == ("out.mp4: 40 of 80 frames with a swapped face (40 without), 40 "
                                "face swaps in all, 1 shot cut (faces tracked afresh after each)")
    assert "cut" not in FileReport(path=Path("out.mp4"), kind="video", frames=3).summary()


def test_a_cross_fade_hands_the_track_to_the_next_speaker(swapper, videos_dir, tmp_path):
    """A cross-fade is no cut (every step is small), so the track carries on through it; the
    identity re-check every IDENTITY_RECHECK frames finds the other person and decides again.
    (Without it: --reference with the first speaker swapped the second for the whole shot.)"""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    a = _frames(videos_dir / "talking_a.mp4", 34, 512)
    b = _frames(videos_dir / "talking_b.mp4", 32, 512)
    # 20 frames long: each step moves the histograms by at most 0.17 (a 10-frame fade's steps
    # reach 0.26, and one of them counts as a cut, which ends the track as well)
    fade = [cv2.addWeighted(a[14 + i], 1 - (i + 1) / 21, b[i], (i + 1) / 21, 0)
            for i in range(20)]
    stream = a[:14] + fade + b[20:]  # 46 frames
    source = tmp_path / "source.png"
    cv2.imwrite(str(source), a[0][..., ::-1])
    for person, frames in (("a", a), ("b", b)):
        reference = tmp_path / f"{person}.png"
        cv2.imwrite(str(reference), frames[5][..., ::-1])
        options = SwapOptions(reference=[reference], batch_size=4)
        stats = VideoStats()
        out = [rgb for _, rgb in swap_stream(swapper, iter(stream), swapper.plan([source],
                                                                                 options),
                                             options, stats=stats)]
        changed = [not np.array_equal(o, i) for o, i in zip(out, stream)]
        first, last = changed[:12], changed[-12:]
        assert stats.cuts == 0
        assert (all(first) and not any(last)) if person == "a" else \
            (not any(first) and all(last)), (person, changed)


def _camera_move(frames, kind):
    """The benchmark's synthetic camera (benchmarks/shots.py camera_move)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from shots import camera_move

    return camera_move(frames, kind)


@pytest.mark.parametrize("kind", ["zoom", "shake"])
def test_a_moving_camera_is_no_cut(videos_dir, kind):
    """A zoom with a pan, or a handheld shake, moves the whole picture as much as a cut changes
    it (as is, most frames were cuts); fitted to the camera's move, one shot stays one shot."""
    frames = _camera_move(_frames(videos_dir / "talking_b.mp4", 60), kind)
    found = {}
    for motion in (False, True):
        shots = ShotCuts(motion=motion)
        for frame in frames:
            shots(frame)
        found[motion] = shots.cuts
    assert found[True] == 0 and found[False] >= 15, found


def test_a_cut_between_moving_shots_is_found_once(videos_dir):
    a = _camera_move(_frames(videos_dir / "talking_a.mp4", 60, 512), "zoom")[-15:]
    b = _camera_move(_frames(videos_dir / "talking_b.mp4", 15, 512), "shake")
    shots = ShotCuts()
    assert [shots(frame) for frame in a + b] == [False] * 15 + [True] + [False] * 14


def test_a_zoomed_and_panned_face_stays_swapped(swapper, videos_dir, monkeypatch):
    """End to end: with false cuts every frame or two, each new track waited to be confirmed
    and the face blinked between swapped and not; now every frame is swapped."""
    from facedancer_torch.faces import shots
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    frames = _camera_move(_frames(videos_dir / "talking_b.mp4", 48, 384), "zoom")
    plan = swapper.plan([videos_dir.parent / "photos" / "df_img1.jpg"])
    unchanged = {}
    for motion in (False, True):
        monkeypatch.setattr(shots, "SHOT_MOTION_FIT", motion)
        stats = VideoStats()
        out = [rgb for _, rgb in swap_stream(swapper, iter(frames), plan,
                                             SwapOptions(batch_size=4), stats=stats)]
        unchanged[motion] = sum(np.array_equal(o, i) for o, i in zip(out, frames))
    assert unchanged[True] == 0 and stats.cuts == 0
    assert unchanged[False] >= 5, unchanged


@pytest.mark.parametrize("length", [1, 2])
def test_a_flash_is_no_cut_and_its_frames_stay_swapped(swapper, videos_dir, monkeypatch,
                                                       length):
    """A camera flash (the whole frame much brighter for a frame or two) jumps like a cut
    twice; taken for two cuts, the flash's faces got a track that ended before it was confirmed
    (3 detections) and the original face showed for the flash's frames. The frame after it
    goes back to the picture before it, which makes the flash no new shot."""
    from facedancer_torch.faces import shots
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    frames = _frames(videos_dir / "talking_b.mp4", 24, 384)
    for k in range(12, 12 + length):
        frames[k] = np.clip(frames[k].astype(np.float32) * 1.7 + 25, 0, 255).astype(np.uint8)
    plan = swapper.plan([videos_dir.parent / "photos" / "df_img1.jpg"])
    unchanged = {}
    for flash_frames in (0, shots.SHOT_FLASH_FRAMES):
        monkeypatch.setattr(shots, "SHOT_FLASH_FRAMES", flash_frames)
        cuts = ShotCuts()
        for frame in frames:
            cuts(frame)
        assert (cuts.cuts, cuts.flashes) == ((0, 1) if flash_frames else (2, 0))
        stats = VideoStats()
        out = [rgb for _, rgb in swap_stream(swapper, iter(frames), plan,
                                             SwapOptions(batch_size=4), stats=stats)]
        unchanged[flash_frames] = [i for i, (o, f) in enumerate(zip(out, frames))
                                   if np.array_equal(o, f)]
        assert stats.cuts == (0 if flash_frames else 2)
    assert unchanged[shots.SHOT_FLASH_FRAMES] == []
    assert unchanged[0] == list(range(12, 12 + length))


def test_the_fitted_move_is_where_the_camera_took_the_picture(videos_dir):
    """ShotCuts.move: a frame shifted and zoomed as a camera would, the affine that takes a
    point of the previous frame to the current one, within a pixel in a 1280x720 frame; none
    for a still step or a cut."""
    frames = _frames(videos_dir / "crowd_720p.mp4", 2)
    height, width = frames[0].shape[:2]
    for dx, dy, zoom in ((60, -30, 1.0), (0, 0, 1.15), (-80, 20, 0.95)):
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, zoom)
        matrix[:, 2] += (dx, dy)
        moved = cv2.warpAffine(frames[0], matrix, (width, height), borderMode=cv2.BORDER_REFLECT)
        shots = ShotCuts()
        shots(frames[0])
        assert not shots(moved) and shots.move is not None
        for point in ((400, 300, 1), (900, 500, 1)):
            assert np.abs(shots.move @ point - matrix @ point).max() < 1.0
    shots = ShotCuts()
    for frame in frames:
        shots(frame)
        assert shots.move is None  # a still step: no jump, nothing fitted
