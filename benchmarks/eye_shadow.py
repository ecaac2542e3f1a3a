"""Does a swapped face keep the target's eye shadow? The lids' colour, output against target.

    python benchmarks/eye_shadow.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,eye-shadow-0] [--figure OUT.jpg]

The demo generator paints lids without make-up, and the colour by lightness around the eyes
(swap/compose.py ``LOCAL_COLOR_SIMILAR_ZONE``) gives a lid the chroma of the target pixels of
its lightness nearby: where the target wears a coloured eye shadow lighter or darker than the
swap's lid, the lid took the skin's or the lashes' colour, and lilac, green or coral shadow
came out a grey or beige lid. The eye shadow pass (swap/compose.py ``EYE_SHADOW``) keeps the
target's chroma in place there. This measures, per face (the largest of each picture), on
frames of the shared talking clips (every ``--every``-th) and on shared photos
(``--photos``; ``all``: every one), in the target's **eye shadow** (swap/compose.py
``eye_shadow_zone`` on the target's crop, at least 0.5; faces with fewer than
``MIN_PIXELS`` such pixels of a 256 px crop are counted as bare):

- the **shadow's colour distance**: the mean a*b* distance of output and target there, both
  blurred by ``SMOOTH`` px (colour, not texture), and the **chroma kept**: the output's
  a*b* component along the target's away from the skin's median chroma, as a share of the
  target's (1: as far from the skin's colour, in its direction, as the target's shadow; 0:
  skin-coloured);
- the **colour casts** in the eyes' zone (the outlines grown by half an eye width, all faces):
  pixels whose a* or b* flips from warm to cold (evaluate/color.py), a lid gone purple;
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
from eye_pairs import (comparison_lines, config_rows, eyes_box, face_args,  # noqa: E402
                       source_line, table_lines)

SMOOTH = 1.0      # px of the 256 px crop
MIN_PIXELS = 40   # of a 256 px crop: fewer eye shadow pixels, the face wears none


def measure(target: np.ndarray, points: np.ndarray, crops: list[np.ndarray]
            ) -> list[dict] | None:
    """Per crop, the eye shadow's colour distance and chroma kept (0 for a bare face, whose
    ``shadow`` is False) and the colour-cast share of the eyes' zone."""
    from facedancer_torch.evaluate.color import color_cast_fraction
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab
    from facedancer_torch.swap.compose import eye_shadow_zone

    size = target.shape[0]
    eyes = masks.eye_zone(points, size, grow=0.5)
    weight = eye_shadow_zone(target, points)
    shadow = weight is not None and int((weight >= 0.5).sum()) >= MIN_PIXELS
    target_lab = to_lab(masks.gaussian_blur(target.astype(np.float32), SMOOTH))
    zone = weight >= 0.5 if shadow else None
    if shadow:
        skin_ab = np.median(target_lab[..., 1:][masks.skin_zone(points, size)], axis=0)
        away = target_lab[..., 1:][zone] - skin_ab
        norm = np.linalg.norm(away, axis=-1)
    out = []
    for crop in crops:
        found = {"cast": float(color_cast_fraction(target, crop, eyes)), "shadow": shadow,
                 "distance": 0.0, "kept": 0.0}
        if shadow:
            lab = to_lab(masks.gaussian_blur(crop.astype(np.float32), SMOOTH))
            along = np.sum((lab[..., 1:][zone] - skin_ab) * away, axis=-1) / np.maximum(norm, 1e-3)
            found["distance"] = float(np.linalg.norm(
                lab[..., 1:][zone] - target_lab[..., 1:][zone], axis=-1).mean())
            found["kept"] = float(along.sum() / max(float(norm.sum()), 1e-3))
        out.append(found)
    return out


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,eye-shadow-0",
                     "the eyes of the faces whose shadow colour distance falls most from the "
                     "last config to the first: target, then each config (rows)",
                     photos="all", clips="")
    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows, figure_rows = config_rows(args, setup, configs, measure, "distance")
    print(source_line(args, setup))

    def cells(found):
        made_up = [r for r in found if r["shadow"]]
        if not made_up:
            return ["0", "-", "-", f"{100 * np.mean([r['cast'] for r in found]):.3f} %",
                    f"{100 * max(r['cast'] for r in found):.3f} %"]
        return [str(len(made_up)), f"{np.mean([r['distance'] for r in made_up]):.2f}",
                f"{np.mean([r['kept'] for r in made_up]):.2f}",
                f"{100 * np.mean([r['cast'] for r in found]):.3f} %",
                f"{100 * max(r['cast'] for r in found):.3f} %"]

    table_lines(rows, configs, "faces with eye shadow | shadow colour distance, a*b* (mean) | "
                "chroma kept (mean share of the target's) | colour casts in the eyes' zone "
                "(mean) | (most)", cells)
    comparison_lines(rows, configs, figure_rows, eyes_box, args.figure,
                     "faces whose shadow colour distance falls most")


if __name__ == "__main__":
    main()
