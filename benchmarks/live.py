"""Live swapping: tracking quality of ROI detection, and frames/s + latency of the live loop.

    python benchmarks/live.py                         # shipped demo model, 640x480 talking clip
    python benchmarks/live.py --model DIR --frames 150 --skip-quality

Three tables, all from one run (so that they share the machine's load, printed with them):

1. **Generator alone**, one face per call, per backend and thread count (what the live loop
   calls once per frame).
2. **Tracking quality** on the shared talking clips scaled to 640x480 (and the 720p crowd):
   landmark error of each way of finding faces against full-frame RetinaFace on every frame,
   in % of the inter-ocular distance (mean and 95th percentile over faces and frames), and the
   share of reference faces each one missed. "every N, frozen" is detection every N frames
   with the last landmarks held in between (what skipping detection alone gives); "ROI" is
   ``swap/live.py``'s tracker (a small crop around each known face re-detected every frame).
3. **The live loop** (``swap/live.py``) on a 640x480 talking clip held in memory: frames/s
   when every frame is swapped as fast as possible, and when the clip is played like a camera
   (its frame rate, late frames dropped) the latency from capture to output; ms per frame of
   each stage. Rows compare the libraries' default threads with the per-stage budget of
   ``swap/threads.py``, and full-frame detection every frame with ROI tracking.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from facedancer_torch.testing import shared_path

QUALITY_CLIPS = ("talking_a.mp4", "talking_b.mp4", "talking_c.mp4", "talking_1face_512.mp4",
                 "crowd_720p.mp4")
STAGES = ("track", "detect", "align", "generate", "blend", "watermark", "encode")
ROUNDS = 6  # generator table: backends timed in turn, so that they share the load


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)"


def to_size(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop to the aspect ratio, then resize: a webcam-shaped frame from any clip."""
    h, w = rgb.shape[:2]
    if w * height > h * width:
        cw = h * width // height
        rgb = rgb[:, (w - cw) // 2:(w - cw) // 2 + cw]
    else:
        ch = w * height // width
        rgb = rgb[(h - ch) // 2:(h - ch) // 2 + ch]
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)


def clip_frames(path: Path, frames: int, size: tuple[int, int] | None) -> tuple[list, float]:
    from facedancer_torch.io.video import probe_video, read_frames

    fps = float(probe_video(path).fps)
    out = [f.rgb for f in read_frames(path, max_frames=frames or None)]
    if size is not None:
        out = [to_size(rgb, *size) for rgb in out]
    return out, fps


# -- 1. generator -----------------------------------------------------------------------------

def generator_table(model_dir: Path, repeats: int) -> list[tuple]:
    from facedancer_torch.models.generator import load_generator
    from facedancer_torch.models.runtime import GeneratorRunner, cpu_has_native_bf16

    generator = load_generator(model_dir).eval()
    size = generator.config.image_size
    torch.manual_seed(0)
    x = torch.rand(1, 3, size, size) * 2 - 1
    z = torch.randn(1, generator.config.z_dim)
    cores = len(os.sched_getaffinity(0))
    runners = {}
    for backend in ("onnxruntime", "fused", "bf16"):
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            runners[(backend, threads)] = GeneratorRunner(generator, backend=backend,
                                                          threads=threads)
            for _ in range(3):
                runners[(backend, threads)](x, z)
    # Round robin: every configuration gets a share of each phase of the machine's load;
    # the median per-round time is what compares.
    times: dict[tuple, list[float]] = {key: [] for key in runners}
    per_round = max(1, repeats // ROUNDS)
    loads = []
    for _ in range(ROUNDS):
        loads.append(os.getloadavg()[0])
        for (backend, threads), runner in runners.items():
            torch.set_num_threads(threads)
            start = time.perf_counter()
            for _ in range(per_round):
                runner(x, z)
            times[(backend, threads)].append((time.perf_counter() - start) / per_round * 1000)
    torch.set_num_threads(1)
    print(f"\n## Generator alone ({size} px, one face per call; {ROUNDS} rounds of {per_round} "
          f"calls per configuration, in turn; native bf16: {cpu_has_native_bf16()}; load "
          f"average {min(loads):.1f}-{max(loads):.1f})\n")
    print("| backend | threads | median ms/face | fastest round ms/face |\n|---|---|---|---|")
    for (backend, threads), values in times.items():
        print(f"| {backend} | {threads} | {float(np.median(values)):.1f} | "
              f"{min(values):.1f} |")
    return times


# -- 2. tracking quality ------------------------------------------------------------------------

def _match(reference, faces) -> list:
    """For each reference face, the face of ``faces`` with the highest box IoU (None < 0.3)."""
    from facedancer_torch.faces.tracking import box_iou

    if not faces:
        return [None] * len(reference)
    iou = box_iou(np.stack([r.box for r in reference]), np.stack([f.box for f in faces]))
    return [faces[int(row.argmax())] if row.max() >= 0.3 else None for row in iou]


def _errors(reference, faces, landmarks_of) -> tuple[list[float], int]:
    errors, missed = [], 0
    for ref, face in zip(reference, _match(reference, faces)):
        if face is None:
            missed += 1
            continue
        eyes = float(np.linalg.norm(ref.landmarks[0] - ref.landmarks[1]))
        points = landmarks_of(face)
        if points is None:
            missed += 1
            continue
        errors.append(float(np.linalg.norm(points - ref.landmarks, axis=1).mean()) / max(eyes, 1))
    return errors, missed


def quality_table(detector, clips: list[Path], frames: int, every: list[int],
                  roi_sizes: list[int]) -> None:
    from facedancer_torch.swap.live import LiveSettings, RoiTracker

    print(f"\n## Tracking quality against full-frame detection on every frame ({frames} frames "
          f"per clip; {load()})\n")
    print("| clip | faces | method | full detections | mean error % | p95 error % | missed % |")
    print("|---|---|---|---|---|---|---|")
    for clip in clips:
        size = None if clip.name.startswith("crowd") else (640, 480)
        images, fps = clip_frames(clip, frames, size)
        start = time.perf_counter()
        reference = [[f for f in detector.detect(rgb)] for rgb in images]
        full_ms = 1000 * (time.perf_counter() - start) / len(images)
        reference = [[f for f in faces if min(f.width, f.height) >= 24] for faces in reference]
        total = sum(len(r) for r in reference)
        shape = f"{images[0].shape[1]}x{images[0].shape[0]}"
        _row(f"{clip.name} ({shape})", total, f"full frame every frame ({full_ms:.0f} "
             "ms/frame)", len(images), [0.0], 0)
        for n in every:
            errors, missed = [], 0
            held: list = []
            for index, (rgb, ref) in enumerate(zip(images, reference)):
                if index % n == 0:
                    held = ref
                e, m = _errors(ref, held, lambda f: f.landmarks)
                errors += e
                missed += m
            _row(f"{clip.name} ({shape})", total, f"every {n}, frozen between",
                 (len(images) + n - 1) // n, errors, missed)
            for roi in roi_sizes:
                tracker = RoiTracker(detector, LiveSettings(detect_every=n, background=False,
                                                            roi_size=roi), fps=fps)
                errors, missed = [], 0
                start = time.perf_counter()
                for rgb, ref in zip(images, reference):
                    faces = tracker.update(rgb)
                    e, m = _errors(ref, faces,
                                   lambda f: None if f.refilled else f.raw_landmarks)
                    errors += e
                    missed += m
                ms = 1000 * (time.perf_counter() - start) / len(images)
                _row(f"{clip.name} ({shape})", total, f"every {n} + ROI {roi} px "
                     f"({ms:.0f} ms/frame)", tracker.full_detections, errors, missed)
                tracker.close()


def _row(clip: str, total: int, method: str, full: int, errors: list[float], missed: int):
    mean = 100 * float(np.mean(errors)) if errors else float("nan")
    p95 = 100 * float(np.percentile(errors, 95)) if errors else float("nan")
    print(f"| {clip} | {total} | {method} | {full} | {mean:.1f} | {p95:.1f} | "
          f"{100 * missed / max(total, 1):.1f} |", flush=True)


# -- 3. the loop --------------------------------------------------------------------------------

def loop_table(swapper, plan, images: list[np.ndarray], fps: float, workdir: Path) -> None:
    from facedancer_torch.swap.live import (FileOutput, FrameSource, LiveSettings, LiveSwapper,
                                            live_options, run_live)
    from facedancer_torch.swap.threads import (ThreadBudget, apply_thread_budget,
                                               available_cores, plan_threads)

    cores = available_cores()
    everything = ThreadBudget(generator=cores, detector=0, opencv=cores, decode=0, cores=cores)
    variants = [
        ("default threads, full detection every frame", everything, 1, False),
        ("budget, full detection every frame", plan_threads(), 1, False),
        ("default threads, ROI + full every 10", everything, 10, False),
        ("budget, ROI + full every 10", plan_threads(), 10, False),
        ("budget, ROI + full every 10, file output", plan_threads(), 10, True),
    ]
    print(f"\n## Live loop on {len(images)} frames of {images[0].shape[1]}x{images[0].shape[0]} "
          f"(one face; generator {swapper.runner.backend}, {swapper.image_size} px; paced rows "
          f"at {fps:.1f} frames/s)\n")
    print("| variant | mode | frames/s | frames with a swap | latency median ms | p95 ms | "
          "dropped | "
          + " | ".join(f"{s} ms/frame" for s in STAGES) + " | load |")
    print("|---|---|---|---|---|---|---|" + "---|" * len(STAGES) + "---|")
    options = live_options()
    for name, budget, every, to_file in variants:
        for realtime in (False, True):
            with apply_thread_budget(swapper, budget):
                # as `facedancer live`: full-frame detection in the background only when frames
                # come at their own pace (else the first frames would race past it unswapped)
                live = LiveSwapper(swapper, plan, options,
                                   LiveSettings(detect_every=every, background=realtime),
                                   fps=fps)
                source = FrameSource(lambda: iter(images), fps=fps, width=images[0].shape[1],
                                     height=images[0].shape[0], name="clip",
                                     realtime=realtime, paced=True)
                outputs = []
                if to_file:
                    path = workdir / f"live_{every}_{realtime}.mp4"
                    outputs.append(FileOutput(path, fps, swapper.provenance(plan),
                                              overwrite=True))
                swapper.timer.reset()
                stats = run_live(live, source, outputs)
                seconds = dict(swapper.timer.seconds)
                counts = dict(swapper.timer.counts)
            per_frame = [1000 * seconds.get(s, 0.0) / max(stats.frames, 1) for s in STAGES]
            mode = "camera (paced, drops)" if realtime else "every frame"
            print(f"| {name} | {mode} | {stats.fps:.1f} | {stats.faces}/{stats.frames} | "
                  f"{stats.latency_ms(0.5):.0f} | "
                  f"{stats.latency_ms(0.95):.0f} | {stats.dropped} | "
                  + " | ".join(f"{v:.1f}" for v in per_frame) + f" | {load()} |", flush=True)
            del counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory or name (default: the demo model)")
    parser.add_argument("--clip", default="talking_a.mp4", help="clip for the loop table")
    parser.add_argument("--frames", type=int, default=150, help="frames per clip")
    parser.add_argument("--every", type=int, nargs="*", default=[5, 10])
    parser.add_argument("--roi-sizes", type=int, nargs="*", default=[160, 224])
    parser.add_argument("--repeats", type=int, default=50, help="generator calls per row")
    parser.add_argument("--skip-generator", action="store_true")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--camera-fps", type=float, default=30.0,
                        help="rate at which the paced rows deliver frames, as a camera would "
                             "(0: the clip's own rate; talking_a.mp4 is 22.1 frames/s)")
    args = parser.parse_args()

    videos, photos = shared_path("data", "videos"), shared_path("data", "photos")
    if videos is None or photos is None:
        print("shared data (../shared/data) is absent: nothing to measure", file=sys.stderr)
        return 1
    from facedancer_torch.swap.pipeline import Swapper, resolve_model_dir

    torch.set_num_threads(1)
    print(f"# benchmarks/live.py ({load()})")
    if not args.skip_generator:
        generator_table(resolve_model_dir(args.model), args.repeats)
    swapper = Swapper(args.model, device="cpu", backend="onnxruntime")
    if not args.skip_quality:
        from facedancer_torch.faces.detect import get_detector

        detector = get_detector(device="cpu", threads=1)
        quality_table(detector, [videos / c for c in QUALITY_CLIPS], args.frames, args.every,
                      args.roi_sizes)
    if not args.skip_loop:
        images, fps = clip_frames(videos / args.clip, args.frames, (640, 480))
        # A paced row can never beat its source's rate: feed it at a webcam's 30 frames/s.
        fps = args.camera_fps or fps
        plan = swapper.plan(photos / "df_img1.jpg")
        with tempfile.TemporaryDirectory() as tmp:
            loop_table(swapper, plan, images, fps, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
