"""Data-parallel training under torchrun: 2 CPU processes (Gloo) stay bit-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_train import aligned_faces  # noqa: F401 (module fixture: 24 aligned LFW faces)


def _torchrun_tiny(data, out, processes: int, steps: int) -> subprocess.CompletedProcess:
    """``facedancer train --config tiny`` under torchrun with ``processes`` CPU processes."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(processes), "-m", "facedancer_torch", "train", "--config", "tiny", f"data={data}",
           f"out={out}", f"steps={steps}", "--quiet"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_gloo_processes_keep_identical_parameters(aligned_faces, tmp_path):  # noqa: F811
    out = tmp_path / "ddp"
    result = _torchrun_tiny(aligned_faces, out, 2, steps=2)
    assert "2 process(es) on cpu (gloo)" in result.stderr
    meta = json.loads((out / "checkpoints" / "step_000000002" / "meta.json").read_text())
    assert meta["world_size"] == 2
    digests = meta["rank_parameter_digests"]
    # each rank trained on its own half of the pairs; averaged gradients keep them equal
    assert len(digests) == 2 and digests[0] == digests[1]
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["img_per_s"] == r["it_per_s"] * 2 * 2 for r in train)  # batch 2 x 2 ranks


def test_one_torchrun_process_runs_the_collectives_too(aligned_faces, tmp_path):  # noqa: F811
    """torchrun --nproc-per-node 1 sets up the process group (Gloo here, NCCL on a GPU), so a
    one-GPU smoke test exercises the same all-reduces as N processes."""
    out = tmp_path / "one"
    result = _torchrun_tiny(aligned_faces, out, 1, steps=1)
    assert "1 process(es) on cpu (gloo)" in result.stderr
    meta = json.loads((out / "checkpoints" / "step_000000001" / "meta.json").read_text())
    assert meta["world_size"] == 1 and len(meta["rank_parameter_digests"]) == 1


def test_sigterm_to_the_process_group_stops_training_without_a_worker_traceback(
        aligned_faces, tmp_path):  # noqa: F811
    """``timeout``, Ctrl-C and ``docker stop`` signal the whole process group, loader workers
    included; a worker that died of it made the main process print "DataLoader worker ... is
    killed by signal: Terminated" with a traceback (seen when the H200 session's time box
    stopped training). Workers leave the signal to the main process now."""
    import signal
    import time

    out = tmp_path / "term"
    cmd = [sys.executable, "-m", "facedancer_torch", "train", "--config", "tiny",
           f"data={aligned_faces}", f"out={out}", "steps=100000", "loader.workers=2",
           "schedule.log_every=1", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    stats = out / "stats.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if stats.exists() and '"train"' in stats.read_text():
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    os.killpg(proc.pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in err and "killed by signal" not in err, err[-3000:]


def test_a_plain_process_stays_plain_without_torchruns_environment(monkeypatch):
    """Only WORLD_SIZE + MASTER_ADDR + MASTER_PORT (what torchrun sets) make one process set
    up a group: a cluster that exports MASTER_ADDR alone must not break a plain run."""
    from facedancer_torch.train.distributed import init_distributed

    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MASTER_ADDR", "10.0.0.1")
    ctx = init_distributed("cpu")
    assert ctx.backend is None and not ctx.distributed and ctx.world_size == 1
