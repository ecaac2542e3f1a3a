"""Tilted faces: every face of the shared photos with the photo turned by angles between the
quarter turns, read with the tilt rule off and on (docs/align.md "Tilted faces").

    python benchmarks/tilts.py                          # 82 photos at 0, 15, 30, 45, 60, 75 deg
    python benchmarks/tilts.py --angles 20 40 --list    # every face not read right

Each photo is turned about its centre on a canvas that holds all of it (the corners black), so
every face is tilted by the angle on top of its own tilt. The truth is each face detected in
the photo as it stands (scoring at least the detector's threshold), its five landmarks turned
with the photo. A face counts as read right when a face found near it has every landmark
within 0.2 of its eye distance of the truth's (what two readings of one upright face at
different sizes differ by at most, for most faces; benchmarks/face_scale.py), wrong when the
face found near it is further off (turned, upside down or shifted: the swap smears), missed
when nothing is found near it; "no face" counts what is found away from every truth face;
"off, median": the median over the faces found of the largest landmark error (eye distances).
Rules: ``previous`` (``TILT_MIN`` = 180: the network's readings, the turn search as before)
and ``default``. ``--time N``: CPU ms per photo as it stands, least of N runs, one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from facedancer_torch.testing import PHOTOS_ABSENT, shared_photos

RIGHT = 0.2  # eye distances


def turned(image: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """``image`` turned ``angle`` degrees counterclockwise on a canvas that holds all of it
    (the corners black), and the 2 x 3 matrix that maps its pixels there."""
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    out_w, out_h = int(height * sin + width * cos), int(height * cos + width * sin)
    matrix[0, 2] += out_w / 2 - width / 2
    matrix[1, 2] += out_h / 2 - height / 2
    return cv2.warpAffine(image, matrix, (out_w, out_h), flags=cv2.INTER_LINEAR), matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--angles", type=float, nargs="+", default=[0, 15, 30, 45, 60, 75])
    parser.add_argument("--time", type=int, default=2, metavar="N",
                        help="time each rule on the photos as they stand, least of N runs")
    parser.add_argument("--list", action="store_true", help="print every face not read right")
    parser.add_argument("--budgets", type=float, nargs="+", default=None, metavar="B",
                        help="the rule read level with each TILT_BUDGET B (pixels read level "
                             "over the first pass's; inf: no limit); default: the module's")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from facedancer_torch.faces import detect
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.images import read_image

    paths = shared_photos()
    if not paths:
        sys.exit(PHOTOS_ABSENT)
    detector = get_detector(device="cpu", threads=1)
    default, budget = detect.TILT_MIN, detect.TILT_BUDGET
    # rule -> (TILT_MIN, TILT_BUDGET)
    rules = {"previous": (180.0, budget)}
    for b in args.budgets or [budget]:
        rules["default" if b == budget else f"budget {b:g}"] = (default, b)

    tally = {(rule, angle): [0, 0, 0, 0] for rule in rules for angle in args.angles}
    offs: dict = {key: [] for key in tally}  # each face found's largest landmark error
    photos = {p.name: read_image(p) for p in paths}
    for name, image in photos.items():
        detect.TILT_MIN = default
        truth = [f for f in detector.detect_batch([image], rotate="off")[0]
                 if f.score >= detector.score_threshold]
        for angle in args.angles:
            picture, matrix = turned(image, angle)
            for rule, (detect.TILT_MIN, detect.TILT_BUDGET) in rules.items():
                found = detector.detect_batch([picture])[0]
                cell, used = tally[(rule, angle)], set()
                for face in truth:
                    points = face.landmarks @ matrix[:, :2].T + matrix[:, 2]
                    eyes = float(np.hypot(*(points[1] - points[0])))
                    near = [k for k, f in enumerate(found)
                            if np.hypot(*(f.landmarks.mean(0) - points.mean(0))) < 0.7 * eyes]
                    if not near:
                        cell[2] += 1
                        what = "missed"
                    else:
                        k = min(near, key=lambda k: np.hypot(*(found[k].landmarks - points).T)
                                .max())
                        used.add(k)
                        off = float(np.hypot(*(found[k].landmarks - points).T).max() / eyes)
                        offs[(rule, angle)].append(off)
                        if off <= RIGHT:
                            cell[0] += 1
                            continue
                        cell[1] += 1
                        what = f"off by {off:.2f} eye distances (turn {found[k].rotation})"
                    if args.list:
                        print(f"  {rule}: {name} at {angle:g} deg: face at "
                              f"{points.mean(0).astype(int).tolist()} {what}")
                cell[3] += len(found) - len(used)
    detect.TILT_MIN, detect.TILT_BUDGET = default, budget
    faces = sum(len([f for f in detector.detect_batch([im], rotate="off")[0]
                     if f.score >= detector.score_threshold]) for im in photos.values())
    print(f"{len(photos)} photos ({faces} faces) turned by each angle; right: every landmark "
          f"within {RIGHT} eye distances")
    print(f"{'rule':>10} | {'angle':>5} | {'right':>5} | {'wrong':>5} | {'missed':>6} | "
          f"{'no face':>7} | {'off, median':>11}")
    for rule in rules:
        for angle in args.angles:
            right, wrong, missed, extra = tally[(rule, angle)]
            off = np.median(offs[(rule, angle)]) if offs[(rule, angle)] else float("nan")
            print(f"{rule:>10} | {angle:>5g} | {right:>5} | {wrong:>5} | {missed:>6} | "
                  f"{extra:>7} | {off:>11.3f}")
    if not args.time:
        return
    print(f"\nthe {len(photos)} photos as they stand, one thread, least of {args.time} runs")
    print(f"{'rule':>10} | {'CPU ms / photo':>14}")
    for rule, (detect.TILT_MIN, detect.TILT_BUDGET) in rules.items():
        total = 0.0
        for image in photos.values():
            runs = []
            for _ in range(args.time):
                start = time.process_time()
                detector.detect_batch([image])
                runs.append(time.process_time() - start)
            total += min(runs)
        print(f"{rule:>10} | {1000 * total / len(photos):>14.1f}")
    detect.TILT_MIN, detect.TILT_BUDGET = default, budget


if __name__ == "__main__":
    main()
