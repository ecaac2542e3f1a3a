"""Do blinks survive the swap, and do they look like closed eyes? Per frame, against the target.

    python benchmarks/blinks.py [--clips talking_a.mp4,talking_b.mp4] [--source PHOTO]
        [--figure OUT.jpg --figure-frames 12,36,58,99,112]

Each shared talking clip (../shared/data/videos) is swapped twice with ``facedancer swap`` (the
embedded demo model, default options; once with ``--no-blinks``), then dlib's 68 landmarks and
descriptor are found on every frame of the input and of both outputs. Printed per clip and
setting:

- how many eye-frames the target closes (ratio under 0.22, ``CLOSING``), the mean
  |output - target| eye aspect ratio there and elsewhere (lid opening over eye width: about 0.3
  open, under 0.2 closing; ``faces.masks.eye_aspect_ratios``), and the correlation of the
  output's ratios with the target's over all eye-frames;
- **lid match** where the target closes an eye: the correlation of the output's fine detail
  (Laplacian of the grey frame, lightly blurred) with the target's inside that eye's outline
  grown by half an eye width, mean over those eye-frames: 1 where the target's closed lids are
  shown, about 0 for a soft smear, between for half of the generator's eye blended over half of
  the target's (a double exposure). The aspect ratio alone missed those: dlib reads a smear
  and a double exposure as closing eyes too;
- **identity gain**: dlib distance target-source minus output-source, mean over the frames
  where the target closes an eye and over all frames (what taking the target's eyes costs).

Frames where dlib finds no face on either side are left out. ``--figure`` writes the eyes of
the first clip's ``--figure-frames``: the target, without and with (rows), side by side.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from facedancer_torch.testing import shared_path

CLIPS = "talking_a.mp4,talking_b.mp4,talking_c.mp4,talking_1face_512.mp4"
SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"
CLOSING = 0.22  # an eye-frame the target closes: its ratio under this (the table of session 8)
EYE_GROW = 0.5  # eye widths around each eye's outline where the detail is measured


def analyse(path: Path) -> tuple[list, list]:
    """Per frame: the first face dlib finds (None: none) and the grey frame."""
    import av

    from facedancer_torch.evaluate.dlib_face import get_dlib_face

    dlib_face = get_dlib_face()
    faces, greys = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            found = dlib_face.analyse_image(rgb)
            faces.append(found[0] if found else None)
            greys.append(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    return faces, greys


def fine_detail(grey: np.ndarray) -> np.ndarray:
    return cv2.Laplacian(cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0), cv2.CV_32F)


def lid_match(output: np.ndarray, target: np.ndarray, zone: np.ndarray) -> float:
    """Correlation of two frames' fine detail (:func:`fine_detail`) inside ``zone``."""
    a, b = output[zone], target[zone]
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / max(float(np.sqrt((a * a).sum() * (b * b).sum())), 1e-6))


def compare(target: tuple, output: tuple, source: np.ndarray, check: float) -> dict:
    from facedancer_torch.faces.masks import eye_aspect_ratios, eye_zone

    t_faces, t_greys = target
    o_faces, o_greys = output
    ratios_t, ratios_o, lids, gain_closing, gain_all = [], [], [], [], []
    for t, o, tg, og in zip(t_faces, o_faces, t_greys, o_greys):
        if t is None or o is None:
            continue
        rt, ro = eye_aspect_ratios(t.landmarks), eye_aspect_ratios(o.landmarks)
        ratios_t.append(rt)
        ratios_o.append(ro)
        gain = (float(np.linalg.norm(t.descriptor - source))
                - float(np.linalg.norm(o.descriptor - source)))
        gain_all.append(gain)
        if rt.min() < check:
            gain_closing.append(gain)
        closed = [eye for eye in (0, 1) if rt[eye] < check]
        if closed:  # measured where the target's eye is, on both frames
            detail_o, detail_t = fine_detail(og), fine_detail(tg)
            lids += [lid_match(detail_o, detail_t,
                               eye_zone(t.landmarks, tg.shape, EYE_GROW, eyes=(eye,)))
                     for eye in closed]
    target_r, output_r = np.asarray(ratios_t), np.asarray(ratios_o)
    closing = target_r < check
    error = np.abs(output_r - target_r)
    return {"frames": len(ratios_t), "closing": int(closing.sum()),
            "error_closing": float(error[closing].mean()) if closing.any() else float("nan"),
            "error_open": float(error[~closing].mean()),
            "correlation": float(np.corrcoef(target_r.ravel(), output_r.ravel())[0, 1]),
            "lids": float(np.mean(lids)) if lids else float("nan"),
            "gain_closing": float(np.mean(gain_closing)) if gain_closing else float("nan"),
            "gain_all": float(np.mean(gain_all))}


def figure(path: Path, clips: list[Path], target_faces: list, frames: list[int]) -> None:
    """Rows: each clip's frames (target, without, with) cropped around the target's eyes."""
    import av

    eyes = np.concatenate([target_faces[i].landmarks[17:48] for i in frames
                           if target_faces[i] is not None])
    (x0, y0), (x1, y1) = eyes.min(axis=0), eyes.max(axis=0)
    margin = 0.15 * (x1 - x0)
    left, top = int(max(x0 - margin, 0)), int(max(y0 - margin, 0))
    right, bottom = int(x1 + margin), int(y1 + 2 * margin)
    rows = []
    for clip in clips:
        with av.open(str(clip)) as container:
            decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        rows.append(np.concatenate([decoded[i][top:bottom, left:right] for i in frames], 1))
    picture = np.concatenate(rows, 0)
    scale = min(1.0, 1400 / picture.shape[1])
    picture = cv2.resize(picture, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 88])
    print(f"figure: {path} (rows: target, --no-blinks, default; frames {frames})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=CLIPS)
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--figure-frames", default="12,36,58,99,112")
    args = parser.parse_args()
    from facedancer_torch.evaluate.dlib_face import get_dlib_face

    videos = shared_path("data", "videos")
    if videos is None:
        sys.exit("error: ../shared/data/videos is not here (set FACEDANCER_SHARED)")
    source_rgb = cv2.cvtColor(cv2.imread(str(args.source)), cv2.COLOR_BGR2RGB)
    source = get_dlib_face().analyse_image(source_rgb)[0].descriptor
    print("| clip | frames | eye-frames closing in the target | mean \\|output - target\\| "
          "there: without / with | elsewhere: without / with | correlation: without / with "
          "| lid match there: without / with | identity gain there: "
          "without / with | identity gain, all frames: without / with |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips.split(","):
            target = analyse(videos / clip)
            results = {}
            outputs = []
            for name, extra in (("without", ["--no-blinks"]), ("with", [])):
                out = Path(tmp) / f"{name}_{clip}"
                outputs.append(out)
                subprocess.run([sys.executable, "-m", "facedancer_torch", "swap", "-s",
                                str(args.source), "-t", str(videos / clip), "-o", str(out),
                                "--quiet", *extra], check=True, capture_output=True)
                results[name] = compare(target, analyse(out), source, CLOSING)
            a, b = results["without"], results["with"]
            print(f"| {clip} | {b['frames']} | {b['closing']} | {a['error_closing']:.3f} / "
                  f"{b['error_closing']:.3f} | {a['error_open']:.3f} / {b['error_open']:.3f} | "
                  f"{a['correlation']:.2f} / {b['correlation']:.2f} | {a['lids']:.2f} / "
                  f"{b['lids']:.2f} | {a['gain_closing']:+.3f} / {b['gain_closing']:+.3f} | "
                  f"{a['gain_all']:+.3f} / {b['gain_all']:+.3f} |", flush=True)
            if args.figure is not None and clip == args.clips.split(",")[0]:
                figure(args.figure, [videos / clip, *outputs], target[0],
                       [int(i) for i in args.figure_frames.split(",")])


if __name__ == "__main__":
    main()
