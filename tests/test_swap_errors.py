"""Bad input to ``facedancer swap``: one-line error naming the file, exit code 2, no output."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from swaputil import single_thread, run_cli, save_tiny_generator


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


def _in_process(capsys, *args: str) -> tuple[int, str]:
    """Run the CLI entry point in this process (same code path as the console script)."""
    from facedancer_torch.cli import main

    argv = sys.argv
    sys.argv = ["facedancer", *map(str, args)]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


def _assert_one_line_error(code: int, stderr: str, *names: str) -> None:
    assert code == 2, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    for name in names:
        assert name in lines[0], (name, lines[0])


def _faceless_photo(photos_dir, tmp_path):
    from facedancer_torch.io.images import read_image, write_image

    path = tmp_path / "no_face.jpg"
    image = read_image(photos_dir / "fr_two_people.jpg")
    write_image(path, np.ascontiguousarray(image[430:, :400]))  # suit and hands, no face
    return path


def test_source_without_a_face(tiny_model, photos_dir, tmp_path):
    output = tmp_path / "out.png"
    source = _faceless_photo(photos_dir, tmp_path)
    result = run_cli("swap", "--source", source, "--target", photos_dir / "fr_two_people.jpg",
                     "--output", output, "--model", tiny_model, "--no-watermark", "--device",
                     "cpu", "--backend", "fused")
    _assert_one_line_error(result.returncode, result.stderr, "no_face.jpg", "no face")
    assert not output.exists()
    assert not list(tmp_path.glob(".out*"))  # no temporary file left behind either


def test_unreadable_target_image(tiny_model, photos_dir, tmp_path):
    target = tmp_path / "broken.jpg"
    target.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    output = tmp_path / "out.png"
    result = run_cli("swap", "-s", photos_dir / "df_img1.jpg", "-t", target, "-o", output,
                     "-m", tiny_model, "--backend", "fused")
    _assert_one_line_error(result.returncode, result.stderr, "broken.jpg")
    assert not output.exists()


def test_missing_model(photos_dir, tmp_path):
    output = tmp_path / "out.png"
    missing = tmp_path / "no_such_model"
    result = run_cli("swap", "-s", photos_dir / "df_img1.jpg", "-t",
                     photos_dir / "fr_two_people.jpg", "-o", output, "-m", missing)
    _assert_one_line_error(result.returncode, result.stderr, "no_such_model")
    assert not output.exists()


def test_no_model_and_no_demo_model(photos_dir, tmp_path, capsys, monkeypatch):
    from facedancer_torch.models import catalogue

    # Hide the shipped demo model, as on an install without it.
    monkeypatch.setattr(catalogue.AssetSource, "locate", lambda self: None)
    output = tmp_path / "out.png"
    code, err = _in_process(capsys, "swap", "-s", photos_dir / "df_img1.jpg", "-t",
                            photos_dir / "fr_two_people.jpg", "-o", output)
    _assert_one_line_error(code, err, "--model")
    assert not output.exists()


def test_unsupported_and_missing_targets(tiny_model, photos_dir, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("not media")
    for target, words in ((text, ("notes.txt", "unsupported")),
                          (tmp_path / "nowhere.jpg", ("nowhere.jpg", "does not exist"))):
        output = tmp_path / "out.png"
        code, err = _in_process(capsys, "swap", "-s", photos_dir / "df_img1.jpg", "-t", target,
                                "-o", output, "-m", tiny_model)
        _assert_one_line_error(code, err, *words)
        assert not output.exists()


def test_truncated_video_target(tiny_model, photos_dir, videos_dir, tmp_path, capsys):
    target = tmp_path / "cut.mp4"
    target.write_bytes((videos_dir / "talking_1face_512.mp4").read_bytes()[:3000])
    output = tmp_path / "out.mp4"
    code, err = _in_process(capsys, "swap", "-s", photos_dir / "df_img1.jpg", "-t", target,
                            "-o", output, "-m", tiny_model, "--device", "cpu", "-q",
                            "--backend", "fused")
    _assert_one_line_error(code, err, "cut.mp4")
    assert not output.exists() and not list(tmp_path.glob(".out*"))


def test_existing_output_needs_overwrite(tiny_model, photos_dir, tmp_path, capsys):
    output = tmp_path / "out.png"
    output.write_bytes(b"precious")
    args = ["swap", "-s", photos_dir / "df_img1.jpg", "-t", photos_dir / "fr_two_people.jpg",
            "-o", output, "-m", tiny_model, "--device", "cpu", "--no-watermark", "--backend",
            "fused"]
    code, err = _in_process(capsys, *args)
    _assert_one_line_error(code, err, "out.png", "--overwrite")
    assert output.read_bytes() == b"precious"
    code, err = _in_process(capsys, *args, "--overwrite")
    assert code == 0, err
    from facedancer_torch.io.images import read_image

    assert read_image(output).shape == (661, 1126, 3)


def test_bad_options(tiny_model, photos_dir, tmp_path, capsys):
    base = ["swap", "-t", photos_dir / "fr_two_people.jpg", "-o", tmp_path / "o.png", "-m",
            tiny_model]
    for extra, words in ((["-s", photos_dir / "df_img1.jpg", "--faces", "some"], ("--faces",)),
                         (["-s", photos_dir / "df_img1.jpg", "--map", "a.jpg"], ("--map",)),
                         ([], ("--source",)),
                         (["-s", photos_dir / "df_img1.jpg", "-o", tmp_path / "o.bmp"],
                          ("o.bmp",)),
                         (["-s", photos_dir / "df_img1.jpg", "--identity-strength", "1.5"],
                          ("--identity-strength",))):
        code, err = _in_process(capsys, *base, *extra)
        _assert_one_line_error(code, err, *words)
    assert not list(tmp_path.glob("o.*"))


def test_model_recorded_encoder_missing_then_overridden(photos_dir, tmp_path, capsys):
    """A converted official model records ArcFace-Res50; without it the error says how to
    fix it, and --identity-encoder default overrides the record."""
    from facedancer_torch.models.identity.registry import available_encoders

    if "arcface-res50" in available_encoders():
        pytest.skip("ArcFace-Res50 is installed here")
    model = save_tiny_generator(tmp_path / "arcface_model", identity_encoder="arcface-res50")
    output = tmp_path / "out.png"
    args = ["swap", "-s", photos_dir / "df_img1.jpg", "-t", photos_dir / "fr_two_people.jpg",
            "-o", output, "-m", model, "--backend", "fused", "--no-watermark"]
    code, err = _in_process(capsys, *args)
    if code == 0:
        pytest.skip("the model store has an ArcFace-Res50 here")
    _assert_one_line_error(code, err, "arcface-res50", "--identity-encoder")
    assert not output.exists()
    code, err = _in_process(capsys, *args, "--identity-encoder", "default")
    assert code == 0, err
    assert output.exists()


def test_group_photo_source_is_one_warning_line(tiny_model, photos_dir, tmp_path):
    """A source photo with two people framed alike: the swap runs with the larger face and
    says so in one line (swap/source.py, rival_faces)."""
    output = tmp_path / "out.png"
    result = run_cli("swap", "-s", photos_dir / "fr_two_people.jpg", "-t",
                     photos_dir / "fr_obama.jpg", "-o", output, "-m", tiny_model,
                     "--no-watermark", "--device", "cpu", "--backend", "fused")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1, result.stderr
    assert "fr_two_people.jpg: 2 faces in the source image" in warned[0]
    assert "Traceback" not in result.stderr and output.exists()


def test_a_face_number_past_the_photos_faces_is_one_line(tiny_model, photos_dir, tmp_path):
    output = tmp_path / "out.png"
    result = run_cli("swap", "-s", f"{photos_dir / 'fr_two_people.jpg'}@5", "-t",
                     photos_dir / "fr_obama.jpg", "-o", output, "-m", tiny_model,
                     "--no-watermark", "--device", "cpu", "--backend", "fused")
    _assert_one_line_error(result.returncode, result.stderr, "fr_two_people.jpg",
                           "the source image has 2 face(s)")
    assert not output.exists()


def test_a_codec_the_output_cannot_hold_is_one_line(tiny_model, photos_dir, videos_dir, tmp_path,
                                                     capsys):
    base = ["swap", "-s", photos_dir / "df_img1.jpg", "-t", videos_dir / "talking_b.mp4",
            "-m", tiny_model]
    for extra, words in ((["-o", tmp_path / "o.mp4", "--codec", "prores"], ("o.mp4", ".mov")),
                         (["-o", tmp_path / "o.gif", "--codec", "h264"], ("o.gif",)),
                         (["-o", tmp_path / "o.mkv", "--codec", "xvid"], ("--codec",)),
                         (["-o", tmp_path / "o.png"], ("o.png", "out_%04d.png"))):
        code, err = _in_process(capsys, *base, *extra)
        _assert_one_line_error(code, err, *words)
    assert not list(tmp_path.glob("o.*"))


def test_frame_pattern_errors_are_one_line(tiny_model, photos_dir, tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (64, 48)).save(tmp_path / "f_0001.png")
    (tmp_path / "out").mkdir()
    Image.new("RGB", (64, 48)).save(tmp_path / "out" / "o_0001.png")
    base = ["swap", "-s", photos_dir / "df_img1.jpg", "-m", tiny_model]
    for extra, words in (
            (["-t", tmp_path / "none_%04d.png", "-o", tmp_path / "x_%04d.png"],
             ("none_%04d.png", "no frames match")),
            (["-t", tmp_path / "f_%04d.png", "-o", tmp_path / "out" / "o_%04d.png"],
             ("o_%04d.png", "--overwrite")),
            (["-t", tmp_path / "f_%04d.png", "-o", tmp_path / "x_%04d.bmp"], ("x_%04d.bmp",)),
            (["-t", tmp_path / "f_%04d.png", "-o", tmp_path / "f_%04d.png"], ("f_%04d.png",))):
        code, err = _in_process(capsys, *base, *extra)
        _assert_one_line_error(code, err, *words)
    assert not list(tmp_path.glob("x_*"))
