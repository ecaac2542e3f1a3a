"""Does the swapped skin keep the target's colour? The skin's a*b*, output against target.

    python benchmarks/skin_match.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,color-zone-0] [--figure OUT.jpg]
        [--figure-by distance|shade]

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
- the **colour for its lightness** (``shade``): the mean a*b* distance of the output's skin
  from the colour the target's own skin has at the output's lightness there (faces/color.py
  ``skin_curve``, on the target's skin, blurred alike; the targets' own distance from it is
  printed below the table). Skin the generator shades otherwise than the target is lit keeps
  the target's colour *at its place* (near in the first measure) but may be the wrong colour
  for its lightness: a darker nose tip with the lighter skin's chroma reads grey (session 42,
  swap/compose.py ``SKIN_SHADING``); and where the output's skin is ``DARKER`` L* darker than
  the target's (faces where that is at least ``DARKER_SHARE`` of the skin), how much less
  chroma it has than the target's skin at its lightness (C*, positive: greyer), with the faces
  over ``VISIBLE``;
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

from facedancer_torch.faces.color import on_skin_curve, skin_curve, to_lab  # noqa: E402
from facedancer_torch.faces.masks import skin_zone  # noqa: E402

SMOOTH = 4.0     # px of the 256 px crop: the skin's colour, not its texture
VISIBLE = 3.0    # C* greyer than the target's from which skin looks grey beside it
DARKER = 5.0     # L* darker than the target's: skin the generator shades darker
DARKER_SHARE = 0.02  # of the skin, from which a face counts in that column


def smoothed_lab(crop: np.ndarray) -> np.ndarray:
    """``crop``'s L*a*b*, blurred by :data:`SMOOTH` px: its colour, not its texture."""
    return cv2.GaussianBlur(to_lab(crop), (0, 0), SMOOTH)


def smoothed_ab(crop: np.ndarray) -> np.ndarray:
    """``crop``'s a*b*, blurred by :data:`SMOOTH` px."""
    return smoothed_lab(crop)[..., 1:]


def shade_distance(lab: np.ndarray, curve, zone: np.ndarray) -> float:
    """The mean a*b* distance of ``lab``'s skin (smoothed) from the target skin's colour at
    the same lightness (``curve``, faces/color.py ``skin_curve``): skin that looks like the
    target's skin under the target's light, however the generator shaded it, is near 0."""
    expected = on_skin_curve(curve, lab[..., 0])
    return float(np.linalg.norm(lab[..., 1:] - expected, axis=-1)[zone].mean())


def darker_shortfall(lab: np.ndarray, curve, target_light: np.ndarray,
                     zone: np.ndarray) -> float | None:
    """How much less chroma than the target's skin has at their lightness the output's skin
    pixels have where they are :data:`DARKER` L* darker than the target's (C*, mean; positive:
    greyer), or None where that is under :data:`DARKER_SHARE` of the skin."""
    darker = zone & (lab[..., 0] < target_light - DARKER)
    if darker.sum() < DARKER_SHARE * zone.sum():
        return None
    expected = np.linalg.norm(on_skin_curve(curve, lab[..., 0]), axis=-1)
    return float((expected - np.linalg.norm(lab[..., 1:], axis=-1))[darker].mean())


def skin_colour(crop: np.ndarray, target_ab: np.ndarray, zone: np.ndarray,
                curve=None, target_light: np.ndarray | None = None) -> dict:
    """Colour distance (mean, 95th percentile), chroma difference and grey share of
    ``crop``'s skin against the target's :func:`smoothed_ab` ``target_ab``; with the target
    skin's ``curve``, also :func:`shade_distance` (``shade``), and with the target's smoothed
    L* ``target_light`` :func:`darker_shortfall` (``short``)."""
    lab = smoothed_lab(crop)
    ab = lab[..., 1:]
    distance = np.linalg.norm(ab - target_ab, axis=-1)[zone]
    chroma = (np.linalg.norm(ab, axis=-1) - np.linalg.norm(target_ab, axis=-1))[zone]
    found = {"distance": float(distance.mean()), "p95": float(np.percentile(distance, 95)),
             "chroma": float(chroma.mean()), "grey": float((chroma < -VISIBLE).mean())}
    if curve is not None:
        found["shade"] = shade_distance(lab, curve, zone)
        if target_light is not None:
            found["short"] = darker_shortfall(lab, curve, target_light, zone)
    return found


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
                     "the faces whose skin colour distance (or --figure-by shade: distance "
                     "from the colour for its lightness) falls most from the last config to "
                     "the first: target, then each config (rows)", ("distance", "shade"))
    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows: dict[str, list[dict]] = {config: [] for config in configs}
    figure_rows: list = []
    own: list[float] = []  # the target skin's own distance from its curve
    for name, target, points, outputs in compared_faces(args, setup, configs):
        zone = skin_zone(points, target.shape[0])
        if int(zone.sum()) < 500:
            continue
        target_lab = smoothed_lab(target)
        target_ab = target_lab[..., 1:]
        curve = skin_curve(target_lab, zone.astype(np.float32))
        if curve is None:  # skin of a single lightness: no curve to measure against
            continue
        own.append(shade_distance(target_lab, curve, zone))
        for config, (crop, gain) in zip(configs, outputs):
            rows[config].append({"name": name, "gain": gain,
                                 **skin_colour(crop, target_ab, zone, curve,
                                               target_lab[..., 0])})
        if args.figure is not None:
            measure = args.figure_by
            fallen = rows[configs[-1]][-1][measure] - rows[configs[0]][-1][measure]
            figure_rows.append((fallen, name, target, [crop for crop, _ in outputs], points))
    print(source_line(args, setup))

    def cells(found):
        return [f"{np.mean([r['distance'] for r in found]):.2f}",
                f"{np.mean([r['p95'] for r in found]):.2f}",
                f"{np.mean([r['chroma'] for r in found]):+.2f}",
                f"{100 * np.mean([r['grey'] for r in found]):.1f} %",
                f"{np.mean([r['shade'] for r in found]):.2f}",
                shortfall_cell([r["short"] for r in found])]

    def shortfall_cell(values):
        values = [v for v in values if v is not None]
        if not values:
            return "-"
        return (f"{np.mean(values):+.2f} ({len(values)} faces, "
                f"{sum(v > VISIBLE for v in values)} over {VISIBLE:g})")

    table_lines(rows, configs, "skin colour distance, a*b* (mean) | 95th percentile (mean) "
                f"| chroma to the target, C* (mean) | skin over {VISIBLE:g} C* greyer "
                "| skin colour for its lightness, a*b* from the target's (mean) "
                f"| skin shaded darker: C* short of its lightness's (faces with {DARKER:g} L* "
                f"darker on {100 * DARKER_SHARE:g} % of the skin)", cells)
    print(f"(the targets' own skin lies {np.mean(own):.2f} a*b* from their colour for its "
          "lightness)")
    comparison_lines(rows, configs, figure_rows, face_box, args.figure,
                     "faces whose skin colour distance falls most")


if __name__ == "__main__":
    main()
