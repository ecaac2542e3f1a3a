"""WebDataset shards of aligned faces (``facedancer shard``), the PyTorch-world replacement of
the reference's TFRecords (its ``dataset_sharding.py``).

Layout: ``OUT/NAME_SPLIT_00000-of-000NN.tar`` plus ``OUT/NAME_manifest.json``. Each sample is
``<key>.<ext>`` (the original encoded image bytes, never re-encoded) and ``<key>.json``
(identity = first sub-folder, source path, index). Every image is written exactly once (the
reference dropped the last one of each shard list). The validation split is made by identity,
never by image, so no person of the validation split is seen in training.

Writing is atomic per shard and resumable: the plan (which image goes to which shard) is a
pure function of the image list and the options; finished shards are recorded with their
sha256 in ``.NAME_progress.json`` and skipped by a rerun of the same command.
Tar members have fixed metadata (mtime 0), so the same plan gives byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..errors import InputError
from ..io.atomic import atomic_path, atomic_write_text, check_writable
from .folder import FaceRecord, decode_bgr, image_kind, list_aligned_images

MANIFEST_FORMAT = "facedancer-webdataset/1"
VALIDATION_SPLIT = "val"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")
_SPLIT_RE = re.compile(r"^[a-z0-9]+$")


def shard_filename(name: str, split: str, index: int, total: int) -> str:
    """``NAME_SPLIT_00003-of-00012.tar`` (index from 0, total = number of shards)."""
    return f"{name}_{split}_{index:05d}-of-{total:05d}.tar"


def manifest_path(out_dir: str | Path, name: str) -> Path:
    """Where the manifest of shard set ``name`` lives: ``OUT/NAME_manifest.json``."""
    return Path(out_dir) / f"{name}_manifest.json"


def split_identities(identities: list[str], fraction: float, seed: int) -> set[str]:
    """The identities held out for validation: ``round(fraction * n)`` of them, at least one
    when ``fraction > 0`` and at least one identity is left for training. Seeded, order-free."""
    names = sorted(set(identities))
    if fraction <= 0 or len(names) < 2:
        return set()
    count = min(max(1, round(fraction * len(names))), len(names) - 1)
    order = np.random.default_rng([seed, 1]).permutation(len(names))
    return {names[i] for i in order[:count]}


def plan_shards(records: list[FaceRecord], split: str = "train", per_shard: int = 1000,
                val_identities: float = 0.02, seed: int = 0, shuffle: bool = True
                ) -> dict[str, list[list[FaceRecord]]]:
    """Assign every record to exactly one shard of one split: ``{split: [shard records]}``."""
    if per_shard < 1:
        raise InputError(f"--per-shard must be at least 1 (got {per_shard})")
    held_out = split_identities([r.identity for r in records], val_identities, seed)
    groups: dict[str, list[FaceRecord]] = {
        split: [r for r in records if r.identity not in held_out]}
    if held_out:
        groups[VALIDATION_SPLIT] = [r for r in records if r.identity in held_out]
    plan: dict[str, list[list[FaceRecord]]] = {}
    for i, (split_name, items) in enumerate(groups.items()):
        if shuffle:
            order = np.random.default_rng([seed, 2, i]).permutation(len(items))
            items = [items[j] for j in order]
        plan[split_name] = [items[k:k + per_shard] for k in range(0, len(items), per_shard)]
    return plan


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _plan_id(plan: dict[str, list[list[FaceRecord]]], name: str) -> str:
    text = json.dumps({"name": name, "splits": {s: [[r.relpath for r in shard] for shard in shards]
                                                 for s, shards in plan.items()}})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_one_shard(path: Path, records: list[FaceRecord], split: str, start: int,
                     identity_ids: dict[str, int], bar) -> dict:
    import webdataset as wds  # here: webdataset is the optional [train] extra

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as stream:
            # mtime fixed: the same plan gives byte-identical shards (and the same sha256).
            with wds.TarWriter(stream, encoder=False, mtime=0.0) as writer:
                _write_samples(writer, records, split, start, identity_ids, bar)
        info = {"file": path.name, "count": len(records), "bytes": tmp.stat().st_size,
                "sha256": _sha256(tmp)}
    return info


def _write_samples(writer, records: list[FaceRecord], split: str, start: int,
                   identity_ids: dict[str, int], bar) -> None:
    for offset, record in enumerate(records):
        try:
            data = record.path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read image ({exc.strerror})", record.path) from exc
        kind = image_kind(data)
        if kind is None:
            raise InputError("not a JPEG, PNG, WebP or BMP image", record.path)
        meta = {"identity": record.identity, "identity_index": identity_ids[record.identity],
                "path": record.relpath, "split": split, "index": start + offset}
        writer.write({"__key__": f"{start + offset:09d}", kind: data,
                      "json": json.dumps(meta, ensure_ascii=False).encode("utf-8")})
        if bar is not None:
            bar.update(1)


def _check_decodable(records: list[FaceRecord], progress: bool) -> None:
    """Decode every image once before writing anything: a corrupt file is reported now, naming
    it, instead of stopping a training run that meets it hours later."""
    for record in tqdm(records, unit="img", desc="check images", disable=not progress,
                       leave=False):
        try:
            data = record.path.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read image ({exc.strerror})", record.path) from exc
        decode_bgr(data, record.path)


def write_shards(aligned_dir: str | Path, out_dir: str | Path, name: str, split: str = "train",
                 per_shard: int = 1000, val_identities: float = 0.02, seed: int = 0,
                 shuffle: bool = True, progress: bool = True) -> Path:
    """Shard a folder of aligned faces (``ROOT/<identity>/<image>``); returns the manifest path.

    ``val_identities`` is the fraction of identities held out into the ``val`` split (0: none).
    Rerunning the same command after an interruption keeps the finished shards.
    """
    if not _NAME_RE.match(name):
        raise InputError(f"--name '{name}': a shard set name is letters, digits, '.' or '-'")
    if not _SPLIT_RE.match(split):
        raise InputError(f"--split '{split}': a split name is lower-case letters and digits")
    if not 0 <= val_identities < 1:  # written so that NaN is refused too
        raise InputError(f"--val-identities is a fraction of the identities in [0, 1), got "
                         f"{val_identities}")
    if split == VALIDATION_SPLIT and val_identities > 0:
        raise InputError(f"--split {VALIDATION_SPLIT} conflicts with --val-identities > 0")
    out_dir = Path(out_dir)
    records = list_aligned_images(aligned_dir)
    check_writable(out_dir, folder=True)
    _check_decodable(records, progress)
    plan = plan_shards(records, split, per_shard, val_identities, seed, shuffle)
    plan_id = _plan_id(plan, name)
    identity_ids = {ident: i for i, ident in enumerate(sorted({r.identity for r in records}))}
    out_dir.mkdir(parents=True, exist_ok=True)

    progress_file = out_dir / f".{name}_progress.json"
    done: dict[str, dict] = {}
    if progress_file.is_file():
        try:
            state = json.loads(progress_file.read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("plan_id") == plan_id:
            for info in state.get("done", []):
                file = out_dir / info["file"]
                if file.is_file() and file.stat().st_size == info["bytes"] \
                        and _sha256(file) == info["sha256"]:
                    done[info["file"]] = info

    total_images = sum(len(s) for shards in plan.values() for s in shards)
    skipped = sum(info["count"] for info in done.values())
    bar = None
    if progress:
        bar = tqdm(total=total_images, initial=skipped, unit="img", desc=f"shard {name}")
    splits_meta: dict[str, dict] = {}
    try:
        for split_name, shards in plan.items():
            infos = []
            start = 0
            for index, shard_records in enumerate(shards):
                filename = shard_filename(name, split_name, index, len(shards))
                if filename in done:
                    infos.append(done[filename])
                else:
                    info = _write_one_shard(out_dir / filename, shard_records, split_name, start,
                                            identity_ids, bar)
                    infos.append(info)
                    done[filename] = info
                    atomic_write_text(progress_file, json.dumps(
                        {"plan_id": plan_id, "done": list(done.values())}))
                start += len(shard_records)
            splits_meta[split_name] = {
                "images": start, "identities": len({r.identity for s in shards for r in s}),
                "shards": infos}
    finally:
        if bar is not None:
            bar.close()

    held_out = sorted({r.identity for s in plan.get(VALIDATION_SPLIT, []) for r in s})
    manifest = {
        "format": MANIFEST_FORMAT, "name": name, "plan_id": plan_id,
        "source": str(Path(aligned_dir).resolve()), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "options": {"split": split, "per_shard": per_shard, "val_identities": val_identities,
                    "seed": seed, "shuffle": shuffle},
        "images": total_images, "identities": len(identity_ids),
        "splits": splits_meta, "validation_identity_names": held_out,
    }
    path = manifest_path(out_dir, name)
    atomic_write_text(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    progress_file.unlink(missing_ok=True)
    return path


def read_manifest(path: str | Path) -> dict:
    """Load a shard manifest (``NAME_manifest.json``), checking its format."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read shard manifest ({exc})", path) from exc
    if manifest.get("format") != MANIFEST_FORMAT:
        raise InputError(f"not a {MANIFEST_FORMAT} manifest", path)
    return manifest


def find_manifest(path: str | Path) -> Path | None:
    """``path`` itself if it is a manifest, the only ``*_manifest.json`` in a folder, else None."""
    path = Path(path)
    if path.is_file() and path.name.endswith("_manifest.json"):
        return path
    if path.is_dir():
        found = sorted(path.glob("*_manifest.json"))
        if len(found) > 1:
            raise InputError(f"several shard sets here ({', '.join(p.name for p in found)}); "
                             "pass the manifest file of the one to use", path)
        return found[0] if found else None
    return None


@dataclass(frozen=True)
class ShardMember:
    """Where one sample's image bytes live inside a tar: offset and size of the member data."""

    tar: Path
    key: str
    offset: int
    size: int
    meta: dict


def index_shard(tar_path: str | Path) -> list[ShardMember]:
    """Scan a shard's tar headers (image data is skipped, not read) -> one member per sample."""
    tar_path = Path(tar_path)
    samples: dict[str, dict] = {}
    try:
        with tarfile.open(tar_path, "r:") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, _, ext = member.name.partition(".")
                entry = samples.setdefault(key, {})
                if ext == "json":
                    handle = tar.extractfile(member)
                    entry["meta"] = json.loads(handle.read().decode("utf-8"))
                else:
                    entry["image"] = (member.offset_data, member.size)
    except (OSError, tarfile.TarError, ValueError) as exc:
        raise InputError(f"cannot read shard ({exc})", tar_path) from exc
    members = []
    for key, entry in samples.items():
        if "image" not in entry:
            raise InputError(f"sample '{key}' has no image member", tar_path)
        meta = entry.get("meta", {})
        members.append(ShardMember(tar=tar_path, key=key, offset=entry["image"][0],
                                   size=entry["image"][1], meta=meta))
    return members


def shard_files(manifest_file: str | Path, split: str) -> list[Path]:
    """The shard files of one split of a manifest, checked to exist, in shard order."""
    manifest_file = Path(manifest_file)
    manifest = read_manifest(manifest_file)
    if split not in manifest["splits"]:
        raise InputError(f"no split '{split}' in this shard set (have: "
                         f"{', '.join(manifest['splits'])})", manifest_file)
    files = []
    for info in manifest["splits"][split]["shards"]:
        file = manifest_file.parent / info["file"]
        if not file.is_file():
            raise InputError("shard listed in the manifest is missing", file)
        files.append(file)
    return files


def verify_shards(manifest_file: str | Path) -> list[str]:
    """Re-hash every shard of a manifest; returns the problems found (empty when all match)."""
    manifest_file = Path(manifest_file)
    manifest = read_manifest(manifest_file)
    problems = []
    for split, meta in manifest["splits"].items():
        for info in meta["shards"]:
            file = manifest_file.parent / info["file"]
            if not file.is_file():
                problems.append(f"{file}: missing")
            elif _sha256(file) != info["sha256"]:
                problems.append(f"{file}: sha256 differs from the manifest")
    return problems
