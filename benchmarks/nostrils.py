"""Does a swapped nose keep its nostrils? The darkness under the nose, output against target.

    python benchmarks/nostrils.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,nostrils-0] [--figure OUT.jpg]

With some source photos the demo generator paints the nose without its nostrils (a pale,
plastic nose), and the finest detail band then draws the target's nostril rims around the
pale holes. The nostril pass (faces/color.py ``nostril_darkness``) gives a nose that lost its
darkness the target's back. This measures, per face (the largest of each picture), on frames
of the shared talking clips (every ``--every``-th) and on shared photos (``--photos``;
``all``: every one):

- the **nostril gap**: the darkest tenth of the L* in the nostrils' zone (faces/masks.py
  ``nostril_zone``, dlib's points on the target's crop), output minus target; a face over
  ``VISIBLE`` L* shows a nose without dark nostrils;
- the **change around** the nose: the mean |L*| difference from the last config's output
  (the baseline, ``nostrils-0`` by default) in the nose's lower half and the upper lip
  outside the zone grown by 0.3 nose widths: skin the pass must leave alone;
- dlib **identity gain** per face (target-source distance minus output-source distance).

Crops are taken at 2x the generator's size. Configs are those of benchmarks/quality.py
(names or ``+``-joined knobs), all swapped from one generator output per picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brows import swap_setup  # noqa: E402
from eye_pairs import (comparison_lines, compared_faces, face_args, source_line,  # noqa: E402
                       table_lines)

VISIBLE = 8.0    # L* of gap from which a nose shows no dark nostrils (looked at in session 35)


def nostril_gap(target: np.ndarray, output: np.ndarray, points: np.ndarray) -> float | None:
    """The darkest tenth of the L* in the nostrils' zone, ``output`` minus ``target`` (crops
    of one size, ``points`` the target's 68 landmarks on them); None for a zone too small."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab

    zone, _ = masks.nostril_zone(points, target.shape[0])
    if int(zone.sum()) < 16:
        return None
    return float(np.percentile(to_lab(output)[..., 0][zone], 10) -
                 np.percentile(to_lab(target)[..., 0][zone], 10))


def nose_box(points: np.ndarray, target: np.ndarray) -> tuple[slice, slice]:
    """The nose's lower half and the upper lip, across the nose's wings and half a nose width
    more on each side: the figure's cut."""
    nose = points[31:36]
    width = nose[:, 0].max() - nose[:, 0].min()
    top = int(max(points[29, 1], 0))
    bottom = int(min(points[51, 1] + 0.1 * width, target.shape[0]))
    left = int(max(nose[:, 0].min() - 0.5 * width, 0))
    right = int(min(nose[:, 0].max() + 0.5 * width, target.shape[1]))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,nostrils-0",
                     "the noses whose gap falls most from the last config to the first: "
                     "target, then each config (rows)")
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab

    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows: dict[str, list[dict]] = {config: [] for config in configs}
    figure_rows: list = []
    for name, target, points, outputs in compared_faces(args, setup, configs):
        zone, _ = masks.nostril_zone(points, target.shape[0])
        # The skin around: the nose's lower half and the upper lip, outside the zone grown
        # by 0.3 nose widths (the pass acts in it grown by 0.1 and feathered).
        rows_cut, columns_cut = nose_box(points, target)
        around = np.zeros(zone.shape, bool)
        around[rows_cut, columns_cut] = True
        around &= masks.nostril_zone(points, target.shape[0], grow=0.3)[1] < 0.5
        baseline = to_lab(outputs[-1][0])[..., 0]
        gaps = [nostril_gap(target, crop, points) for crop, _ in outputs]
        if any(gap is None for gap in gaps):
            continue
        for config, gap, (crop, gain) in zip(configs, gaps, outputs):
            change = float(np.abs(to_lab(crop)[..., 0][around] - baseline[around]).mean())
            rows[config].append({"name": name, "gap": gap, "around": change, "gain": gain})
        if args.figure is not None:
            figure_rows.append((gaps[-1] - gaps[0], name, target,
                                [crop for crop, _ in outputs], points))
    print(source_line(args, setup))

    def cells(found):
        gaps = np.array([r["gap"] for r in found])
        return [f"{np.median(gaps):+.1f}", f"{gaps.mean():+.1f}", f"{int((gaps > VISIBLE).sum())}",
                f"{np.mean([r['around'] for r in found]):.2f}"]

    table_lines(rows, configs, "nostril gap to the target, L* (median) | mean | faces over "
                f"{VISIBLE:g} L* | change around the nose, L* (mean)", cells)
    comparison_lines(rows, configs, figure_rows, nose_box, args.figure,
                     "noses whose gap falls most")

if __name__ == "__main__":
    main()
