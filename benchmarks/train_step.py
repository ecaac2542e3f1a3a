"""Training-step speed and peak memory per config: images/s and peak RSS (CPU) or peak CUDA
memory, each config in its own process so that peaks do not mix.

Real aligned faces are made from a few LFW photos (``../shared/data/lfw``) when present, else
the step runs on uniform noise images (the cost of a step does not depend on pixel values).

    python benchmarks/train_step.py                       # tiny and demo on this machine
    python benchmarks/train_step.py --configs paper --steps 2 --device cuda
    python benchmarks/train_step.py --configs demo --amp off,bf16 --threads 1 --rounds 3

``--amp`` runs each config with each autocast setting (``config``: the config's own); with
``--rounds`` every (config, amp) is measured once per round, in turn, so that a machine shared
with other jobs slows them alike; the table gives the median round.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _faces(folder: Path, size: int) -> Path:
    """A folder of 16 faces: LFW photos (centre crop) or noise when LFW is absent."""
    import cv2
    import numpy as np

    from facedancer_torch.testing import shared_path

    lfw = shared_path("data", "lfw", "images")
    names = sorted(p.name for p in lfw.iterdir())[:8] if lfw else [f"noise{i}" for i in range(8)]
    rng = np.random.default_rng(0)
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        sources = sorted((lfw / name).iterdir())[:2] if lfw else [None, None]
        for i, src in enumerate(sources * (2 // max(1, len(sources)))):
            if src is None:
                image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            else:
                image = cv2.resize(cv2.imread(str(src))[65:185, 65:185], (size, size))
            cv2.imwrite(str(folder / name / f"{i}.png"), image)
    return folder


def measure(config_name: str, steps: int, device: str, amp: str = "config",
            threads: int = 0) -> dict:
    """Time ``steps`` training steps after one warm-up step, in this process."""
    import torch

    from facedancer_torch.data.pairs import PairBatches
    from facedancer_torch.train.config import load_config
    from facedancer_torch.train.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"out={tmp}/run", f"device={device}", "loader.workers=0"]
        if amp != "config":
            overrides.append(f"amp={amp}")
        cfg = load_config(config_name, overrides)
        cfg.data = str(_faces(Path(tmp) / "faces", cfg.image_size))
        trainer = Trainer(cfg, progress=False, tensorboard=False)
        data = PairBatches(trainer.train_index, cfg.image_size, cfg.batch_size, seed=0)
        cuda = trainer.device.type == "cuda"
        batches = [data.make_batch(k) for k in range(steps + 1)]
        trainer.train_step(batches[0])
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        for batch in batches[1:]:
            stats = trainer.train_step(batch)
        float(stats["g/total"])  # waits for the device
        seconds = (time.perf_counter() - start) / steps
        peak = (torch.cuda.max_memory_allocated() if cuda
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        return {
            "config": config_name, "device": str(trainer.device), "amp": trainer.amp,
            "image_size": cfg.image_size, "batch": cfg.batch_size,
            "g_params": sum(p.numel() for p in trainer.generator.parameters()),
            "d_params": sum(p.numel() for p in trainer.discriminator.parameters()),
            "s_per_step": seconds, "images_per_s": cfg.batch_size / seconds,
            "peak_mib": peak / 2**20, "peak_kind": "CUDA allocated" if cuda else "process RSS",
            "threads": torch.get_num_threads(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="tiny,demo", help="comma-separated config names")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per config")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="config",
                        help="comma-separated autocast settings to compare: config (the "
                             "config's own), off, bf16, fp16 (CUDA)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch threads per process (0: torch's default)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every (config, amp) this many times, in turn; median")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure in this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps, args.device, args.amp, args.threads)))
        return
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(max(1, args.rounds)):
        for name in args.configs.split(","):
            for amp in args.amp.split(","):
                env = {**os.environ, "PYTHONWARNINGS": "ignore"}
                if args.threads:
                    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
                out = subprocess.run([sys.executable, __file__, "--one", name, "--steps",
                                      str(args.steps), "--device", args.device, "--amp", amp,
                                      "--threads", str(args.threads)],
                                     capture_output=True, text=True, env=env)
                if out.returncode != 0:
                    print(f"{name} amp={amp}: failed\n{out.stderr[-2000:]}", file=sys.stderr)
                    continue
                runs.setdefault((name, amp), []).append(
                    json.loads(out.stdout.strip().splitlines()[-1]))
    rows = [sorted(r, key=lambda x: x["s_per_step"])[len(r) // 2] for r in runs.values()]
    header = ("config", "device", "amp", "size", "batch", "G params", "D params", "s/step",
              "images/s", "peak MiB", "peak of")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['config']} | {r['device']} ({r['threads']} threads) | {r['amp']} | "
              f"{r['image_size']} | {r['batch']} | {r['g_params'] / 1e6:.2f} M | "
              f"{r['d_params'] / 1e6:.2f} M | {r['s_per_step']:.2f} | {r['images_per_s']:.2f} | "
              f"{r['peak_mib']:.0f} | {r['peak_kind']} |")


if __name__ == "__main__":
    main()
