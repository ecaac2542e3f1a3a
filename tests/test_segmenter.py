"""The occlusion-aware face segmenter: shipped weights, contract, real photos, training command."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from facedancer_torch.errors import ModelError
from facedancer_torch.faces.occlusion import (FaceSegmenterNet, SegmenterConfig, face_region_mask,
                                              load_face_segmenter, save_face_segmenter)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from occluders import marked_photos, occluder_mask  # noqa: E402


@pytest.fixture(scope="module")
def segmenter():
    return load_face_segmenter()


def test_shipped_weights_load(segmenter):
    net = segmenter.net
    assert net.config.image_size == 128
    assert sum(p.numel() for p in net.parameters()) < 1_000_000
    assert not net.training
    assert net.config.training["steps_done"] == net.config.training["steps"]


@pytest.mark.parametrize("size", [128, 256, 112])
def test_contract_shapes_and_range(segmenter, size):
    crops = np.random.default_rng(0).integers(0, 256, (3, size, size, 3), dtype=np.uint8)
    face, occluder = segmenter.predict(crops)
    for out in (face, occluder):
        assert out.shape == (3, size, size) and out.dtype == np.float32
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


def test_mirrored_pass_is_symmetric(segmenter, photos_dir):
    from facedancer_torch.io.images import read_image

    crop, _ = _largest_crop(read_image(photos_dir / "df_img25.jpg"), 128)
    plain = segmenter.predict(crop[None])[1][0]
    both = segmenter.predict(crop[None], mirror=True)[1][0]
    mirrored = segmenter.predict(np.ascontiguousarray(crop[None, :, ::-1]), mirror=True)[1][0]
    # Averaging a crop's and its mirror's maps gives the mirror image for the mirrored crop.
    assert np.abs(mirrored[:, ::-1] - both).max() < 1e-4
    # The two passes disagree on this face (a glasses frame found more on one side), so the
    # average is not the plain map.
    assert np.abs(both - plain).max() > 0.2
    # A crop whose plain map stays below mirror_above keeps it; one above it is averaged.
    kept = segmenter.predict(crop[None], mirror=True, mirror_above=float(plain.max()))[1][0]
    assert np.array_equal(kept, plain)
    averaged = segmenter.predict(crop[None], mirror=True,
                                 mirror_above=float(plain.max()) - 0.01)[1][0]
    assert np.abs(averaged - both).max() < 1e-4


def test_empty_batch(segmenter):
    face, occluder = segmenter.predict(np.zeros((0, 256, 256, 3), np.uint8))
    assert face.shape == occluder.shape == (0, 256, 256)
    assert face.dtype == occluder.dtype == np.float32


def test_bad_inputs(segmenter, tmp_path):
    with pytest.raises(ValueError, match="uint8"):
        segmenter.predict(np.zeros((1, 128, 128, 3), np.float32))
    with pytest.raises(ValueError, match="crops"):
        segmenter.predict(np.zeros((1, 128, 96, 3), np.uint8))
    with pytest.raises(ModelError, match="not found"):
        load_face_segmenter(tmp_path / "nothing")


def test_save_load_round_trip(tmp_path):
    net = FaceSegmenterNet(SegmenterConfig(widths=(4, 8, 8)))
    save_face_segmenter(net, tmp_path / "seg")
    loaded = load_face_segmenter(tmp_path / "seg")
    crops = np.random.default_rng(1).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    net.eval()
    import torch

    with torch.no_grad():
        expected = torch.sigmoid(net(torch.from_numpy(crops).permute(0, 3, 1, 2).float()
                                     / 127.5 - 1.0)).numpy()
    face, occluder = loaded.predict(crops)
    np.testing.assert_allclose(face, expected[:, 0], atol=1e-5)
    np.testing.assert_allclose(occluder, expected[:, 1], atol=1e-5)


def test_face_region_mask_lifts_brows():
    # A synthetic frontal layout: brows at y = 40, chin at y = 100.
    points = np.zeros((68, 2))
    points[0:17] = np.stack([np.linspace(20, 108, 17), 60 + 40 * np.sin(np.linspace(0, np.pi, 17))],
                            axis=1)
    points[17:27] = np.stack([np.linspace(30, 98, 10), np.full(10, 40.0)], axis=1)
    points[27:68] = [64, 70]
    points[27] = [64, 45]
    mask = face_region_mask(points, (128, 128))
    assert mask[38, 64] and not mask[25, 64]  # lifted by 0.12 x 55 px ~ 6.6 px above y = 40
    assert mask[95, 64] and not mask[105, 64]


def test_occluder_mask_holes():
    # Clear lenses are holes: the frame is an occluder, the eye behind it is not.
    assert "df_img25.jpg" in marked_photos()
    mask = occluder_mask("df_img25.jpg", (400, 400))
    assert mask[160, 134] and mask[147, 208]  # left rim, bridge (row y, column x)
    assert not mask[160, 165]
    assert not occluder_mask("not_marked.jpg", (10, 10)).any()


def _largest_crop(image, size=256):
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face

    face = largest_face(get_detector(threads=1).detect(image))
    return align_face(image, face.landmarks, size, shrink_factor=1.0)


def _marked_in_crop(name, labels, photos_dir):
    import cv2

    from facedancer_torch.io.images import read_image

    image = read_image(photos_dir / name)
    crop, matrix = _largest_crop(image)
    marked = occluder_mask(name, image.shape, labels=labels).astype(np.uint8)
    return crop, cv2.warpAffine(marked, matrix, (256, 256), flags=cv2.INTER_NEAREST) > 0


def test_glasses_frame_is_occluder(segmenter, photos_dir):
    crop, marked = _marked_in_crop("df_img24.jpg", ("glasses",), photos_dir)
    face, occluder = segmenter.predict(crop[None])
    # Measured 0.75 of the frame pixels with the shipped weights (benchmarks/segmenter.py).
    assert (occluder[0][marked] > 0.5).mean() > 0.6
    skin = (face[0] > 0.5) & ~marked
    assert (occluder[0][skin] > 0.5).mean() < 0.08  # measured 0.04


def test_microphone_gets_occluder_probability(segmenter, photos_dir):
    crop, marked = _marked_in_crop("fr_lin-manuel-miranda.png", ("microphone",), photos_dir)
    assert marked.sum() > 200  # the microphone's head reaches into the swapper's crop
    face, occluder = segmenter.predict(crop[None])
    skin = (face[0] > 0.5) & ~marked
    # Measured: mean p(occluder) 0.56 on the microphone (a sliver at the crop's bottom
    # edge; 0.27 with run 3, 0.11 with run 2), 0.000 on the rest of the face.
    assert occluder[0][marked].mean() > 0.05
    assert occluder[0][skin].mean() < 0.01


def test_microphone_is_mostly_occluder(segmenter, photos_dir):
    """In the swapper's crop the microphone is an 8 px sliver at the bottom edge: run 3 called
    25 % of it occluder (a known limit until session 25), run 4 58 %."""
    crop, marked = _marked_in_crop("fr_lin-manuel-miranda.png", ("microphone",), photos_dir)
    _, occluder = segmenter.predict(crop[None])
    assert (occluder[0][marked] > 0.5).mean() > 0.5


def test_clean_lfw_face(segmenter, lfw_dir):
    from facedancer_torch.train.segmenter import list_lfw, prepare_faces

    faces = prepare_faces(list_lfw(lfw_dir / "images", held_out=True, limit=4, seed=3), 128)
    face, occluder = segmenter.predict(faces.crops)
    for points, fp, op in zip(faces.landmarks, face, occluder):
        inner = np.round(points[27:68]).astype(int)  # nose, eyes, mouth
        assert (fp[inner[:, 1].clip(0, 127), inner[:, 0].clip(0, 127)] > 0.5).mean() > 0.95
        hull = face_region_mask(points, fp.shape)
        assert (op[hull] > 0.5).mean() < 0.1
        assert ((fp > 0.5) & hull).sum() / hull.sum() > 0.85


def test_train_command_runs(lfw_dir, tmp_path):
    from typer.testing import CliRunner

    from facedancer_torch.cli import app

    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train-segmenter", "--lfw", str(lfw_dir / "images"),
                                      "--out", str(out), "--steps", "3", "--images", "6",
                                      "--batch-size", "2", "--text-prob", "1", "--quiet"])
    assert result.exit_code == 0, result.output
    assert (out / "log.jsonl").read_text().count("\n") == 1
    loaded = load_face_segmenter(out / "model")
    assert loaded.net.config.training["steps_done"] == 3
    assert loaded.net.config.training["text_prob"] == 1.0
    face, occluder = loaded.predict(np.zeros((1, 256, 256, 3), np.uint8))
    assert face.shape == (1, 256, 256)


def _augmented_pairs(lfw_dir, count: int, **augment):
    """(plain, augmented) samples of the same draws; asserts that the augmentation kept the
    face and occluder labels, up to the left-right flip drawn after it."""
    from facedancer_torch.train.segmenter import prepare_faces, synthesize

    files = sorted((lfw_dir / "images").glob("*/*.jpg"))[:4]
    faces = prepare_faces(files, 128)
    assert len(faces.crops) >= 2
    pairs = []
    for index in range(count):
        plain = synthesize(faces, index % len(faces.crops), np.random.default_rng(index))
        other = synthesize(faces, index % len(faces.crops), np.random.default_rng(index),
                           **augment)
        flip = not np.array_equal(plain[1], other[1])
        for a, b in ((plain[1], other[1]), (plain[2], other[2])):
            np.testing.assert_array_equal(a, b[:, ::-1] if flip else b)
        pairs.append((plain, other))
    return pairs


def test_sharpened_samples_keep_their_labels(lfw_dir):
    """`--sharpen-prob`: a sharpened sample has the same face and occluder labels as without,
    up to the random mirroring (only the picture is crisper: sharp skin folds are still face); 0 draws nothing, so runs
    without it keep their exact samples (tests/test_augment_targets.py pins those)."""
    import cv2

    crisper = 0
    for plain, sharp in _augmented_pairs(lfw_dir, 8, sharpen_prob=1.0):
        assert not np.array_equal(plain[0], sharp[0])
        lap = [cv2.Laplacian(cv2.cvtColor(x[0], cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()
               for x in (plain, sharp)]
        crisper += lap[1] > lap[0]
    assert crisper >= 6


def test_cast_shadows_darken_part_of_a_sample_and_keep_its_labels(lfw_dir):
    """`--shadow-prob`: a cast shadow (hair, a hat) darkens one side of the sample to 25-65 %
    with a soft edge while the face and occluder labels stay (shadowed skin is face); 0 draws
    nothing, so runs without it keep their exact samples."""
    from facedancer_torch.train.segmenter import cast_shadow

    for plain, shaded in _augmented_pairs(lfw_dir, 6, shadow_prob=1.0):
        assert not np.array_equal(plain[0], shaded[0])
    image = np.full((128, 128, 3), 200.0, np.float32)
    for seed in range(20):
        ratio = cast_shadow(image, np.random.default_rng(seed)).mean(axis=2) / 200.0
        assert ratio.max() <= 1.0 + 1e-6 and ratio.min() >= 0.2
        dark = ratio < 0.7
        assert 0.0 < dark.mean() < 1.0, seed  # a part of the sample, not all or nothing


def test_text_painter_draws_words_it_labels(lfw_dir):
    """`--text-prob`: words laid over a sample (a caption, a subtitle) are its occluder: every
    pixel the painter changed lies under its alpha, the letters cross the face, and they are
    drawn in light or dark (white, yellow, black letters; outlines)."""
    from facedancer_torch.data.occluders import paint_text
    from facedancer_torch.train.segmenter import prepare_faces

    files = sorted((lfw_dir / "images").glob("*/*.jpg"))[:2]
    faces = prepare_faces(files, 128)
    face = face_region_mask(faces.landmarks[0], (128, 128))
    crossing = 0
    for seed in range(16):
        image = faces.crops[0].astype(np.float32)
        before = image.copy()
        alpha = paint_text(image, faces.landmarks[0], faces.crops, np.random.default_rng(seed))
        changed = (image != before).any(-1)
        assert alpha.min() >= 0 and alpha.max() <= 1
        assert not changed[alpha == 0].any(), seed
        letters = alpha > 0.5
        crossing += (letters & face).sum() >= 20
        # what is labelled is what a viewer sees as text: far from the face's own pixels
        assert np.abs(image - before).max(-1)[letters].mean() > 25, seed
    assert crossing >= 12


def test_text_samples_are_labelled_and_off_by_default(lfw_dir):
    """``kind="text"`` gives a sample whose only occluder is the words; ``text_prob`` 1 adds
    them to every sample; 0 draws nothing, so runs without it keep their exact samples."""
    from facedancer_torch.train.segmenter import prepare_faces, synthesize

    files = sorted((lfw_dir / "images").glob("*/*.jpg"))[:4]
    faces = prepare_faces(files, 128)
    for index in range(4):
        image, face, occluder = synthesize(faces, index, np.random.default_rng(index),
                                           kind="text")
        assert occluder.any() and occluder.mean() < 0.5
        plain = synthesize(faces, index, np.random.default_rng(index))
        off = synthesize(faces, index, np.random.default_rng(index), text_prob=0.0)
        for a, b in zip(plain, off):
            np.testing.assert_array_equal(a, b)
    labelled = [synthesize(faces, i % 4, np.random.default_rng(100 + i), occlusion_prob=0.0,
                           text_prob=1.0)[2].any() for i in range(8)]
    assert all(labelled)
