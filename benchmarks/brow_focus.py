"""Are a large face's swapped brows as sharp as the photo? Brow focus, output against target.

    python benchmarks/brow_focus.py [--source PHOTO] [--photos df_img1.jpg,...|all]
        [--clips talking_a.mp4,...] [--configs brow-focus-0,default] [--figure OUT.jpg]

On a face larger than the generator's crop the compositor keeps the photo's fine detail where
swap and target agree in structure; where the model puts its own brow over the target's skin
the brow is the model's upsampled 128 px band, a soft smudge between sharp skin and hair. The
brow focus pass (swap/brow_focus.py, session 48) sharpens the swap's brows' lightness there.
This measures, per face (the largest of each picture) of the shared photos (all by default;
``--clips`` adds frames of the talking clips), on crops at ``SCALE`` times the generator's
size (the detail of faces up to that size kept):

- **brows**: the variance of the Laplacian of the output's grey image where the swap paints
  its brows (swap/brow_focus.py ``brow_weight`` on the output, at least 0.5) over the
  target's where the photo has its brows (each brow's landmark line drawn
  ``LINE`` of its brow-to-eye distance thick, the eyes left out): 1 = brows as crisp as the
  photo's own;
- **skin**: the same over the bare skin (faces/masks.py ``skin_zone``) of both: how sharp the
  rest of the face came out, the level the brows should reach;
- dlib **identity gain** per face (target-source distance minus output-source distance).

Configs are those of benchmarks/quality.py (names or ``+``-joined knobs), all swapped from one
generator output per picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import brows  # noqa: E402
from eye_pairs import (comparison_lines, config_rows, face_args,  # noqa: E402
                       table_lines)
from quality import laplacian_variance  # noqa: E402

SCALE = 4   # crops at this many times the generator's size (brows.SCALE for this script)
LINE = 0.6  # the photo's brow line, brow-to-eye distances thick
MIN_PIXELS = 50  # of a crop: fewer brow pixels, the face is left out


def brow_zones(target: np.ndarray, output: np.ndarray, points: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray] | None:
    """``(photo's brows, output's brows)`` bool masks of the crop, or None without a brow."""
    from facedancer_torch.faces import masks
    from facedancer_torch.swap.brow_focus import brow_weight

    crop = target.shape[0]
    size = crop // SCALE
    small_points = (points + 0.5) / SCALE - 0.5
    weight = brow_weight(cv2.resize(output, (size, size), interpolation=cv2.INTER_AREA),
                         small_points)
    if weight is None:
        return None
    theirs = np.zeros((crop, crop), bool)
    eyes = masks.eye_zone(points, crop, grow=0.35)
    for brow in (0, 1):
        theirs |= (masks.one_brow_zone(points, brow, crop, LINE) > 0.5) & ~eyes
    ours = cv2.resize(weight, (crop, crop), interpolation=cv2.INTER_LINEAR) >= 0.5
    if min(int(theirs.sum()), int(ours.sum())) < MIN_PIXELS:
        return None
    return theirs, ours


def brow_box(points: np.ndarray, target: np.ndarray) -> tuple[slice, slice]:
    """The figure's cut: the image-left brow and eye, from above the brow to the eye's
    bottom, a little wider than both."""
    gap = float(np.linalg.norm(points[17:22].mean(0) - points[36:42].mean(0)))
    top = int(max(points[17:22, 1].min() - 0.8 * gap, 0))
    bottom = int(min(points[36:42, 1].max() + 0.2 * gap, target.shape[0]))
    left = int(max(points[17, 0] - 0.3 * gap, 0))
    right = int(min(points[21, 0] + 0.3 * gap, target.shape[1]))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    brows.SCALE = SCALE
    args = face_args(__doc__.splitlines()[0], "brow-focus-0,default",
                     "the faces whose brows sharpen most from the first config to the last: "
                     "target, then each config (rows)", clips="", photos="all")
    from facedancer_torch.faces import masks

    setup = brows.swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    size = setup[0].image_size

    def measure(target, points, crops):
        skin = masks.skin_zone(points, target.shape[0])
        if int(skin.sum()) < MIN_PIXELS:
            return None
        found = [brow_zones(target, crop, points) for crop in crops]
        if any(f is None for f in found):
            return None
        photo_skin = laplacian_variance(target, skin)
        changed = bool(np.any(crops[0] != crops[-1]))
        out = []
        for crop, (theirs, ours) in zip(crops, found, strict=True):
            photo_brows = laplacian_variance(target, theirs)
            out.append({"brows": laplacian_variance(crop, ours) / max(photo_brows, 1e-6),
                        "skin": laplacian_variance(crop, skin) / max(photo_skin, 1e-6),
                        "changed": changed})
        return out

    rows, figure_rows = config_rows(args, setup, configs, measure, "brows")
    print(f"\nsource {args.source.name}; clips {args.clips or '-'} every {args.every}th frame; "
          f"photos {args.photos}; crops at {SCALE}x the generator's {size} px; largest face\n")

    def cells(found):
        ratio = np.array([r["brows"] for r in found])
        skin = np.array([r["skin"] for r in found])
        return [f"{np.median(ratio):.3f}", f"{np.percentile(ratio, 25):.3f}",
                f"{np.median(skin):.3f}", f"{np.median(ratio / skin):.3f}"]

    table_lines(rows, configs, "brows, sharpness / photo's brows (median) | (25th pct) | "
                "skin, sharpness / photo's skin (median) | brows / skin (median)", cells)
    if len(configs) > 1:
        changed = sum(r["changed"] for r in rows[configs[-1]])
        print(f"\nfaces whose output differs between {configs[0]} and {configs[-1]}: "
              f"{changed} of {len(rows[configs[-1]])}")
    comparison_lines(rows, configs, figure_rows, brow_box, args.figure,
                     "faces whose brows sharpen most")


if __name__ == "__main__":
    main()
