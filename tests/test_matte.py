"""--matte: how much of each output pixel the swapped faces replaced, for stills, clips, frame
sequences and folders (swap/matte.py)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def _grey(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        assert image.mode == "L"  # one grey channel
        return np.asarray(image)


def test_a_stills_matte_is_where_the_output_changed(swapper, plan, photos_dir, tmp_path):
    """Black wherever the output is the input's own pixel (bit for bit, no watermark), white
    over each swapped face, each of a group's faces its own blob; the matte carries no
    synthetic-media tag, and a picture with nothing swapped gets an all-black one."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.io.provenance import read_provenance
    from facedancer_torch.swap.options import SwapOptions

    target = photos_dir / "df_selfie-many-people.jpg"
    output, matte = tmp_path / "out.png", tmp_path / "matte.png"
    report = swapper.swap_image_file(target, output, plan,
                                     SwapOptions(matte=matte, watermark=False))
    assert report.swapped >= 3
    alpha = _grey(matte)
    before, after = read_image(target), read_image(output)
    assert alpha.shape == before.shape[:2]
    changed = np.abs(after.astype(np.int16) - before).max(axis=2) > 0
    assert not changed[alpha == 0].any()  # nothing outside the matte moved
    assert (alpha[changed] > 0).all()
    assert (alpha == 0).mean() > 0.5  # the faces, not the picture
    # Each swapped face is its own white blob (the box's centre: inside the face).
    centres = [(int((f.box[0] + f.box[2]) / 2), int((f.box[1] + f.box[3]) / 2))
               for f in swapper.detect(before)]
    assert sum(alpha[y, x] >= 250 for x, y in centres) >= 3
    assert read_provenance(matte) is None and read_provenance(output) is not None

    landscape = tmp_path / "landscape.png"  # no face: the output is the input, the matte black
    from facedancer_torch.io.images import write_image

    write_image(landscape, np.full((120, 160, 3), 90, np.uint8))
    report = swapper.swap_image_file(landscape, tmp_path / "l.png", plan,
                                     SwapOptions(matte=tmp_path / "l-matte.tif"))
    assert not report.changed and _grey(tmp_path / "l-matte.tif").max() == 0


def test_a_clips_matte_has_its_frames(swapper, plan, videos_dir, tmp_path):
    """A clip's matte is a clip of the output's frames: as many, white only in the frames
    where a face was swapped (--start/--end), as a movie or as numbered grey stills."""
    from facedancer_torch.io.video import probe_video, read_frames
    from facedancer_torch.swap.options import SwapOptions

    clip = videos_dir / "talking_1face_512.mp4"  # 25 frames/s
    output, matte = tmp_path / "out.mp4", tmp_path / "matte.mov"
    report = swapper.swap_video_file(clip, output, plan, SwapOptions(
        matte=matte, max_frames=12, start=0.2, preset="ultrafast", confirm_frames=1),
        progress=False)
    assert report.frames == 12 and 0 < report.frames_swapped <= 7
    info, matte_info = probe_video(output), probe_video(matte)
    assert matte_info.frame_count == info.frame_count == 12
    assert (matte_info.width, matte_info.height, matte_info.fps) == \
        (info.width, info.height, info.fps)
    white = [f.rgb.max() > 200 for f in read_frames(matte)]
    assert white == [False] * 5 + [True] * report.frames_swapped + \
        [False] * (7 - report.frames_swapped)

    frames = tmp_path / "m_%04d.png"
    swapper.swap_video_file(clip, tmp_path / "out2.mp4", plan, SwapOptions(
        matte=frames, max_frames=4, preset="ultrafast", confirm_frames=1), progress=False)
    stills = sorted(tmp_path.glob("m_*.png"))
    assert [p.name for p in stills] == [f"m_{i:04d}.png" for i in range(1, 5)]
    assert all(_grey(p).max() == 255 for p in stills)
    from facedancer_torch.errors import FacedancerError

    with pytest.raises(FacedancerError, match="4 matte frames already exist"):
        swapper.swap_video_file(clip, tmp_path / "out3.mp4", plan, SwapOptions(matte=frames),
                                progress=False)


def test_a_folders_mattes_mirror_its_outputs(swapper, plan, photos_dir, videos_dir, tmp_path):
    """--matte DIR with a folder: each file's matte at its output's relative path (a PNG for
    an image, the clip's movie container, MP4 for an animation); a matte folder inside the
    target folder is not swapped on the next run."""
    import shutil

    from facedancer_torch.swap.options import SwapOptions

    target = tmp_path / "in"
    (target / "sub").mkdir(parents=True)
    shutil.copy(photos_dir / "fr_obama.jpg", target / "sub" / "obama.jpg")
    shutil.copy(videos_dir / "talking_1face_512.mp4", target / "clip.mp4")
    mattes = target / "mattes"  # inside the target: left alone
    options = SwapOptions(matte=mattes, max_frames=3, preset="ultrafast", confirm_frames=1)
    report = swapper.swap_folder(target, tmp_path / "out", plan, options, progress=False)
    assert len(report.written) == 2 and not report.failed
    assert sorted(p.relative_to(mattes).as_posix() for p in mattes.rglob("*")
                  if p.is_file()) == ["clip.mp4", "sub/obama.png"]
    again = swapper.swap_folder(target, tmp_path / "out", plan, options, progress=False)
    assert len(again.skipped) == 2 and not again.written


def test_bad_matte_paths_are_one_line(photos_dir, videos_dir, tmp_path):
    """A lossy, unknown or clashing matte path is refused before any model loads."""
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.swap.checks import check_job

    photo, clip = photos_dir / "fr_obama.jpg", videos_dir / "talking_c.mp4"
    out_png, out_mp4 = tmp_path / "o.png", tmp_path / "o.mp4"
    cases = [(photo, out_png, tmp_path / "m.jpg", "cannot write an image's matte as '.jpg'"),
             (photo, out_png, out_png, "--matte is the output itself"),
             (photo, out_png, tmp_path / "m_%04d.png", "numbered matte frames are for a clip"),
             (clip, out_mp4, tmp_path / "m.gif", "cannot write a clip's matte as '.gif'"),
             (clip, out_mp4, tmp_path / "m_%04d.jpg", "cannot write matte frames as '.jpg'")]
    for target, output, matte, words in cases:
        with pytest.raises(FacedancerError, match=words.replace("(", r"\(")):
            check_job(target, output, False, matte=matte)
    existing = tmp_path / "taken.png"
    existing.write_bytes(b"x")
    with pytest.raises(FacedancerError, match="matte already exists"):
        check_job(photo, out_png, False, matte=existing)
    assert check_job(photo, out_png, True, matte=existing) == "image"
    (tmp_path / "file").write_bytes(b"x")
    with pytest.raises(FacedancerError, match="--matte of a folder is a folder"):
        check_job(photos_dir, tmp_path / "o", False, matte=tmp_path / "file")
    # The command says it in one line, exit 2, before loading a model.
    run = subprocess.run([sys.executable, "-m", "facedancer_torch", "swap", "-s", str(photo),
                          "-t", str(photo), "-o", str(out_png), "--matte",
                          str(tmp_path / "m.jpg")], capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: ")
