"""End-to-end video swap speed, split by stage, next to the bare generator time.

    python benchmarks/swap_video.py                       # reference-size random generator
    python benchmarks/swap_video.py --model DIR --max-frames 50
    python benchmarks/swap_video.py --tiny --max-frames 0 # pipeline overhead only (all frames)
    python benchmarks/swap_video.py --model facedancer-demo --threads both  # budgets vs not

For each clip (``videos/talking_1face_512.mp4`` and ``videos/crowd_720p.mp4`` from the shared
data) it runs :meth:`Swapper.swap_video_file` (H.264 output, watermark on, as a user would) and
prints frames/s and the seconds each stage spent:

- decode: time the pipeline waited for decoded frames (decoding itself runs in a thread);
- detect: face detection (background thread, overlaps generation);
- align, generate, blend: main thread; watermark: main thread;
- encode: H.264 encoding (its own thread, overlaps the rest).

Stages in background threads overlap, so they can sum to more than the wall time. "bare
generator" is the generator alone on the same number of crops with the same batch size
(nothing else running); the goal is end-to-end <= 1.5x that.

A second table gives each stage's own rate, frames (faces for generate) per second of that
stage's time: the slowest one bounds the pipeline. ``--threads budget`` runs with the
per-stage thread budget of ``swap/threads.py`` (one thread for detection, OpenCV and decoding,
the rest for the generator) instead of every library's default pool; ``--threads both`` runs
both, side by side in one run, so that they share the machine's load (printed with each row).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from facedancer_torch.testing import shared_path

CLIPS = ("talking_1face_512.mp4", "crowd_720p.mp4")
STAGES = ("decode", "detect", "identify", "align", "generate", "blend", "watermark", "encode")


def _generator_dir(args, workdir: Path) -> Path:
    if args.model:
        return Path(args.model)
    from facedancer_torch.models.generator import build_generator

    torch.manual_seed(0)
    if args.tiny:
        generator = build_generator(image_size=64, encoder_widths=(4, 8, 8, 8, 8, 8, 8),
                                    mapping_depth=1, mapping_width=16, identity_encoder="facenet")
    else:  # the reference graph (24.5 M parameters), random weights: same cost as a real one
        generator = build_generator(identity_encoder="facenet")
    return generator.save_pretrained(workdir / "generator")


def _bare_generator(swapper, faces: int, batch_size: int) -> float:
    """Seconds for the generator alone on ``faces`` crops (real-looking random inputs)."""
    if faces == 0:
        return 0.0
    size = swapper.image_size
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (min(faces, batch_size), size, size, 3), dtype=np.uint8)
    z = rng.standard_normal((len(crops), int(swapper.encoder.contract.embedding_dim)),
                            dtype=np.float32)
    swapper.generate(crops, z, batch_size)  # warm-up
    start = time.perf_counter()
    done = 0
    while done < faces:
        n = min(batch_size, faces - done)
        swapper._forward(torch.from_numpy(crops[:n]), torch.from_numpy(z[:n]))
        done += n
    if swapper.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


@contextlib.contextmanager
def _library_defaults():
    """What a user gets: torch with a thread per core (OMP_NUM_THREADS=1, which the
    benchmark's shared machine asks for, would hide the oversubscription being measured)."""
    from facedancer_torch.swap.threads import available_cores

    before = torch.get_num_threads()
    torch.set_num_threads(available_cores())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory (default: random reference-size)")
    parser.add_argument("--tiny", action="store_true", help="tiny random generator instead")
    parser.add_argument("--max-frames", type=int, default=20, help="frames per clip (0 = all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--backend", default="auto", help="generator runtime (models/runtime.py)")
    parser.add_argument("--preset", default="medium", help="x264 preset of the output")
    parser.add_argument("--clips", nargs="*", default=list(CLIPS))
    parser.add_argument("--threads", choices=("default", "budget", "both"), default="default",
                        help="libraries' default thread pools, swap/threads.py's budget, or both")
    args = parser.parse_args()

    videos = shared_path("data", "videos")
    photos = shared_path("data", "photos")
    if videos is None or photos is None:
        print("shared data (../shared/data) is absent: nothing to measure", file=sys.stderr)
        return 1
    from facedancer_torch.io.video import probe_video
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        swapper = Swapper(_generator_dir(args, workdir), device=args.device,
                          backend=args.backend)
        plan = swapper.plan(photos / "df_img1.jpg")
        options = SwapOptions(batch_size=args.batch_size, preset=args.preset,
                              max_frames=args.max_frames or None)
        print(f"device {swapper.device}, backend {swapper.runner.backend}, torch threads "
              f"{torch.get_num_threads()}, generator "
              f"{swapper.image_size}px {sum(p.numel() for p in swapper.generator.parameters()):,}"
              f" params, batch {args.batch_size}, x264 preset {args.preset}")
        from facedancer_torch.swap.threads import apply_thread_budget, plan_threads

        modes = ["default", "budget"] if args.threads == "both" else [args.threads]
        rows = []
        for name in args.clips:
            clip = videos / name
            info = probe_video(clip)
            for mode in modes:
                budget = apply_thread_budget(swapper, plan_threads()) if mode == "budget" \
                    else _library_defaults()
                with budget:
                    swapper.timer.reset()
                    start = time.perf_counter()
                    swapper.swap_video_file(clip, workdir / f"out_{mode}_{name}", plan,
                                            options.replace(overwrite=True), progress=False)
                    wall = time.perf_counter() - start
                    seconds, counts = dict(swapper.timer.seconds), dict(swapper.timer.counts)
                    frames = counts.get("encode", 0)
                    faces = counts.get("generate", 0)
                    bare = _bare_generator(swapper, faces, args.batch_size)
                rows.append((name, mode, info, frames, faces, wall, seconds, counts, bare,
                             os.getloadavg()[0]))

    header = ["clip", "threads", "frames", "faces", "wall s", "frames/s", *STAGES,
              "bare gen s", "ratio", "load"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, mode, info, frames, faces, wall, seconds, _, bare, load in rows:
        cells = [f"{name} ({info.width}x{info.height})", mode, str(frames), str(faces),
                 f"{wall:.2f}", f"{frames / wall:.2f}",
                 *(f"{seconds.get(s, 0.0):.2f}" for s in STAGES),
                 f"{bare:.2f}", f"{wall / bare:.2f}x" if bare else "-", f"{load:.1f}"]
        print("| " + " | ".join(cells) + " |")
    # Each stage's own rate: items per second of its time (frames; faces for align, generate,
    # blend, identify).
    print("\nPer-stage rate (frames/s of each stage alone; align/generate/blend in faces/s):\n")
    header = ["clip", "threads", "end to end", *STAGES]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, mode, _, frames, _, wall, seconds, counts, _, _ in rows:
        rates = []
        for stage in STAGES:
            spent = seconds.get(stage, 0.0)
            items = counts.get(stage, 0)  # what the stage timed: frames, or faces
            rates.append(f"{items / spent:.1f}" if spent > 0 and items else "-")
        print("| " + " | ".join([f"{name}", mode, f"{frames / wall:.2f}", *rates]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
