"""Decode / encode / watermark throughput of io/video.py and io/watermark.py on real clips.

    python benchmarks/video_io.py [--frames N] [--presets medium,veryfast]

Prints a table of frames per second: decoding to RGB (prefetch thread on and off), encoding
H.264 from RGB at crf 18 (encoder thread on and off, per preset), and the watermark's
embed/detect time per frame. Videos come from ../shared/data/videos (facedancer_torch.testing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from facedancer_torch.io.video import VideoReader, VideoWriter, probe_video
from facedancer_torch.io.watermark import detect_watermark, embed_watermark
from facedancer_torch.testing import shared_path

VIDEOS = ("talking_1face_512.mp4", "crowd_720p.mp4")


def _decode(path: Path, frames: int, prefetch: bool) -> tuple[float, list]:
    start = time.perf_counter()
    kept = []
    reader = VideoReader(path, max_frames=frames, prefetch=8 if prefetch else 1)
    if not prefetch:
        # the same decode loop without the background thread
        for frame in reader._frames():
            kept.append(frame.rgb)
    else:
        with reader:
            for frame in reader:
                kept.append(frame.rgb)
    return len(kept) / (time.perf_counter() - start), kept


def _encode(frames: list, fps, preset: str, background: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        with VideoWriter(Path(tmp) / "out.mp4", fps, crf=18, preset=preset,
                         background=background) as writer:
            for rgb in frames:
                writer.write(rgb)
        return len(frames) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100, help="frames per clip")
    parser.add_argument("--presets", default="medium,veryfast")
    args = parser.parse_args()
    folder = shared_path("data", "videos")
    if folder is None:
        raise SystemExit("../shared/data/videos is absent")
    print(f"CPU cores visible: {os.cpu_count()}; frames per clip: {args.frames}")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (other processes share the CPU)")
    print(f"| {'clip':30s} | {'step':44s} | {'frames/s':>9s} |")
    print("|" + "-" * 32 + "|" + "-" * 46 + "|" + "-" * 11 + "|")
    for name in VIDEOS:
        path = folder / name
        info = probe_video(path)
        label = f"{name} {info.width}x{info.height}"
        rows = []
        rate, _ = _decode(path, args.frames, prefetch=False)
        rows.append(("decode -> RGB, same thread", rate))
        rate, frames = _decode(path, args.frames, prefetch=True)
        rows.append(("decode -> RGB, prefetch thread", rate))
        for preset in args.presets.split(","):
            rows.append((f"encode H.264 crf 18 {preset}, same thread",
                         _encode(frames, info.fps, preset, background=False)))
            rows.append((f"encode H.264 crf 18 {preset}, enc. thread",
                         _encode(frames, info.fps, preset, background=True)))
        sample = frames[: min(20, len(frames))]
        start = time.perf_counter()
        marked = [embed_watermark(f) for f in sample]
        rows.append(("watermark embed", len(sample) / (time.perf_counter() - start)))
        start = time.perf_counter()
        for f in marked:
            detect_watermark(f)
        rows.append(("watermark detect", len(sample) / (time.perf_counter() - start)))
        for step, rate in rows:
            print(f"| {label:30s} | {step:44s} | {rate:9.1f} |")


if __name__ == "__main__":
    main()
