"""Data-parallel training under torchrun: 2 CPU processes (Gloo) stay bit-identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from test_train import aligned_faces  # noqa: F401 (module fixture: 24 aligned LFW faces)


def test_two_gloo_processes_keep_identical_parameters(aligned_faces, tmp_path):  # noqa: F811
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "facedancer_torch", "train", "--config", "tiny", f"data={aligned_faces}",
           f"out={out}", "steps=2", "--quiet"]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es) on cpu" in result.stderr
    meta = json.loads((out / "checkpoints" / "step_000000002" / "meta.json").read_text())
    assert meta["world_size"] == 2
    digests = meta["rank_parameter_digests"]
    # each rank trained on its own half of the pairs; averaged gradients keep them equal
    assert len(digests) == 2 and digests[0] == digests[1]
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train] == [1, 2]
    assert all(r["img_per_s"] == r["it_per_s"] * 2 * 2 for r in train)  # batch 2 x 2 ranks
