"""Where does the generator stop swapping turned faces well? (the profile fade's range)

    python benchmarks/profile_fade.py                          # 30 LFW faces per bin, demo model
    python benchmarks/profile_fade.py --per-bin 10 --figure /tmp/fade   # and pictures per bin
    python benchmarks/profile_fade.py --model DIR

Every LFW photo (``../shared/data/lfw/images``) is searched for its largest face of at least
60 px; faces are binned by the yaw proxy ``faces/masks.yaw_ratio`` (0: the nose tip half way
between the eyes, 1: at or past the far eye) and ``--per-bin`` of each bin (seed 0) are swapped
with the default compositing **with the profile fade off** (``astronaut.jpg`` as the source, the
face cropped out with its surroundings so that only it is swapped). Per bin, medians of: the
target's dlib yaw (degrees; dlib's 68 points slide along the outline of a turned face, so it
underestimates large turns), the dlib pose error of the swap (degrees), the dlib identity gain
(distance target-source minus swap-source), the yaw proxy measured again on the swap (a
generator that paints a frontal face pulls it towards 0), and the detector's score on the swap.
``--figure DIR`` writes ``bin<k>.png``: target | swap pairs of the first faces of each bin,
the thing to look at (what breaks first is what the eye sees). The fade's range
(``faces/masks.PROFILE_FADE``) is printed for reference; docs/swap.md has the measured table.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import quality as Q  # noqa: E402  (dlib helpers, the source photo, finish_image)

BINS = (0.0, 0.2, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
MIN_FACE = 60  # px: smaller LFW faces are mostly background people


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--per-bin", type=int, default=30)
    parser.add_argument("--figure", type=Path, default=None, help="folder for bin<k>.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.evaluate.pose import euler_angles_deg, head_rotation, pose_error_deg
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.masks import PROFILE_FADE, yaw_ratio
    from facedancer_torch.io.images import read_image, write_image
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    lfw = Q.SHARED / "data/lfw/images"
    if not lfw.is_dir():
        sys.exit(f"error: {lfw}: LFW not found (set FACEDANCER_SHARED)")
    swapper = Swapper(args.model)
    plan = swapper.plan([Q.SOURCE])
    source = read_image(Q.SOURCE)
    source_descriptor = Q.dlib_descriptor_at(source, swapper.detect(source)[0].landmarks)
    dlib = get_dlib_face()

    def largest(image):
        faces = [f for f in swapper.detect(image) if min(f.width, f.height) >= MIN_FACE]
        return max(faces, key=lambda f: float(np.prod(f.box[2:] - f.box[:2])), default=None)

    by_bin: dict[int, list[Path]] = {}
    files = sorted(lfw.glob("*/*.jpg"))
    print(f"searching {len(files)} LFW photos for faces ...", file=sys.stderr)
    for path in files:
        face = largest(read_image(path))
        if face is not None:
            b = int(np.digitize(yaw_ratio(face.landmarks), BINS)) - 1
            by_bin.setdefault(b, []).append(path)
    rng = random.Random(args.seed)
    options = SwapOptions(profile_fade=False, faces="largest")
    if args.figure:
        args.figure.mkdir(parents=True, exist_ok=True)
    print(f"profile fade today: from {PROFILE_FADE[0]} to {PROFILE_FADE[1]} of the yaw proxy\n")
    print("| yaw proxy | faces in LFW | swapped | dlib yaw (deg) | pose error (deg) "
          "| identity gain "
          "| proxy after the swap | detector score after |")
    print("|---|---|---|---|---|---|---|---|")
    for b in sorted(by_bin):
        paths = list(by_bin[b])
        rng.shuffle(paths)
        rows, tiles = [], []
        for path in paths[:args.per_bin]:
            image = read_image(path)
            face = largest(image)
            x1, y1, x2, y2 = face.box
            w, h = x2 - x1, y2 - y1  # the face with its surroundings, alone
            top, bottom = int(max(0, y1 - h)), int(min(image.shape[0], y2 + h))
            left, right = int(max(0, x1 - w)), int(min(image.shape[1], x2 + w))
            target = np.ascontiguousarray(image[top:bottom, left:right])
            face = largest(target)
            if face is None:
                continue
            out = Q.finish_image(swapper.swap_image(target, plan, options), options)
            crop, matrix = align_face(target, face.landmarks, 256)
            before68 = Q.transform_points(dlib.landmarks(crop, Q._template_box()),
                                          Q.invert_affine(matrix))
            crop, matrix = align_face(out, face.landmarks, 256)
            after68 = Q.transform_points(dlib.landmarks(crop, Q._template_box()),
                                         Q.invert_affine(matrix))
            again = largest(out)
            rows.append((abs(euler_angles_deg(head_rotation(before68, target.shape[:2]))[0]),
                         pose_error_deg(before68, after68, target.shape[:2]),
                         float(np.linalg.norm(Q.dlib_descriptor_at(target, face.landmarks)
                                              - source_descriptor)
                               - np.linalg.norm(Q.dlib_descriptor_at(out, face.landmarks)
                                                - source_descriptor)),
                         yaw_ratio(again.landmarks) if again is not None else float("nan"),
                         float(again.score) if again is not None else 0.0))
            if args.figure and len(tiles) < 8:
                pair = np.concatenate([target, out], 1)
                scale = 200 / pair.shape[0]
                tiles.append(cv2.resize(pair, (round(pair.shape[1] * scale), 200),
                                        interpolation=cv2.INTER_AREA))
        if not rows:
            continue
        m = np.nanmedian(np.array(rows), axis=0)
        print(f"| {BINS[b]:.2f}-{min(BINS[b + 1], 1.0):.2f} | {len(by_bin[b])} | {len(rows)} | "
              f"{m[0]:.1f} | {m[1]:.1f} | {m[2]:.3f} | {m[3]:.2f} | {m[4]:.3f} |", flush=True)
        if tiles:
            rows_of_4 = [np.concatenate(tiles[k:k + 4], 1) for k in range(0, len(tiles), 4)]
            width = min(r.shape[1] for r in rows_of_4)
            write_image(args.figure / f"bin{b}.png",
                        np.concatenate([r[:, :width] for r in rows_of_4], 0))


if __name__ == "__main__":
    main()
