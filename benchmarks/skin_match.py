"""Does the swapped skin keep the target's colour? The skin's a*b*, output against target.

    python benchmarks/skin_match.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,color-zone-0] [--figure OUT.jpg]

The local colour correction (faces/color.py ``fit_colour``) gives the swap the target's
chroma; its colour-by-lightness filter takes, for each pixel, that of the target pixels of
about its lightness nearby. On skin, where the generator's shading differs from the
target's by a few L* everywhere, that moved the target's colours about: a shaded cheek took
the grey of her brows and lashes, and faces came out greyer than the target (session 37;
the filter now acts around the eyes and brows and on features the swap paints darker,
swap/compose.py ``LOCAL_COLOR_SIMILAR_ZONE``). This measures, per face (the largest of each
picture), on frames of the shared talking clips (every ``--every``-th) and on shared photos
(``--photos``; ``all``: every one), in the **skin** (the face's outline from the target's 68
points, less its eyes grown by 0.3 eye widths, brows, mouth and nostrils, grown by 2 px):

- the **colour distance**: the mean a*b* distance of output and target, both blurred by
  :data:`SMOOTH` px (colour, not texture: the target's pores and the generator's smoothness
  are the detail passes' business), and its 95th percentile;
- the **chroma** difference (C*, output minus target, blurred alike), and the share of the
  skin over ``VISIBLE`` C* greyer than the target's;
- dlib **identity gain** per face (target-source distance minus output-source distance).

Crops are taken at 2x the generator's size. Configs are those of benchmarks/quality.py
(names or ``+``-joined knobs), all swapped from one generator output per picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from eye_pairs import (comparison_lines, compared_faces, face_args, source_line,  # noqa: E402
                       table_lines)
from brows import swap_setup  # noqa: E402

SMOOTH = 4.0     # px of the 256 px crop: the skin's colour, not its texture
VISIBLE = 3.0    # C* greyer than the target's from which skin looks grey beside it


def skin_zone(points: np.ndarray, size: int) -> np.ndarray:
    """The skin of a face as a bool mask: inside the 68-point outline, outside the eyes
    (grown by 0.3 eye widths), the brows, the mouth (grown by 0.15 of its width) and the
    nostrils (grown by 0.2 of the nose's width), all four grown by 2 px."""
    from facedancer_torch.faces import masks

    features = masks.eye_zone(points, size, grow=0.3) | (masks.brow_zone(points, size) > 0.3) \
        | masks.mouth_zone(points, size, 0.15) | masks.nostril_zone(points, size, grow=0.2)[0]
    features = cv2.dilate(features.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return (masks.hull_mask(points, size) > 0.5) & ~features


def smoothed_ab(crop: np.ndarray) -> np.ndarray:
    """``crop``'s a*b*, blurred by :data:`SMOOTH` px: its colour, not its texture."""
    from facedancer_torch.faces.color import to_lab

    return cv2.GaussianBlur(to_lab(crop)[..., 1:], (0, 0), SMOOTH)


def skin_colour(crop: np.ndarray, target_ab: np.ndarray, zone: np.ndarray) -> dict:
    """Colour distance (mean, 95th percentile), chroma difference and grey share of
    ``crop``'s skin against the target's :func:`smoothed_ab` ``target_ab``."""
    ab = smoothed_ab(crop)
    distance = np.linalg.norm(ab - target_ab, axis=-1)[zone]
    chroma = (np.linalg.norm(ab, axis=-1) - np.linalg.norm(target_ab, axis=-1))[zone]
    return {"distance": float(distance.mean()), "p95": float(np.percentile(distance, 95)),
            "chroma": float(chroma.mean()), "grey": float((chroma < -VISIBLE).mean())}


def face_box(points: np.ndarray, target: np.ndarray) -> tuple[slice, slice]:
    """The face's outline and brows: the figure's cut."""
    face = points[:27]
    top = int(max(face[:, 1].min(), 0))
    bottom = int(min(face[:, 1].max(), target.shape[0]))
    left = int(max(face[:, 0].min(), 0))
    right = int(min(face[:, 0].max(), target.shape[1]))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,color-zone-0",
                     "the faces whose skin colour distance falls most from the last config to "
                     "the first: target, then each config (rows)")
    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows: dict[str, list[dict]] = {config: [] for config in configs}
    figure_rows: list = []
    for name, target, points, outputs in compared_faces(args, setup, configs):
        zone = skin_zone(points, target.shape[0])
        if int(zone.sum()) < 500:
            continue
        target_ab = smoothed_ab(target)
        for config, (crop, gain) in zip(configs, outputs):
            rows[config].append({"name": name, "gain": gain,
                                 **skin_colour(crop, target_ab, zone)})
        if args.figure is not None:
            fallen = rows[configs[-1]][-1]["distance"] - rows[configs[0]][-1]["distance"]
            figure_rows.append((fallen, name, target, [crop for crop, _ in outputs], points))
    print(source_line(args, setup))

    def cells(found):
        return [f"{np.mean([r['distance'] for r in found]):.2f}",
                f"{np.mean([r['p95'] for r in found]):.2f}",
                f"{np.mean([r['chroma'] for r in found]):+.2f}",
                f"{100 * np.mean([r['grey'] for r in found]):.1f} %"]

    table_lines(rows, configs, "skin colour distance, a*b* (mean) | 95th percentile (mean) "
                f"| chroma to the target, C* (mean) | skin over {VISIBLE:g} C* greyer", cells)
    comparison_lines(rows, configs, figure_rows, face_box, args.figure,
                     "faces whose skin colour distance falls most")


if __name__ == "__main__":
    main()
