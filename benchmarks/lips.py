"""Do swapped lips keep their colour, and keep it to themselves? Output against target.

    python benchmarks/lips.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,color-lips-0] [--figure OUT.jpg]

The demo generator keeps a mouth's colour well (with the reference's compositing the lips'
chroma is about 1 C* below the target's), but the colour correction's chroma-by-lightness
filter (faces/color.py ``similar_lightness_chroma``), computed on a half-size copy where the
narrow lips mix with the skin, took 3.5-8 C* of red from them: lipstick came out a dull mauve,
bare lips grey, teeth beige. The lips now keep the plain field (swap/compose.py
``LOCAL_COLOR_KEEP_LIPS``). This measures, per face (the largest of each picture), on frames
of the shared talking clips (every ``--every``-th) and on shared photos (``--photos``;
``all``: every one):

- the **lips' chroma** (C* = the a*b* magnitude, mean over the outer lip line less the inner
  one, dlib's points on the target's crop, eroded by a pixel), output minus target, and its
  **red** (a*) alike; a face losing over ``VISIBLE`` C* shows dull lips;
- the **change around** the mouth: the mean a*b* distance from the last config's output (the
  baseline, ``color-lips-0`` by default) in the skin around the lips (the mouth's box grown
  by half a mouth width, outside the outer lip line grown by 0.15 of it): the lips' colour
  must not spread onto the skin;
- the **red above the lip**: the mean a* of the skin between the nose and the upper lip
  (faces/masks.py ``upper_lip_band``), output minus target, and the faces redder there by
  over ``VISIBLE``: a moustache the generator paints there had taken the red of the target's lips and nostrils
  (``LOCAL_COLOR_APART``, session 37: ``--configs default,color-apart-0``);
- the **lips' lightness** (L*, mean over the same zone), output minus target, and the faces
  lighter by over ``VISIBLE``: the demo generator paints most lips at L* 55-58 whatever the
  target's, so a dark lipstick came out pale (swap/compose.py ``LIP_DARKNESS``, session 43:
  ``--configs default,lips-0``); and the **lightness change around** the mouth (mean |L*| from
  the baseline, the same skin as the change around): the lips' darkness must stay on the lips;
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
from brows import swap_setup  # noqa: E402
from eye_pairs import (comparison_lines, compared_faces, face_args, source_line,  # noqa: E402
                       table_lines)

VISIBLE = 3.0    # C* lost from which lips look duller than the target's (looked at, session 36)


def lip_zone(points: np.ndarray, size: int) -> np.ndarray | None:
    """The lips (faces/masks.py ``lip_ring``, the outer lip line less the inner one, eroded by
    a pixel) as a bool mask, None for lips too thin to measure (a closed mouth of a small
    face)."""
    from facedancer_torch.faces.masks import lip_ring

    ring = lip_ring(points, size)
    if ring is None:
        return None
    zone = cv2.erode(ring[0].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return zone if int(zone.sum()) >= 50 else None


def lip_lightness(crop: np.ndarray, zone: np.ndarray) -> float:
    """``crop``'s lips' mean L* over ``zone``."""
    from facedancer_torch.faces.color import to_lab

    return float(to_lab(crop)[..., 0][zone].mean())


def lip_colour(crop: np.ndarray, zone: np.ndarray) -> tuple[float, float]:
    """``(C*, a*)`` of ``crop``'s lips: means over ``zone``."""
    from facedancer_torch.faces.color import to_lab

    lab = to_lab(crop)[zone]
    return float(np.hypot(lab[:, 1], lab[:, 2]).mean()), float(lab[:, 1].mean())


def mouth_box(points: np.ndarray, target: np.ndarray) -> tuple[slice, slice]:
    """The mouth and half its width around it (below the nose's tip): the figure's cut."""
    mouth = points[48:60]
    width = mouth[:, 0].max() - mouth[:, 0].min()
    top = int(max(min(points[33, 1], mouth[:, 1].min() - 0.5 * width), 0))
    bottom = int(min(mouth[:, 1].max() + 0.5 * width, target.shape[0]))
    left = int(max(mouth[:, 0].min() - 0.5 * width, 0))
    right = int(min(mouth[:, 0].max() + 0.5 * width, target.shape[1]))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,color-lips-0",
                     "the mouths whose lips' chroma loss, paleness or red above the lip falls most "
                     "from the last config to the first: target, then each config (rows)")
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab

    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows: dict[str, list[dict]] = {config: [] for config in configs}
    figure_rows: list = []
    for name, target, points, outputs in compared_faces(args, setup, configs):
        zone = lip_zone(points, target.shape[0])
        if zone is None:
            continue
        rows_cut, columns_cut = mouth_box(points, target)
        around = np.zeros(zone.shape, bool)
        around[rows_cut, columns_cut] = True
        around &= ~masks.mouth_zone(points, target.shape[0], 0.15)
        baseline = to_lab(outputs[-1][0])
        chroma_t, red_t = lip_colour(target, zone)
        light_t = lip_lightness(target, zone)
        above = masks.upper_lip_band(points, target.shape[0])
        red_above_t = float(to_lab(target)[..., 1][above].mean())
        for config, (crop, gain) in zip(configs, outputs):
            chroma, red = lip_colour(crop, zone)
            lab = to_lab(crop)
            shift = np.linalg.norm(lab[..., 1:][around] - baseline[..., 1:][around], axis=-1)
            rows[config].append({"name": name, "chroma": chroma - chroma_t, "red": red - red_t,
                                 "around": float(shift.mean()),
                                 "light": lip_lightness(crop, zone) - light_t,
                                 "light_around": float(np.abs(lab[..., 0][around]
                                                              - baseline[..., 0][around]).mean()),
                                 "red_above": float(lab[..., 1][above].mean()) - red_above_t,
                                 "gain": gain})
        if args.figure is not None:
            first, last = rows[configs[0]][-1], rows[configs[-1]][-1]
            # Lips given back their chroma or their darkness, or skin above the lip given back
            # its own red.
            fallen = max(first["chroma"] - last["chroma"], last["light"] - first["light"],
                         last["red_above"] - first["red_above"])
            figure_rows.append((fallen, name, target, [crop for crop, _ in outputs], points))
    print(source_line(args, setup))

    def cells(found):
        chroma = np.array([r["chroma"] for r in found])
        return [f"{np.median(chroma):+.1f}", f"{chroma.mean():+.1f}",
                f"{np.mean([r['red'] for r in found]):+.1f}", f"{int((chroma < -VISIBLE).sum())}",
                f"{np.mean([r['around'] for r in found]):.2f}",
                f"{np.mean([r['red_above'] for r in found]):+.1f}",
                f"{int(sum(r['red_above'] > VISIBLE for r in found))}",
                f"{np.median([r['light'] for r in found]):+.1f}",
                f"{int(sum(r['light'] > VISIBLE for r in found))}",
                f"{np.mean([r['light_around'] for r in found]):.2f}"]

    table_lines(rows, configs, "lips' chroma to the target, C* (median) | mean | red (a*, mean) "
                f"| faces losing over {VISIBLE:g} C* | change around the mouth, a*b* (mean) "
                f"| red above the lip, a* to the target (mean) | faces redder there by over "
                f"{VISIBLE:g} | lips' lightness to the target, L* (median) | faces lighter "
                f"by over {VISIBLE:g} L* | lightness change around the mouth, L* (mean)", cells)
    comparison_lines(rows, configs, figure_rows, mouth_box, args.figure,
                     "mouths whose chroma loss, paleness or red above the lip falls most")


if __name__ == "__main__":
    main()
