"""Occluded / rotated targets (issue #13, robustness): the augmentation changes targets only
where it paints (or warps), is a pure function of (seed, rank, batch), leaves sources clean,
is off by default with batches bit-identical to the plain loader, and the segmenter's samples
are unchanged by moving the painters to ``data/occluders.py``."""

from __future__ import annotations

import hashlib
import math

import cv2
import numpy as np
import pytest
import torch

from facedancer_torch.data.augment import (AugmentConfig, TargetAugmentConfig, augment_batch,
                                           augment_targets)
from facedancer_torch.data.occluders import PAINTERS, paint_occluders
from facedancer_torch.data.pairs import PairBatches, _torch_seed, folder_index, load_faces
from facedancer_torch.errors import FacedancerError
from facedancer_torch.train.config import load_config

SIZE = 64
OCCLUDE = TargetAugmentConfig(occlude_prob=1.0)


def synthetic_landmarks(size: int) -> np.ndarray:
    """A plausible 68-point (iBUG order) face in a ``size`` crop, numpy only."""
    s = size / 128.0
    t = np.linspace(math.pi, 0, 17)
    jaw = np.stack([64 + 48 * np.cos(t), 62 + 50 * np.sin(t)], 1)
    brows = np.concatenate([np.stack([np.linspace(30, 56, 5), np.full(5, 46.0)], 1),
                            np.stack([np.linspace(72, 98, 5), np.full(5, 46.0)], 1)])
    nose = np.concatenate([np.stack([np.full(4, 64.0), np.linspace(56, 78, 4)], 1),
                           np.stack([np.linspace(56, 72, 5), np.full(5, 82.0)], 1)])
    a = np.linspace(0, 2 * math.pi, 6, endpoint=False)
    eyes = np.concatenate([np.stack([c + 9 * np.cos(a), 58 + 4 * np.sin(a)], 1) for c in (44, 84)])
    b = np.linspace(0, 2 * math.pi, 12, endpoint=False)
    c = np.linspace(0, 2 * math.pi, 8, endpoint=False)
    mouth = np.concatenate([np.stack([64 + 18 * np.cos(b), 98 + 7 * np.sin(b)], 1),
                            np.stack([64 + 11 * np.cos(c), 98 + 3 * np.sin(c)], 1)])
    points = np.concatenate([jaw, brows, nose, eyes, mouth]) * s
    assert points.shape == (68, 2)
    return points.astype(np.float32)


def synthetic_faces(module, count: int = 5, size: int = 128):
    """:class:`PreparedFaces` of smooth random crops with :func:`synthetic_landmarks`."""
    rng = np.random.default_rng(3)
    crops = np.stack([cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (size, size),
                                 interpolation=cv2.INTER_CUBIC) for _ in range(count)])
    base = synthetic_landmarks(size)
    landmarks = np.stack([base + rng.normal(0, 1.5, base.shape).astype(np.float32)
                          for _ in range(count)])
    return module.PreparedFaces(crops, landmarks, [f"f{i}" for i in range(count)])


def synthesize_digest(module) -> str:
    """sha256 of a seeded run of ``module.synthesize`` (every occluder kind, edges too)."""
    faces = synthetic_faces(module)
    rng = np.random.default_rng(5)
    digest = hashlib.sha256()
    for i in range(40):
        for part in module.synthesize(faces, i % len(faces.crops), rng, edge_prob=0.3):
            digest.update(part.tobytes())
    for kind in module.PAINTERS:
        for part in module.synthesize(faces, 1, rng, kind=kind, edge_prob=0.5):
            digest.update(part.tobytes())
    return digest.hexdigest()


def test_segmenter_samples_unchanged_by_the_move():
    """Digest computed with the segmenter as committed before the painters moved to
    data/occluders.py (git show 3ad5102:src/facedancer_torch/train/segmenter.py)."""
    from facedancer_torch.train import segmenter

    assert segmenter.PAINTERS is PAINTERS
    assert synthesize_digest(segmenter) == \
        "984ce23b3afa7a56bc7c5317473e226d7ce6bf54cab3c463ce8ec62bf12a998f"


def test_paint_occluders_touches_only_its_alpha():
    faces = synthetic_faces(__import__("facedancer_torch.train.segmenter",
                                       fromlist=["PreparedFaces"]), size=SIZE)
    for seed in range(12):
        rng = np.random.default_rng(seed)
        image = faces.crops[0].astype(np.float32)
        before = image.copy()
        alpha = paint_occluders(image, faces.landmarks[0], faces.crops, rng, edge_prob=0.5,
                                other_landmarks=faces.landmarks)
        changed = (image != before).any(-1)
        assert alpha.min() >= 0 and alpha.max() <= 1
        assert not changed[alpha == 0].any(), seed  # bit-identical where nothing was painted
        assert (alpha > 0.5).sum() > 0, seed


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """4 identities x 3 smooth random 64 px 'faces' (the loader does not care what they show)."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    for person in range(4):
        (root / f"p{person}").mkdir()
        for k in range(3):
            image = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (SIZE, SIZE),
                               interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(root / f"p{person}" / f"p{person}_{k}.png"), image)
    return folder_index(root)


def _batches(index, targets=TargetAugmentConfig(), augment=AugmentConfig(enabled=False),
             seed=0, same_prob=0.2):
    return PairBatches(index, SIZE, 4, seed=seed, same_prob=same_prob, augment=augment,
                       targets=targets)


def test_off_by_default_batches_are_bit_identical_to_the_plain_loader(index):
    """What make_batch computed before the augmentation existed, written out."""
    plain = _batches(index, augment=AugmentConfig())
    assert not plain.targets.enabled
    for k in (0, 3, 7):
        got = plain.make_batch(k)
        assert set(got) == {"target", "source", "same", "target_index", "source_index", "batch"}
        gen = torch.Generator().manual_seed(_torch_seed(0, 17, 0, k))
        target = augment_batch(load_faces(index, got["target_index"].numpy(), SIZE),
                               AugmentConfig(), gen)
        source = augment_batch(load_faces(index, got["source_index"].numpy(), SIZE),
                               AugmentConfig(), gen)
        assert torch.equal(got["target"], target) and torch.equal(got["source"], source)


@pytest.mark.parametrize("name", ["tiny", "demo", "paper"])
def test_shipped_configs_leave_it_off(name):
    loader = load_config(name).loader
    assert (loader.occlude_prob, loader.rotate_deg, loader.scale_jitter) == (0, 0, 0)


def test_config_rejects_bad_values():
    for bad in ("loader.occlude_prob=1.5", "loader.rotate_deg=-1", "loader.scale_jitter=1"):
        with pytest.raises(FacedancerError, match=bad.split("=")[0]):
            load_config("tiny", [bad])


def test_occluders_change_targets_only_where_painted_and_sources_stay_clean(index):
    clean, occluded = _batches(index), _batches(index, OCCLUDE)
    painted = 0
    for k in range(4):
        a, b = clean.make_batch(k), occluded.make_batch(k)
        assert torch.equal(a["target_index"], b["target_index"])
        assert torch.equal(a["source"], b["source"])  # identity comes from clean sources
        alpha = b["target_occluder"]
        assert alpha.shape == (4, SIZE, SIZE)
        changed = (a["target"] != b["target"]).any(1)
        assert not changed[alpha == 0].any()
        assert (changed[alpha > 0.5].float().mean()) > 0.9
        # occlude_prob=1: every target gets one (an occluder may lie mostly off the crop)
        painted += int((alpha > 0.5).flatten(1).any(1).sum())
        # same-identity samples: the source is the clean target, the target is occluded
        same = b["same"].bool()
        assert torch.equal(b["source"][same], a["target"][same])
        # the discriminator's real batch: sources augmented the same way, other draws
        assert b["real"].shape == b["source"].shape
        assert not torch.equal(b["real"], b["source"])
    assert painted >= 12  # of 16 targets


def test_rotation_and_scale_without_occluders(index):
    geo = TargetAugmentConfig(rotate_deg=20, scale_jitter=0.1)
    a, b = _batches(index).make_batch(2), _batches(index, geo).make_batch(2)
    assert torch.equal(a["source"], b["source"])
    assert not (b["target_occluder"] > 0).any()
    assert (a["target"] != b["target"]).any((1, 2, 3)).all()  # every target warped
    assert b["target"].abs().max() <= 1.0


def test_draws_are_a_pure_function_of_seed_and_batch(index):
    config = TargetAugmentConfig(occlude_prob=0.7, rotate_deg=15, scale_jitter=0.1)
    first = _batches(index, config, augment=AugmentConfig())
    second = _batches(index, config, augment=AugmentConfig())
    second.make_batch(9)  # another batch drawn first changes nothing
    for k in (0, 5):
        x, y = first.make_batch(k), second.make_batch(k)
        for key in ("target", "source", "real", "target_occluder", "same"):
            assert torch.equal(x[key], y[key]), (k, key)
    assert not torch.equal(first.make_batch(0)["target"], first.make_batch(1)["target"])
    other = _batches(index, config, augment=AugmentConfig(), seed=1).make_batch(0)
    assert not torch.equal(other["target_occluder"], first.make_batch(0)["target_occluder"])


def test_augment_targets_disabled_is_the_identity():
    crops = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    images, alpha = augment_targets(crops, TargetAugmentConfig(), np.random.default_rng(0))
    assert np.array_equal(images, crops.astype(np.float32)) and not alpha.any()
