"""WebDataset shards (``facedancer shard``): every image exactly once, val split by identity,
manifest hashes, byte-identical reruns, resume after an interruption, standard format."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from facedancer_torch.data.shard import (find_manifest, index_shard, read_manifest, shard_files,
                                         verify_shards, write_shards)
from facedancer_torch.errors import InputError

IDENTITIES = ("Colin_Powell", "Tony_Blair", "Serena_Williams", "Vladimir_Putin", "Laura_Bush",
              "Hans_Blix", "Jack_Straw")


@pytest.fixture(scope="module")
def face_folder(lfw_dir, tmp_path_factory) -> Path:
    """7 identities x 3 real LFW photos as DIR/<identity>/<file> (21 images)."""
    root = tmp_path_factory.mktemp("faces")
    for name in IDENTITIES:
        (root / name).mkdir()
        for src in sorted((lfw_dir / "images" / name).iterdir())[:3]:
            shutil.copy(src, root / name / src.name)
    return root


def _samples(manifest: Path) -> dict[str, list[dict]]:
    out = {}
    for split in read_manifest(manifest)["splits"]:
        out[split] = [m.meta for tar in shard_files(manifest, split) for m in index_shard(tar)]
    return out


def test_every_image_once_and_validation_by_identity(face_folder, tmp_path):
    manifest = write_shards(face_folder, tmp_path, "lfw", per_shard=4, val_identities=0.3,
                            seed=3, progress=False)
    data = read_manifest(manifest)
    names = sorted(p.name for p in tmp_path.glob("*.tar"))
    # 2 of 7 identities held out: 15 train images -> 4 shards, 6 val images -> 2 shards
    assert names == [f"lfw_train_{i:05d}-of-00004.tar" for i in range(4)] + \
                    [f"lfw_val_{i:05d}-of-00002.tar" for i in range(2)]
    samples = _samples(manifest)
    paths = [s["path"] for split in samples.values() for s in split]
    originals = sorted(p.relative_to(face_folder).as_posix() for p in face_folder.rglob("*.jpg"))
    assert sorted(paths) == originals  # every image exactly once, the last one included
    train_ids = {s["identity"] for s in samples["train"]}
    val_ids = {s["identity"] for s in samples["val"]}
    assert len(val_ids) == 2 and not train_ids & val_ids
    assert set(data["validation_identity_names"]) == val_ids
    assert data["splits"]["train"]["images"] == 15 and data["splits"]["val"]["images"] == 6
    assert [s["count"] for s in data["splits"]["train"]["shards"]] == [4, 4, 4, 3]
    assert verify_shards(manifest) == []
    # the original encoded bytes, not a re-encoding
    member = index_shard(tmp_path / names[0])[0]
    with open(member.tar, "rb") as handle:
        handle.seek(member.offset)
        stored = handle.read(member.size)
    assert stored == (face_folder / member.meta["path"]).read_bytes()


def test_shards_are_standard_webdataset(face_folder, tmp_path):
    import webdataset as wds

    manifest = write_shards(face_folder, tmp_path, "std", per_shard=8, val_identities=0,
                            progress=False)
    urls = [str(p) for p in shard_files(manifest, "train")]
    seen = []
    for sample in wds.WebDataset(urls, shardshuffle=False):
        meta = json.loads(sample["json"])
        assert sample["jpg"] == (face_folder / meta["path"]).read_bytes()
        seen.append(meta["path"])
    assert len(seen) == 21 and len(set(seen)) == 21


def test_rerun_is_byte_identical_and_resumes(face_folder, tmp_path):
    first = tmp_path / "a"
    manifest = write_shards(face_folder, first, "r", per_shard=5, val_identities=0,
                            progress=False)
    hashes = {s["file"]: s["sha256"] for s in read_manifest(manifest)["splits"]["train"]["shards"]}
    second = tmp_path / "b"
    write_shards(face_folder, second, "r", per_shard=5, val_identities=0, progress=False)
    assert [p.read_bytes() for p in sorted(first.glob("*.tar"))] == \
        [p.read_bytes() for p in sorted(second.glob("*.tar"))]

    # Interrupted run: progress file lists 4 finished shards, the 5th and the manifest are gone.
    done = [s for s in read_manifest(manifest)["splits"]["train"]["shards"]][:4]
    plan_id = read_manifest(manifest)["plan_id"]
    (first / ".r_progress.json").write_text(json.dumps({"plan_id": plan_id, "done": done}))
    last = first / "r_train_00004-of-00005.tar"
    last.unlink()
    manifest.unlink()
    before = {p.name: p.stat().st_mtime_ns for p in first.glob("*.tar")}
    write_shards(face_folder, first, "r", per_shard=5, val_identities=0, progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in first.glob("*.tar")}
    assert all(after[name] == before[name] for name in before)  # finished shards kept
    assert last.is_file() and not (first / ".r_progress.json").exists()
    assert {s["file"]: s["sha256"] for s in
            read_manifest(manifest)["splits"]["train"]["shards"]} == hashes
    assert find_manifest(first) == manifest


def test_shard_errors_name_the_problem(face_folder, tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        write_shards(tmp_path / "missing", tmp_path / "out", "x", progress=False)
    bad = tmp_path / "bad"
    shutil.copytree(face_folder, bad)
    (bad / "Jack_Straw" / "broken.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="broken.png"):
        write_shards(bad, tmp_path / "out", "x", progress=False)
    with pytest.raises(InputError, match="name"):
        write_shards(face_folder, tmp_path / "out", "bad_name", progress=False)


def test_shard_command(face_folder, tmp_path):
    from typer.testing import CliRunner

    from facedancer_torch.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["shard", str(face_folder), str(tmp_path), "--name", "cli",
                                 "--per-shard", "10", "--val-identities", "0.15", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "train: 18 images, 6 identities, 2 shard(s)" in result.output
    assert (tmp_path / "cli_manifest.json").is_file()
