"""Do blinks survive the swap? Eye opening of the output against the target's, per frame.

    python benchmarks/blinks.py [--clips talking_a.mp4,talking_b.mp4] [--source PHOTO]

Each shared talking clip (../shared/data/videos) is swapped twice with ``facedancer swap`` (the
embedded demo model, default options; once with ``--no-blinks``), then dlib's 68 landmarks are
found on every frame of the input and of both outputs and each eye's aspect ratio (lid opening
over eye width: about 0.3 open, under 0.2 closing; ``faces.masks.eye_aspect_ratios``) compared.
Printed per clip: how many eye-frames the target closes (ratio under ``compose.BLINK_CHECK``),
the mean |output - target| ratio there and elsewhere, and the correlation of the output's
ratios with the target's over all eye-frames. Frames where dlib finds no face on either side
are left out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from facedancer_torch.testing import shared_path

CLIPS = "talking_a.mp4,talking_b.mp4,talking_c.mp4,talking_1face_512.mp4"
SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"


def eye_ratios(path: Path) -> np.ndarray:
    """``(frames, 2)`` eye aspect ratios of the first face dlib finds per frame (NaN: none)."""
    import av

    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.faces.masks import eye_aspect_ratios

    dlib_face = get_dlib_face()
    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            faces = dlib_face.analyse_image(frame.to_ndarray(format="rgb24"))
            out.append(eye_aspect_ratios(faces[0].landmarks) if faces else [np.nan, np.nan])
    return np.asarray(out, np.float64)


def compare(target: np.ndarray, output: np.ndarray, check: float) -> dict:
    n = min(len(target), len(output))
    target, output = target[:n], output[:n]
    ok = np.isfinite(target).all(axis=1) & np.isfinite(output).all(axis=1)
    target, output = target[ok], output[ok]
    closing = target < check
    error = np.abs(output - target)
    return {"frames": int(ok.sum()), "closing": int(closing.sum()),
            "error_closing": float(error[closing].mean()) if closing.any() else float("nan"),
            "error_open": float(error[~closing].mean()),
            "correlation": float(np.corrcoef(target.ravel(), output.ravel())[0, 1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=CLIPS)
    parser.add_argument("--source", type=Path, default=SOURCE)
    args = parser.parse_args()
    from facedancer_torch.swap.compose import BLINK_CHECK

    videos = shared_path("data", "videos")
    if videos is None:
        sys.exit("error: ../shared/data/videos is not here (set FACEDANCER_SHARED)")
    print("| clip | frames | eye-frames closing in the target | mean \\|output - target\\| "
          "there: without / with | elsewhere: without / with | correlation: without / with |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            target = eye_ratios(videos / clip)
            results = {}
            for name, extra in (("without", ["--no-blinks"]), ("with", [])):
                out = Path(tmp) / f"{name}_{clip}"
                subprocess.run([sys.executable, "-m", "facedancer_torch", "swap", "-s",
                                str(args.source), "-t", str(videos / clip), "-o", str(out),
                                "--quiet", *extra], check=True, capture_output=True)
                results[name] = compare(target, eye_ratios(out), BLINK_CHECK)
            a, b = results["without"], results["with"]
            print(f"| {clip} | {b['frames']} | {b['closing']} | {a['error_closing']:.3f} / "
                  f"{b['error_closing']:.3f} | {a['error_open']:.3f} / {b['error_open']:.3f} | "
                  f"{a['correlation']:.2f} / {b['correlation']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
