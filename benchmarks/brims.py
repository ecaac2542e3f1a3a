"""Does the shade under a hat's brim stay? Output against target, above the brows.

    python benchmarks/brims.py [--source PHOTO] [--photos lfw/images/...,...|all]
        [--clips talking_a.mp4,...] [--configs default,forehead-0] [--figure OUT.jpg]

The demo generator paints every forehead evenly lit, up to the top of the blend mask: under a
cap's or a beret's brim, where the photo has a band of shade or the brim's own dark edge
just above the brows, the swap had a pale band of skin (a grey haze over a beret's rim,
``Wolfgang_Schneiderhan_0001.jpg`` in LFW; a lit strip under a hat, ``Troy_Garity_0001.jpg``).
The cast-shadow pass misses it (its closing fills the brim itself, which the crop cuts to a
band narrower than the disc); the forehead pass gives it back (swap/compose.py
``FOREHEAD_DARKNESS``, session 44). This measures, per face
(the largest of each picture) of LFW photos with a cap, hat, beret, headband or fringe (picked
by eye from 400 random LFW photos; ``--photos`` for others, ``all`` for the shared photos):

- the **lightening above the brows**: output minus target L*, both blurred by a pixel, where
  the output is lighter (0 elsewhere), mean over the rows above the brows' lowest point inside
  the face outline, the brows left out (faces/masks.py ``forehead_zone`` with a hard bottom);
- the share of that zone **lighter by over** ``VISIBLE`` L* (a band that reads as a pale
  strip), and the faces where it is over ``BAND_SHARE``;
- the **darkening below the brows**: the same, darker, over the rest of the outline (the band
  must not darken the eyes and cheeks);
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
from eye_pairs import (comparison_lines, config_rows, face_args, source_line,  # noqa: E402
                       table_lines)

VISIBLE = 8.0      # L* from which a band above the brows reads as a pale strip (looked at)
BAND_SHARE = 0.05  # of the zone above the brows: a face with a pale band
BROW_THICKNESS = 0.8  # the brows left out of the zone above them (brow-to-eye distances)

# LFW photos with something on the head whose edge crosses the forehead, picked by eye from
# 400 random LFW photos (seed 7) and 30 others (seed 44): caps, hats, berets, a police and a
# naval cap, headbands, a swimming cap, a turban, two fringes.
HATS = """Alan_Trammell_0001 Carlos_Beltran_0001 Christian_Fittipaldi_0002 Dimitar_Berbatov_0001
Flavia_Delaroli_0002 Guillermo_Coria_0017 Gustavo_Terrazas_0001 Hung_Wan-ting_0001 Joe_Torre_0004
John_Travolta_0007 John_Velazquez_0001 Juan_Carlos_Ferrero_0026 Jung_Bong_0001 Justine_Henin_0001
Larry_Nichols_0001 Larry_Templeton_0001 Lleyton_Hewitt_0002 Lleyton_Hewitt_0025
Lokendra_Bahadur_Chand_0001 Magui_Serna_0001 Michael_Michele_0001 Mike_Weir_0009
Mohammad_Khatami_0009 Patrick_Leahy_0002 Queen_Elizabeth_II_0011 Ralf_Schumacher_0003
Robby_Ginepri_0001 Roger_Federer_0005 Serena_Williams_0009 Steven_Spielberg_0002
Tiger_Woods_0015 Yao_Ming_0004 Troy_Garity_0001 Wolfgang_Schneiderhan_0001 James_Collinson_0001
Rob_Moore_0001""".split()


def lfw_path(stem: str) -> str:
    """``Name_0001`` -> its path under the shared data."""
    return f"lfw/images/{stem.rsplit('_', 1)[0]}/{stem}.jpg"


def zones(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(above, below)`` float weights: the face outline above the brows' lowest point less
    the brows (each drawn ``BROW_THICKNESS`` of its brow-to-eye distance thick: the swap's
    brows are the source's, lighter or darker than the target's by design), and the outline
    below it."""
    from facedancer_torch.faces import masks

    below = masks.hull_mask(points, size) * (1.0 - masks.above_brows(points, size))
    return masks.forehead_zone(points, size, BROW_THICKNESS, soften=0.0)[1], below


def brow_box(points: np.ndarray, target: np.ndarray) -> tuple[slice, slice]:
    """The figure's cut: the face's width, from three brow-to-eye distances over the brows'
    top to the eyes' bottom."""
    brows, eyes = points[17:27], points[36:48]
    rise = float(eyes[:, 1].mean() - brows[:, 1].mean())
    top = int(max(brows[:, 1].min() - 3.0 * rise, 0))
    bottom = int(min(eyes[:, 1].max() + 0.5 * rise, target.shape[0]))
    left = int(max(points[0, 0] - 0.1 * rise, 0))
    right = int(min(points[16, 0] + 0.1 * rise, target.shape[1]))
    return slice(top, bottom), slice(left, right)


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,forehead-0",
                     "the foreheads whose pale band falls most from the last config to the "
                     "first: target, then each config (rows)",
                     clips="", photos=",".join(lfw_path(stem) for stem in HATS))
    from facedancer_torch.faces.color import to_lab

    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]

    def measure(target, points, crops):
        above, below = zones(points, target.shape[0])
        if float(above.sum()) < 50.0:
            return None
        light_t = cv2.GaussianBlur(to_lab(target)[..., 0], (0, 0), 1.0)
        found = []
        for crop in crops:
            gap = cv2.GaussianBlur(to_lab(crop)[..., 0], (0, 0), 1.0) - light_t
            found.append({
                "lighter": float((np.maximum(gap, 0.0) * above).sum() / above.sum()),
                "band": float(((gap > VISIBLE) * above).sum() / above.sum()),
                "darker": float((np.maximum(-gap, 0.0) * below).sum() / max(below.sum(), 1.0))})
        return found

    rows, figure_rows = config_rows(args, setup, configs, measure, "lighter")
    print(source_line(args, setup))

    def cells(found):
        lighter = np.array([r["lighter"] for r in found])
        band = np.array([r["band"] for r in found])
        return [f"{np.median(lighter):.2f}", f"{lighter.mean():.2f}",
                f"{100 * band.mean():.1f} %", f"{int((band > BAND_SHARE).sum())}",
                f"{np.mean([r['darker'] for r in found]):.2f}"]

    table_lines(rows, configs, "lightening above the brows, L* (median) | mean | share lighter "
                f"by over {VISIBLE:g} L* (mean) | faces with a pale band (over "
                f"{100 * BAND_SHARE:g} %) | darkening below the brows, L* (mean)", cells)
    comparison_lines(rows, configs, figure_rows, brow_box, args.figure,
                     "foreheads whose pale band falls most")


if __name__ == "__main__":
    main()
