"""Does a swapped face get dark rings under the eyes that the target does not have?

    python benchmarks/under_eyes.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,under-eye-0] [--figure OUT.jpg]

With a source whose skin is darker under the eyes than on the cheeks (common on darker skin,
and the shading of deep-set eyes: Eileen Coparropa, Denzel Washington, Abdoulaye Wade in LFW)
the demo generator paints dark rings there, and the colour correction, which moves the face to
the target's skin tone, keeps them as deep: on a lighter target they read as bruised or tired
eyes. The under-eye pass (swap/compose.py ``UNDER_EYE``) lifts them to the target's level.
This measures, per face (the largest of each picture), on frames of the shared talking clips
(every ``--every``-th) and on shared photos (``--photos``; ``all``: every one):

- per eye, the **ring depth**: the median L* of a strip of cheek (``CHEEK`` eye widths below
  the lower lid) minus that of the skin just under the eye (``RING`` eye widths below it), both
  between the eye's corners, on the target's 68 points; the face's depth is the two eyes' mean;
- the **extra depth**: the output's ring depth minus the target's (L*; positive: darker
  rings than the target has), and the faces over ``VISIBLE`` L*, where rings show;
- dlib **identity gain** per face (target-source distance minus output-source distance).

The measure's strips are its own (not the pass's zone and cheek strip). Crops are taken at 2x
the generator's size. Configs are those of benchmarks/quality.py (names or ``+``-joined
knobs), all swapped from one generator output per picture.
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brows import swap_setup  # noqa: E402
from eye_pairs import (comparison_lines, config_rows, eyes_box, face_args,  # noqa: E402
                       source_line, table_lines)

RING = (0.15, 0.6)    # eye widths below the lower lid: where the rings are darkest
CHEEK = (1.1, 1.4)    # ... the cheek they are compared with
VISIBLE = 5.0         # L* of extra depth from which rings show on a light face (session 50)


def ring_depth(crop: np.ndarray, points: np.ndarray) -> float | None:
    """The mean over both eyes of cheek L* minus under-eye L* (medians of their strips), or
    None where a strip falls outside the crop."""
    from facedancer_torch.faces.color import to_lab

    lightness = to_lab(crop)[..., 0]
    size = crop.shape[0]
    depths = []
    for outer, inner, low in ((36, 39, (40, 41)), (42, 45, (46, 47))):
        width = float(np.linalg.norm(points[inner] - points[outer]))
        x0, x1 = sorted((int(round(points[outer][0])), int(round(points[inner][0]))))
        lid = float(max(points[low[0]][1], points[low[1]][1]))
        strips = []
        for near, far in (RING, CHEEK):
            top, bottom = int(round(lid + near * width)), int(round(lid + far * width))
            if x0 < 0 or x1 > size or top < 0 or bottom > size or bottom <= top or x1 <= x0:
                return None
            strips.append(float(np.median(lightness[top:bottom, x0:x1])))
        depths.append(strips[1] - strips[0])
    return float(np.mean(depths))


def measure(target: np.ndarray, points: np.ndarray, crops: list[np.ndarray]
            ) -> list[dict] | None:
    """Per crop, its extra ring depth over the target's (None: the face is left out)."""
    theirs = ring_depth(target, points)
    if theirs is None:
        return None
    out = []
    for crop in crops:
        ours = ring_depth(crop, points)
        if ours is None:
            return None
        out.append({"extra": ours - theirs, "target": theirs})
    return out


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,under-eye-0",
                     "the eyes of the faces whose extra ring depth falls most from the last "
                     "config to the first: target, then each config (rows)",
                     photos="all", clips="")
    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows, figure_rows = config_rows(args, setup, configs, measure, "extra")
    print(source_line(args, setup))

    def cells(found):
        extra = np.array([r["extra"] for r in found])
        return [f"{np.mean([r['target'] for r in found]):.2f}", f"{extra.mean():+.2f}",
                f"{np.median(extra):+.2f}", f"{int((extra > VISIBLE).sum())}",
                f"{extra.max():+.2f}"]

    table_lines(rows, configs, "target's ring depth, L* (mean) | extra depth (mean) | "
                f"(median) | faces over {VISIBLE:g} | (most)", cells)
    comparison_lines(rows, configs, figure_rows,
                     partial(eyes_box, side=0.15, above=0.15, below=0.45), args.figure,
                     "faces whose extra ring depth falls most")


if __name__ == "__main__":
    main()
