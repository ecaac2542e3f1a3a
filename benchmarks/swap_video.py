"""End-to-end video swap speed, split by stage, next to the bare generator time.

    python benchmarks/swap_video.py                       # reference-size random generator
    python benchmarks/swap_video.py --model DIR --max-frames 50
    python benchmarks/swap_video.py --tiny --max-frames 0 # pipeline overhead only (all frames)
    python benchmarks/swap_video.py --model facedancer-demo --threads both  # budgets vs not
    python benchmarks/swap_video.py --model facedancer-demo --detect-every 1 5 10
    python benchmarks/swap_video.py --model facedancer-demo --blend-thread both  # vs in main
    python benchmarks/swap_video.py --tiny --max-frames 100 --detect-every 1 5 \
        --clips talking_a.mp4 talking_b.mp4 talking_c.mp4 crowd_720p.mp4  # quality only

For each clip (``videos/talking_1face_512.mp4`` and ``videos/crowd_720p.mp4`` from the shared
data) it runs :meth:`Swapper.swap_video_file` (H.264 output, watermark on, as a user would) and
prints frames/s and the seconds each stage spent:

- decode: time the pipeline waited for decoded frames (decoding itself runs in a thread);
- detect: full-frame face detection (background thread, overlaps generation);
- track: re-detection of known faces in crops between full detections (``--detect-every`` N
  > 1: the whole frame is searched every N frames only; same thread);
- align, generate: main thread; blend: a worker thread one batch behind the generator
  (``--blend-thread off``: the main thread, after each batch is generated);
- watermark: the encoding thread, before each frame is encoded;
- encode: H.264 encoding (its own thread, overlaps the rest).

Stages in background threads overlap, so they can sum to more than the wall time. "bare
generator" is the generator alone on the same number of crops with the same batch size
(nothing else running); the goal is end-to-end <= 1.5x that.

A second table gives each stage's own rate, frames (faces for generate) per second of that
stage's time: the slowest one bounds the pipeline. ``--threads budget`` runs with the
per-stage thread budget of ``swap/threads.py`` (one thread for detection, OpenCV and decoding,
the rest for the generator) instead of every library's default pool; ``--threads both`` runs
both, side by side in one run, so that they share the machine's load (printed with each row).

A third table compares each ``--detect-every`` N with full detection on every frame (N = 1,
the same clip and threads): the faces that were swapped (per frame, matched by landmark
position), the mean and 95th-percentile distance of their 5 alignment landmarks (the smoothed
ones the crops were cut with) in % of the eye distance, and the jitter of each run (the mean
frame-to-frame acceleration of the landmarks along each track, % of eye distance: what makes
a swapped face shimmer). Landmarks do not depend on the generator, so ``--tiny`` measures
them as well as a real model does, in a fraction of the time.
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
STAGES = ("decode", "detect", "track", "identify", "align", "generate", "blend", "watermark",
          "encode")


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


def _swap(swapper, clip: Path, output: Path, plan, options, stats) -> None:
    """What ``Swapper.swap_video_file`` does (its thread budget included), keeping ``stats``."""
    from facedancer_torch.swap.threads import apply_thread_budget, plan_threads
    from facedancer_torch.swap.video import swap_video_file

    with apply_thread_budget(swapper, plan_threads()):
        swap_video_file(swapper, clip, output, plan, options, progress=False, stats=stats)


def _eye_distance(landmarks: np.ndarray) -> float:
    return max(float(np.linalg.norm(landmarks[0] - landmarks[1])), 1.0)


def _face_size(box: np.ndarray) -> float:
    return max(float(box[2] - box[0]), float(box[3] - box[1]), 1.0)


def _landmark_errors(reference: list, faces: list) -> tuple[np.ndarray, int, int]:
    """Per frame, each reference face matched to the face of ``faces`` whose landmarks are
    nearest (within one eye distance): errors ``(K, 2)`` in eye distances and in face sizes
    (the box's longer side: robust for turned faces, whose eyes are close together), reference
    faces without a match, and faces without a reference."""
    errors, missed, extra = [], 0, 0
    for ref_frame, frame in zip(reference, faces):
        free = list(range(len(frame)))
        for _, ref, box in ref_frame:
            eyes = _eye_distance(ref)
            distances = [float(np.linalg.norm(frame[i][1] - ref, axis=1).mean()) for i in free]
            if not distances or min(distances) > max(eyes, 0.25 * _face_size(box)):
                missed += 1
                continue
            best = int(np.argmin(distances))
            errors.append((distances[best] / eyes, distances[best] / _face_size(box)))
            free.pop(best)
        extra += len(free)
    return np.array(errors).reshape(-1, 2), missed, extra


def _jitter(faces: list) -> float:
    """Mean frame-to-frame acceleration of the landmarks along each track, in face sizes
    (three consecutive frames of one track make one sample)."""
    history: dict[int, list] = {}
    samples = []
    for index, frame in enumerate(faces):
        for track, landmarks, box in frame:
            points = history.setdefault(track, [])
            points.append((index, landmarks))
            if len(points) >= 3 and points[-1][0] - points[-3][0] == 2:
                a, b, c = (p[1] for p in points[-3:])
                samples.append(float(np.linalg.norm(a - 2 * b + c, axis=1).mean())
                               / _face_size(box))
    return float(np.mean(samples)) if samples else float("nan")


def _quality_table(rows) -> None:
    print("\nLandmarks of the swapped faces against full detection on every frame (N = 1, same "
          "clip and threads). Errors in % of the eye distance and of the face size (box side); "
          "jitter in % of the face size:\n")
    header = ["clip", "threads", "detect every", "faces swapped (N=1)", "frames swapped (N=1)",
              "missed", "extra", "mean % eyes", "p95 % eyes", "mean % face", "p95 % face",
              "jitter % (N=1)"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    reference = {(r["clip"], r["mode"]): r for r in rows if r["every"] == 1}
    for row in rows:
        ref = reference.get((row["clip"], row["mode"]))
        if ref is None:
            continue
        stats, base = row["stats"], ref["stats"]
        errors, missed, extra = _landmark_errors(base.faces, stats.faces)
        spread = [f"{100 * np.mean(errors[:, k]):.2f} | {100 * np.percentile(errors[:, k], 95):.2f}"
                  if len(errors) else "- | -" for k in (0, 1)]
        cells = [row["clip"], row["mode"], str(row["every"]),
                 f"{stats.swapped} ({base.swapped})",
                 f"{stats.frames_swapped} ({base.frames_swapped})", str(missed), str(extra),
                 *spread,
                 f"{100 * _jitter(stats.faces):.2f} ({100 * _jitter(base.faces):.2f})"]
        print("| " + " | ".join(cells) + " |")


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
    parser.add_argument("--blend-thread", choices=("on", "off", "both"), default="on",
                        help="blend in a worker thread one batch behind the generator "
                             "(swap/video.py BLEND_THREAD), in the main thread, or both")
    parser.add_argument("--detect-every", type=int, nargs="+", default=None,
                        help="full-frame detection every N frames, one row each (default: 1 and "
                             "SwapOptions' default)")
    parser.add_argument("--detail-follow", action="store_true",
                        help="swap with --detail-follow (the target's detail moved onto the "
                             "swap's features, swap/follow.py)")
    args = parser.parse_args()

    videos = shared_path("data", "videos")
    photos = shared_path("data", "photos")
    if videos is None or photos is None:
        print("shared data (../shared/data) is absent: nothing to measure", file=sys.stderr)
        return 1
    from facedancer_torch.io.video import probe_video
    from facedancer_torch.swap.options import DETECT_EVERY, SwapOptions
    from facedancer_torch.swap.pipeline import Swapper
    from facedancer_torch.swap import video as video_swap
    from facedancer_torch.swap.video import VideoStats

    every_list = args.detect_every or sorted({1, DETECT_EVERY})

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        swapper = Swapper(_generator_dir(args, workdir), device=args.device,
                          backend=args.backend)
        plan = swapper.plan(photos / "df_img1.jpg")
        options = SwapOptions(batch_size=args.batch_size, preset=args.preset,
                              max_frames=args.max_frames or None,
                              detail_follow=args.detail_follow)
        print(f"device {swapper.device}, backend {swapper.runner.backend}, torch threads "
              f"{torch.get_num_threads()}, generator "
              f"{swapper.image_size}px {sum(p.numel() for p in swapper.generator.parameters()):,}"
              f" params, batch {args.batch_size}, x264 preset {args.preset}")
        from facedancer_torch.swap.threads import apply_thread_budget, plan_threads

        threads = ["default", "budget"] if args.threads == "both" else [args.threads]
        blends = {"on": [True], "off": [False], "both": [False, True]}[args.blend_thread]
        modes = [(t, b) for t in threads for b in blends]
        rows = []
        blend_before = video_swap.BLEND_THREAD
        for name in args.clips:
            clip = videos / name
            info = probe_video(clip)
            for (mode, blend_thread) in modes:
                video_swap.BLEND_THREAD = blend_thread
                if args.blend_thread == "both":
                    mode_name = f"{mode}, blend {'thread' if blend_thread else 'in main'}"
                else:
                    mode_name = mode
                for every in every_list:  # side by side: they share the machine's load
                    budget = apply_thread_budget(swapper, plan_threads()) \
                        if mode == "budget" else _library_defaults()
                    stats = VideoStats(record=True)
                    with budget:
                        swapper.timer.reset()
                        start = time.perf_counter()
                        _swap(swapper, clip, workdir / f"out_{mode}_{every}_{name}", plan,
                              options.replace(overwrite=True, detect_every=every), stats)
                        wall = time.perf_counter() - start
                        seconds = dict(swapper.timer.seconds)
                        counts = dict(swapper.timer.counts)
                        frames = counts.get("encode", 0)
                        faces = counts.get("generate", 0)
                        bare = _bare_generator(swapper, faces, args.batch_size)
                    rows.append(dict(clip=f"{name} ({info.width}x{info.height})", mode=mode_name,
                                     every=every, frames=frames, faces=faces, wall=wall,
                                     seconds=seconds, counts=counts, bare=bare, stats=stats,
                                     load=os.getloadavg()[0]))
        video_swap.BLEND_THREAD = blend_before

    header = ["clip", "threads", "detect every", "frames", "faces", "wall s", "frames/s",
              *STAGES, "bare gen s", "ratio", "load"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        seconds, bare = row["seconds"], row["bare"]
        cells = [row["clip"], row["mode"], str(row["every"]), str(row["frames"]),
                 str(row["faces"]), f"{row['wall']:.2f}", f"{row['frames'] / row['wall']:.2f}",
                 *(f"{seconds.get(s, 0.0):.2f}" for s in STAGES),
                 f"{bare:.2f}", f"{row['wall'] / bare:.2f}x" if bare else "-",
                 f"{row['load']:.1f}"]
        print("| " + " | ".join(cells) + " |")
    # Each stage's own rate: items per second of its time (frames; faces for align, generate,
    # blend, identify). "find faces" is detect and track together, per frame of the clip.
    print("\nPer-stage rate (frames/s of each stage alone; detect: full-frame detections/s, "
          "track: ROI-tracked frames/s, find faces: both per frame of the clip; "
          "align/generate/blend in faces/s):\n")
    header = ["clip", "threads", "detect every", "end to end", "find faces", *STAGES]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        seconds, counts = row["seconds"], row["counts"]
        rates = []
        for stage in STAGES:
            spent = seconds.get(stage, 0.0)
            items = counts.get(stage, 0)  # what the stage timed: frames, or faces
            rates.append(f"{items / spent:.1f}" if spent > 0 and items else "-")
        finding = seconds.get("detect", 0.0) + seconds.get("track", 0.0)
        find = f"{row['frames'] / finding:.1f}" if finding > 0 else "-"
        print("| " + " | ".join([row["clip"], row["mode"], str(row["every"]),
                                 f"{row['frames'] / row['wall']:.2f}", find, *rates]) + " |")
    _quality_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
