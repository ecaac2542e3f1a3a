"""The device session kit (benchmarks/device, docs/device.md): what travels fits, what comes back
fits, the launcher's switches, and a dry run of session.sh that runs no stage (a few seconds)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "benchmarks" / "device"
MIB = 1 << 20


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"device_{name}", KIT / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


prepare = _load("prepare")
pack = _load("pack")


def test_plan_is_greedy_by_priority_and_respects_needs():
    Item = prepare.Item
    items = [Item("big", 40 * MIB, 3), Item("wheel", 2 * MIB, 1, required=True),
             Item("clip", 1 * MIB, 2, required=True), Item("small", 3 * MIB, 4),
             Item("train", 9 * MIB, 5, needs=("big",), fill=True, min_size=MIB)]
    plan = prepare.plan_items(items, 10 * MIB)
    assert [i.name for i in plan.included] == ["wheel", "clip", "small"]
    assert dict((i.name, why) for i, why in plan.dropped) == {
        "big": "40.0 MiB > 7.0 MiB left", "train": "needs big"}
    assert plan.used == 6 * MIB
    plan = prepare.plan_items(items, 50 * MIB)  # room: the fill item takes what is left
    assert plan.has("big") and plan.has("train") and plan.used == 50 * MIB
    assert next(i for i in plan.included if i.name == "train").size == 4 * MIB
    with pytest.raises(ValueError, match="wheel"):
        prepare.plan_items(items, MIB)


def test_real_plan_stays_under_the_limit_with_the_margin():
    tree = prepare.travelling_bytes()
    assert tree > 0
    free = int((prepare.LIMIT_MIB - 1.5) * MIB) - tree
    if free < 6 * MIB:
        pytest.skip(f"the tree ({tree / MIB:.1f} MiB) leaves no room for the required items")
    items = [prepare.Item("retinaface", 2_168_227, 1, required=True),
             prepare.Item("facenet", prepare.FACENET_ESTIMATE, 2),
             prepare.Item("av", prepare.AV_ESTIMATE, 3)]
    plan = prepare.plan_items(items, free)
    assert tree + plan.used <= (prepare.LIMIT_MIB - 1.5) * MIB


def test_travelling_bytes_counts_tracked_and_untracked_not_ignored(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "tracked.bin").write_bytes(b"t" * 1000)
    git("add", "tracked.bin")
    (tmp_path / "untracked.bin").write_bytes(b"u" * 500)
    (tmp_path / ".gitignore").write_text("ignored/\n")
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "x.bin").write_bytes(b"i" * 5000)
    (tmp_path / ".device").mkdir()
    (tmp_path / ".device" / "clip.mp4").write_bytes(b"d" * 7000)  # excluded by name
    assert prepare.travelling_bytes(tmp_path) == 1000 + 500 + len("ignored/\n")


def test_run_call_fits_the_tool():
    call = prepare.run_call(540, 590)
    assert len(call["command"]) <= 2000
    assert call["carry"] == [".device"] and 540 + 30 <= call["timeout_s"] <= 600
    assert "session.sh --budget 540" in call["command"] and '"$OUT"' in call["command"]


def test_put_splits_what_is_over_the_chunk_and_join_restores_it(tmp_path):
    data = os.urandom(3 * 1000 + 5)
    src = tmp_path / "model.safetensors"
    src.write_bytes(data)
    out = tmp_path / "out"
    parts = pack.put(src, out, chunk=1000)
    assert [p.name for p in parts] == [f"model.safetensors.part0{k}" for k in range(4)]
    assert all(p.stat().st_size <= 1000 for p in parts)
    src.unlink()
    assert pack.join(parts[0]).read_bytes() == data
    with pytest.raises(ValueError, match="letters"):
        pack.put(parts[0], out, "bad name.bin")
    for k in range(3):  # 4 parts + the joined file + 3 = 8 files: the next one is refused
        (out / f"f{k}").write_bytes(b"x")
    with pytest.raises(ValueError, match="does not fit"):
        pack.put(parts[0], out, "one_more.bin")


def test_train_summary_reads_a_log_cut_short(tmp_path):
    stats = tmp_path / "stats.jsonl"
    lines = [json.dumps({"kind": "train", "step": s, "g/total": 3.0 - s / 100, "d/total": 1.4,
                         "it_per_s": 12.5}) for s in (25, 50, 75)]
    lines.append(json.dumps({"kind": "val", "step": 75, "id_cos_to_source": 0.41,
                             "id_cos_to_target": 0.52, "id_cos_target_source": 0.1}))
    stats.write_text("\n".join(lines) + '\n{"kind": "train", "st')
    text = pack.train_summary(stats, rows=2)
    assert "| 50 | 2.5 |" in text and "| 75 | 2.25 |" in text and "| 25 |" not in text
    assert "Last validation (step 75): id_cos_to_source 0.41" in text


def test_facenet_switch_loads_float16_weights_exactly(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    sys.path.insert(0, str(ROOT / "src"))
    fd = _load("fd")
    model = fd.random_facenet()
    again = fd.random_facenet()  # seeded, and the global RNG is left alone
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                  again.state_dict().values()))
    state = {k: v.half() for k, v in model.state_dict().items()
             if k.endswith(("weight", "bias"))}
    path = tmp_path / "facenet_fp16.safetensors"
    save_file(state, str(path))
    with pytest.raises(RuntimeError):  # strict: a state missing the BN statistics is refused
        fd.facenet_from_file(path)
    state.update({k: v for k, v in model.state_dict().items() if k not in state})
    save_file(state, str(path))
    loaded = fd.facenet_from_file(path)
    for key, value in loaded.state_dict().items():
        assert value.dtype == torch.float32 or not value.is_floating_point()
        assert torch.equal(value, state[key].to(value.dtype)), key


def test_av_stand_in_lets_the_pipeline_import_and_refuses_video(tmp_path):
    code = (
        "import av\n"
        "assert av.STUB\n"
        "try:\n"
        "    raise ValueError('x')\n"
        "except av.error.FFmpegError:\n"
        "    raise SystemExit('wrong except')\n"
        "except ValueError:\n"
        "    pass\n"
        "try:\n"
        "    av.open('clip.mp4')\n"
        "except ModuleNotFoundError as e:\n"
        "    assert 'PyAV' in str(e)\n"
        "else:\n"
        "    raise SystemExit('open worked')\n"
        "import facedancer_torch.swap.pipeline, facedancer_torch.swap.live\n"
        "print('ok')\n")
    env = {**os.environ, "PYTHONPATH": f"{KIT / 'no_av'}{os.pathsep}{ROOT / 'src'}"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


def test_session_dry_run_without_stages_writes_the_summary(tmp_path):
    data = tmp_path / "data"
    (data / "shared" / "data" / "photos").mkdir(parents=True)
    (data / "manifest.json").write_text(json.dumps(
        {"included": ["photo"], "dropped": {"facenet": "44.8 MiB > 6.8 MiB left"}}))
    out = tmp_path / "out"
    env = {**os.environ, "PY": sys.executable}
    result = subprocess.run(
        ["bash", str(KIT / "session.sh"), "--dry", "--device", "cpu", "--budget", "60",
         "--stages", "none", "--data", str(data), "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    assert "CUDA usable: 0" in summary and "dry run: 1" in summary
    assert "left out: facenet (44.8 MiB > 6.8 MiB left)" in summary
    assert "random weights" in summary  # no FaceNet file in data: the random stand-in
    assert "| step | result |" in summary
    assert sorted(p.name for p in out.iterdir()) == ["session.log", "summary.md"]


def test_the_lfw_faces_for_the_device_are_built_as_jpeg_when_missing(tmp_path, lfw_dir):
    """A new machine has no aligned LFW folder; prepare.py builds one from the shared photos,
    as JPEG (a third of PNG's size: more training faces travel), and leaves an existing one."""
    root = tmp_path / "lfw_aligned"
    assert prepare.ensure_lfw(root, seed=0, people=3, per_person=1)
    faces = sorted(root.rglob("*.jpg"))
    assert len(faces) == 3 and not list(root.rglob("*.png"))
    assert not prepare.ensure_lfw(root, seed=0, people=3, per_person=1)  # already there
    assert prepare.lfw_files(root, seed=0) and len({f.parent for f in faces}) == 3
