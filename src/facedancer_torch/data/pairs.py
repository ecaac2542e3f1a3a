"""Training pairs of FaceDancer (docs/reference.md §6): two independently shuffled streams of
aligned faces (targets, sources) zipped into pairs, the per-sample "same" flag and the
per-batch colour augmentation.

Design: every batch is a **pure function of its index** ``k`` (and the seed, rank and world
size). The target and source streams are per-epoch permutations of the whole index, each rank
takes every ``world_size``-th item of them, and batch ``k`` of a rank holds stream positions
``k*B .. k*B+B-1``. So

- each epoch visits every image exactly once per stream (split over ranks, never repeated);
- DataLoader workers produce batches ``k = w, w + W, ...`` and the DataLoader's round-robin
  returns them in order ``0, 1, 2, ...``: the stream is identical for any number of workers;
- resuming needs only the batch index (the "data position" of a checkpoint), no replay.

Images are read by random access: plain files from a folder, or tar members at the offsets
found by scanning the shards' headers once (standard WebDataset tars, also readable with
``webdataset.WebDataset``).
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..errors import InputError
from .augment import AugmentConfig, TargetAugmentConfig, augment_batch, augment_targets
from .folder import decode_bgr, list_aligned_images
from .shard import find_manifest, index_shard, shard_files, split_identities

REFERENCE_SAME_PROB = 0.2
MAX_OPEN_SHARDS = 64  # file descriptors kept open per process (random access over shards)


@dataclass
class FaceIndex:
    """Random-access list of aligned face images with identities.

    Item ``i`` is ``files[file_id[i]]`` read whole (``offset[i] < 0``) or ``size[i]`` bytes
    at ``offset[i]`` inside a tar shard. ``identity[i]`` indexes ``identity_names``.
    """

    files: list[str]
    file_id: np.ndarray
    offset: np.ndarray
    size: np.ndarray
    identity: np.ndarray
    identity_names: list[str]
    names: list[str]
    description: str = ""
    _handles: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_identities(self) -> int:
        return len(np.unique(self.identity)) if len(self) else 0

    def read_bytes(self, i: int) -> bytes:
        """The encoded image bytes of item ``i``."""
        path = self.files[self.file_id[i]]
        if self.offset[i] < 0:
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read image ({exc.strerror})", path) from exc
        # pread never moves a shared file position, so descriptors inherited by forked
        # DataLoader workers stay correct; each process still opens its own lazily.
        key = (os.getpid(), path)
        fd = self._handles.pop(key, None)
        if fd is None:
            if len(self._handles) >= MAX_OPEN_SHARDS:  # least recently used first
                old_key = next(iter(self._handles))
                old_fd = self._handles.pop(old_key)
                if old_key[0] == key[0]:
                    os.close(old_fd)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError as exc:
                raise InputError(f"cannot open shard ({exc.strerror})", path) from exc
        self._handles[key] = fd
        data = os.pread(fd, int(self.size[i]), int(self.offset[i]))
        if len(data) != self.size[i]:
            raise InputError(f"shard is truncated (item {self.names[i]})", path)
        return data

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_handles"] = {}
        return state

    def subset(self, keep: np.ndarray, description: str | None = None) -> FaceIndex:
        """A new index with the items where the boolean mask ``keep`` is true."""
        idx = np.flatnonzero(keep)
        return FaceIndex(files=self.files, file_id=self.file_id[idx], offset=self.offset[idx],
                         size=self.size[idx], identity=self.identity[idx],
                         identity_names=self.identity_names,
                         names=[self.names[i] for i in idx],
                         description=description or self.description)

    def split_validation(self, fraction: float, seed: int = 0) -> tuple[FaceIndex, FaceIndex]:
        """(train, val) split **by identity**: ``fraction`` of the identities are held out."""
        held = split_identities([self.identity_names[i] for i in np.unique(self.identity)],
                                fraction, seed)
        held_ids = np.array([self.identity_names.index(n) for n in sorted(held)], dtype=np.int64)
        is_val = np.isin(self.identity, held_ids)
        return (self.subset(~is_val, f"{self.description} (train identities)"),
                self.subset(is_val, f"{self.description} (held-out identities)"))


def folder_index(root: str | Path) -> FaceIndex:
    """Index a folder of aligned faces (``ROOT/<identity>/<image>``).

    Every image is decoded once here, so that a corrupt file is reported (one line naming it)
    before training starts rather than stopping it hours later. Folders are for small data
    (about 2 ms per image); large data goes through shards, whose images ``facedancer shard``
    decoded when it wrote them.
    """
    records = list_aligned_images(root)
    names = sorted({r.identity for r in records})
    ids = {n: i for i, n in enumerate(names)}
    n = len(records)
    index = FaceIndex(files=[str(r.path) for r in records], file_id=np.arange(n),
                      offset=np.full(n, -1, dtype=np.int64), size=np.zeros(n, dtype=np.int64),
                      identity=np.array([ids[r.identity] for r in records], dtype=np.int64),
                      identity_names=names, names=[r.relpath for r in records],
                      description=f"folder {root}")
    for i in range(n):
        decode_bgr(index.read_bytes(i), index.files[i])
    return index


def shards_index(tars: list[Path], description: str = "") -> FaceIndex:
    """Index WebDataset shards by scanning their tar headers."""
    members = [m for tar in tars for m in index_shard(tar)]
    if not members:
        raise InputError("the shards hold no sample", tars[0] if tars else None)
    files = [str(t) for t in tars]
    file_ids = {f: i for i, f in enumerate(files)}
    identities = [str(m.meta.get("identity", m.key)) for m in members]
    names = sorted(set(identities))
    ids = {n: i for i, n in enumerate(names)}
    return FaceIndex(files=files,
                     file_id=np.array([file_ids[str(m.tar)] for m in members], dtype=np.int64),
                     offset=np.array([m.offset for m in members], dtype=np.int64),
                     size=np.array([m.size for m in members], dtype=np.int64),
                     identity=np.array([ids[i] for i in identities], dtype=np.int64),
                     identity_names=names,
                     names=[str(m.meta.get("path", f"{Path(m.tar).name}:{m.key}"))
                            for m in members],
                     description=description)


def open_face_index(data: str | Path, split: str = "train") -> FaceIndex:
    """Index ``data``: a shard manifest, a folder holding one, a ``.tar`` shard, a folder of
    ``*_SPLIT_*-of-*.tar`` shards, or a folder of aligned face images."""
    path = Path(data).expanduser()
    if not path.exists():
        raise InputError("training data not found", path)
    manifest = find_manifest(path)
    if manifest is not None:
        return shards_index(shard_files(manifest, split), f"shards {manifest} [{split}]")
    if path.is_file() and path.suffix == ".tar":
        return shards_index([path], f"shard {path}")
    tars = sorted(path.glob(f"*_{split}_*-of-*.tar"))
    if tars:
        return shards_index(tars, f"shards {path} [{split}]")
    return folder_index(path)


def decode_face(data: bytes, size: int, name: str = "") -> np.ndarray:
    """Decode encoded image bytes to RGB uint8 (size, size, 3), resized when needed
    (area filter when shrinking, bilinear when enlarging)."""
    image = decode_bgr(data, name)
    if image.shape[0] != size or image.shape[1] != size:
        shrink = image.shape[0] > size or image.shape[1] > size
        image = cv2.resize(image, (size, size),
                           interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_crops(index: FaceIndex, items: np.ndarray, size: int) -> np.ndarray:
    """Items of ``index`` as uint8 RGB crops (B, size, size, 3)."""
    return np.stack([decode_face(index.read_bytes(int(i)), size, index.names[int(i)])
                     for i in items])


def to_batch(crops: np.ndarray) -> torch.Tensor:
    """RGB crops (B, S, S, 3), uint8 or float in [0, 255], as a float batch (B, 3, S, S) in
    [-1, 1]: (p - 127.5) / 127.5."""
    batch = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    return (batch - 127.5) / 127.5


def load_faces(index: FaceIndex, items: np.ndarray, size: int) -> torch.Tensor:
    """Items of ``index`` as a float batch (B, 3, size, size) in [-1, 1]: (p - 127.5) / 127.5."""
    return to_batch(load_crops(index, items, size))


def _seed_words(*parts: int) -> list[int]:
    return [int(p) & 0xFFFFFFFF for p in parts]


def _torch_seed(*parts: int) -> int:
    digest = hashlib.sha256(np.array(parts, dtype=np.int64).tobytes()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class PairBatches(IterableDataset):
    """Endless batches of (target, source, same) pairs for one rank, starting at ``start_batch``.

    Each yielded dict holds ``target`` and ``source`` (B, 3, S, S) float in [-1, 1], ``same``
    (B,) float 0/1, ``target_index`` / ``source_index`` (B,) item indices, ``batch`` (int).
    As in the reference, a flagged sample's source is its own target image **before**
    augmentation, and the two streams get independent colour draws.

    With ``targets`` enabled (:class:`.augment.TargetAugmentConfig`) the targets are rotated /
    scaled / occluded before the colour jitter, the batch adds ``target_occluder`` (B, S, S)
    in [0, 1] (the painted occluders' alpha; 0: pixel not painted) and ``real`` (B, 3, S, S):
    the source images augmented the same way with independent draws, the discriminator's real
    batch, so that occluders and reflected borders do not mark a swap as fake. Sources stay clean (identity). Draws come
    from ``(seed, rank, batch)`` alone; with ``targets`` disabled the batch is unchanged.
    """

    TARGET, SOURCE = 0, 1

    def __init__(self, index: FaceIndex, image_size: int, batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, start_batch: int = 0,
                 same_prob: float = REFERENCE_SAME_PROB,
                 augment: AugmentConfig = AugmentConfig(), stop_batch: int | None = None,
                 targets: TargetAugmentConfig = TargetAugmentConfig()):
        if len(index) < world_size:
            raise InputError(f"{len(index)} images cannot be split over {world_size} processes")
        if batch_size < 1:
            raise InputError(f"batch size must be at least 1 (got {batch_size})")
        self.index = index
        self.image_size = int(image_size)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.start_batch = int(start_batch)
        self.stop_batch = stop_batch
        self.same_prob = float(same_prob)
        self.augment = augment
        self.targets = targets
        self._orders: dict[tuple[int, int], np.ndarray] = {}

    @property
    def items_per_epoch(self) -> int:
        """How many items of each stream this rank sees per epoch."""
        return len(range(self.rank, len(self.index), self.world_size))

    def epoch_order(self, epoch: int, stream: int) -> np.ndarray:
        """This rank's share of the epoch's permutation of all items for one stream."""
        key = (epoch, stream)
        if key not in self._orders:
            if len(self._orders) >= 4:
                self._orders.pop(next(iter(self._orders)))
            perm = np.random.default_rng(_seed_words(self.seed, 11, stream, epoch)).permutation(
                len(self.index))
            self._orders[key] = perm[self.rank::self.world_size]
        return self._orders[key]

    def stream_items(self, stream: int, start: int, count: int) -> np.ndarray:
        """Item indices at stream positions ``start .. start+count-1`` (epochs concatenated)."""
        per_epoch = self.items_per_epoch
        positions = np.arange(start, start + count)
        out = np.empty(count, dtype=np.int64)
        for epoch in np.unique(positions // per_epoch):
            sel = positions // per_epoch == epoch
            out[sel] = self.epoch_order(int(epoch), stream)[positions[sel] % per_epoch]
        return out

    def same_flags(self, batch: int) -> np.ndarray:
        """Per-sample "same" flags of a batch: Bernoulli(p), at least one when p > 0."""
        rng = np.random.default_rng(_seed_words(self.seed, 13, self.rank, batch))
        flags = rng.random(self.batch_size) < self.same_prob
        if self.same_prob > 0 and not flags.any():
            flags[rng.integers(self.batch_size)] = True
        return flags

    def make_batch(self, batch: int) -> dict:
        """Batch number ``batch`` of this rank (a pure function of its arguments)."""
        start = batch * self.batch_size
        targets = self.stream_items(self.TARGET, start, self.batch_size)
        sources = self.stream_items(self.SOURCE, start, self.batch_size)
        flags = self.same_flags(batch)
        sources = np.where(flags, targets, sources)
        target_crops = load_crops(self.index, targets, self.image_size)
        source_crops = load_crops(self.index, sources, self.image_size)
        extra = {}
        if self.targets.enabled:
            rng = np.random.default_rng(_seed_words(self.seed, 23, self.rank, batch))
            painted, occluder = augment_targets(target_crops, self.targets, rng)
            rng = np.random.default_rng(_seed_words(self.seed, 29, self.rank, batch))
            real, _ = augment_targets(source_crops, self.targets, rng)
            target = to_batch(painted)
            extra["target_occluder"] = torch.from_numpy(occluder)
        else:
            target = to_batch(target_crops)
        source = to_batch(source_crops)
        gen = torch.Generator().manual_seed(_torch_seed(self.seed, 17, self.rank, batch))
        target = augment_batch(target, self.augment, gen)
        source = augment_batch(source, self.augment, gen)
        if self.targets.enabled:
            extra["real"] = augment_batch(to_batch(real), self.augment, gen)
        return {"target": target, "source": source,
                "same": torch.from_numpy(flags.astype(np.float32)),
                "target_index": torch.from_numpy(targets),
                "source_index": torch.from_numpy(sources), "batch": batch, **extra}

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        batch = self.start_batch + worker
        while self.stop_batch is None or batch < self.stop_batch:
            yield self.make_batch(batch)
            batch += workers


def _leave_signals_to_the_main_process(worker_id: int) -> None:
    """Loader workers ignore SIGINT and SIGTERM. ``timeout``, Ctrl-C and ``docker stop`` signal
    the whole process group; a worker that died of it made the main process print a
    "DataLoader worker is killed by signal" traceback while it was checkpointing and exiting
    cleanly. The main process stops the workers itself (and they exit when it dies).

    A worker hands its batches over through multiprocessing's resource-sharer thread; when the
    main process exits on the signal mid-handover, that thread failed with a connection error
    and printed its traceback into the main process's stderr after the closing "interrupted"
    (seen once in CI). Such errors of a worker whose main process is gone, or of a handover
    the main process no longer takes, are not reported; anything else still is."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    parent, report = os.getppid(), sys.excepthook

    def quiet_when_orphaned(kind, value, trace):
        if os.getppid() != parent or isinstance(value, (EOFError, ConnectionError)):
            return
        report(kind, value, trace)

    sys.excepthook = quiet_when_orphaned


def pair_loader(dataset: PairBatches, workers: int = 0, prefetch: int = 2,
                pin_memory: bool = False) -> DataLoader:
    """A DataLoader over ready-made batches (``batch_size=None``); order is worker-independent.
    ``pin_memory`` for CUDA training (asynchronous host-to-device copies)."""
    kwargs = {}
    if workers > 0:
        kwargs = {"prefetch_factor": prefetch, "persistent_workers": False,
                  "worker_init_fn": _leave_signals_to_the_main_process}
    return DataLoader(dataset, batch_size=None, num_workers=workers, pin_memory=pin_memory,
                      **kwargs)


def validation_pairs(index: FaceIndex, image_size: int, count: int, seed: int = 0
                     ) -> dict[str, torch.Tensor]:
    """A fixed set of ``count`` (target, source) pairs of **different** identities (when the
    index has two or more), no augmentation: for validation on held-out identities."""
    rng = np.random.default_rng(_seed_words(seed, 19))
    count = min(count, len(index))
    targets = rng.permutation(len(index))[:count]
    sources = np.empty_like(targets)
    for j, t in enumerate(targets):
        others = np.flatnonzero(index.identity != index.identity[t])
        if len(others) == 0:
            others = np.flatnonzero(np.arange(len(index)) != t) if len(index) > 1 else np.array([t])
        sources[j] = rng.choice(others)
    return {"target": load_faces(index, targets, image_size),
            "source": load_faces(index, sources, image_size),
            "target_index": torch.from_numpy(targets), "source_index": torch.from_numpy(sources)}
