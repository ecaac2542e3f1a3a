"""Do a target's sunglasses stay? Output against target, over the eyes.

    python benchmarks/lenses.py [--source PHOTO] [--photos lfw/images/...,...|all]
        [--clips talking_a.mp4,...] [--configs default,lens-0] [--figure OUT.jpg]

The face segmenter calls most real dark sunglasses face, and the generator paints an eye
inside a grey, see-through lens where the photo has a black one (LFW's
``Janice_Goldfinger_0001.jpg``, ``Fernando_Vargas_0003.jpg``); the lens pass keeps the
target's dark lenses (swap/compose.py ``LENS``, faces/lenses.py, session 45). This measures,
per face (the largest of each picture) of LFW photos with sunglasses (found among 3,000
random LFW photos by how dark their eyes are against their cheeks, kept by eye; ``--photos``
for others, ``all`` for the shared photos, none of which has sunglasses):

- the **change over the eyes**: output minus target L*, absolute, mean over both eyes'
  outlines grown by ``GROW`` eye widths (the lens and what the generator paints into it);
- the **lightening** there (the lighter part alone: a lens turned see-through is lighter),
  and the faces where it is over ``LOST`` L* (a lens lost: the eyes painted through it);
- dlib **identity gain** per face (target-source distance minus output-source distance).

Crops are taken at 2x the generator's size. Configs are those of benchmarks/quality.py
(names or ``+``-joined knobs), all swapped from one generator output per picture.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brims import lfw_path  # noqa: E402
from brows import swap_setup  # noqa: E402
from eye_pairs import (comparison_lines, config_rows, eyes_box, face_args,  # noqa: E402
                       source_line, table_lines)

GROW = 0.5   # eye widths around each eye's outline: the lens measured
LOST = 8.0   # L* of lightening over the eyes from which a lens reads as lost (looked at)

# LFW photos with sunglasses: the 3,000 random LFW photos (seed 11) whose eyes were darkest
# against their cheeks, the top 100 looked at, those with sunglasses kept (dark, mirrored,
# tinted red, orange, blue and purple), and Carla_Sullivan_0001 from the 400 of seed 7.
SUNGLASSES = """Alexandre_Vinokourov_0001 Bill_Paxton_0002 Billy_Bob_Thornton_0001 Bono_0003
Brad_Pitt_0001 David_Gest_0001 Elena_de_Chavez_0001 Fernando_Vargas_0003 Florencia_Macri_0001
Fredric_Seaman_0001 Gil_Cates_0001 Janice_Goldfinger_0001 Jimmy_Iovine_0001 Kelly_Osbourne_0001
Kent_McCord_0001 Leon_Lai_0001 Park_Na-kyong_0001 Robin_McGraw_0001 Sofyan_Dawood_0001
Victoria_Beckham_0002 Yogi_Berra_0001 Carla_Sullivan_0001""".split()


def eye_zones(points: np.ndarray, size: int) -> np.ndarray:
    """Both eyes' outlines grown by :data:`GROW` eye widths (bool)."""
    from facedancer_torch.faces import masks

    return masks.eye_zone(points, size, grow=GROW)


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,lens-0",
                     "the eyes whose lightening falls most from the last config to the first: "
                     "target, then each config (rows)",
                     clips="", photos=",".join(lfw_path(stem) for stem in SUNGLASSES))
    from facedancer_torch.faces.color import to_lab

    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]

    def measure(target, points, crops):
        zone = eye_zones(points, target.shape[0])
        if int(zone.sum()) < 50:
            return None
        light_t = to_lab(target)[..., 0]
        gaps = [(to_lab(crop)[..., 0] - light_t)[zone] for crop in crops]
        return [{"change": float(np.abs(gap).mean()),
                 "lighter": float(np.maximum(gap, 0.0).mean())} for gap in gaps]

    rows, figure_rows = config_rows(args, setup, configs, measure, "lighter")
    print(source_line(args, setup))

    def cells(found):
        change = np.array([r["change"] for r in found])
        lighter = np.array([r["lighter"] for r in found])
        return [f"{np.median(change):.1f}", f"{change.mean():.1f}", f"{lighter.mean():.1f}",
                f"{int((lighter > LOST).sum())}"]

    table_lines(rows, configs, "change over the eyes, L* (median) | mean | lightening (mean) | "
                f"lenses lost (lighter by over {LOST:g} L*)", cells)
    comparison_lines(rows, configs, figure_rows, eyes_box, args.figure,
                     "eyes whose lightening falls most")


if __name__ == "__main__":
    main()
