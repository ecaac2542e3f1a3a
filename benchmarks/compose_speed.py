"""Compositing alone, settings side by side: ``Compositor.composite`` on the same faces.

Each clip's first frames are swapped once (detection, alignment, generation) and the jobs and
generated crops the compositor receives are kept; then only ``Compositor.composite`` is timed,
for each value of one ``swap/compose.py`` constant, the values alternating, best of
``--repeats``. The outputs are compared with the first value's (max and mean grey levels), so
a setting meant to change nothing can be seen to change nothing.

    python benchmarks/compose_speed.py --model /path/to/256px-model --knob COLOR_FIT_SIZE=0,128
    python benchmarks/compose_speed.py --model reference --mask box+occlusion --clips crowd_720p.mp4
    python benchmarks/compose_speed.py --knob BOX_OVER_BROWS_DARKER=4:0,4:8  # a pair: a:b

``--model``: ``demo`` (the shipped model), ``reference`` (random weights at the reference size,
24.5 M parameters, 256 px: a real model's cost, not its pictures) or a model directory. CPU
time on one thread (the thread budget of a video run); the 2-core machine is shared, so compare
rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks" / "device"))


def capture(swapper, frames: list[np.ndarray], plan, options) -> list[tuple]:
    """The arguments ``Swapper.blend`` receives for each frame with a face to swap."""
    captured = []
    original = swapper.blend

    def keep(frame, jobs, swapped, opts, others=(), coverage=None):
        captured.append((frame, jobs, swapped, opts, others))
        return frame

    swapper.blend = keep
    try:
        for frame in frames:
            swapper.swap_image(frame, plan, options)
    finally:
        swapper.blend = original
    return captured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="demo", help="demo, reference or a model directory")
    parser.add_argument("--clips", nargs="+", default=["crowd_720p.mp4", "talking_1face_512.mp4"])
    parser.add_argument("--frames", type=int, default=12, help="first frames of each clip")
    parser.add_argument("--mask", default=None, help="--mask of the swap (default: the default)")
    parser.add_argument("--knob", default="COLOR_FIT_SIZE=0,128",  # or grain.GRAIN=0,1
                        help="NAME=v1,v2,...: a swap/compose.py constant and its values")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--source", type=Path, default=SHARED / "photos" / "df_img1.jpg")
    args = parser.parse_args(argv)

    import cv2

    from facedancer_torch.swap import compose
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper
    from speed import read_clip, reference_dir

    import importlib

    name, _, values_text = args.knob.partition("=")
    module_name, _, name = name.rpartition(".")  # MODULE.NAME: a constant of swap/MODULE.py
    if module_name:
        try:
            compose = importlib.import_module(f"facedancer_torch.swap.{module_name}")
        except ImportError:
            parser.error(f"--knob: no module swap/{module_name}.py")
    if not hasattr(compose, name) or not values_text:
        parser.error(f"--knob: no constant {name!r} in {compose.__name__}, or no values")
    kind = type(getattr(compose, name))
    if kind is tuple:  # a pair's values as a:b (BOX_OVER_BROWS_DARKER=4:0,4:8)
        values = [tuple(float(part) for part in v.split(":")) for v in values_text.split(",")]
    else:
        values = [kind(float(v)) for v in values_text.split(",")]
    cv2.setNumThreads(1)
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.model == "reference":
            model = reference_dir(Path(tmp), tiny=False)
        else:
            model = None if args.model == "demo" else args.model
        swapper = Swapper(model, device="cpu")
        plan = swapper.plan(args.source)
        options = SwapOptions() if args.mask is None else SwapOptions(mask=args.mask)
        print(f"model {args.model} ({swapper.image_size} px), mask {options.mask}, "
              f"{args.knob}, best of {args.repeats}\n")
        print(f"| clip | faces | {name} | ms per face | ms per frame | vs {values[0]}: max, "
              "mean grey levels |")
        print("|---|---|---|---|---|---|")
        original = getattr(compose, name)
        try:
            for clip in args.clips:
                frames = read_clip(SHARED / "videos" / clip, args.frames)[0]
                captured = capture(swapper, frames, plan, options)
                faces = sum(len(c[1]) for c in captured)
                if not faces:
                    print(f"| {clip} | 0 | (no face swapped) | | | |")
                    continue
                best = {v: float("inf") for v in values}
                outputs = {}
                for _ in range(args.repeats):
                    for value in values:
                        setattr(compose, name, value)
                        start = time.process_time()
                        outputs[value] = [swapper.compositor.composite(*c) for c in captured]
                        best[value] = min(best[value], time.process_time() - start)
                for value in values:
                    diff = [np.abs(a.astype(np.int16) - b) for a, b in
                            zip(outputs[values[0]], outputs[value], strict=True)]
                    print(f"| {clip} | {faces} | {value} | {best[value] / faces * 1e3:.1f} | "
                          f"{best[value] / len(captured) * 1e3:.1f} | "
                          f"{max(int(d.max()) for d in diff)}, "
                          f"{float(np.mean([d.mean() for d in diff])):.4f} |")
        finally:
            setattr(compose, name, original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
