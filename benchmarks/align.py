"""Detect + align throughput (images/s) on the first LFW images, 1 and N worker processes.

    python benchmarks/align.py                 # first 500 LFW images, workers 1 and all cores
    python benchmarks/align.py --count 200 --workers 1 2 4 --formats png jpg

Prints a per-stage breakdown of one process (decode, detect, warp, encode+write) and a table of
end-to-end ``align_dataset`` runs (process start-up included, as a user sees it). LFW images are
250 x 250, so no downscaling happens before detection.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from facedancer_torch.testing import shared_path


def first_lfw_images(count: int) -> list[Path]:
    root = shared_path("data", "lfw", "images")
    if root is None:
        sys.exit("LFW is absent: expected ../shared/data/lfw/images (or $FACEDANCER_SHARED)")
    images: list[Path] = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        images += sorted(person.glob("*.jpg"))
        if len(images) >= count:
            break
    return images[:count]


def link_dataset(images: list[Path], root: Path) -> Path:
    """A DATASET/<identity>/<file> tree of symlinks (the data is never copied)."""
    for image in images:
        target = root / image.parent.name / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(image)
    return root


def stage_breakdown(images: list[Path], im_size: int) -> dict[str, tuple[float, float]]:
    """Per-image (wall ms, CPU ms) of each stage, one process, detector on one thread.

    CPU time (``time.process_time``) barely moves when other jobs share the machine; wall time
    does. One detector thread makes CPU ms / image the cost of one image on one core.
    """
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.io.images import read_image, write_image

    detector = get_detector(device="cpu", threads=1)
    names = ("decode", "detect", "warp", "write png", "write jpg")
    wall = dict.fromkeys(names, 0.0)
    cpu = dict.fromkeys(names, 0.0)
    with tempfile.TemporaryDirectory() as out:
        for k, path in enumerate(images):
            marks = [(time.perf_counter(), time.process_time())]
            image = read_image(path)
            marks.append((time.perf_counter(), time.process_time()))
            face = largest_face(detector.detect(image))
            marks.append((time.perf_counter(), time.process_time()))
            if face is None:
                continue
            crop, _ = align_face(image, face.landmarks, im_size)
            marks.append((time.perf_counter(), time.process_time()))
            write_image(Path(out) / f"{k}.png", crop, {"source": path.name})
            marks.append((time.perf_counter(), time.process_time()))
            write_image(Path(out) / f"{k}.jpg", crop, {"source": path.name})
            marks.append((time.perf_counter(), time.process_time()))
            for name, (w0, c0), (w1, c1) in zip(names, marks, marks[1:]):
                wall[name] += w1 - w0
                cpu[name] += c1 - c0
    return {n: (1000 * wall[n] / len(images), 1000 * cpu[n] / len(images)) for n in names}


def main() -> None:
    from facedancer_torch.data.align_dataset import AlignSettings, align_dataset

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({1, max(cores, 2)}))
    parser.add_argument("--im-size", type=int, default=256)
    parser.add_argument("--formats", nargs="+", default=["png"], choices=["png", "jpg", "webp"])
    args = parser.parse_args()

    images = first_lfw_images(args.count)
    print(f"{len(images)} LFW images (250x250), {args.im_size}px crops, {cores} CPU cores visible")
    print(f"load average before: {os.getloadavg()[0]:.1f}\n")
    stages = stage_breakdown(images[: min(200, len(images))], args.im_size)
    print("| stage (1 process, 1 thread) | wall ms / image | CPU ms / image |\n|---|---|---|")
    for name, (wall, cpu) in stages.items():
        print(f"| {name} | {wall:.2f} | {cpu:.2f} |")
    for fmt in ("png", "jpg"):
        skip = "write jpg" if fmt == "png" else "write png"
        wall = sum(w for n, (w, _) in stages.items() if n != skip)
        cpu = sum(c for n, (_, c) in stages.items() if n != skip)
        print(f"| total with {fmt} | {wall:.2f} | {cpu:.2f} |")
    print()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dataset = link_dataset(images, Path(tmp) / "lfw")
        for fmt in args.formats:
            for workers in args.workers:
                out = Path(tmp) / f"out_{fmt}_{workers}"
                settings = AlignSettings(im_size=args.im_size, out_format=fmt)
                start = time.perf_counter()
                counts = align_dataset(dataset, out, settings, workers=workers, device="cpu",
                                       progress=False)
                seconds = time.perf_counter() - start
                rows.append((fmt, workers, counts.read, counts.aligned, seconds))
    print("| format | workers | images | aligned | seconds | images/s |\n"
          "|---|---|---|---|---|---|")
    for fmt, workers, read, aligned, seconds in rows:
        print(f"| {fmt} | {workers} | {read} | {aligned} | {seconds:.1f} | "
              f"{read / seconds:.1f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.1f} (wall times are only comparable at "
          "similar load)")


if __name__ == "__main__":
    main()
