"""Does each swapped brow read as one brow? The target's brow drawn where the swap has none.

    python benchmarks/brows.py [--source PHOTO] [--clips talking_a.mp4,talking_b.mp4,...]
        [--every 10] [--photos df_img1.jpg,...] [--configs default,brow-shelf-0+...]
        [--figure OUT.jpg] [--rank ghost|above]

Where the generator puts the source's brow lower or higher than the target's, two things drew
a second brow beside it: the pale shelf the generator paints at the target's brow line, joined
to its own dark brow (faces/color.py ``brow_shelves``), and the target's brow edges brought
back by the detail band where its gate stayed half open (swap/compose.py ``DETAIL_BROW_GATE``).
This measures both, per face, on frames of the shared talking clips (every ``--every``-th)
and on the shared photos (``--photos``, none by default):

- **where the generator puts its brows**: dlib's 68 landmarks on the generator's own output
  (the ``reference`` config's paste: the box mask, no colour, no detail, so inside the box the
  crop is the generator's), the same zones for every config;
- the **ghost zone** per brow: the target's brow line drawn ``LINE`` of its brow-to-eye
  distance thick, less the generator's brow line drawn ``SWAP_LINE`` thick: where the
  target has a brow and the generator none. Faces whose brows lie in the same place have no
  ghost zone (``GHOST_MIN`` pixels) and are counted apart;
- **ghost**: the output's brow darkness in the ghost zone (L* below a closing with a disc of
  0.08 of the crop, as faces/color.py measures brows) over the target's there, mean over the
  brows: 0 where the output shows skin beside its own brow, 1 where it draws the target's
  brow as deep as the target does;
- **peak**: the 98th percentile of the output's brow darkness in the ghost zone over the
  target's mean there: a dark dot or patch of the target's brow left standing where the rest
  of it was lifted (a ghost mean hides it);
- **outline**: the correlation of the output's fine detail with the target's in the ghost
  zone (benchmarks/blinks.py ``lid_match``): the target's brow edges drawn there;
- **dark above**: the output's lightness below the target's (L*, where it is lower) above
  each brow, up to ``ABOVE`` brow-to-eye distances over the target's brow line and outside
  both brow lines (``ABOVE_LINE`` thick): the generator's hair or temple shading brought in
  where the target has skin, a dark blob above a brow's tail; mean over the zone and its 98th
  percentile;
- the **brow depth** of the output on the generator's own brow line over the target's on
  its own (the brow kept dark, not lifted away), and dlib **identity gain** per frame.

Crops are taken at 2x the generator's size (``SCALE``) so that a thin outline from the detail
band is seen. Configs are those of benchmarks/quality.py (names or ``+``-joined knobs).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from blinks import fine_detail, lid_match  # noqa: E402
from quality import compose_constants, config_settings  # noqa: E402

from facedancer_torch.testing import shared_path  # noqa: E402

SOURCE = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/examples/astronaut.jpg"
CLIPS = "talking_a.mp4,talking_b.mp4,talking_c.mp4"
LINE = 0.5       # the target's brow line, brow-to-eye distances thick
SWAP_LINE = 0.5  # the generator's brow line left out of the ghost zone, as thick
GHOST_MIN = 60   # pixels of the 2x crop (15 of the generator's): fewer, the brows lie together
SCALE = 2        # crops measured at this multiple of the generator's size
RADIUS = 0.08    # the closing's disc, of the crop (faces/color.py BROW_DEPTH_RADIUS)
ABOVE = 1.0      # the zone above a brow, brow-to-eye distances over its line
ABOVE_LINE = 0.8  # both brow lines left out of it, as thick
FIGURE_FACES = 3  # columns of the figure, each at 2x the measured crop


def frames_of(clips: list[str], every: int, photos: list[str]) -> list[tuple[str, np.ndarray]]:
    import av

    from facedancer_torch.io.images import read_image

    out = []
    for clip in clips:
        with av.open(str(shared_path("data", "videos", clip))) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index % every == 0:
                    out.append((f"{Path(clip).stem}#{index}", frame.to_ndarray(format="rgb24")))
    for photo in photos:
        # A name with a folder is a path under the shared data (lfw/images/NAME/NAME_0001.jpg).
        where = ("data", *photo.split("/")) if "/" in photo else ("data", "photos", photo)
        out.append((photo, read_image(shared_path(*where))))
    return out


def darkness(rgb: np.ndarray) -> np.ndarray:
    from facedancer_torch.faces.color import to_lab

    lightness = to_lab(rgb)[..., 0]
    size = max(1, int(round(RADIUS * rgb.shape[0])))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * size + 1,) * 2)
    return np.maximum(cv2.morphologyEx(lightness, cv2.MORPH_CLOSE, disc) - lightness, 0.0)


def crop_of(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    scaled = np.asarray(matrix, np.float64) * SCALE
    return cv2.warpAffine(image, scaled, (size * SCALE, size * SCALE), flags=cv2.INTER_AREA)


def above_brows(target_points: np.ndarray, swap_points: np.ndarray, size: int) -> np.ndarray:
    """Bool ``(size, size)``: over each of the target's brows up to ``ABOVE`` brow-to-eye
    distances (its line moved away from its eye), less both faces' brow lines."""
    from facedancer_torch.faces import masks

    points = np.asarray(target_points, np.float64).reshape(68, 2)
    zone = np.zeros((size, size), bool)
    for brow in (0, 1):
        line = points[masks.brow_line(brow)]
        up = ABOVE * masks.brow_rise(points, brow)
        zone |= masks.polygon_mask(np.concatenate([line, line + up]), size) > 0.5
    for points_of in (target_points, swap_points):
        zone &= masks.brow_zone(points_of, size, ABOVE_LINE) <= 0.5
    return zone


def measure(target_crop, output_crop, target_points, swap_points) -> dict | None:
    """Per face: ghost, peak and outline over the brows with a ghost zone, brow depth ratio."""
    from facedancer_torch.faces import masks

    size = target_crop.shape[0]
    dark_t, dark_o = darkness(target_crop), darkness(output_crop)
    detail_t = fine_detail(cv2.cvtColor(target_crop, cv2.COLOR_RGB2GRAY))
    detail_o = fine_detail(cv2.cvtColor(output_crop, cv2.COLOR_RGB2GRAY))
    ghosts, peaks, outlines, depths = [], [], [], []
    for brow in (0, 1):
        line_t = masks.one_brow_zone(target_points, brow, size, LINE) > 0.5
        line_s = masks.one_brow_zone(swap_points, brow, size, SWAP_LINE) > 0.5
        depth_t = float(np.percentile(dark_t[line_t], 90)) if line_t.any() else 0.0
        if line_s.any() and depth_t > 1.0:
            depths.append(float(np.percentile(dark_o[masks.one_brow_zone(
                swap_points, brow, size, LINE) > 0.5], 90)) / depth_t)
        ghost = line_t & ~line_s
        if int(ghost.sum()) < GHOST_MIN or float(dark_t[ghost].mean()) < 3.0:
            continue
        ghosts.append(float(dark_o[ghost].mean()) / float(dark_t[ghost].mean()))
        peaks.append(float(np.percentile(dark_o[ghost], 98)) / float(dark_t[ghost].mean()))
        outlines.append(lid_match(detail_o, detail_t, ghost))
    if not depths:
        return None
    from facedancer_torch.faces.color import to_lab

    above = above_brows(target_points, swap_points, size)
    added = np.maximum(to_lab(target_crop)[..., 0] - to_lab(output_crop)[..., 0], 0.0)[above]
    return {"above": float(added.mean()) if added.size else 0.0,
            "above_peak": float(np.percentile(added, 98)) if added.size else 0.0,
            "ghost": float(np.mean(ghosts)) if ghosts else None,
            "peak": float(np.mean(peaks)) if peaks else None,
            "outline": float(np.mean(outlines)) if outlines else None,
            "depth": float(np.mean(depths))}


def swap_setup(source_path: Path):
    """``(swapper, plan, dlib_face, predictor, source)`` for a benchmark over the shared
    clips and photos: the demo model's swapper and ``source_path``'s plan, dlib's face
    analyser and 68-point predictor, and the source's dlib descriptor (None if dlib finds no
    face); stops with one line when the shared data is absent."""
    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.swap.pipeline import Swapper

    try:
        shared_path("data", "videos")
    except Exception as error:  # noqa: BLE001 - say why and stop
        raise SystemExit(f"error: {error}") from None
    swapper = Swapper(None)
    plan = swapper.plan([source_path])
    dlib_face, predictor = get_dlib_face(), get_landmarks68()
    found = dlib_face.analyse_image(cv2.cvtColor(cv2.imread(str(source_path)),
                                                  cv2.COLOR_BGR2RGB))
    return swapper, plan, dlib_face, predictor, found[0].descriptor if found else None


def config_crops(setup, picture: np.ndarray, configs: list[str]):
    """The largest face of ``picture`` swapped once and composited with each of ``configs``
    (benchmarks/quality.py names or ``+``-joined knobs): ``(target, points, outputs)``, the
    target's crop at ``SCALE`` x the generator's size, dlib's 68 landmarks of the target on it,
    and per config ``(crop, gain)`` (dlib identity gain, None where dlib finds no face or the
    source has none); None when no face is found. ``setup``: :func:`swap_setup`'s tuple."""
    from facedancer_torch.swap.options import SwapOptions

    swapper, plan, dlib_face, predictor, source = setup
    jobs = swapper.jobs_for(picture, swapper.detect(picture), plan)
    if not jobs:
        return None
    job = max(jobs, key=lambda j: abs(np.linalg.det(np.asarray(j.matrix)[:, :2])) ** -1)
    size = swapper.image_size
    target = crop_of(picture, job.matrix, size)
    points = (predictor.on_crop(job.crop) + 0.5) * SCALE - 0.5
    target_found = dlib_face.analyse_image(picture) if source is not None else None
    generated = swapper.swap_jobs([(picture, jobs)], SwapOptions())
    outputs = []
    for config in configs:
        kwargs, constants = config_settings(config)
        with compose_constants(constants):
            output = swapper.compositor.composite(picture, jobs, generated,
                                                  SwapOptions(**kwargs))
        gain = None
        found = dlib_face.analyse_image(output) if target_found else None
        if found:
            gain = (float(np.linalg.norm(target_found[0].descriptor - source))
                    - float(np.linalg.norm(found[0].descriptor - source)))
        outputs.append((crop_of(output, job.matrix, size), gain))
    return target, points, outputs


def write_figure(figure_rows: list, count: int, box, path: Path) -> int:
    """The ``count`` faces of ``figure_rows`` (``(fallen, name, target, outputs, points)``)
    that changed most (largest ``fallen`` first) as a JPEG figure: per face a column of its
    target and outputs cut to ``box(points, target)`` = ``(rows, columns)`` slices and shown
    at 2x, the columns padded to one height, 4 px apart. Returns the number of columns."""
    strips = []
    for _, _, target, outputs, points in sorted(figure_rows, key=lambda row: -row[0])[:count]:
        rows, columns = box(points, target)
        strip = np.concatenate([c[rows, columns] for c in (target, *outputs)], 0)
        strips.append(cv2.resize(strip, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC))
    height = max(s.shape[0] for s in strips)
    strips = [cv2.copyMakeBorder(s, 0, height - s.shape[0], 0, 4, cv2.BORDER_CONSTANT)
              for s in strips]
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(strips, 1), cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90])
    return len(strips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=SOURCE)
    parser.add_argument("--clips", default=CLIPS)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--photos", default="")
    parser.add_argument("--configs", default="default,brow-shelf-0+detail-brow-gate-40")
    parser.add_argument("--figure", type=Path, default=None,
                        help="the brows of the faces where the first config draws the least "
                             "of the target's brow against the last: target, then each config "
                             "(rows)")
    parser.add_argument("--rank", choices=("ghost", "above"), default="ghost",
                        help="the figure's faces: those whose ghost, peak and outline fall "
                             "most from the last config to the first (ghost), or whose dark "
                             "above the brows does (above)")
    args = parser.parse_args()
    from facedancer_torch.swap.options import SwapOptions

    swapper, plan, dlib_face, predictor, source = swap_setup(args.source)
    configs = [c for c in args.configs.split(",") if c]
    clips = [c for c in args.clips.split(",") if c]
    photos = [p for p in args.photos.split(",") if p]
    pictures = frames_of(clips, args.every, photos)
    size = swapper.image_size
    rows: dict[str, list] = {config: [] for config in configs}
    figure_rows: list = []
    reference_kwargs, _ = config_settings("reference")
    for done, (name, picture) in enumerate(pictures, 1):
        raw = swapper.swap_image_detailed(picture, plan, SwapOptions(**reference_kwargs))
        if not raw.faces:
            continue
        face = max(raw.faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
        matrix = face.matrix
        target_crop = crop_of(picture, matrix, size)
        raw_crop = cv2.warpAffine(raw.image, np.asarray(matrix), (size, size),
                                  flags=cv2.INTER_AREA)
        target_points = predictor.on_crop(target_crop)
        swap_points = (predictor.on_crop(raw_crop) + 0.5) * SCALE - 0.5
        target_found = dlib_face.analyse_image(picture)
        for config in configs:
            kwargs, constants = config_settings(config)
            with compose_constants(constants):
                output = swapper.swap_image(picture, plan, SwapOptions(**kwargs))
            result = measure(target_crop, crop_of(output, matrix, size), target_points,
                             swap_points)
            if result is None:
                continue
            found = dlib_face.analyse_image(output)
            if source is not None and target_found and found:
                result["gain"] = (float(np.linalg.norm(target_found[0].descriptor - source))
                                  - float(np.linalg.norm(found[0].descriptor - source)))
            result["name"] = name
            result["crop"] = crop_of(output, matrix, size)
            rows[config].append(result)
        latest = [rows[c][-1] for c in configs if rows[c] and rows[c][-1]["name"] == name]
        if args.figure is not None and len(latest) == len(configs):
            # Ranked by how much the first config draws less of the target's brow than the
            # last (ghost, peak and outline fallen together), or less darkness above the brows.
            keys = ("ghost", "peak", "outline") if args.rank == "ghost" else ("above_peak",)
            fallen = sum((latest[-1].get(key) or 0.0) - (latest[0].get(key) or 0.0)
                         for key in keys)
            figure_rows.append((fallen, name, target_crop, [r["crop"] for r in latest],
                                target_points))
        for config in configs:
            if rows[config]:
                rows[config][-1].pop("crop", None)
        print(f"  {name} done ({done} of {len(pictures)})", file=sys.stderr, flush=True)
    print(f"\nsource {args.source.name}; clips {','.join(clips)} every {args.every}th frame; "
          f"photos {len(photos)}; crops at {SCALE}x the generator's {size} px\n")
    print("| config | faces | with a ghost zone | ghost (mean) | ghost (90th pct) | peak (mean) "
          "| outline (mean) | dark above, L* (mean) | dark above, 98th pct (mean) "
          "| brow depth / target's (median) | dlib identity gain (mean) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for config in configs:
        found = rows[config]
        ghosts = [r["ghost"] for r in found if r["ghost"] is not None]
        outlines = [r["outline"] for r in found if r["outline"] is not None]
        peaks = [r["peak"] for r in found if r["peak"] is not None]
        gains = [r["gain"] for r in found if "gain" in r]
        print(f"| {config} | {len(found)} | {len(ghosts)} | "
              f"{np.mean(ghosts) if ghosts else float('nan'):.3f} | "
              f"{np.percentile(ghosts, 90) if ghosts else float('nan'):.3f} | "
              f"{np.mean(peaks) if peaks else float('nan'):.3f} | "
              f"{np.mean(outlines) if outlines else float('nan'):.3f} | "
              f"{np.mean([r['above'] for r in found]):.2f} | "
              f"{np.mean([r['above_peak'] for r in found]):.2f} | "
              f"{np.median([r['depth'] for r in found]):.3f} | "
              f"{np.mean(gains) if gains else float('nan'):+.4f} |")
    if args.figure is not None and figure_rows:
        above = 0.075 if args.rank == "ghost" else 0.2  # of the crop, over the brows

        def brows_box(points, target):  # from above the brows to below the eyes, full width
            top = int(max(points[17:27, 1].min() - above * size * SCALE, 0))
            bottom = int(min(points[36:48, 1].max() + 4 * SCALE, target.shape[0]))
            return slice(top, bottom), slice(None)

        columns = write_figure(figure_rows, FIGURE_FACES, brows_box, args.figure)
        what = "ghost, peak and outline fall" if args.rank == "ghost" else \
            "darkness above the brows falls"
        print(f"\nfigure: {args.figure} (columns: the {columns} faces whose {what} most from "
              f"{configs[-1]} to {configs[0]}; rows: target, "
              f"{', '.join(configs)})")


if __name__ == "__main__":
    main()
