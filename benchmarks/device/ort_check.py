"""onnxruntime on the GPU (device session smoke step): exit 0 when the embedded RetinaFace ran
through the CUDAExecutionProvider and found a face, 3 (skip) when the installed onnxruntime has
no CUDA provider (the plain PyPI wheel; onnxruntime-gpu is another package), 1 otherwise.

    python benchmarks/device/ort_check.py --image IMG --device cuda
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", required=True)
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import cv2
    import onnxruntime as ort

    from facedancer_torch.faces.detect import get_detector

    providers = ort.get_available_providers()
    print(f"onnxruntime {ort.__version__}, providers {providers}")
    cuda = "CUDAExecutionProvider" in providers
    device = args.device if cuda else "cpu"
    image = cv2.imread(args.image)[:, :, ::-1].copy()
    detector = get_detector(device=device)
    faces = detector.detect(image)
    start = time.perf_counter()
    for _ in range(10):
        faces = detector.detect(image)
    ms = (time.perf_counter() - start) * 100
    print(f"RetinaFace on {device}: {len(faces)} face(s), {ms:.1f} ms per "
          f"{image.shape[1]}x{image.shape[0]} image")
    if not faces:
        print("FAIL: no face found")
        return 1
    if args.device.startswith("cuda") and not cuda:
        print(f"skipped: onnxruntime {ort.__version__} has no CUDAExecutionProvider "
              f"(CPU detector checked instead)")
        return 3
    if args.device == "cpu":
        print("skipped: no CUDA (CPU detector checked instead)")
        return 3
    used = detector.session.get_providers() if hasattr(detector, "session") else []
    if "CUDAExecutionProvider" not in used:
        print(f"FAIL: the session runs on {used}, not the CUDA provider")
        return 1
    print(f"PASS: onnxruntime CUDA provider ({used}), {len(faces)} face(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
