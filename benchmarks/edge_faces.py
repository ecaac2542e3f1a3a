"""Faces cut by the image's edge: landmarks, the turn search and swaps, with and without the
edge handling (docs/align.md "Faces at the image's edge", docs/swap.md "Faces the frame cuts").

    python benchmarks/edge_faces.py                      # shared photos + 60 LFW faces
    python benchmarks/edge_faces.py --settings off nosearch default --turns --lfw 30 \
        --swaps 10 --figure docs/images/edge_faces.jpg  # the docs' tables and figure
    python benchmarks/edge_faces.py --settings off default context0.25 odds3 margin0.3
    python benchmarks/edge_faces.py --lfw 0 --fractions 0.3 --sides left --list

A face half outside the picture is common (a photo cropped tightly, a person entering a
video), and the detector sees only the part inside: with half a face at the border it can
read the visible eye as the other one and the ear as an eye. For each photo whose largest
face lies well inside the picture (at least ``--inside`` of its box size from every edge),
the truth is that face as detected on the whole photo; the photo is then cut so that the
edge runs through the face, ``--fractions`` of its box from one side (``--sides``), and
detected again. Per setting the table gives, over all cuts: cuts where the face is found,
the mean and 90th percentile of the five landmarks' mean distance from the truth (in eye
distances of the truth), cuts whose face is broken (landmarks off by more than a quarter of
the eye distance, or the alignment turned by more than 15 degrees), the detection CPU time
relative to the first setting (one onnxruntime thread, least of ``--repeat`` runs), and how
many were found turned by the search for turned faces; then the broken ones by side and depth.

Settings: ``off`` (no edge pass: ``faces.detect.EDGE_MARGIN = 0``), ``default``,
``nosearch`` (the edge pass, but a face found turned replaces a cut one as any other:
``EDGE_SEARCH_BELOW`` off), ``oddsF`` (``EDGE_TURN_ODDS = F``), ``contextF``
(``EDGE_CONTEXT = F``), ``marginF`` (``EDGE_MARGIN = F``). ``--turns`` adds a table: every
whole photo turned by 90, 180 and 270 degrees (and not turned), how often its largest face is
missed or found at another turn. ``--swaps N`` swaps the cuts of the first N shared photos
with the demo model (the example astronaut as the source) and compares each with the whole
photo's swap cut the same way (``--swap-settings``: also the crops' mirrored border and
occluders only inside the frame, off and on); ``--figure`` writes target | before | default.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from facedancer_torch.testing import PHOTOS_ABSENT, shared_path, shared_photos

BROKEN_ERROR = 0.25  # mean landmark distance, in eye distances
BROKEN_ANGLE = 15.0  # degrees the alignment is turned


def cut(image: np.ndarray, box: np.ndarray, side: str, fraction: float
        ) -> tuple[np.ndarray, np.ndarray]:
    """``image`` cut so that its ``side`` edge runs ``fraction`` of ``box`` into it; the
    offset ``(x, y)`` of the cut image in the whole one."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    if side == "left":
        x = int(round(x1 + fraction * (x2 - x1)))
        return image[:, x:], np.array([x, 0], np.float32)
    if side == "right":
        x = int(round(x2 - fraction * (x2 - x1)))
        return image[:, :x], np.zeros(2, np.float32)
    if side == "top":
        y = int(round(y1 + fraction * (y2 - y1)))
        return image[y:], np.array([0, y], np.float32)
    y = int(round(y2 - fraction * (y2 - y1)))
    return image[:y], np.zeros(2, np.float32)


def angle(points: np.ndarray) -> float:
    """The alignment's turn: the eye line's and eyes-to-mouth line's mean angle, degrees."""
    eyes = points[1] - points[0]
    down = (points[3] + points[4]) / 2 - (points[0] + points[1]) / 2
    across = np.array([down[1], -down[0]])  # the eyes-to-mouth line turned to the eye line's
    line = eyes / max(np.linalg.norm(eyes), 1e-6) + across / max(np.linalg.norm(across), 1e-6)
    return math.degrees(math.atan2(line[1], line[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["off", "default"])
    parser.add_argument("--sides", nargs="+", default=["left", "right", "top", "bottom"])
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.25, 0.4])
    parser.add_argument("--lfw", type=int, default=60, help="LFW faces added (every k-th)")
    parser.add_argument("--inside", type=float, default=0.25,
                        help="least gap from every edge of the whole photo, in box sizes")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="name every broken face")
    parser.add_argument("--swaps", type=int, default=0,
                        help="also swap the cuts of this many shared photos (with the demo "
                        "model and the example astronaut.jpg as the source) and compare each "
                        "with the swap of the whole photo")
    parser.add_argument("--swap-settings", nargs="+",
                        default=["off", "black", "default"],
                        help="off: no edge pass, black crop borders, occluders beyond the "
                        "frame counted; black: the edge pass and occluders inside the frame "
                        "only, black crop borders; default: all three; nocutfade: all three "
                        "and no cut fade (--no-cut-fade)")
    parser.add_argument("--figure", help="write target | off | default swaps of --figure-cuts "
                        "here (JPEG; the demo model, astronaut.jpg as the source)")
    parser.add_argument("--figure-cuts", default="df_img1.jpg left 0.33,df_img30.jpg right 0.25,"
                        "df_img2.jpg bottom 0.25",
                        help="comma-separated 'PHOTO SIDE FRACTION' of the shared photos")
    parser.add_argument("--turns", action="store_true",
                        help="also every whole photo turned by 0, 90, 180 and 270 degrees: "
                        "is its largest face found at the right turn?")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    from facedancer_torch.faces import detect
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.tracking import box_iou
    from facedancer_torch.io.images import read_image

    paths = shared_photos()
    if not paths:
        sys.exit(PHOTOS_ABSENT)
    lfw = shared_path("data", "lfw", "images")
    if args.lfw and lfw is not None:
        every = sorted(lfw.rglob("*.jpg"))
        paths += every[::max(1, len(every) // args.lfw)][:args.lfw]
    reference = get_detector(device="cpu", threads=1)
    cases = []  # (name, cut image, truth face in cut coordinates)
    boxes_of = {}  # photo name: its face's box in the whole photo
    for path in paths:
        image = read_image(path)
        face = largest_face(reference.detect(image))
        if face is None:
            continue
        height, width = image.shape[:2]
        gap = args.inside * max(face.width, face.height)
        x1, y1, x2, y2 = (float(v) for v in face.box)
        if min(x1, y1, width - x2, height - y2) < gap:
            continue
        boxes_of[path.name] = face.box
        for side in args.sides:
            for fraction in args.fractions:
                part, offset = cut(image, face.box, side, fraction)
                truth = detect.Face(box=face.box - np.tile(offset, 2), score=face.score,
                                    landmarks=face.landmarks - offset)
                cases.append((f"{path.name} {side} {fraction}", part, truth))
    faces_n = len({c[0].split()[0] for c in cases})
    print(f"{faces_n} faces well inside their photos, {len(cases)} cuts "
          f"(sides {', '.join(args.sides)}; {', '.join(map(str, args.fractions))} of the box)")
    print(f"{'setting':>14} | {'found':>9} | {'error mean':>10} | {'p90':>6} | "
          f"{'broken':>9} | {'detect CPU':>10} | {'turned':>6}")
    rows, turns = [], []
    wholes = [read_image(path) for path in paths] if args.turns else []
    defaults = detect.EDGE_MARGIN, detect.EDGE_CONTEXT, detect.EDGE_SEARCH_BELOW, \
        detect.EDGE_TURN_ODDS
    baseline = None
    for setting in args.settings:
        (detect.EDGE_MARGIN, detect.EDGE_CONTEXT, detect.EDGE_SEARCH_BELOW,
         detect.EDGE_TURN_ODDS) = defaults
        if setting == "off":
            detect.EDGE_MARGIN = 0.0
        elif setting == "nosearch":  # the edge pass, but cut faces trigger the turn search
            detect.EDGE_SEARCH_BELOW = 2.0
        elif setting.startswith("context"):
            detect.EDGE_CONTEXT = float(setting.removeprefix("context"))
        elif setting.startswith("odds"):
            detect.EDGE_TURN_ODDS = float(setting.removeprefix("odds"))
        elif setting.startswith("margin"):
            detect.EDGE_MARGIN = float(setting.removeprefix("margin"))
        elif setting != "default":
            sys.exit(f"unknown setting {setting}")
        detector = get_detector(device="cpu", threads=1)
        detector.detect(cases[0][1])  # onnxruntime's first run and the graph cut left out
        errors, broken, found, cpu = [], 0, 0, 0.0
        cells: dict[tuple[str, float], list[int]] = {}  # (side, fraction): [broken, found]
        turned = 0
        for name, image, truth in cases:
            times = []
            for _ in range(args.repeat):
                start = time.process_time()
                faces = detector.detect(image)
                times.append(time.process_time() - start)
            cpu += min(times)
            inside = np.array([image.shape[1], image.shape[0]] * 2, np.float32)
            seen = [f for f in faces if box_iou(np.clip(truth.box, 0, inside),
                                                np.clip(f.box, 0, inside))[0, 0] > 0.3]
            face = largest_face(seen)
            if face is None:
                continue
            found += 1
            eye = float(np.linalg.norm(truth.landmarks[1] - truth.landmarks[0]))
            error = float(np.linalg.norm(face.landmarks - truth.landmarks, axis=1).mean()) / eye
            turn = abs((angle(face.landmarks) - angle(truth.landmarks) + 180) % 360 - 180)
            errors.append(error)
            bad = int(error > BROKEN_ERROR or turn > BROKEN_ANGLE)
            if bad and args.list:
                print(f"  {setting}: broken: {name}: {100 * error:.0f}% of the eye distance, "
                      f"turned {turn:.0f} deg, found at {face.rotation} deg")
            broken += bad
            turned += int(face.rotation != 0)
            _, side, fraction = name.split()
            cell = cells.setdefault((side, float(fraction)), [0, 0])
            cell[0] += bad
            cell[1] += 1
        baseline = baseline or cpu
        errors_a = np.array(errors) * 100
        print(f"{setting:>14} | {found:>4} / {len(cases):<3}| {errors_a.mean():9.1f}% | "
              f"{np.percentile(errors_a, 90):5.1f}% | {broken:>3} / {found:<3} | "
              f"{cpu / baseline:9.2f}x | {turned:>6}")
        rows.append(f"{setting:>14} | " + " | ".join(
            f"{cells.get((side, fraction), [0, 0])[0]:>5}" for side in args.sides
            for fraction in args.fractions))
        if wholes:
            wrong = {0: 0, 90: 0, 180: 0, 270: 0}
            counted = 0
            for image in wholes:
                if largest_face(reference.detect(image)) is None:
                    continue
                counted += 1
                for turn in wrong:
                    turned = np.ascontiguousarray(np.rot90(image, -turn // 90))
                    face = largest_face(detector.detect(turned))
                    wrong[turn] += int(face is None or face.rotation != turn)
            turns.append(f"{setting:>14} | {counted:>6} | " + " | ".join(
                f"{wrong[t]:>4}" for t in wrong))
    # The swaps and the figure below run at the defaults, whichever setting came last.
    (detect.EDGE_MARGIN, detect.EDGE_CONTEXT, detect.EDGE_SEARCH_BELOW,
     detect.EDGE_TURN_ODDS) = defaults
    if turns:
        print("whole photos turned: largest face missed or found at another turn")
        print(f"{'setting':>14} | {'photos':>6} | " + " | ".join(f"{t:>4}" for t in (0, 90, 180,
                                                                                     270)))
        print("\n".join(turns))
    if args.swaps:
        swap_table(cases, paths, boxes_of, args)
    if args.figure:
        figure(args.figure, args.figure_cuts, shared_path("data", "photos"), reference)
        print(f"figure: {args.figure}")
    print("broken faces by cut (side, fraction of the box cut away):")
    print(f"{'setting':>14} | " + " | ".join(f"{side[0]}{fraction:g}".rjust(5)
                                              for side in args.sides
                                              for fraction in args.fractions))
    print("\n".join(rows))


SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"


@contextlib.contextmanager
def edge_handling(edge_pass: bool = True, mirror: bool = True, inside: bool = True):
    """The block's swaps with each part of the edge handling on or off (off: the detector's
    padded pass, the crops' mirrored border, occluders only inside the frame); restored after."""
    from facedancer_torch.faces import detect
    from facedancer_torch.swap import compose, pipeline

    saved = detect.EDGE_MARGIN, pipeline.CROP_BORDER, compose.OCCLUDER_INSIDE_FRAME
    try:
        if not edge_pass:
            detect.EDGE_MARGIN = 0.0
        if not mirror:
            pipeline.CROP_BORDER = "black"
        if not inside:
            compose.OCCLUDER_INSIDE_FRAME = 0.0
        yield
    finally:
        detect.EDGE_MARGIN, pipeline.CROP_BORDER, compose.OCCLUDER_INSIDE_FRAME = saved


def demo_swapper():
    """The shipped demo model and its plan for the example astronaut as the source."""
    from facedancer_torch.swap.pipeline import Swapper

    swapper = Swapper()
    return swapper, swapper.plan([SOURCE])


def swap_table(cases: list, paths: list, boxes_of: dict, args) -> None:
    """Each cut of the first ``args.swaps`` shared photos swapped, against the whole photo's
    swap cut the same way: the mean grey difference inside the face box's visible part, and
    in the strip along the cut edge (a tenth of the box), per setting."""
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    chosen = list(dict.fromkeys(c[0].split()[0] for c in cases
                                if not c[0].split()[0][0].isupper()))[:args.swaps]
    by_name = {p.name: p for p in paths}
    swapper, plan = demo_swapper()
    options = SwapOptions()
    wholes = {name: read_image(by_name[name]) for name in chosen}
    whole_swaps = {name: swapper.swap_image(image, plan, options)
                   for name, image in wholes.items()}
    print(f"\nswaps of {len(chosen)} photos' cuts against the whole photo's swap cut the same "
          "way: mean grey difference in the face box (strip along the cut edge)")
    print(f"{'setting':>14} | {'face box':>8} | {'edge strip':>10} | {'worst box':>9}")
    for setting in args.swap_settings:
        parts = dict(edge_pass=setting != "off", mirror=setting not in ("off", "black"),
                     inside=setting != "off")
        options = SwapOptions(cut_fade=setting != "nocutfade")
        boxes, strips = [], []
        for name, image, truth in cases:
            photo, side, fraction = name.split()
            if photo not in wholes:
                continue
            with edge_handling(**parts):
                out = swapper.swap_image(image, plan, options)
            reference, _ = cut(whole_swaps[photo], boxes_of[photo], side, float(fraction))
            height, width = image.shape[:2]
            x1, y1, x2, y2 = (int(round(v)) for v in truth.box)
            x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
            diff = np.abs(out.astype(np.float32) - reference).mean(axis=2)
            boxes.append(float(diff[y1:y2, x1:x2].mean()))
            band = max(2, int(0.1 * max(truth.box[2] - truth.box[0], truth.box[3] - truth.box[1])))
            strip = {"left": diff[y1:y2, :band], "right": diff[y1:y2, width - band:],
                     "top": diff[:band, x1:x2], "bottom": diff[height - band:, x1:x2]}[side]
            strips.append(float(strip.mean()))
        print(f"{setting:>14} | {np.mean(boxes):8.2f} | {np.mean(strips):10.2f} | "
              f"{np.max(boxes):9.2f}")


def figure(path: str, specs: str, photos: Path, reference) -> None:
    """Rows of target | swap without the edge handling | default, each cut photo's face box
    (its visible part, grown by a fifth) at 320 px high."""
    import cv2

    from facedancer_torch.faces.detect import largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions

    swapper, plan = demo_swapper()
    rows = []
    for spec in specs.split(","):
        name, side, fraction = spec.split()
        image = read_image(photos / name)
        face = largest_face(reference.detect(image))
        part, offset = cut(image, face.box, side, float(fraction))
        panels = [part]
        for on in (False, True):
            with edge_handling(on, on, on):
                panels.append(swapper.swap_image(part, plan, SwapOptions()))
        box = face.box - np.tile(offset, 2)
        grow = 0.2 * max(box[2] - box[0], box[3] - box[1])
        x1, y1 = int(max(box[0] - grow, 0)), int(max(box[1] - grow, 0))
        x2 = int(min(box[2] + grow, part.shape[1]))
        y2 = int(min(box[3] + grow, part.shape[0]))
        row = np.hstack([p[y1:y2, x1:x2] for p in panels])
        scale = 320 / row.shape[0]
        rows.append(cv2.resize(row, (round(row.shape[1] * scale), 320),
                               interpolation=cv2.INTER_AREA))
    # Rows narrower than the widest side by side, as many as fit in its width.
    width = max(r.shape[1] for r in rows)
    lines: list[list[np.ndarray]] = []
    for row in rows:
        if lines and sum(r.shape[1] + 8 for r in lines[-1]) + row.shape[1] <= width:
            lines[-1].append(row)
        else:
            lines.append([row])
    strips = []
    for line in lines:
        strip = np.hstack([np.pad(r, ((0, 0), (0, 8), (0, 0)), constant_values=255)
                           for r in line])[:, :-8] if len(line) > 1 else line[0]
        strips.append(np.pad(strip, ((0, 8), (0, width - strip.shape[1]), (0, 0)),
                             constant_values=255))
    sheet = np.vstack(strips)[:-8]
    cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])


if __name__ == "__main__":
    main()
