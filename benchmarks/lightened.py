"""Does a shadow the swap paints lighter take a skin colour? Mauve pixels, output against target.

    python benchmarks/lightened.py [--source PHOTO] [--photos lfw/images/...,...|all]
        [--clips talking_a.mp4,...] [--configs default,color-lighter-0] [--figure OUT.jpg]

The demo generator paints some of a target's dark shadows lighter and keeps their colour: a
nostril's near-black (L* 6-10, a* 20, b* 10) lifted to L* 35 is a mauve patch beside the nose
(LFW's ``Juan_Antonio_Samaranch_0001.jpg`` with every source tried), a dark moustache under a
lighter upper lip a lavender-grey band. The plain local colour field keeps that chroma (the
target has it there); where the swap is lighter than the target the colour now comes by
lightness, from the skin of that lightness nearby (swap/compose.py
``LOCAL_COLOR_SIMILAR_LIGHTER``, session 47). This measures, per face (the largest of each
picture) of 100 random LFW photos (seed 48, the first photo of each person; ``--photos`` for
others, ``all`` for the shared photos):

- **mauve**: the share of the face (the 68-point outline less the eyes grown by 0.3 eye widths
  and the mouth by 0.15 of its width) that the output paints over ``LIGHTER`` L* lighter than
  the target with a hue ``HUE`` degrees or more redder-blue than the target's skin (its a*b*
  angle's median over the bare skin) and a chroma over ``CHROMA``: a dark shadow's colour
  lightened; and the faces where it is over ``VISIBLE``;
- **lightened**: the share of the face the output paints over ``LIGHTER`` L* lighter (what the
  change may act on);
- dlib **identity gain** per face (target-source distance minus output-source distance).

Crops are taken at 2x the generator's size. Configs are those of benchmarks/quality.py
(names or ``+``-joined knobs), all swapped from one generator output per picture.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brows import swap_setup  # noqa: E402
from eye_pairs import (comparison_lines, config_rows, face_args, source_line,  # noqa: E402
                       table_lines)

LIGHTER = 8.0     # L* lighter than the target: a shadow the swap lightened
HUE = 20.0        # degrees of a*b* angle below the skin's: mauve, lavender, grey-blue
CHROMA = 6.0      # C* from which a pixel has a colour to speak of
VISIBLE = 0.005   # of the face: a patch one sees (the Samaranch nostril is about 1 %)
LFW_COUNT, LFW_SEED = 100, 48


def face_zones(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(face, skin)`` bool masks of a ``size`` crop: the outline less eyes and mouth, and
    the bare skin (faces/masks.py ``skin_zone``) the skin's hue is taken from."""
    from facedancer_torch.faces import masks

    face = masks.hull_mask(points, size) > 0.5
    face &= ~(masks.eye_zone(points, size, grow=0.3) | masks.mouth_zone(points, size, 0.15))
    return face, masks.skin_zone(points, size)


def mauve_map(target: np.ndarray, output: np.ndarray, face: np.ndarray,
              skin: np.ndarray) -> np.ndarray:
    """Bool map of the ``face`` pixels ``output`` paints over :data:`LIGHTER` L* lighter than
    ``target`` with a hue :data:`HUE` degrees or more below the target's ``skin`` (the median
    a*b* angle there) and a chroma over :data:`CHROMA`."""
    from facedancer_torch.faces.color import to_lab

    lab_t, lab_o = to_lab(target), to_lab(output)
    skin_hue = float(np.median(np.degrees(np.arctan2(lab_t[..., 2], lab_t[..., 1]))[skin]))
    hue = np.degrees(np.arctan2(lab_o[..., 2], lab_o[..., 1]))
    chroma = np.hypot(lab_o[..., 1], lab_o[..., 2])
    return face & (lab_o[..., 0] - lab_t[..., 0] > LIGHTER) & (hue < skin_hue - HUE) & \
        (chroma > CHROMA)


def lfw_draw(count: int = LFW_COUNT, seed: int = LFW_SEED) -> list[str]:
    """The first photo of ``count`` random LFW people, as paths under the shared data."""
    from facedancer_torch.testing import shared_path

    try:
        folder = shared_path("data", "lfw", "images")
    except Exception as error:  # noqa: BLE001 - say why and stop
        raise SystemExit(f"error: {error}")
    names = random.Random(seed).sample(sorted(os.listdir(folder)), count)
    return [f"lfw/images/{name}/{sorted(os.listdir(folder / name))[0]}" for name in names]


def nose_box(points: np.ndarray, target: np.ndarray) -> tuple[slice, slice]:
    """The figure's cut: from the eyes' bottom to the mouth's, the cheeks either side."""
    top = int(max(points[36:48, 1].max(), 0))
    bottom = int(min(points[57, 1], target.shape[0]))
    left = int(max(points[2, 0], 0))
    right = int(min(points[14, 0], target.shape[1]))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,color-lighter-0",
                     "the faces whose mauve share falls most from the last config to the "
                     "first: target, then each config (rows)",
                     clips="", photos=",".join(lfw_draw()))
    from facedancer_torch.faces.color import to_lab

    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]

    def measure(target, points, crops):
        face, skin = face_zones(points, target.shape[0])
        if int(face.sum()) < 500 or int(skin.sum()) < 100:
            return None
        light_t = to_lab(target)[..., 0]
        area = float(face.sum())
        return [{"mauve": float(mauve_map(target, crop, face, skin).sum()) / area,
                 "lightened": float(((to_lab(crop)[..., 0] - light_t > LIGHTER) & face).sum())
                 / area} for crop in crops]

    rows, figure_rows = config_rows(args, setup, configs, measure, "mauve")
    print(source_line(args, setup))

    def cells(found):
        mauve = np.array([r["mauve"] for r in found])
        return [f"{100 * mauve.mean():.3f} %", f"{int((mauve > VISIBLE).sum())}",
                f"{100 * mauve.max():.2f} %",
                f"{100 * np.mean([r['lightened'] for r in found]):.1f} %"]

    table_lines(rows, configs, f"mauve, % of the face (mean) | faces over {100 * VISIBLE:g} % | "
                f"largest | lightened by over {LIGHTER:g} L*, % of the face (mean)", cells)
    comparison_lines(rows, configs, figure_rows, nose_box, args.figure,
                     "faces whose mauve share falls most")


if __name__ == "__main__":
    main()
