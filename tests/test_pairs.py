"""Pair loader (docs/reference.md §6): epochs cover every image exactly once per stream, split by
rank and worker, resumable by batch index; "same" flags; per-batch colour augmentation."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facedancer_torch.data.augment import AugmentConfig, AugmentDraw, apply_augmentation
from facedancer_torch.data.pairs import (PairBatches, folder_index, open_face_index, pair_loader,
                                         validation_pairs)
from facedancer_torch.data.shard import write_shards

IDENTITIES = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Hans_Blix")
NO_AUGMENT = AugmentConfig(enabled=False)


@pytest.fixture(scope="module")
def face_folder(lfw_dir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    for name in IDENTITIES:
        (root / name).mkdir()
        for src in sorted((lfw_dir / "images" / name).iterdir())[:4]:
            shutil.copy(src, root / name / src.name)
    return root


@pytest.fixture(scope="module")
def shard_set(face_folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    return write_shards(face_folder, out, "faces", per_shard=5, val_identities=0,
                        progress=False)


def _take(dataset: PairBatches, n: int, workers: int = 0) -> list[dict]:
    batches = []
    for batch in pair_loader(dataset, workers=workers):
        batches.append(batch)
        if len(batches) == n:
            break
    return batches


def test_loader_yields_every_image_once_per_epoch(shard_set):
    index = open_face_index(shard_set)
    assert len(index) == 16 and index.num_identities == 4
    dataset = PairBatches(index, 32, batch_size=4, seed=5, same_prob=0.0, augment=NO_AUGMENT,
                          stop_batch=8)
    batches = _take(dataset, 8, workers=2)
    assert [b["batch"] for b in batches] == list(range(8))
    for stream in ("target_index", "source_index"):
        items = torch.cat([b[stream] for b in batches]).numpy()
        assert sorted(items[:16]) == list(range(16))  # epoch 0: each image exactly once
        assert sorted(items[16:]) == list(range(16))  # epoch 1: again, in another order
        assert not np.array_equal(items[:16], items[16:])
    targets = torch.cat([b["target_index"] for b in batches])
    sources = torch.cat([b["source_index"] for b in batches])
    assert not torch.equal(targets, sources)  # two independent shuffles
    # decoded pixels are the indexed images
    assert batches[0]["target"].shape == (4, 3, 32, 32)
    assert batches[0]["target"].min() >= -1 and batches[0]["target"].max() <= 1


def test_ranks_split_each_epoch_without_overlap(shard_set):
    index = open_face_index(shard_set)
    seen = []
    for rank in range(2):
        ds = PairBatches(index, 32, batch_size=2, seed=1, rank=rank, world_size=2,
                         same_prob=0.0, augment=NO_AUGMENT)
        seen.append(ds.stream_items(PairBatches.TARGET, 0, ds.items_per_epoch))
    assert len(seen[0]) == len(seen[1]) == 8
    assert sorted(np.concatenate(seen)) == list(range(16))


def test_stream_is_independent_of_workers_and_resumable(shard_set):
    index = open_face_index(shard_set)
    kwargs = dict(image_size=32, batch_size=3, seed=2, augment=AugmentConfig())
    plain = _take(PairBatches(index, **kwargs), 4, workers=0)
    workers = _take(PairBatches(index, **kwargs), 4, workers=2)
    resumed = _take(PairBatches(index, start_batch=2, **kwargs), 2, workers=0)
    for a, b in zip(plain, workers, strict=True):
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["source"], b["source"])
        assert torch.equal(a["same"], b["same"])
    for a, b in zip(plain[2:], resumed, strict=True):
        assert a["batch"] == b["batch"]
        assert torch.equal(a["target"], b["target"]) and torch.equal(a["source"], b["source"])


def test_same_flags_per_sample_at_least_one_per_batch(face_folder):
    index = folder_index(face_folder)
    ds = PairBatches(index, 32, batch_size=10, seed=0, augment=NO_AUGMENT)
    flags = np.stack([ds.same_flags(k) for k in range(2000)])
    assert flags.any(axis=1).all()
    assert 0.19 < flags.mean() < 0.25  # p = 0.2 plus the forced one in all-zero batches
    assert len({tuple(f) for f in flags[:50]}) > 30  # drawn per sample, not per batch
    batch = ds.make_batch(3)
    same = batch["same"].bool()
    assert same.any()
    assert torch.equal(batch["source_index"][same], batch["target_index"][same])
    assert torch.equal(batch["source"][same], batch["target"][same])  # no augmentation
    # with augmentation, the two streams get independent draws (as in the reference)
    augmented = PairBatches(index, 32, batch_size=10, seed=0).make_batch(3)
    assert not torch.allclose(augmented["source"][same], augmented["target"][same])


def test_augmentation_is_one_draw_per_batch():
    images = torch.rand(4, 3, 16, 16) * 1.2 - 0.6
    out = apply_augmentation(images, AugmentDraw(brightness=0.1, contrast=1.0, saturation=1.0))
    assert torch.allclose(out, (images + 0.1).clamp(-1, 1))
    out = apply_augmentation(images, AugmentDraw(brightness=0.0, contrast=1.1, saturation=1.0))
    assert torch.allclose(out.mean(dim=(2, 3)), images.mean(dim=(2, 3)), atol=1e-5)
    grey = images[:, :1].repeat(1, 3, 1, 1)
    assert torch.allclose(apply_augmentation(grey, AugmentDraw(0.0, 1.0, 0.9)), grey, atol=1e-6)
    index_free = AugmentConfig()
    gen = torch.Generator().manual_seed(0)
    from facedancer_torch.data.augment import draw_augmentation

    draws = [draw_augmentation(index_free, gen) for _ in range(200)]
    assert all(-0.3 <= d.brightness <= 0.3 and 0.9 <= d.contrast <= 1.1
               and 0.9 <= d.saturation <= 1.1 for d in draws)


def test_validation_pairs_have_different_identities(face_folder):
    index = folder_index(face_folder)
    train, val = index.split_validation(0.5, seed=0)
    assert set(train.identity) & set(val.identity) == set()
    assert len(train) + len(val) == len(index)
    pairs = validation_pairs(index, 32, 6, seed=0)
    t, s = pairs["target_index"].numpy(), pairs["source_index"].numpy()
    assert (index.identity[t] != index.identity[s]).all()
    assert pairs["target"].shape == (6, 3, 32, 32)
