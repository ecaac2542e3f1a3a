"""Do a swapped face's two eyes look alike, and open? The irises' lightness, eye against eye.

    python benchmarks/eye_pairs.py [--source PHOTO] [--clips talking_a.mp4,...] [--every 10]
        [--photos df_img1.jpg,...|all] [--configs default,eye-paired-0] [--figure OUT.jpg]

The demo generator paints many irises a pale blue-grey, and the eye darkness pass
(faces/color.py ``eye_darkness``) gives an eye the target's darkness back when its dark core
is lost. Judged eye by eye, one iris could take it in full and the other only a fraction:
a dark brown iris beside a grey-teal one, which reads as two eye colours. This measures, per
face (the largest of each picture), on frames of the shared talking clips (every
``--every``-th) and on shared photos (``--photos``; ``all``: every one):

- per eye, the **iris gap**: the 25th percentile of the L* in the eye's opening (dlib's six
  points on the target's crop; below it lie pupil, iris and lash line), output minus target;
- the **mismatch**: how much more the two eyes differ in that lightness in the output than
  in the target (``|o0 - o1| - |t0 - t1|``, L*); a face over ``VISIBLE`` L* shows two eye
  colours side by side;
- per eye, the **opening gap**: the median L* of the opening, output minus target; an eye
  over ``PAINTED_OVER`` L* lighter has its opening painted over, a lid lowered over the
  target's open eye or the iris a pale smear (the iris pass, faces/color.py ``eye_irises``);
- dlib **identity gain** per face (target-source distance minus output-source distance).

Crops are taken at 2x the generator's size. Configs are those of benchmarks/quality.py
(names or ``+``-joined knobs), all swapped from one generator output per picture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from brows import SCALE, SOURCE, config_crops, frames_of, swap_setup, write_figure  # noqa: E402

from facedancer_torch.testing import shared_path  # noqa: E402

CLIPS = "talking_1face_512.mp4,talking_a.mp4,talking_b.mp4,talking_c.mp4"
PERCENTILE = 25  # of the opening's L*: the iris's darker half, not only the pupil
VISIBLE = 8.0    # L* of mismatch from which two eye colours show (looked at in session 34)
PAINTED_OVER = 15.0  # L* of opening gap from which an eye looks half shut or blind (session 45)
FIGURE_FACES = 4


def iris_lightness(crop: np.ndarray, points: np.ndarray,
                   percentile: float = PERCENTILE) -> list[float] | None:
    """Per eye, the ``percentile`` of the L* in its opening; None for a shut eye."""
    from facedancer_torch.faces import masks
    from facedancer_torch.faces.color import to_lab

    lightness = to_lab(crop)[..., 0]
    out = []
    for eye in (0, 1):
        opening = masks.eye_opening(points, eye, crop.shape[0])
        if int(opening.sum()) < 16:
            return None
        out.append(float(np.percentile(lightness[opening], percentile)))
    return out


def eyes_box(points: np.ndarray, target: np.ndarray, side: float = 0.2, above: float = 0.2,
             below: float = 0.2) -> tuple[slice, slice]:
    """Both eyes with a fifth of their span around them: the figure's cut (``side``,
    ``above``, ``below``: other shares of the span, as benchmarks/under_eyes.py's cut down
    to the cheeks)."""
    eyes = points[36:48]
    width = eyes[:, 0].max() - eyes[:, 0].min()
    left = int(max(eyes[:, 0].min() - side * width, 0))
    right = int(min(eyes[:, 0].max() + side * width, target.shape[1]))
    middle = int(eyes[:, 1].mean())
    return (slice(max(middle - int(above * width), 0),
                  min(middle + int(below * width), target.shape[0])), slice(left, right))


def all_photos() -> list[str]:
    folder = shared_path("data", "photos")
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))


def face_args(description: str, configs: str, figure_help: str,
              figure_by: tuple[str, ...] = (), clips: str = CLIPS,
              photos: str = "") -> argparse.Namespace:
    """The command line of the per-face benchmarks (this one, benchmarks/nostrils.py);
    ``figure_by``: the measures the figure's faces may be ranked by (``--figure-by``, the
    first by default); ``clips``, ``photos``: what is measured by default."""
    parser = argparse.ArgumentParser(description=description)
    if figure_by:
        parser.add_argument("--figure-by", choices=figure_by, default=figure_by[0],
                            help="the measure whose fall ranks the figure's faces")
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--clips", default=clips)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--photos", default=photos, help="comma-separated, or 'all'")
    parser.add_argument("--configs", default=configs)
    parser.add_argument("--figure", type=Path, default=None, help=figure_help)
    return parser.parse_args()


def compared_faces(args: argparse.Namespace, setup, configs: list[str]):
    """Per picture of ``args`` (clip frames, photos), with progress on stderr: ``(name,
    target, points, outputs)`` of :func:`brows.config_crops` (pictures without a face left
    out)."""
    clips = [c for c in args.clips.split(",") if c]
    photos = all_photos() if args.photos == "all" else [p for p in args.photos.split(",") if p]
    pictures = frames_of(clips, args.every, photos)
    for done, (name, picture) in enumerate(pictures, 1):
        print(f"  {name} ({done} of {len(pictures)})", file=sys.stderr, flush=True)
        found = config_crops(setup, picture, configs)
        if found is not None:
            yield (name, *found)


def config_rows(args: argparse.Namespace, setup, configs: list[str], measure, key: str):
    """The rows of a per-face benchmark that measures each config's crop on its own
    (benchmarks/brims.py, benchmarks/lenses.py): per face of :func:`compared_faces`,
    ``measure(target, points, crops)`` gives one dict of measures per config (None: the face
    is left out), stored with the face's name and the config's dlib ``"gain"``. Returns
    ``(rows, figure_rows)``, the latter ranked by how much ``key`` falls from the last config
    to the first (collected only with ``--figure``)."""
    rows: dict[str, list[dict]] = {config: [] for config in configs}
    figure_rows: list = []
    for name, target, points, outputs in compared_faces(args, setup, configs):
        crops = [crop for crop, _ in outputs]
        found = measure(target, points, crops)
        if found is None:
            continue
        for config, values, (_, gain) in zip(configs, found, outputs):
            rows[config].append({"name": name, **values, "gain": gain})
        if args.figure is not None:
            fallen = rows[configs[-1]][-1][key] - rows[configs[0]][-1][key]
            figure_rows.append((fallen, name, target, crops, points))
    return rows, figure_rows


def source_line(args: argparse.Namespace, setup) -> str:
    """What a per-face benchmark measured on, above its table."""
    photos = len(all_photos()) if args.photos == "all" else \
        len([p for p in args.photos.split(",") if p])
    return (f"\nsource {args.source.name}; clips {args.clips} every {args.every}th frame; "
            f"photos {photos}; crops at {SCALE}x the generator's {setup[0].image_size} px; "
            f"largest face\n")


def table_lines(rows: dict[str, list[dict]], configs: list[str], header: str, cells) -> None:
    """The table of a per-face benchmark (this one, benchmarks/nostrils.py, benchmarks/lips.py):
    ``| config | faces | <header> | dlib identity gain (mean) |``, then a row per config with
    faces, its middle cells from ``cells(found)`` (formatted strings, one per column of
    ``header``) and the mean of the rows' ``"gain"`` (None where dlib found no face)."""
    print(f"| config | faces | {header} | dlib identity gain (mean) |")
    print("|---" * (header.count("|") + 4) + "|")
    for config in configs:
        found = rows[config]
        if not found:
            continue
        gains = [r["gain"] for r in found if r["gain"] is not None]
        print(f"| {config} | {len(found)} | {' | '.join(cells(found))} | "
              f"{np.mean(gains) if gains else float('nan'):+.4f} |")


def comparison_lines(rows: dict[str, list[dict]], configs: list[str], figure_rows: list,
                     box, path: Path | None, what: str) -> None:
    """The tail of a per-face benchmark's report: the first config against the last, face by
    face (the mean difference of their dlib identity gains, ``"gain"`` of each row, None where
    dlib found no face), and the figure of the :data:`FIGURE_FACES` faces that changed most
    (brows.write_figure, cut by ``box``; ``what`` names them: "faces whose mismatch falls
    most")."""
    if len(configs) > 1:
        first, last = rows[configs[0]], rows[configs[-1]]
        gains = [a["gain"] - b["gain"] for a, b in zip(first, last)
                 if a["gain"] is not None and b["gain"] is not None]
        changed = [g for g in gains if abs(g) > 1e-9]
        print(f"\n{configs[0]} against {configs[-1]}, per face: identity gain "
              f"{np.mean(gains) if gains else 0.0:+.4f} (faces changed {len(changed)}, up "
              f"{sum(g > 0.002 for g in gains)}, down {sum(g < -0.002 for g in gains)})")
    if path is not None and figure_rows:
        columns = write_figure(figure_rows, FIGURE_FACES, box, path)
        print(f"\nfigure: {path} (columns: the {columns} {what} from {configs[-1]} to "
              f"{configs[0]}; rows: target, {', '.join(configs)})")


def main() -> None:
    args = face_args(__doc__.splitlines()[0], "default,eye-paired-0",
                     "the eyes of the faces whose mismatch falls most from the last config to "
                     "the first: target, then each config (rows)")
    setup = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    rows: dict[str, list[dict]] = {config: [] for config in configs}
    figure_rows: list = []
    for name, target_crop, points, outputs in compared_faces(args, setup, configs):
        target = iris_lightness(target_crop, points)
        if target is None:
            continue
        target_median = iris_lightness(target_crop, points, 50)
        for config, (crop, gain) in zip(configs, outputs):
            lightness = iris_lightness(crop, points)
            medians = iris_lightness(crop, points, 50)
            rows[config].append({"name": name, "gaps": [o - t for o, t in zip(lightness, target)],
                                 "opening": [o - t for o, t in zip(medians, target_median)],
                                 "mismatch": abs(lightness[0] - lightness[1])
                                 - abs(target[0] - target[1]), "gain": gain})
        if args.figure is not None:
            fallen = rows[configs[-1]][-1]["mismatch"] - rows[configs[0]][-1]["mismatch"]
            figure_rows.append((fallen, name, target_crop, [crop for crop, _ in outputs],
                                points))
    print(source_line(args, setup))

    def cells(found):
        gaps = [g for r in found for g in r["gaps"]]
        mismatch = np.array([r["mismatch"] for r in found])
        opening = np.array([g for r in found for g in r["opening"]])
        return [f"{np.median(gaps):+.1f}", f"{mismatch.mean():.2f}",
                f"{np.percentile(mismatch, 90):.2f}", f"{int((mismatch > VISIBLE).sum())}",
                f"{np.percentile(opening, 90):+.1f}",
                f"{int((opening > PAINTED_OVER).sum())} of {opening.size}"]

    table_lines(rows, configs, "iris gap to the target, L* (median of both eyes) | mismatch "
                f"(mean) | mismatch (90th pct) | faces over {VISIBLE:g} L* | opening gap (90th "
                f"pct) | eyes painted over (opening over {PAINTED_OVER:g} L* lighter)", cells)
    comparison_lines(rows, configs, figure_rows, eyes_box, args.figure,
                     "faces whose mismatch falls most")

if __name__ == "__main__":
    main()
