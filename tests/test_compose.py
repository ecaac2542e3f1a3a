"""Compositing (swap/compose.py) on real photos with the shipped demo model: the properties
issue #12 asks for, with margins (benchmarks/quality.py measures the numbers)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from swaputil import single_thread

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="module")
def demo():
    from facedancer_torch.swap.pipeline import Swapper

    return Swapper(backend="fused")  # the shipped demo model


@pytest.fixture(scope="module")
def demo_plan(demo):
    return demo.plan([SOURCE])


def _quality():
    sys.path.insert(0, str(BENCHMARKS))
    import quality

    return quality


REFERENCE = dict(mask="box", color_match="none", detail=0.0, profile_fade=False, cut_fade=False)


def test_mask_parts_are_validated():
    from facedancer_torch.errors import FacedancerError
    from facedancer_torch.swap.options import SwapOptions

    assert SwapOptions(mask="hull+box+hull").mask == "hull+box"
    for bad in ("", "ellipse", "box+nope"):
        with pytest.raises(FacedancerError, match="--mask"):
            SwapOptions(mask=bad)
    with pytest.raises(FacedancerError, match="--color-match"):
        SwapOptions(color_match="auto")
    for bad in (float("nan"), -0.1, 1.5):
        with pytest.raises(FacedancerError, match="--detail"):
            SwapOptions(detail=bad)
    assert SwapOptions(color_match=True).color_match == "global"


def test_hull_mask_follows_the_face_and_leaves_the_background(demo, photos_dir):
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.io.images import read_image

    image = read_image(photos_dir / "fr_obama.jpg")
    face = demo.detect(image)[0]
    crop, _ = demo.align(image, face.landmarks)
    points = get_landmarks68().on_crop(crop)
    mask = masks.hull_mask(points, crop.shape[0])
    for index in (30, 36, 45, 48, 54, 57):  # nose tip, eye corners, mouth
        x, y = np.rint(points[index]).astype(int)
        assert mask[y, x] > 0.95, index
    # Crop corners are background or hair: outside the face.
    assert mask[:8, :8].max() == 0 and mask[:8, -8:].max() == 0
    # It is smaller than the reference box (that replaces background beside the cheeks).
    assert mask.sum() < masks.box_mask(crop.shape[0]).sum()


def test_default_compositing_is_sharper_and_has_no_colour_casts(demo, demo_plan, photos_dir):
    from facedancer_torch.evaluate.color import color_cast_fraction
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    quality = _quality()
    for name in ("df_img1.jpg", "fr_lin-manuel-miranda.png"):
        image = read_image(photos_dir / name)
        regions = quality.face_regions(demo, image)
        inside = quality.region_mask(regions, image.shape)
        reference = demo.swap_image(image, demo_plan, SwapOptions(**REFERENCE))
        default = demo.swap_image(image, demo_plan, SwapOptions())
        sharp = {k: quality.laplacian_variance(v, inside)
                 / quality.laplacian_variance(image, inside)
                 for k, v in (("reference", reference), ("default", default))}
        assert sharp["default"] > 1.25 * sharp["reference"], (name, sharp)
        # The goal is 0.7 (median over the benchmark's photos): the target's detail is
        # pasted back without being resampled (0.3-0.5 when it went through the work crop).
        assert sharp["default"] > 0.6, (name, sharp)
        assert color_cast_fraction(image, default, inside) < 0.001, name
        assert color_cast_fraction(image, reference, inside) > \
            color_cast_fraction(image, default, inside)
        # Nothing changes outside the grown face region (the box changed background).
        grown = quality.region_mask(regions, image.shape, quality.GROW)
        assert quality.changed(image, default)[~grown].mean() < 0.003, name


def test_the_microphone_stays(demo, demo_plan, photos_dir):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    quality = _quality()
    name = "fr_lin-manuel-miranda.png"
    image = read_image(photos_dir / name)
    occluder = quality.occluder_mask(name, image.shape)
    assert occluder.any()
    default = demo.swap_image(image, demo_plan, SwapOptions())
    change = np.abs(quality.grey(default) - quality.grey(image))[occluder].mean()
    assert change < 4.0, change


def test_glasses_are_kept_where_the_box_repaints_them(demo, demo_plan, photos_dir):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    quality = _quality()
    name = "df_img25.jpg"
    image = read_image(photos_dir / name)
    occluder = quality.occluder_mask(name, image.shape)
    changes = {}
    for key, options in (("reference", SwapOptions(**REFERENCE)), ("default", SwapOptions())):
        out = demo.swap_image(image, demo_plan, options)
        changes[key] = np.abs(quality.grey(out) - quality.grey(image))[occluder].mean()
    assert changes["default"] < 0.5 * changes["reference"], changes
    # The whole frame is kept, also where the segmenter is only half sure of it (hysteresis
    # and the mirrored pass, grown a pixel; 16.5 grey levels without them, 2.3 with, 3.6 with
    # the antialiased crop, in which the segmenter finds a little less of the frame).
    assert changes["default"] < 4.0, changes


def test_quality_configs_and_per_photo_differences():
    quality = _quality()
    options, constants = quality.config_settings("id-strength-0.5+detail-res-0.75")
    assert options == {"identity_strength": 0.5} and constants == {"DETAIL_RESOLUTION": 0.75}
    rows = [quality.Row(name, "single", config, {"id gain": value})
            for name, base, other in (("a", 0.30, 0.25), ("b", 0.20, 0.21), ("c", 0.10, 0.04))
            for config, value in (("reference", base), ("default", other))]
    text = quality.paired(rows, ["id gain"], ["reference", "default"])
    assert "| default | -0.050 (1 / 2) |" in text, text


def test_occluders_are_kept_by_hysteresis():
    from facedancer_torch.swap.compose import occluder_weight

    probability = np.zeros((128, 128), np.float32)
    probability[40, 10:110] = 0.45   # a thin frame, half-confident along its length...
    probability[40, 10:20] = 0.95    # ...and confident at one end
    probability[80:84, 60:64] = 0.7  # an isolated soft doubt (a nostril), not an occluder
    weight = occluder_weight(probability)
    assert weight[40, 15] > 0.5 and weight[40, 100] > 0.5
    assert weight[82, 62] < 0.05
    assert weight[10:30, 10:110].max() < 0.05  # kept only where the frame is


def test_two_faces_never_overwrite_each_other(swapper, photos_dir):
    """Each face is pasted only inside its own region: with the reference box the crops of
    two neighbours overlap; with the default mask, swapping one person leaves the other's
    face (an ellipse inside its box) untouched, and swapping both changes each inside its own
    outline."""
    from facedancer_torch.faces import masks
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "fr_two_people.jpg")
    faces = sorted(swapper.detect(image), key=lambda f: f.box[0])
    assert len(faces) == 2
    result = swapper.swap_image_detailed(image, photos_dir / "df_img1.jpg",
                                         SwapOptions(faces="largest"))
    swapped_box = result.faces[0].box
    other = faces[1] if abs(faces[0].box[0] - swapped_box[0]) < 1 else faces[0]
    ellipse = masks.polygon_mask(masks.ellipse_polygon(other.box, 0.92), image.shape[:2]) > 0
    np.testing.assert_array_equal(result.image[ellipse], image[ellipse])


def test_nothing_swapped_is_reported_and_unlabelled(photos_dir, tmp_path):
    """A target without a face: exit 0 with a warning, the output is the target byte for
    byte, and verify does not call it synthetic."""
    import os
    import subprocess

    from facedancer_torch.io.images import read_image, write_image
    from facedancer_torch.io.provenance import verify_file

    landscape = tmp_path / "landscape.png"
    write_image(landscape, read_image(photos_dir / "fr_two_people.jpg")[430:, :400])
    output = tmp_path / "out.png"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "facedancer_torch", "swap", "-s", str(SOURCE),
                           "-t", str(landscape), "-o", str(output), "--backend", "fused"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "0 of 0 faces swapped" in done.stdout
    assert "warning:" in done.stderr and "nothing swapped" in done.stderr
    assert output.read_bytes() == landscape.read_bytes()
    check = verify_file(output)
    assert check.provenance is None and not check.watermark.found


def _clip(videos_dir: Path, count: int) -> list[np.ndarray]:
    from facedancer_torch.io.video import read_frames

    return [f.rgb for f in read_frames(videos_dir / "talking_1face_512.mp4", max_frames=count)]


def test_a_face_that_leaves_is_not_painted_on(swapper, plan, videos_dir):
    """Frames 0-5 show the speaker, 6-11 only background: no pixel of the background frames
    changes (no refill after the person has left), and the face is swapped from frame 0."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    frames = _clip(videos_dir, 6)
    background = np.full_like(frames[0], 0)
    background[:] = frames[0][:40, :40].mean(axis=(0, 1)).astype(np.uint8)  # the wall colour
    stream = frames + [background.copy() for _ in range(6)]
    stats = VideoStats()
    out = [rgb for _, rgb in swap_stream(swapper, iter(stream), plan, SwapOptions(),
                                         stats=stats)]
    assert len(out) == 12
    for t in range(6):
        assert not np.array_equal(out[t], stream[t]), t  # swapped from its first frame
    for t in range(6, 12):
        np.testing.assert_array_equal(out[t], stream[t])
    assert stats.frames == 12 and stats.frames_swapped == 6


def test_a_one_frame_detection_is_never_swapped(swapper, plan, videos_dir):
    """A face that shows up in a single frame (what a false detection looks like) is not
    confirmed, so that frame stays as it was; a face seen for confirm_frames frames is."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import swap_frames

    face = _clip(videos_dir, 1)[0]
    empty = np.full_like(face, 0)
    empty[:] = face[:40, :40].mean(axis=(0, 1)).astype(np.uint8)
    stream = [empty.copy(), empty.copy(), face.copy(), empty.copy(), empty.copy()]
    out = list(swap_frames(swapper, iter(stream), plan, SwapOptions()))
    for before, after in zip(stream, out):
        np.testing.assert_array_equal(before, after)
    # The same single frame with confirmation off is swapped (the face is detectable).
    out = list(swap_frames(swapper, iter(stream), plan, SwapOptions(confirm_frames=1)))
    assert not np.array_equal(out[2], stream[2])


def test_small_faces_are_left_alone_in_videos(swapper, plan, videos_dir):
    """A face under the minimum size (a 128 px picture of the speaker in a 1536 px frame: the face is under 8 % of its
    shorter side) is not swapped in a video by default, but is with --min-face-size 0."""
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import VideoStats, swap_stream

    frames = _clip(videos_dir, 4)
    small = []
    for frame in frames:
        canvas = np.full((1536, 1536, 3), 90, np.uint8)
        canvas[700:828, 700:828] = cv2.resize(frame, (128, 128), interpolation=cv2.INTER_AREA)
        small.append(canvas)
    stats = VideoStats()
    out = [rgb for _, rgb in swap_stream(swapper, iter(small), plan, SwapOptions(),
                                         stats=stats)]
    faces = swapper.detect(small[0])
    assert faces, "precondition: the small face is detectable"
    assert all(np.array_equal(a, b) for a, b in zip(out, small))
    assert stats.too_small >= 4 and stats.frames_swapped == 0
    out = list(swap_frames_all(swapper, small, plan))
    assert not np.array_equal(out[0], small[0])


def swap_frames_all(swapper, frames, plan):
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import swap_frames

    return swap_frames(swapper, iter(frames), plan, SwapOptions(min_face_size=0.0))


def test_profile_fades_back_to_the_target(demo, demo_plan, photos_dir):
    """if_t1's man turned almost to a profile (the nose near the far eye, where the demo model
    paints a bright frontal smear) is all but left as he is by default; with
    --no-profile-fade he gets what the model paints."""
    from facedancer_torch.faces import masks
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "if_t1.jpg")
    faces = demo.detect(image)
    profile = max(faces, key=lambda f: masks.yaw_ratio(f.landmarks))
    assert masks.pose_weight(profile.landmarks) < 0.15
    x1, y1, x2, y2 = profile.box.astype(int)
    faded = demo.swap_image(image, demo_plan, SwapOptions())
    painted = demo.swap_image(image, demo_plan, SwapOptions(profile_fade=False))
    change = np.abs(faded[y1:y2, x1:x2].astype(int) - image[y1:y2, x1:x2]).mean()
    full = np.abs(painted[y1:y2, x1:x2].astype(int) - image[y1:y2, x1:x2]).mean()
    assert full > 3.0 and change < 0.15 * full, (change, full)


def test_three_quarter_views_are_swapped_whole(demo, demo_plan, photos_dir):
    """A face turned by about 30 degrees (df_selfie-many-people's man at the top centre, yaw
    proxy 0.69) swaps as well as a frontal one with the demo model, so it is not faded: the
    default output equals --no-profile-fade's there (the first fade range, 0.35-0.70, left 2 %
    of his swap). The man at the top right, whom the photo's edge cuts through his far eye,
    reads 0.76 since the detector places that eye beyond the edge (faces.detect.at_edge)."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.detect import at_edge
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "df_selfie-many-people.jpg")
    whole = [f for f in demo.detect(image) if not at_edge(f, image.shape)]
    turned = max(whole, key=lambda f: masks.yaw_ratio(f.landmarks))
    assert 0.6 < masks.yaw_ratio(turned.landmarks) < masks.PROFILE_FADE[0]
    x1, y1, x2, y2 = turned.box.astype(int)
    default = demo.swap_image(image, demo_plan, SwapOptions())
    unfaded = demo.swap_image(image, demo_plan, SwapOptions(profile_fade=False))
    np.testing.assert_array_equal(default[y1:y2, x1:x2], unfaded[y1:y2, x1:x2])
    assert np.abs(default[y1:y2, x1:x2].astype(int) - image[y1:y2, x1:x2]).mean() > 3.0


def test_a_profile_left_as_it_is_is_not_reported_as_swapped(demo, photos_dir, tmp_path,
                                                            monkeypatch):
    """A selected face whose fade weight is 0 is neither generated nor counted: a photo whose
    only face is such a profile is written unchanged and unlabelled, and the report says why.
    (No shared photo has a face beyond the fade's end, so the range is moved to put if_t1's
    man, yaw proxy 0.89, past it.)"""
    from facedancer_torch.faces import masks
    from facedancer_torch.io.images import read_image, write_image
    from facedancer_torch.io.provenance import read_provenance

    monkeypatch.setattr(masks, "PROFILE_FADE", (0.5, 0.85))
    image = read_image(photos_dir / "if_t1.jpg")
    target = tmp_path / "turned.png"
    write_image(target, np.ascontiguousarray(image[0:300, 820:1100]))
    (face,) = demo.detect(read_image(target))
    assert masks.pose_weight(face.landmarks) == 0.0
    output = tmp_path / "out.png"
    report = demo.swap_image_file(target, output, [SOURCE])
    assert (report.swapped, report.profiles, report.detected) == (0, 1, 1)
    assert not report.changed and "turned far enough towards the camera" in report.warning()
    assert "1 face turned to a profile" in report.summary()
    assert output.read_bytes() == target.read_bytes()
    assert read_provenance(output) is None


def test_an_unknown_detector_is_one_line(photos_dir, tmp_path):
    import os
    import subprocess

    done = subprocess.run([sys.executable, "-m", "facedancer_torch", "swap", "-s", str(SOURCE),
                           "-t", str(photos_dir / "fr_obama.jpg"), "-o", str(tmp_path / "o.png"),
                           "--detector", "no-such-detector"], capture_output=True, text=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no-such-detector" in done.stderr, done.stderr
    assert not (tmp_path / "o.png").exists()


def test_pixel_boost_split_and_interleave_are_inverse(demo, photos_dir):
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.boost import boost_crops, interleave
    from facedancer_torch.swap.compose import scale_affine

    image = read_image(photos_dir / "df_img1.jpg")
    landmarks = demo.detect(image)[0].landmarks
    crop, matrix = align_face(image, landmarks, 64)
    parts = boost_crops(image, matrix, 64, 3)
    assert parts.shape == (9, 64, 64, 3)
    big = cv2.warpAffine(image, scale_affine(matrix, 3), (192, 192), flags=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(interleave(parts, 3), big)
    # the middle component of an odd factor is the plain crop, pixel for pixel (centres kept)
    assert np.abs(parts[4].astype(int) - crop).mean() < 1.0
    with pytest.raises(ValueError):
        interleave(parts[:8], 3)


def test_pixel_boost_adds_the_models_own_detail(demo, demo_plan, photos_dir):
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    quality = _quality()
    image = read_image(photos_dir / "df_img1.jpg")  # a 1868 px close-up: work factor 4+
    inside = quality.region_mask(quality.face_regions(demo, image), image.shape)
    # No occlusion part: what it keeps of the target (teeth here) is sharp in both outputs.
    plain = demo.swap_image(image, demo_plan, SwapOptions(pixel_boost=1, detail=0.0,
                                                          mask="box+hull"))
    boosted = demo.swap_image(image, demo_plan, SwapOptions(pixel_boost=4, detail=0.0,
                                                            mask="box+hull"))
    sharp_plain = quality.laplacian_variance(plain, inside)
    sharp_boosted = quality.laplacian_variance(boosted, inside)
    assert sharp_boosted > 1.3 * sharp_plain, (sharp_plain, sharp_boosted)
    # the same face, not a different one: boosted and plain agree at the model's scale
    small = [cv2.resize(x, None, fx=0.125, fy=0.125, interpolation=cv2.INTER_AREA)
             for x in (plain, boosted)]
    assert np.abs(small[0].astype(int) - small[1]).mean() < 2.0


def _detail_pair(photos_dir):
    """A work crop (k = 3) of a photo as the target and another photo's face, upsampled from
    the generator size, as the swap: they disagree in places, so the gates close there."""
    from facedancer_torch.io.images import read_image

    target = cv2.resize(read_image(photos_dir / "df_img1.jpg"), (384, 384),
                        interpolation=cv2.INTER_AREA)
    other = cv2.resize(read_image(photos_dir / "df_img25.jpg"), (128, 128),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(other, (384, 384), interpolation=cv2.INTER_CUBIC), target


def _set(monkeypatch, **constants):
    from facedancer_torch.swap import compose

    for name, value in constants.items():
        monkeypatch.setattr(compose, name, value)


def test_three_band_detail_with_one_gate_is_the_two_band_split(photos_dir, monkeypatch):
    """The middle band gated like the finest is the two-band split (the bands add up)."""
    from facedancer_torch.swap.compose import detail_change

    swap, target = _detail_pair(photos_dir)
    _set(monkeypatch, DETAIL_RESOLUTION=0.5, DETAIL_FINE_RESOLUTION=0.5, DETAIL_GATE=25.0,
         DETAIL_MID_MIN_WORK=2.0)
    two = detail_change(swap, target, 128)
    _set(monkeypatch, DETAIL_FINE_RESOLUTION=1.0, DETAIL_MID_GATE=25.0)
    three = detail_change(swap, target, 128)
    assert np.abs(three - two).max() <= 1.0
    assert (three != two).mean() < 1e-3
    # a middle band of its own changes the result where the gate is open
    _set(monkeypatch, DETAIL_MID_GATE=0.0)
    assert np.abs(detail_change(swap, target, 128) - two).mean() > 0.5


def test_three_band_detail_takes_each_band_from_where_it_should(photos_dir, monkeypatch):
    """The band form, written out: swap below DETAIL_RESOLUTION, the middle band gated by
    DETAIL_MID_GATE (closed: the swap's), the finest band above DETAIL_FINE_RESOLUTION by
    DETAIL_GATE (here always open, so all of it is the target's)."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.swap.compose import detail_change

    swap, target = _detail_pair(photos_dir)
    _set(monkeypatch, DETAIL_RESOLUTION=0.5, DETAIL_FINE_RESOLUTION=1.0, DETAIL_MID_GATE=0.0,
         DETAIL_GATE=1e9, DETAIL_MID_MIN_WORK=2.0, DETAIL_SHADING_SIGMA=0.0)
    got = detail_change(swap, target, 128)

    def low(image, size):
        small = cv2.resize(image.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (384, 384), interpolation=cv2.INTER_CUBIC)

    expected = low(swap, 128) + (target - low(target, 128))  # swap to 128 px, target above
    expected = np.clip(np.rint(expected), 0, 255) - target
    assert np.abs(got - expected).max() <= 1.0
    assert (got != expected).mean() < 1e-3
    # A closed middle band differs from the two-band split at 128 px only by the gate's scale
    # (64 px here): with a finite gate, where the coarse lightness differs the finest band is
    # the swap's too.
    _set(monkeypatch, DETAIL_GATE=25.0)
    gated = detail_change(swap, target, 128)
    gap = np.abs(to_lab(cv2.resize(swap, (64, 64), interpolation=cv2.INTER_AREA))[..., 0]
                 - to_lab(cv2.resize(target, (64, 64), interpolation=cv2.INTER_AREA))[..., 0])
    closed = cv2.resize(masks.gaussian_blur((gap > 40).astype(np.float32), 1.0), (384, 384),
                        interpolation=cv2.INTER_LINEAR) > 0.99
    assert closed.mean() > 0.01  # the pair disagrees somewhere: the check means something
    plain = swap.astype(np.float32) - target
    assert np.abs(gated - plain)[closed].mean() < 1.0 < np.abs(got - plain)[closed].mean()


def test_the_detail_gate_ignores_shading_but_not_moved_features(photos_dir, monkeypatch):
    """The structure gate (DETAIL_SHADING_SIGMA): a swap lit darker than the photo over half
    the face (a smooth change) gets the photo's fine detail there, where the plain lightness
    gate kept the soft swap; a swap whose features moved keeps its own band at those features
    with both gates."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose
    from facedancer_torch.swap.compose import detail_change

    target = cv2.resize(read_image(photos_dir / "df_img1.jpg"), (384, 384),
                        interpolation=cv2.INTER_AREA)
    soft = cv2.resize(cv2.resize(target, (128, 128), interpolation=cv2.INTER_AREA), (384, 384),
                      interpolation=cv2.INTER_CUBIC).astype(np.float32)
    # darker towards the left by up to 55 %: a shading change, no feature moves
    ramp = np.clip(np.linspace(0.45, 1.55, 384), 0.45, 1.0).astype(np.float32)
    shaded = np.clip(soft * ramp[None, :, None], 0, 255).astype(np.uint8)
    left = np.zeros((384, 384), bool)
    left[96:288, 16:112] = True  # cheek and temple, deep in the darkened part
    sharpness = _quality().laplacian_variance

    def fine_energy(change):
        return sharpness(np.clip(target + change, 0, 255).astype(np.uint8), left)

    _set(monkeypatch, DETAIL_SHADING_SIGMA=0.0)
    plain = fine_energy(detail_change(shaded, target, 128))
    _set(monkeypatch, DETAIL_SHADING_SIGMA=2.0 / 64.0)
    structure = fine_energy(detail_change(shaded, target, 128))
    # The photo's own fine band is added at full strength: compare with the photo there
    # (the soft swap alone has 0.12 of its energy; measured 0.34 plain, 0.74 structure).
    reference = sharpness(target, left)
    assert structure > 0.6 * reference and plain < 0.45 * reference, (plain, structure, reference)

    # Features moved (the face shifted by 5 % of the crop): where the plain gap is large
    # (moved brows, eyes, nostrils), the structure gate still keeps most of the swap's own band
    # (measured: a third of the target's band that an always-open gate lets through; the plain
    # gate a fifth).
    moved = np.roll(soft, 20, axis=1).astype(np.uint8)
    small = [cv2.resize(x.astype(np.float32), (64, 64), interpolation=cv2.INTER_AREA)
             for x in (moved, target)]
    _set(monkeypatch, DETAIL_SHADING_SIGMA=0.0)
    strong = cv2.resize(compose.gate_gap(*small), (384, 384),
                        interpolation=cv2.INTER_LINEAR) > 60
    assert strong.mean() > 0.01  # the shift moved features: the check means something
    own = moved.astype(np.float32) - target
    _set(monkeypatch, DETAIL_SHADING_SIGMA=2.0 / 64.0)
    gated = np.abs(detail_change(moved, target, 128) - own)[strong].mean()
    _set(monkeypatch, DETAIL_GATE=1e9)
    opened = np.abs(detail_change(moved, target, 128) - own)[strong].mean()
    assert gated < 0.5 * opened, (gated, opened)


def test_small_faces_keep_the_two_band_detail(photos_dir, monkeypatch):
    """A work crop under DETAIL_MID_MIN_WORK * S (a face near the model's own size) keeps the
    two-band split; from that size on the middle band is the swap's."""
    from facedancer_torch.swap.compose import detail_change

    swap, target = _detail_pair(photos_dir)
    swap, target = (cv2.resize(x, (192, 192), interpolation=cv2.INTER_AREA)
                    for x in (swap, target))  # 1.5 x S
    _set(monkeypatch, DETAIL_RESOLUTION=0.5, DETAIL_FINE_RESOLUTION=0.5, DETAIL_GATE=40.0)
    two = detail_change(swap, target, 128)
    _set(monkeypatch, DETAIL_FINE_RESOLUTION=0.75, DETAIL_MID_GATE=0.0, DETAIL_MID_MIN_WORK=2.0)
    np.testing.assert_array_equal(detail_change(swap, target, 128), two)
    _set(monkeypatch, DETAIL_MID_MIN_WORK=1.5)
    assert np.abs(detail_change(swap, target, 128) - two).mean() > 0.5


def test_the_quality_benchmark_sets_compose_constants_per_config():
    from facedancer_torch.swap import compose

    quality = _quality()
    assert quality.config_settings("default") == ({}, {})
    options, constants = quality.config_settings("detail-fine-1.0+detail-mid-gate-0+occl-weak-0.4")
    assert options == {}
    assert constants == {"DETAIL_FINE_RESOLUTION": 1.0, "DETAIL_MID_GATE": 0.0,
                         "OCCLUDER_HYSTERESIS": (0.4, compose.OCCLUDER_HYSTERESIS[1])}
    before = compose.DETAIL_RESOLUTION
    with quality.compose_constants({"DETAIL_RESOLUTION": 0.75}):
        assert compose.DETAIL_RESOLUTION == 0.75
    assert compose.DETAIL_RESOLUTION == before
    for bad in ("detail-res-x", "sharper", "detail-res-0.75+nothing-1"):
        with pytest.raises(SystemExit):
            quality.config_settings(bad)


def test_no_lavender_lids_where_the_target_wears_dark_make_up(demo, photos_dir, monkeypatch):
    """Grace Hopper into the selfie: the generator lightens Angelina Jolie's dark mauve eye
    make-up and the plain local chroma field kept the make-up's chroma on the lighter lids
    (lavender lids, 0.069 % colour casts); taking the chroma of the target's pixels of the same
    lightness (compose.LOCAL_COLOR_SIMILAR_SIGMA) everywhere leaves under half of what the plain
    field leaves (0.015 % against 0.034 % now). Since session 37 it acts around the eyes and
    brows and on features the swap paints darker (compose.LOCAL_COLOR_SIMILAR_ZONE): the lids are
    served, and 14 pixels in the shade beside the selfie taker's nose are as with the plain field
    (0.036 %), a face the cut fade leaves alone by default. (Every face swapped: the cut fade
    would leave the taker, whose casts count here too.)"""
    from facedancer_torch.evaluate.color import color_cast_fraction
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose
    from facedancer_torch.swap.options import SwapOptions

    quality = _quality()
    image = read_image(photos_dir / "df_selfie-many-people.jpg")
    plan = demo.plan([SOURCE.parent / "grace_hopper.jpg"])
    inside = quality.region_mask(quality.face_regions(demo, image), image.shape)
    casts = {}
    for name, knobs in (("plain", {"LOCAL_COLOR_SIMILAR_SIGMA": 0.0}),
                        ("everywhere", {"LOCAL_COLOR_SIMILAR_ZONE": 0.0}), ("default", {})):
        with monkeypatch.context() as patch:
            for knob, value in knobs.items():
                patch.setattr(compose, knob, value)
            swapped = demo.swap_image(image, plan, SwapOptions(cut_fade=False))
        casts[name] = color_cast_fraction(image, swapped, inside)
    assert casts["plain"] > 2e-4 and casts["everywhere"] < 0.6 * casts["plain"], casts
    assert casts["default"] < 1.2 * casts["plain"], casts


def _crops_with(demo, image, plan, job, monkeypatch, name: str, values) -> dict:
    """The default swap of ``image``, warped onto ``job``'s crop, for each value of the
    ``swap/compose.py`` constant ``name`` (left at the last value)."""
    from facedancer_torch.swap import compose
    from facedancer_torch.swap.options import SwapOptions

    size = job.crop.shape[0]
    crops = {}
    for value in values:
        monkeypatch.setattr(compose, name, value)
        out = demo.swap_image(image, plan, SwapOptions())
        crops[value] = cv2.warpAffine(out, job.matrix, (size, size), flags=cv2.INTER_LINEAR)
    return crops


def _one_face(demo, plan, path):
    """``(image, job, points)``: a photo with one face, its job and the target's 68
    landmarks on the job's crop."""
    from facedancer_torch.io.images import read_image

    image = read_image(path)
    jobs = demo.jobs_for(image, demo.detect(image), plan)
    assert len(jobs) == 1
    job = jobs[0]
    points = demo.compositor.landmarks68().on_crop(job.crop, demo.compositor.crop_shrink)
    return image, job, points


def test_brows_the_generator_paints_grey_blue_do_not_vanish(demo, photos_dir, monkeypatch):
    """Biden into Obama (fr_two_people.jpg): the demo generator paints Biden's brows grey-blue
    and only a little darker than the skin; with the skin's chroma alone (the local colour
    field) they all but vanish. Carried into lightness (compose.LOCAL_COLOR_CARRY) they stay
    darker than the forehead above them, while the rest of the face is the same."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose

    image = read_image(photos_dir / "fr_two_people.jpg")
    plan = demo.plan([photos_dir / "fr_biden.jpg"])
    jobs = demo.jobs_for(image, demo.detect(image), plan)
    job = min(jobs, key=lambda j: j.box[0])  # Obama, on the left
    size = job.crop.shape[0]
    points = demo.compositor.landmarks68().on_crop(job.crop, demo.compositor.crop_shrink)
    brows = masks.brow_zone(points, size) > 0.5
    above = np.roll(brows, -int(round(0.08 * size)), axis=0) & ~brows  # forehead just above
    crops = _crops_with(demo, image, plan, job, monkeypatch, "LOCAL_COLOR_CARRY",
                        (0.0, compose.LOCAL_COLOR_CARRY))
    lightness = {}
    for carry, crop in crops.items():
        light = to_lab(crop)[..., 0]
        # The brow itself: the darkest tenth of the zone (the zone holds skin around it too).
        lightness[carry] = (float(np.percentile(light[brows], 10)), float(light[above].mean()))
    plain_brow, plain_above = lightness[0.0]
    brow, forehead = lightness[compose.LOCAL_COLOR_CARRY]
    assert compose.LOCAL_COLOR_CARRY > 0
    assert forehead - brow > (plain_above - plain_brow) + 3.0, lightness
    far = masks.gaussian_blur(brows.astype(np.float32), 0.1 * size) < 1e-3
    difference = np.abs(crops[0.0].astype(int) - crops[compose.LOCAL_COLOR_CARRY])
    assert difference[far].mean() < 0.3, difference[far].mean()


def test_the_quality_benchmarks_null_generator_is_the_target():
    """benchmarks/quality.py --null-generator: the control returns the crops it gets (copy),
    or the same crops with only their coarse half of the resolution (soft)."""
    quality = _quality()
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    embeddings = np.zeros((2, 512), np.float32)
    np.testing.assert_array_equal(quality.null_generator(False)(crops, embeddings), crops)
    smooth = cv2.GaussianBlur(crops[0], (0, 0), 4.0)
    soft = quality.null_generator(True)(np.stack([smooth, crops[1]]), embeddings)
    assert np.abs(soft[0].astype(int) - smooth).mean() < 2.0  # smooth content passes
    assert np.abs(soft[1].astype(int) - crops[1]).mean() > 30.0  # pixel noise does not


def test_the_quality_benchmark_tells_each_sources_differences_apart():
    """benchmarks/quality.py with several --source: besides the pooled per-photo differences,
    one table per source over its own photos only (here one source gains where the other
    loses, which the pooled median hides)."""
    quality = _quality()
    rows = []
    for photo in ("a.jpg", "b.jpg", "c.jpg"):
        for label, change in (("alice", 0.05), ("bob", -0.03)):
            name = f"{photo} @ {label}"
            rows.append(quality.Row(name, "single", "reference", {"id gain": 0.2, "sharp": 0.1}))
            rows.append(quality.Row(name, "single", "default",
                                    {"id gain": 0.2 + change, "sharp": 0.9}))
    text = quality.per_source(rows, ["alice", "bob"], ["reference", "default"])
    alice, bob = text.split("### Source bob")
    assert "### Source alice (3 photos)" in alice and "(3 photos)" in bob
    assert "| default | +0.800 (3 / 0) | +0.050 (3 / 0) |" in alice
    assert "| default | +0.800 (3 / 0) | -0.030 (0 / 3) |" in bob


def test_an_eye_that_lost_its_dark_core_gets_the_targets_back(demo, demo_plan, photos_dir,
                                                             monkeypatch):
    """The astronaut into df_img37.jpg: the demo generator paints the image-left eye as a grey
    iris without its pupil (the darkest tenth of the eye opening about 20 L* units lighter
    than the target's after colour correction), the other eye as dark as the target's. With
    compose.EYE_DARKNESS the washed-out eye takes the target's dark core back; the healthy eye
    and everything away from the eyes stay the same. (df_img20.jpg, where it was 14, was
    this case until its 600 px face was located right: 7.5 now; docs/align.md "Large
    faces".)"""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.swap import compose

    image, job, points = _one_face(demo, demo_plan, photos_dir / "df_img37.jpg")
    size = job.crop.shape[0]
    target = to_lab(job.crop)[..., 0]
    crops = _crops_with(demo, image, demo_plan, job, monkeypatch, "EYE_DARKNESS",
                        (0.0, compose.EYE_DARKNESS))
    core = {}
    for amount, crop in crops.items():
        light = to_lab(crop)[..., 0]
        # Each eye's darkest tenth of its opening, output minus target.
        core[amount] = [float(np.percentile(light[opening], 10) -
                              np.percentile(target[opening], 10))
                        for opening in (masks.eye_opening(points, eye, size) for eye in (0, 1))]
    assert compose.EYE_DARKNESS > 0
    assert core[0.0][0] > 8.0, core  # washed out without it
    assert core[compose.EYE_DARKNESS][0] < 4.0, core  # its dark core back
    difference = np.abs(crops[0.0].astype(int) - crops[compose.EYE_DARKNESS]).mean(axis=-1)
    healthy = masks.one_eye_zone(points, 1, size, compose.EYE_DARKNESS_GROW) > 0.5
    assert difference[healthy].mean() < 0.3, difference[healthy].mean()
    far = masks.gaussian_blur(masks.eye_zone(points, size).astype(np.float32), 0.05 * size) < 1e-3
    assert difference[far].mean() < 0.3, difference[far].mean()


def test_an_eye_painted_dull_gets_the_targets_white_back(demo, demo_plan, photos_dir,
                                                         monkeypatch):
    """gfp_Blake_Lively.jpg into df_img16.jpg: the demo generator paints the image-left eye's
    white a mid grey (the brightest tenth of the eye opening about 23 L* units darker than the
    target's after colour correction). With compose.EYE_WHITES it takes the target's light
    back; the eye's darkest tenth (iris, pupil) and everything away from the eyes stay. (The
    astronaut into df_img33.jpg was this case until that 760 px face was located right:
    docs/align.md "Large faces".)"""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.swap import compose

    plan = demo.plan([photos_dir / "gfp_Blake_Lively.jpg"])
    image, job, points = _one_face(demo, plan, photos_dir / "df_img16.jpg")
    size = job.crop.shape[0]
    target = to_lab(job.crop)[..., 0]
    crops = _crops_with(demo, image, plan, job, monkeypatch, "EYE_WHITES",
                        (0.0, compose.EYE_WHITES))
    opening = masks.eye_opening(points, 0, size)
    light = {amount: to_lab(crop)[..., 0][opening] for amount, crop in crops.items()}
    bright = {amount: float(np.percentile(values, 90) - np.percentile(target[opening], 90))
              for amount, values in light.items()}
    dark = {amount: float(np.percentile(values, 10)) for amount, values in light.items()}
    assert compose.EYE_WHITES > 0
    assert bright[0.0] < -15.0, bright  # dull without it (-24)
    assert bright[compose.EYE_WHITES] > -10.0, bright  # its white back (-7; the margin is 4)
    # The iris stays the swap's: its darkest tenth lifts a little where the lightened white
    # meets it (+4.9 L*: this source's dull eye is a dark almond, the white barely there).
    assert abs(dark[compose.EYE_WHITES] - dark[0.0]) < 6.0, dark
    difference = np.abs(crops[0.0].astype(int) - crops[compose.EYE_WHITES]).mean(axis=-1)
    far = masks.gaussian_blur(masks.eye_zone(points, size).astype(np.float32), 0.05 * size) < 1e-3
    assert difference[far].mean() < 0.3, difference[far].mean()


def test_focus_blurs_a_swap_only_as_far_as_an_out_of_focus_target(photos_dir):
    """``compose.focus_sigma``: a crisp swap of a face the photo shows blurred is blurred to
    about the target's focus (the sigma that blurred the target is found again, and the
    Laplacian variances then agree); a swap as soft as or softer than its target is left."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose

    image = read_image(photos_dir / "df_img1.jpg")
    crop, _ = align_face(image, largest_face(get_detector(device="cpu").detect(image)).landmarks,
                         128)
    where = np.zeros((128, 128), bool)
    where[24:112, 24:104] = True
    for sigma in (1.0, 2.0, 3.0):
        target = cv2.GaussianBlur(crop, (0, 0), sigma)
        found = compose.focus_sigma(crop, target, where)
        assert abs(found - sigma) < 0.35 * sigma, (sigma, found)
        blurred = cv2.GaussianBlur(crop, (0, 0), found)
        ratio = compose._laplacian_variance(blurred, where) / \
            compose._laplacian_variance(target, where)
        assert 0.7 < ratio <= 1.3, (sigma, ratio)
    assert compose.focus_sigma(crop, crop, where) == 0.0
    assert compose.focus_sigma(cv2.GaussianBlur(crop, (0, 0), 1.0), crop, where) == 0.0
    assert compose.focus_sigma(crop, cv2.GaussianBlur(crop, (0, 0), 2.0),
                               np.zeros((128, 128), bool)) == 0.0  # nothing to judge


def test_a_face_out_of_focus_in_the_photo_stays_out_of_focus(demo, demo_plan, photos_dir,
                                                            monkeypatch):
    """df_img62.jpg has blurred faces in the background. Without the focus match the
    generator paints the most blurred one crisper than the photo there (Laplacian variance in
    the middle of the face 3 times the photo's); with it about as soft as the photo, and the
    face in focus is pasted exactly as before. (That face is cut by the photo's bottom edge
    below the eyes: measured inside the frame, 3 px from its edge; the cut fade, which would
    leave it as it is (read at 0.76), is off here.)"""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose
    from facedancer_torch.swap.options import SwapOptions

    image = read_image(photos_dir / "df_img62.jpg")
    jobs = demo.jobs_for(image, demo.detect(image), demo_plan)
    sharpest = max(jobs, key=lambda j: compose._laplacian_variance(j.crop, np.ones((128, 128),
                                                                                     bool)))
    blurred = min(jobs, key=lambda j: compose._laplacian_variance(j.crop, np.ones((128, 128),
                                                                                    bool)))
    size = blurred.crop.shape[0]
    where = np.zeros((size, size), bool)
    where[32:104, 32:96] = True  # the middle of the face: eyes, nose, mouth
    inside = compose.inside_frame(blurred.matrix, size, image.shape).astype(np.uint8)
    where &= cv2.erode(inside, np.ones((7, 7), np.uint8)) > 0
    outputs, ratios = {}, {}
    for match in (0.0, compose.FOCUS_MATCH):
        monkeypatch.setattr(compose, "FOCUS_MATCH", match)
        outputs[match] = demo.swap_image(image, demo_plan, SwapOptions(cut_fade=False))
        crop = cv2.warpAffine(outputs[match], blurred.matrix, (size, size),
                              flags=cv2.INTER_LINEAR)
        target = cv2.warpAffine(image, blurred.matrix, (size, size), flags=cv2.INTER_LINEAR)
        ratios[match] = compose._laplacian_variance(crop, where) / \
            compose._laplacian_variance(target, where)
    assert compose.FOCUS_MATCH > 0
    assert ratios[0.0] > 1.4, ratios  # measured 2.98
    assert ratios[compose.FOCUS_MATCH] < min(1.5, 0.5 * ratios[0.0]), ratios  # measured 1.33
    x0, y0, x1, y1 = (int(v) for v in sharpest.box)
    difference = np.abs(outputs[0.0][y0:y1, x0:x1].astype(int) -
                        outputs[compose.FOCUS_MATCH][y0:y1, x0:x1])
    assert difference.max() == 0, difference.max()


def test_ease_moves_part_of_the_way_and_keeps_what_was_not_measured():
    """``compose.ease``: the first frame is taken as it is, later ones move ``rate`` of the
    way from the previous eased value, a NaN (an eye too small to judge this frame) keeps
    the previous value, and an entry first measured later starts from its own value."""
    from facedancer_torch.swap import compose

    memory: dict = {}
    np.testing.assert_allclose(compose.ease(memory, "k", np.array([1.0, np.nan]), 0.3),
                               [1.0, np.nan])
    np.testing.assert_allclose(compose.ease(memory, "k", np.array([0.0, 0.5]), 0.3), [0.7, 0.5])
    np.testing.assert_allclose(compose.ease(memory, "k", np.array([np.nan, 1.0]), 0.3),
                               [0.7, 0.65])
    # Alternating raw gates (as a generator's iris flickers) come out within a narrow band.
    eased = [compose.ease(memory, "j", np.array([v]), 0.3)[0] for v in [1.0, 0.0] * 20]
    assert max(eased[10:]) - min(eased[10:]) < 0.35


def test_a_tracked_face_keeps_one_memory_through_a_video(demo, demo_plan, videos_dir,
                                                         monkeypatch):
    """swap_stream hands the compositor the same per-track dict on every frame of a track (the
    eye darkness and the eye whites ease their gates there, the brow depth its gains,
    compose.EYE_DARKNESS_EASE); a still image gets none."""
    from facedancer_torch.io.video import read_frames
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.video import swap_stream

    frames = [f.rgb for f in read_frames(videos_dir / "talking_1face_512.mp4", max_frames=8)]
    seen: list = []
    composite = demo.compositor.composite

    def recording(frame, jobs, swapped, options, others=(), coverage=None):
        seen.append([job.memory for job in jobs])
        return composite(frame, jobs, swapped, options, others, coverage)

    monkeypatch.setattr(demo.compositor, "composite", recording)
    list(swap_stream(demo, iter(frames), demo_plan, SwapOptions(batch_size=4)))
    memories = [m for frame in seen for m in frame]
    assert len(memories) >= 5 and all(m is memories[0] for m in memories)
    assert "eye_darkness" in memories[0] and memories[0]["eye_darkness"].shape == (2,)
    assert "eye_whites" in memories[0] and memories[0]["eye_whites"].shape == (2,)
    assert "brow_depth" in memories[0] and memories[0]["brow_depth"].shape == (2,)
    seen.clear()
    demo.swap_image(frames[0], demo_plan, SwapOptions())
    assert seen == [[None]]


def test_a_256_px_models_colour_is_fitted_at_128_px_for_the_same_picture(photos_dir, tmp_path,
                                                                          monkeypatch):
    """compose.COLOR_FIT_SIZE: the colour correction of a 256 px generator crop is fitted on
    its 128 px copy (a third of the time) and applied at 256; the picture is the one the
    256 px fit gives, within rounding and the eyes' finer fields. The "swap" is the target's
    own crop with a teal cast and a blur, so the correction has work to do."""
    from facedancer_torch.faces import color
    from facedancer_torch.io.images import read_image
    from facedancer_torch.models.generator import build_generator
    from facedancer_torch.swap import compose
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    model = build_generator(image_size=256, encoder_widths=(4, 8, 8, 8, 8, 8, 8),
                            mapping_depth=1, mapping_width=16, identity_encoder="facenet")
    swapper = Swapper(model.save_pretrained(tmp_path / "g256"), backend="fused")
    image = read_image(photos_dir / "df_img1.jpg")
    jobs = swapper.jobs_for(image, swapper.detect(image), swapper.plan([SOURCE]))
    assert jobs and jobs[0].crop.shape[0] == 256
    lab = color.to_lab(jobs[0].crop)
    lab[..., 1] -= 12.0  # teal: less red, more green
    lab[..., 2] -= 6.0
    cast = cv2.GaussianBlur(color.from_lab(lab), (0, 0), 1.5)
    swapped = np.stack([cast])
    fitted_at = []
    real_fit = compose.fit_colour
    monkeypatch.setattr(compose, "fit_colour",
                        lambda small, *a, **k: fitted_at.append(small.shape[0]) or
                        real_fit(small, *a, **k))
    outs = {}
    for side in (0, 128):
        monkeypatch.setattr(compose, "COLOR_FIT_SIZE", side)
        outs[side] = swapper.compositor.composite(image, jobs[:1], swapped, SwapOptions())
    assert fitted_at == [256, 128]
    x1, y1, x2, y2 = (int(v) for v in jobs[0].box)
    face = (slice(y1, y2), slice(x1, x2))
    difference = np.abs(outs[0].astype(int) - outs[128])[face]
    # measured: mean 0.34, 99.9th percentile 5, max 11 grey levels (the eyes' fields)
    assert difference.mean() < 0.6 and np.percentile(difference, 99.9) <= 8, \
        (difference.mean(), difference.max())
    # and the cast is gone in both: the face's mean chroma is the photo's
    a_target = color.to_lab(image[face])[..., 1:].mean(axis=(0, 1))
    for out in outs.values():
        assert np.abs(color.to_lab(out[face])[..., 1:].mean(axis=(0, 1)) - a_target).max() < 2.0


def test_brows_the_generator_paints_pale_get_the_targets_depth(demo, demo_plan, photos_dir,
                                                                monkeypatch):
    """df_img42.jpg with the astronaut: the demo generator paints both brows about half as
    deep as the photo's (darkness against the skin around them, 90th percentile over each
    brow's line); compose.BROW_DEPTH deepens a brow that falls short of BROW_DEPTH_SHARE (0.7)
    of the target's by more than the margin towards it, and the face away from the brows does
    not change."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import _shading, to_lab
    from facedancer_torch.swap import compose

    image, job, points = _one_face(demo, demo_plan, photos_dir / "df_img42.jpg")
    size = job.crop.shape[0]
    eyes = masks.eye_zone(points, size)
    lines = [(masks.one_brow_zone(points, brow, size, 0.8) > 0.5) & ~eyes for brow in (0, 1)]

    def depths(crop):
        light = to_lab(crop)[..., 0]
        dark = _shading(light, 0.08 * size) - light
        return [float(np.percentile(dark[line], 90)) for line in lines]

    target = depths(job.crop)
    crops = _crops_with(demo, image, demo_plan, job, monkeypatch, "BROW_DEPTH",
                        (0.0, compose.BROW_DEPTH))
    pale, deep = depths(crops[0.0]), depths(crops[compose.BROW_DEPTH])
    assert compose.BROW_DEPTH > 0
    assert all(p < 0.62 * t for p, t in zip(pale, target)), (pale, target)  # 18 / 21 of 38 / 34
    # The image-left brow, 0.7 * 38 - 18 = 8.6 L* short of its aim, is deepened by most of
    # that (24); the other, 3 short, is within the margin (5) and nearly unchanged.
    assert deep[0] > pale[0] + 4.0 and deep[1] > pale[1] - 0.5, (pale, deep)
    assert all(d < 0.75 * t for d, t in zip(deep, target)), (deep, target)  # not beyond
    away = masks.hull_mask(points, size) > 0.5
    away &= ~(masks.brow_zone(points, size, 1.6) > 0.05)
    change = np.abs(crops[0.0].astype(int) - crops[compose.BROW_DEPTH]).max(axis=-1)
    assert float(change[away].mean()) < 0.5, float(change[away].mean())


def test_a_face_in_a_hard_shadow_keeps_it(demo, demo_plan, photos_dir, monkeypatch):
    """fr_obama_and_biden.jpg: the child's upper face lies in her hair's hard shadow; the
    generator paints it evenly lit, and without the shadow carried (compose.CAST_SHADOW) a lit
    blob stands over her eyes (8 % of the upper face 15 L* or more lighter than the target).
    With it the shadow stays; the lower face, out of the shadow, hardly changes."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap import compose

    image = read_image(photos_dir / "fr_obama_and_biden.jpg")
    jobs = demo.jobs_for(image, demo.detect(image), demo_plan)
    job = max(jobs, key=lambda j: j.box[1])  # the child, lowest in the photo
    size = job.crop.shape[0]
    points = demo.compositor.landmarks68().on_crop(job.crop, demo.compositor.crop_shrink)
    hull = masks.hull_mask(points, size) > 0.5
    upper = hull.copy()
    upper[int(points[30][1]):] = False  # above the middle of the nose
    target = to_lab(job.crop)[..., 0]
    crops = _crops_with(demo, image, demo_plan, job, monkeypatch, "CAST_SHADOW",
                        (0.0, compose.CAST_SHADOW))
    lit = {v: float(((to_lab(c)[..., 0] - target)[upper] > 15).mean()) for v, c in crops.items()}
    assert compose.CAST_SHADOW > 0
    assert lit[0.0] > 0.04, lit  # the blob (0.079)
    assert lit[compose.CAST_SHADOW] < 0.01, lit  # gone (0.002)
    lower = to_lab(crops[0.0])[..., 0] - to_lab(crops[compose.CAST_SHADOW])[..., 0]
    assert np.abs(lower[hull & ~upper]).mean() < 1.5, np.abs(lower[hull & ~upper]).mean()
