"""Faces at several turns: every face of the shared photos turned by 0, 90, 180 and 270
degrees, and collages of photos at different turns (docs/align.md "Turned faces").

    python benchmarks/turns.py                       # 82 photos x 4 turns + 40 collages
    python benchmarks/turns.py --collages 0 --list   # the photos only, every face missed
    python benchmarks/turns.py --time 0               # without the timing of the photos

The detector finds faces upright; ``rotate="auto"`` searches an image turned by 90, 180 and
270 degrees as well when its faces give cause (docs/align.md). Per rule, over every face that
detection at the right turn finds (score >= the detector's threshold): faces found at the
right turn, found at another one (the face's landmarks read sideways or upside down: the swap
is a smear), missed, and "faces" kept that are none of these (a texture read as a face at a
turn that loses). Rules:

- ``previous``: the search before session 26, recomputed here from the same readings: only
  when the best face scores below ``AUTO_SEARCH_BELOW``, and then the whole image takes the
  one turn whose best face scores highest;
- ``merge only``: the default's per-face merge of the turns (``TURN_MATCH``,
  ``TURN_ADD_MIN``), searched as ``previous`` (``TURNED_ASPECT = 0``, ``TURNED_ROLL = 360``);
- ``default``: the merge, and the search also when a face's box or eye line looks turned;
- ``all``: the merge on every image (``rotate="all"``).

Collages: ``--collages`` pictures of 2-3 shared photos side by side (each scaled to 480 px
high), at random turns with at least two different ones (seed ``--seed``); the truth is each
photo's faces detected at its right turn. ``--time N``: CPU ms per upright photo for each
real rule, least of N runs, one onnxruntime thread, and how many of the 82 were searched.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from facedancer_torch.testing import PHOTOS_ABSENT, shared_photos

TURNS = (0, 90, 180, 270)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collages", type=int, default=40)
    parser.add_argument("--seed", type=int, default=26)
    parser.add_argument("--time", type=int, default=2, metavar="N",
                        help="time each rule on the upright photos, least of N runs (0: no)")
    parser.add_argument("--list", action="store_true", help="print every face not found right")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import cv2

    from facedancer_torch.faces import detect
    from facedancer_torch.faces.detect import _overlap, _turn, _unrotate, get_detector
    from facedancer_torch.io.images import read_image

    paths = shared_photos()
    if not paths:
        sys.exit(PHOTOS_ABSENT)
    detector = get_detector(device="cpu", threads=1)
    threshold = detector.score_threshold
    uprights = {p.name: read_image(p) for p in paths}

    # Cases: (name, image, truth faces as (box, right turn)).
    cases = []
    for name, upright in uprights.items():
        for turn in TURNS:
            image = _turn(upright, turn)
            back = (360 - turn) % 360  # the turn that stands this image upright
            truth = detector.detect_batch([image], rotate=str(back))[0]
            cases.append((f"{name} {turn}", image,
                          [(f.box, back) for f in truth if f.score >= threshold]))
    rng = np.random.default_rng(args.seed)
    names = sorted(uprights)
    for k in range(args.collages):
        count = int(rng.integers(2, 4))
        picked = rng.choice(len(names), size=count, replace=False)
        turns = rng.choice(TURNS, size=count)
        while len(set(turns.tolist())) < 2:
            turns = rng.choice(TURNS, size=count)
        pieces = []
        for index, turn in zip(picked, turns):
            turned = _turn(uprights[names[index]], int(turn))
            scale = 480 / turned.shape[0]
            pieces.append(cv2.resize(turned, (max(1, round(turned.shape[1] * scale)), 480),
                                     interpolation=cv2.INTER_AREA))
        collage = np.ascontiguousarray(np.concatenate(pieces, axis=1))
        # The truth: each piece alone on a grey picture of the collage's size (the detector
        # downscales it alike, so a face too small to find at that scale is not counted),
        # detected at its right turn.
        truth, x = [], 0
        for piece, turn in zip(pieces, turns):
            alone = np.full_like(collage, 127)
            alone[:, x:x + piece.shape[1]] = piece
            back = (360 - int(turn)) % 360
            truth += [(f.box, back) for f in detector.detect_batch([alone], rotate=str(back))[0]
                      if f.score >= threshold and x <= (f.box[0] + f.box[2]) / 2
                      < x + piece.shape[1]]
            x += piece.shape[1]
        cases.append((f"collage {k}: " + " ".join(
            f"{names[i]}@{int(t)}" for i, t in zip(picked, turns)), collage, truth))

    def readings(image):
        """Per turn, the faces found there in the image's coordinates (as the search has
        them: the upright pass whole, the turns through the edge pass only)."""
        out = {0: detector._detect_upright([image])[0]}
        for turn in TURNS[1:]:
            turned = _turn(image, turn)
            faces = detector._second_pass(
                turned, detector._detect_upright([turned], edges=False)[0], refine=False)
            out[turn] = [_unrotate(f, turn, image.shape) for f in faces
                         if min(f.width, f.height) >= detector.min_face_size]
        return out

    def previous(found, shape):
        """The search as it was: one turn for the whole image (edge odds included)."""
        def best(faces):
            return max((f.score for f in faces), default=0.0)
        upright = found[0]
        if best(upright) >= detect.AUTO_SEARCH_BELOW:
            return upright
        top = max(upright, key=lambda f: f.score, default=None)
        cut = top if top is not None and top.score >= detect.EDGE_SEARCH_BELOW and \
            detect.at_edge(top, shape) else None
        won = upright
        for turn in TURNS[1:]:
            faces = found[turn]
            if best(faces) <= best(won):
                continue
            face = max(faces, key=lambda f: f.score)
            if cut is not None and detect.at_edge(face, shape) and \
                    (1 - face.score) * detect.EDGE_TURN_ODDS > 1 - cut.score:
                continue
            won = faces
        return won

    defaults = detect.TURNED_ASPECT, detect.TURNED_ROLL

    def run(rule, image):
        detect.TURNED_ASPECT, detect.TURNED_ROLL = defaults
        if rule == "merge only":
            detect.TURNED_ASPECT, detect.TURNED_ROLL = 0.0, 360.0
        faces = detector.detect_batch([image], rotate="all" if rule == "all" else "auto")[0]
        detect.TURNED_ASPECT, detect.TURNED_ROLL = defaults
        return faces

    rules = ("previous", "merge only", "default", "all")
    tally = {(rule, group): [0, 0, 0, 0] for rule in rules for group in ("photos", "collages")}
    for name, image, truth in cases:
        group = "collages" if name.startswith("collage") else "photos"
        found = readings(image)
        for rule in rules:
            faces = previous(found, image.shape) if rule == "previous" else run(rule, image)
            cell = tally[(rule, group)]
            boxes = [f.box for f in faces]
            for box, right in truth:
                over = [faces[k] for k in np.flatnonzero(_overlap(box, boxes) > 0.5)]
                if not over:
                    cell[2] += 1
                    what = "missed"
                elif any(f.rotation == right for f in over):
                    cell[0] += 1
                    continue
                else:
                    cell[1] += 1
                    what = f"found at {over[0].rotation} instead of {right}"
                if args.list:
                    print(f"  {rule}: {name}: face at {box.astype(int).tolist()} {what}")
            truth_boxes = [box for box, _ in truth]
            for f in faces:
                if not (_overlap(f.box, truth_boxes) > 0.5).any():
                    cell[3] += 1
                    if args.list:
                        print(f"  {rule}: {name}: no face at {f.box.astype(int).tolist()} "
                              f"(turn {f.rotation}, score {f.score:.3f})")

    counts = {g: sum(len(t) for n, _, t in cases if n.startswith("collage") == (g == "collages"))
              for g in ("photos", "collages")}
    print(f"{len(paths)} photos x 4 turns ({counts['photos']} faces), {args.collages} collages "
          f"({counts['collages']} faces)")
    print(f"{'rule':>11} | {'group':>8} | {'right turn':>10} | {'other turn':>10} | "
          f"{'missed':>6} | {'no face':>7}")
    for rule in rules:
        for group in ("photos", "collages"):
            if group == "collages" and not args.collages:
                continue
            right, other, missed, extra = tally[(rule, group)]
            print(f"{rule:>11} | {group:>8} | {right:>10} | {other:>10} | {missed:>6} | "
                  f"{extra:>7}")
    if not args.time:
        return
    print(f"\nthe {len(uprights)} photos as they are, one thread, least of {args.time} runs")
    print(f"{'rule':>11} | {'CPU ms / photo':>14} | {'searched':>8}")
    merge, searched = detector._merge_turns, []

    def counted(*merged, **options):  # the detector merges the turns of a searched image
        searched.append(1)
        return merge(*merged, **options)

    for rule in rules[1:]:
        total, searched[:] = 0.0, []
        for image in uprights.values():
            times = []
            for _ in range(args.time):
                start = time.process_time()
                run(rule, image)
                times.append(time.process_time() - start)
            total += min(times)
            detector._merge_turns = counted  # once more, untimed, to count the search
            run(rule, image)
            del detector._merge_turns
        print(f"{rule:>11} | {1000 * total / len(uprights):>14.1f} | "
              f"{len(searched):>4} / {len(uprights)}")


if __name__ == "__main__":
    main()
