"""The target's detail follows the swap's features (``--detail-follow``, swap/follow.py): the
thin-plate field (faces/tps.py), the frame moved once under the mask, and on a real photo the
double lid creases gone while the rest of the face stays as it was."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_compose import _one_thread, demo, demo_plan  # noqa: E402, F401

from facedancer_torch.faces import masks  # noqa: E402
from facedancer_torch.faces.tps import tps_field  # noqa: E402
from facedancer_torch.swap import follow  # noqa: E402


def test_the_thin_plate_field_passes_through_its_points_and_keeps_an_affine_field_affine():
    rng = np.random.default_rng(0)
    points = rng.integers(4, 60, (20, 2)).astype(np.float64)
    points = np.unique(points, axis=0)
    values = rng.normal(0.0, 2.0, (len(points), 2))
    field = tps_field(points, values, 64, grid=64)  # evaluated at every pixel, no resize
    at = field[points[:, 1].astype(int), points[:, 0].astype(int)]
    np.testing.assert_allclose(at, values, atol=1e-3)
    # Values that are an affine function of the points: the spline is that function.
    matrix, offset = np.array([[0.02, -0.01], [0.03, 0.01]]), np.array([1.5, -0.5])
    field = tps_field(points, points @ matrix.T + offset, 64, grid=64)
    u, v = np.meshgrid(np.arange(64.0), np.arange(64.0))
    expected = np.stack([u, v], -1) @ matrix.T + offset
    np.testing.assert_allclose(field, expected, atol=1e-3)
    # A coarse grid resized to the output is the same smooth field, nearly (inside the
    # outermost grid points: the resize holds the edge values beyond them).
    coarse = tps_field(points, values, 64, out=256)
    fine = tps_field(points, values, 64, out=256, grid=256)
    assert np.abs(coarse - fine)[16:-16, 16:-16].max() < 0.25


def test_a_misread_swap_leaves_the_detail_in_place():
    rng = np.random.default_rng(1)
    target = rng.uniform(20, 100, (68, 2))
    near = target + rng.normal(0.0, 1.0, (68, 2))
    shift = follow.follow_shift(target, near, 128)
    np.testing.assert_allclose(shift, (target - near)[17:])
    far = target + 0.1 * 128  # every point 18 px away: another pose or a misreading
    assert follow.follow_shift(target, far, 128) is None


def test_the_field_moves_the_features_and_nothing_at_the_border_or_far_from_them(
        demo, demo_plan):
    from facedancer_torch.io.images import read_image

    image = read_image(Path(follow.__file__).resolve().parents[1] / "assets" / "examples" /
                       "grace_hopper.jpg")
    (job,) = demo.jobs_for(image, demo.detect(image), demo_plan)
    points = demo.compositor.landmarks68().on_crop(job.crop)
    shift = np.zeros((51, 2))
    shift[36 - 17:48 - 17] = (0.0, 2.0)  # the target's eyes 2 px lower than the swap's
    field = follow.follow_field(points, shift, 128, 256)  # a work crop twice the crop
    swap_eyes = points[36:48] - shift[36 - 17:48 - 17]
    at = field[np.rint(2 * swap_eyes[:, 1] + 0.5).astype(int),
               np.rint(2 * swap_eyes[:, 0] + 0.5).astype(int)]
    np.testing.assert_allclose(at, np.tile([0.0, 4.0], (12, 1)), atol=0.5)  # work pixels
    assert np.abs(field[[0, -1]]).max() < 1e-3 and np.abs(field[:, [0, -1]]).max() < 1e-3
    zone = follow.feature_zone(points, np.concatenate([points[:17], points[17:] - shift]), 128)
    far = cv2.resize(zone, (256, 256)) < 1e-3
    assert far.any() and np.abs(field[far]).max() < 1e-2


def test_moving_the_frame_by_whole_pixels_is_exact_and_leaves_the_rest_alone():
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (120, 140, 3), dtype=np.uint8)
    matrix = np.array([[1.0, 0.0, -30.0], [0.0, 1.0, -20.0]])  # the work crop at (30, 20)
    work = 64
    mask = np.zeros((work, work), np.float32)
    mask[16:48, 16:48] = 1.0
    still = follow.move_frame(frame, matrix, np.zeros((work, work, 2), np.float32), mask)
    np.testing.assert_array_equal(still, frame)
    field = np.zeros((work, work, 2), np.float32)
    field[..., 0], field[..., 1] = 3.0, -2.0
    moved = follow.move_frame(frame, matrix, field, mask)
    inside = moved[20 + 16:20 + 48, 30 + 16:30 + 48].astype(int)
    source = frame[20 + 16 - 2:20 + 48 - 2, 30 + 16 + 3:30 + 48 + 3].astype(int)
    assert np.abs(inside[1:-1, 1:-1] - source[1:-1, 1:-1]).max() <= 1
    outside = np.ones(frame.shape[:2], bool)
    outside[20 + 15:20 + 49, 30 + 15:30 + 49] = False
    np.testing.assert_array_equal(moved[outside], frame[outside])


def test_the_targets_lid_creases_no_longer_show_around_the_swaps_narrower_eyes(demo, photos_dir):
    """Tom Hanks into df_img22.jpg: the demo generator paints his narrower, squinting eyes and
    lower brows, and the target's finest band drew her wider lid creases and lashes around
    them (a double exposure, looked at in session 32). With the detail moved onto the swap's
    features, the output's fine detail around the eyes and brows no longer lies where the
    target's does (benchmarks/blinks.py's lid match with the target's falls from about 0.7 to
    about 0.2), and away from the features the face is the same."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.compose import scale_affine
    from facedancer_torch.swap.options import SwapOptions

    source = photos_dir / "if_Tom_Hanks_54745.png"
    image = read_image(photos_dir / "df_img22.jpg")
    plan = demo.plan([source])
    jobs = demo.jobs_for(image, demo.detect(image), plan)
    assert len(jobs) == 1
    swapped = demo.swap_jobs([(image, jobs)], SwapOptions())
    plain = demo.compositor.composite(image, jobs, swapped, SwapOptions())
    moved = demo.compositor.composite(image, jobs, swapped, SwapOptions(detail_follow=True))
    job, work = jobs[0], 256
    matrix = scale_affine(job.matrix, work / job.crop.shape[0])
    crop = {name: cv2.warpAffine(out, matrix, (work, work), flags=cv2.INTER_LINEAR)
            for name, out in (("target", image), ("plain", plain), ("moved", moved))}
    predictor = demo.compositor.landmarks68()
    size = job.crop.shape[0]
    points = predictor.on_crop(job.crop) * (work / size)
    swap_points = predictor.on_crop(swapped[0]) * (work / size)
    features = np.zeros((work, work), bool)
    for face in (points, swap_points):
        features |= masks.eye_zone(face, work, grow=0.5) | (masks.brow_zone(face, work) > 0.3)
    # benchmarks/blinks.py's lid match: the correlation of two pictures' fine detail.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from blinks import fine_detail, lid_match

    fine = {name: fine_detail(cv2.cvtColor(picture, cv2.COLOR_RGB2GRAY))
            for name, picture in crop.items()}
    before = lid_match(fine["plain"], fine["target"], features)
    after = lid_match(fine["moved"], fine["target"], features)
    assert before > 0.6 and after < before - 0.3, (before, after)
    # What changed lies where the frame moved (the eyes, brows and mouth of both faces, with
    # their soft edge) and within the detail gate's reach of it: the rest of the face is
    # the same.
    zone = follow.feature_zone(points * (size / work), swap_points * (size / work), size)
    moving = (cv2.resize(zone, (work, work)) > 0.01).astype(np.uint8)
    reach = cv2.dilate(moving, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
    changed = np.abs(crop["moved"].astype(int) - crop["plain"]).max(axis=-1) > 2
    assert changed.sum() > 500, changed.sum()
    assert (changed & ~reach).sum() < 0.02 * changed.sum(), ((changed & ~reach).sum(),
                                                            changed.sum())


def test_the_cli_takes_the_option(tmp_path, photos_dir):
    from typer.testing import CliRunner

    from facedancer_torch.cli import app
    from facedancer_torch.io.images import read_image

    args = ["swap", "-s", str(photos_dir / "if_Tom_Hanks_54745.png"), "-t",
            str(photos_dir / "df_img22.jpg"), "--quiet"]
    outputs = []
    for extra in ([], ["--detail-follow"]):
        out = tmp_path / f"out{len(outputs)}.png"
        result = CliRunner().invoke(app, args + ["-o", str(out)] + extra)
        assert result.exit_code == 0, result.output
        assert "1 of 1 face swapped" in result.output
        outputs.append(read_image(out).astype(int))
    changed = np.abs(outputs[0] - outputs[1]).max(axis=-1) > 2
    assert 0.0005 < changed.mean() < 0.05, changed.mean()  # the eyes, brows and mouth only


def test_the_option_is_refused_where_it_would_do_nothing(tmp_path, photos_dir, capsys):
    """Without a mask part that reads the landmarks, or with --detail 0, the flag would
    change nothing: one line and exit 2 (the console script's path), not a silent no-op."""
    from facedancer_torch.cli import main
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.swap.options import SwapOptions

    for options in (dict(mask="box"), dict(mask="box+segment+occlusion"), dict(detail=0.0)):
        try:
            SwapOptions(detail_follow=True, **options)
        except FacedancerError as exc:
            assert "--detail-follow" in str(exc)
        else:
            raise AssertionError(f"accepted {options}")
    assert SwapOptions(detail_follow=True, mask="box+eyes").detail_follow
    out = tmp_path / "out.png"
    argv = sys.argv
    sys.argv = ["facedancer", "swap", "-s", str(photos_dir / "fr_biden.jpg"), "-t",
                str(photos_dir / "fr_obama.jpg"), "-o", str(out), "--detail-follow", "--mask",
                "box"]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv = argv
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, lines)
    assert "--detail-follow" in lines[0] and not out.exists()
