"""Faces the picture's edge cuts: how much of a broken reading is pasted, with and without the
cut fade (``faces/masks.cut_weight``, ``swap/select.split_cut``; docs/swap.md "Faces the frame
cuts").

    python benchmarks/cut_fade.py                       # photo cuts and panned talking clips
    python benchmarks/cut_fade.py --videos 0 --sides left right
    python benchmarks/cut_fade.py --photos 0 --videos 1 --figure docs/images/cut_fade.jpg
    python benchmarks/cut_fade.py --videos 0 --fades 0.97:0.995 0.95:0.99 0.9:0.97

Once the edge hides about half of a face, the detector's reading of it breaks (the visible eye
read as the other one, the ear as an eye), and a swap pasted on it is a smear over the eye; in
a video the face then vanishes from one frame to the next when the detector loses it.

**Photos.** Each shared photo whose largest face lies well inside it (a quarter of its box from
every edge) is cut so that the edge runs ``--fractions`` of the face's box into it from each of
``--sides`` (``edge_faces.cut``), and detected again. The truth is the face as detected on the
whole photo. A reading is broken when its five landmarks are off by more than a quarter of the
eye distance on average or its alignment is turned by more than 15 degrees (as in
``edge_faces.py``). Per cut depth and setting: faces found, broken readings, and the weight the
compositing gives the swap (0 when the face is left as it is; with the mirrored picture's
second opinion, ``swap/select.trust_mirrored``, as a still image gets it): its mean over
broken readings (what is pasted that should not be) and over right ones (what is kept that
should be).
``--fades LOW:HIGH ...`` adds a table of other score ranges for the fade, by the fade alone
(``masks.cut_weight``, without ``split_cut``'s turned-read rule), on the same faces.

**Videos.** Each shared talking clip (``--videos`` of them, ``--frames`` frames) is seen through
a window of 2/7 of its width and 11/20 of its height panning across it, so that the face enters
at one edge, crosses, and leaves at the other, and the same frames backwards; each panned clip
is swapped by the video pipeline (``swap_stream``: tracking, detection every 5 frames, the demo
model, ``astronaut.jpg`` as the source). The truth per frame is the face detected in the whole
frame. Per setting, over all panned frames: face-frames pasted on a broken reading (weight >
0) and their summed weight, the mean weight on right readings of faces at least 80 % inside
the window, and the largest step in the face's pasted weight from one frame to the next
(median over the clips; 1 = a face popping on or off). ``--figure`` writes the input and
both settings' outputs of the first clip where its face is 30-90 % inside the window (up to
12 frames), side by side.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_faces import BROKEN_ANGLE, BROKEN_ERROR, angle, cut  # noqa: E402

from facedancer_torch.testing import PHOTOS_ABSENT, shared_path, shared_photos  # noqa: E402

SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"
CLIPS = ("talking_a.mp4", "talking_b.mp4", "talking_c.mp4", "talking_1face_512.mp4")


def broken(face, truth) -> bool:
    eye = float(np.linalg.norm(truth.landmarks[1] - truth.landmarks[0]))
    error = float(np.linalg.norm(face.landmarks - truth.landmarks, axis=1).mean()) / eye
    turn = abs((angle(face.landmarks) - angle(truth.landmarks) + 180) % 360 - 180)
    return error > BROKEN_ERROR or turn > BROKEN_ANGLE


def matched(faces, truth_box, shape):
    """The largest of ``faces`` overlapping the truth's box (both clipped to the picture) by
    IoU > 0.3, else None."""
    from facedancer_torch.faces.detect import largest_face
    from facedancer_torch.faces.tracking import box_iou

    inside = np.array([shape[1], shape[0]] * 2, np.float32)
    truth = np.clip(np.asarray(truth_box, np.float32)[:4], 0, inside)
    seen = [f for f in faces if box_iou(truth, np.clip(np.asarray(f.box, np.float32)[:4], 0,
                                                      inside))[0, 0] > 0.3]
    return largest_face(seen)


def photo_table(args) -> None:
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.detect import Face, get_detector, largest_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.select import split_cut, trust_mirrored

    paths = shared_photos()
    if not paths:
        sys.exit(PHOTOS_ABSENT)
    detector = get_detector(device="cpu", threads=1)
    cells: dict[float, list] = {fraction: [] for fraction in args.fractions}
    readings = []  # (broken, face, picture shape) of every cut face found
    signals = []  # (broken, truth's share inside, face, shape, mirrored disagreement)
    options = SwapOptions()
    photos = 0
    for path in paths[:args.photos]:
        image = read_image(path)
        face = largest_face(detector.detect(image))
        if face is None:
            continue
        height, width = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in face.box)
        if min(x1, y1, width - x2, height - y2) < 0.25 * max(face.width, face.height):
            continue
        photos += 1
        for side in args.sides:
            for fraction in args.fractions:
                part, offset = cut(image, face.box, side, fraction)
                truth = Face(box=face.box - np.tile(offset, 2), score=face.score,
                             landmarks=face.landmarks - offset)
                faces = detector.detect(part)
                found = matched(faces, truth.box, part.shape)
                if found is None:
                    cells[fraction].append(None)
                    continue
                # as a still image's swap does it: the mirrored picture's second opinion, then
                # the faces left as they are
                trusted = trust_mirrored(detector, part, faces, options)
                mine = trusted[next(i for i, f in enumerate(faces) if f is found)]
                kept, _ = split_cut(trusted, part.shape, options)
                weight = masks.cut_weight(mine.landmarks, mine.box, float(mine.score),
                                          part.shape) if any(f is mine for f in kept) else 0.0
                cells[fraction].append((broken(found, truth), weight))
                readings.append((broken(found, truth), found, part.shape))
                signals.append((broken(found, truth),
                                masks.share_inside(truth.landmarks, part.shape), found,
                                part.shape, disagreement(detector, part, found)))
    print(f"\n## Photos: {photos} faces, cut from {', '.join(args.sides)}\n")
    print("| box cut away | cuts | found | broken | weight on broken: off / default "
          "| weight on right: off / default | left as they are |")
    print("|---|---|---|---|---|---|---|")
    every = []
    for fraction, cases in cells.items():
        found = [c for c in cases if c is not None]
        every += found
        print(row(f"{fraction:g}", len(cases), found))
    print(row("all", sum(len(c) for c in cells.values()), every))
    signal_table(signals)
    if args.fades:
        print("\n| fade (score range) | weight on broken (more than half) | weight on right "
              "| cut faces scoring in the range: right / broken | below it: right / broken |")
        print("|---|---|---|---|---|")
        for text in args.fades:
            fade = tuple(float(v) for v in text.split(":"))
            weights = [(bad, masks.cut_weight(face.landmarks, face.box, float(face.score),
                                              shape, fade=fade))
                       for bad, face, shape in readings]
            bad = [w for b, w in weights if b]
            good = [w for b, w in weights if not b]
            cut_faces = [(b, float(face.score)) for b, face, shape in readings
                         if masks.cut_weight(face.landmarks, face.box, 0.0, shape) == 0.0]
            within = [b for b, score in cut_faces if fade[0] <= score < fade[1]]
            below = [b for b, score in cut_faces if score < fade[0]]
            print(f"| {fade[0]:g}-{fade[1]:g} | {np.mean(bad):.3f} "
                  f"({sum(w > 0.5 for w in bad)} of {len(bad)}) | {np.mean(good):.3f} "
                  f"| {within.count(False)} / {within.count(True)} "
                  f"| {below.count(False)} / {below.count(True)} |")


def disagreement(detector, image, face) -> float:
    """The mirrored picture's disagreement for a doubted cut face (``faces/mirror.py``), else
    NaN (the faces the second opinion is asked for)."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.mirror import mirror_disagreement

    if not (masks.MIRROR_MIN_SCORE <= float(face.score) < masks.CUT_FADE[1]
            and masks.is_cut(face.landmarks, face.box, image.shape)):
        return float("nan")
    return mirror_disagreement(detector, image, [face])[0]


def ranked(values: np.ndarray, bad: np.ndarray) -> float:
    """The share of (broken, right) pairs in which the broken reading's value is the higher."""
    pos, neg = values[bad], values[~bad]
    return float(((pos[:, None] > neg[None, :]).mean()
                  + 0.5 * (pos[:, None] == neg[None, :]).mean()))


def signal_table(signals: list) -> None:
    """What tells a broken reading from a right one, on faces 25-75 % inside the picture (the
    truth's face ellipse), and the mirrored reading on the faces it is asked about."""
    from facedancer_torch.faces import masks

    chosen = [s for s in signals if 0.25 <= s[1] < 0.75]
    bad = np.array([s[0] for s in chosen])
    faces = [s[2] for s in chosen]
    values = {
        "detector score (lower)": [-float(f.score) for f in faces],
        "share placed inside the picture (lower)": [
            -masks.share_inside(f.landmarks, s[3]) for f, s in zip(faces, chosen)],
        "eye distance / box height (lower)": [
            -float(np.linalg.norm(f.landmarks[1] - f.landmarks[0])) / max(f.height, 1e-6)
            for f in faces],
        "yaw proxy (higher)": [masks.yaw_ratio(f.landmarks) for f in faces],
    }
    print(f"\n{len(chosen)} faces 25-75 % inside, {int(bad.sum())} broken; a broken reading "
          "ranks beyond a right one in this share of pairs:\n")
    print("| signal | pairs |")
    print("|---|---|")
    for name, value in values.items():
        print(f"| {name} | {100 * ranked(np.array(value), bad):.0f} % |")
    asked = [s for s in signals if not np.isnan(s[4])]
    bad = np.array([s[0] for s in asked])
    far = np.array([s[4] for s in asked])
    score = np.array([-float(s[2].score) for s in asked])
    print(f"\ncut faces scoring {masks.MIRROR_MIN_SCORE}-{masks.CUT_FADE[1]} ({len(asked)}, "
          f"{int(bad.sum())} broken): mirrored disagreement {100 * ranked(far, bad):.0f} % of "
          f"pairs, score {100 * ranked(score, bad):.0f} %; right / broken below "
          + ", ".join(f"{t:g}: {int(np.sum((far < t) & ~bad))} / {int(np.sum((far < t) & bad))}"
                      for t in (0.05, 0.08, 0.1)))


def row(name: str, cuts: int, found: list) -> str:
    bad = [w for b, w in found if b]
    good = [w for b, w in found if not b]
    mean = (lambda v: f"{np.mean(v):.3f}" if v else "-")
    return (f"| {name} | {cuts} | {len(found)} | {len(bad)} | {'1.000' if bad else '-'} / "
            f"{mean(bad)} | {'1.000' if good else '-'} / {mean(good)} "
            f"| {sum(w == 0 for _, w in found)} |")


def panned(frames: list, backwards: bool) -> tuple[list, list]:
    """The clip seen through a window panning across it (see the docstring): the window's
    frames and each one's top-left corner in the whole frame."""
    height, width = frames[0].shape[:2]
    ww, wh = width * 2 // 7, height * 11 // 20
    y0 = (height - wh) // 2
    out, corners = [], []
    for i, frame in enumerate(frames):
        x0 = int(round((width - ww) * i / max(len(frames) - 1, 1)))
        out.append(np.ascontiguousarray(frame[y0:y0 + wh, x0:x0 + ww]))
        corners.append(np.array([x0, y0], np.float32))
    if backwards:
        return out[::-1], corners[::-1]
    return out, corners


def video_table(args) -> None:
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.detect import Face, largest_face
    from facedancer_torch.io.video_reader import read_frames
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper
    from facedancer_torch.swap.video import VideoStats, swap_stream

    videos = shared_path("data", "videos")
    if videos is None:
        sys.exit("videos are absent: expected ../shared/data/videos")
    swapper = Swapper(device="cpu")
    plan = swapper.plan([SOURCE])
    settings = {"off": SwapOptions(cut_fade=False), "default": SwapOptions()}
    totals = {name: {"bad": 0, "bad_weight": 0.0, "good": [], "steps": []} for name in settings}
    figure: dict[str, list] = {}  # the first clip, forwards: input and each setting's output
    for clip in CLIPS[:args.videos]:
        whole = [f.rgb for f in read_frames(videos / clip, max_frames=args.frames)]
        truths = [largest_face(swapper.detector.detect(frame)) for frame in whole]
        for backwards in (False, True):
            frames, corners = panned(whole, backwards)
            order = truths[::-1] if backwards else truths
            shares = [0.0 if truth is None else
                      masks.share_inside(truth.landmarks - corners[t], frames[t].shape)
                      for t, truth in enumerate(order)]
            for name, options in settings.items():
                stats = VideoStats(record=True)
                outputs = [out for _, out in swap_stream(swapper, iter(frames), plan, options,
                                                         stats=stats)]
                if clip == CLIPS[0] and not backwards:
                    figure.update({"input": frames, name: outputs, "shares": shares})
                pasted = []
                for t, (faces, weights) in enumerate(zip(stats.faces, stats.weights)):
                    truth = order[t]
                    if truth is None:
                        pasted.append(0.0)
                        continue
                    truth = Face(box=truth.box - np.tile(corners[t], 2), score=truth.score,
                                 landmarks=truth.landmarks - corners[t])
                    share = shares[t]
                    candidates = [Face(box=box, score=1.0, landmarks=lm)
                                  for _, lm, box in faces]
                    found = matched(candidates, truth.box, frames[t].shape)
                    if found is None:
                        pasted.append(0.0)
                        continue
                    weight = weights[next(i for i, f in enumerate(candidates) if f is found)]
                    pasted.append(weight)
                    if broken(found, truth):
                        totals[name]["bad"] += weight > 0
                        totals[name]["bad_weight"] += weight
                    elif share >= 0.8:
                        totals[name]["good"].append(weight)
                totals[name]["steps"].append(float(np.max(np.abs(np.diff(pasted))))
                                             if len(pasted) > 1 else 0.0)
    clips = min(args.videos, len(CLIPS))
    print(f"\n## Videos: {clips} talking clips panned both ways, {args.frames} frames each\n")
    print("| setting | face-frames pasted on a broken reading | their summed weight "
          "| mean weight on right readings (>= 80 % inside) | largest step in weight (median) |")
    print("|---|---|---|---|---|")
    for name, total in totals.items():
        print(f"| {name} | {total['bad']} | {total['bad_weight']:.1f} | "
              f"{np.mean(total['good']):.3f} | {np.median(total['steps']):.2f} |")
    if args.figure and figure:
        import cv2

        # the frames where the face is 30-90 % inside the window: entering and leaving
        chosen = [t for t, share in enumerate(figure["shares"]) if 0.3 <= share <= 0.9]
        chosen = [chosen[i] for i in np.linspace(0, len(chosen) - 1,
                                                 min(12, len(chosen))).round().astype(int)]
        rows = [np.concatenate([figure[key][t] for t in chosen], 1)
                for key in ("input", *settings)]
        sheet = np.concatenate(rows, 0)
        sheet = cv2.resize(sheet, (sheet.shape[1] * 3 // 4, sheet.shape[0] * 3 // 4),
                           interpolation=cv2.INTER_AREA)
        cv2.imwrite(args.figure, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"figure: {args.figure} (input | off | default; frames {chosen})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000, help="at most this many photos")
    parser.add_argument("--sides", nargs="+", default=["left", "right", "top", "bottom"])
    parser.add_argument("--fractions", nargs="+", type=float,
                        default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    parser.add_argument("--fades", nargs="*", default=[], metavar="LOW:HIGH",
                        help="other score ranges for the fade, compared on the photo cuts")
    parser.add_argument("--videos", type=int, default=len(CLIPS))
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--figure", help="input | off | default of the first panned clip, "
                        "the frames where its face is 30-90 %% inside (JPEG or PNG)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.photos:
        photo_table(args)
    if args.videos:
        video_table(args)


if __name__ == "__main__":
    main()
