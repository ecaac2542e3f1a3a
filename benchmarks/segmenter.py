"""How well the occlusion-aware face segmenter works (issue #12), against the plain dlib hull.

    python benchmarks/segmenter.py                       # shipped weights
    python benchmarks/segmenter.py --model runs/seg/model --save overlays/

Three tables:

1. Held-out synthetic occlusions: LFW photos of identities never used in training
   (``crc32(name) % 10 == 0``), aligned as the swapper aligns (128 px), one synthetic occluder of
   each kind pasted on (fixed seed). Face IoU against the hull of the *clean* landmarks, and
   occluder IoU against the pasted mask. The baseline is what a compositor without the network
   has: dlib's 68 landmarks found on the *occluded* crop, their hull as the face, no occluder.
2. The hand-marked real photos (``benchmarks/data/occluders.json``): the largest face of each is
   aligned at 256 px (shrink 1.0, as the swapper does); the reference face region is the hull
   of dlib's landmarks on that crop. Columns: marked occluder pixels inside the face region
   that the network calls occluder (> 0.5), and false occluders on the face region outside the
   polygons; "overwritten" is the share of marked occluder pixels that a compositor would
   replace (dlib hull: all that lie in the hull; network: face > 0.5 and occluder < 0.5).
3. Every other shared photo (its largest face, >= 60 px): false occluders on faces nothing
   covers.

Plus the inference time per crop (one thread, batch of 16). ``--save DIR`` writes overlays of
the real photos (crop | face in green | occluder in red, marked polygons outlined in yellow).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from facedancer_torch.testing import shared_path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from occluders import marked_photos, occluder_mask  # noqa: E402


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def synthetic_table(segmenter, count: int, seed: int) -> None:
    from facedancer_torch.evaluate.dlib_face import get_dlib_face, template_box
    from facedancer_torch.faces.occlusion import face_region_mask
    from facedancer_torch.train.segmenter import PAINTERS, list_lfw, prepare_faces, synthesize

    lfw = shared_path("data", "lfw", "images")
    files = list_lfw(lfw, held_out=True, limit=count, seed=seed)
    faces = prepare_faces(files, 128)
    dlib_face = get_dlib_face()
    box = template_box(128)
    print(f"\n1. Held-out synthetic occlusions: {len(faces.crops)} LFW faces of held-out "
          "identities, 128 px crops, one occluder per crop")
    print(f"{'occluder':<12} {'face IoU net':>13} {'face IoU dlib hull':>18} "
          f"{'occluder IoU net':>17} {'occluder IoU hull':>18}")
    kinds = [None] + list(PAINTERS) + ["text"]  # text: words laid over the photo (captions)
    for kind in kinds:
        rng = np.random.default_rng(seed + 17)
        samples = [synthesize(faces, i, rng, occlusion_prob=0.0 if kind is None else 1.0,
                              kind=kind) for i in range(len(faces.crops))]
        images = np.stack([s[0] for s in samples])
        face_prob, occ_prob = segmenter.predict(images)
        f_net, f_hull, o_net = [], [], []
        for (image, face, occ), fp, op in zip(samples, face_prob, occ_prob):
            hull = face_region_mask(dlib_face.landmarks(image, box), face.shape)
            f_net.append(iou(fp > 0.5, face > 0.5))
            f_hull.append(iou(hull, face > 0.5))
            if occ.any():
                o_net.append(iou(op > 0.5, occ > 0.5))
        occ_text = f"{np.mean(o_net):17.3f} {0.0:18.3f}" if o_net else f"{'-':>17} {'-':>18}"
        print(f"{kind or 'none':<12} {np.mean(f_net):13.3f} {np.mean(f_hull):18.3f} {occ_text}")


def _analyse_photo(name: str, detector, dlib_face, segmenter, size: int = 256,
                   min_face: float = 0.0, largest_only: bool = False):
    """For each face: (crop, hull mask, face prob, occ prob, marked mask in crop pixels)."""
    from facedancer_torch.evaluate.dlib_face import template_box
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.occlusion import face_region_mask
    from facedancer_torch.io.images import read_image

    image = read_image(shared_path("data", "photos", name))
    marked = occluder_mask(name, image.shape).astype(np.uint8)
    faces = sorted(detector.detect(image), key=lambda f: -f.area)
    faces = [f for f in faces if min(f.width, f.height) >= min_face]
    if largest_only:
        faces = faces[:1]
    out = []
    for face in faces:
        crop, matrix = align_face(image, face.landmarks, size, shrink_factor=1.0)
        hull = face_region_mask(dlib_face.landmarks(crop, template_box(size)), (size, size))
        marked_crop = cv2.warpAffine(marked, matrix, (size, size), flags=cv2.INTER_NEAREST) > 0
        face_prob, occ_prob = segmenter.predict(crop[None])
        out.append((crop, hull, face_prob[0], occ_prob[0], marked_crop))
    return out


def overlay(crop, hull, face_prob, occ_prob, marked) -> np.ndarray:
    green = crop.astype(np.float32).copy()
    green[..., 1] = green[..., 1] * (1 - face_prob) + 255 * face_prob
    red = crop.astype(np.float32).copy()
    red[..., 0] = red[..., 0] * (1 - occ_prob) + 255 * occ_prob
    panels = [crop.copy(), green.astype(np.uint8), red.astype(np.uint8)]
    for panel in panels[1:]:
        for mask, colour in ((hull, (0, 0, 255)), (marked, (255, 255, 0))):
            contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_NONE)
            cv2.drawContours(panel, contours, -1, colour, 1)
    return np.hstack(panels)


def real_tables(segmenter, save: Path | None) -> None:
    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.faces.detect import get_detector
    from facedancer_torch.io.images import write_image

    detector = get_detector(threads=1)
    dlib_face = get_dlib_face()
    print("\n2. Hand-marked real photos (largest face, 256 px crop; face region = dlib hull)")
    print(f"{'photo':<28} {'marked px in face':>17} {'called occluder':>16} "
          f"{'mean p(occ)':>12} {'false occ. on skin':>19} {'mean p(occ) skin':>17} "
          f"{'overwritten hull':>17} {'overwritten net':>16}")
    for name in marked_photos():
        for crop, hull, fp, op, marked in _analyse_photo(name, detector, dlib_face, segmenter,
                                                         largest_only=True):
            inside = marked & hull
            skin = hull & ~marked
            recall = (op[inside] > 0.5).mean() if inside.any() else float("nan")
            mean_marked = op[inside].mean() if inside.any() else float("nan")
            false = (op[skin] > 0.5).mean()
            over_hull = inside.sum() / max(marked.sum(), 1)
            over_net = ((fp > 0.5) & (op < 0.5) & marked).sum() / max(marked.sum(), 1)
            print(f"{name:<28} {int(inside.sum()):17d} {recall:16.3f} {mean_marked:12.3f} "
                  f"{false:19.3f} {op[skin].mean():17.3f} {over_hull:17.3f} {over_net:16.3f}")
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                write_image(save / f"{Path(name).stem}.png", overlay(crop, hull, fp, op, marked))
    marked_names = set(marked_photos())
    photos = sorted(p.name for p in shared_path("data", "photos").iterdir()
                    if p.suffix.lower() in (".jpg", ".png") and p.name not in marked_names)
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.swap.compose import OCCLUDER_HYSTERESIS, occluder_weight, spared_zone

    false_rates, mean_probs, face_ious, kept, kept_spared, count = [], [], [], [], [], 0
    worst = []
    for name in photos:
        # The main subject only: background faces are often blurred, cut by the frame or
        # really covered (a camera in front of a photographer), not clean faces.
        for crop, hull, fp, op, _ in _analyse_photo(name, detector, dlib_face, segmenter,
                                                    min_face=60, largest_only=True):
            rate = float((op[hull] > 0.5).mean())
            false_rates.append(rate)
            mean_probs.append(float(op[hull].mean()))
            face_ious.append(iou(fp > 0.5, hull))
            # What the compositor keeps from the target: the demo model's 128 px crop, the
            # mirrored pass and the hysteresis of swap/compose.py.
            small = cv2.resize(crop, (128, 128), interpolation=cv2.INTER_AREA)
            _, occ = segmenter.predict(small[None], mirror=True,
                                       mirror_above=2 * OCCLUDER_HYSTERESIS[1] - 1)
            hull_small = cv2.resize(hull.astype(np.uint8), (128, 128),
                                    interpolation=cv2.INTER_NEAREST) > 0
            kept.append(float((occluder_weight(occ[0])[hull_small] > 0.5).mean()))
            # ... and with its spared zones (eyes, brows, mouth: what the segmenter finds
            # inside them alone, unless it is sure of it, is the face's own feature)
            spare = spared_zone(get_landmarks68().on_crop(small), 128)
            kept_spared.append(float((occluder_weight(occ[0], spare)[hull_small] > 0.5)
                                     .mean()))
            worst.append((rate, name, crop, hull, fp, op))
            count += 1
    print(f"\n3. Unmarked shared photos: the largest face (>= 60 px) of each, {count} faces")
    print(f"false-occluder rate on the face region: mean {np.mean(false_rates):.3f}, "
          f"median {np.median(false_rates):.3f}, 90th pct {np.percentile(false_rates, 90):.3f}, "
          f"max {np.max(false_rates):.3f}; mean p(occluder) {np.mean(mean_probs):.3f}")
    kept_a = np.array(kept)
    print(f"kept from the target by the compositor (128 px, mirrored, hysteresis "
          f"{OCCLUDER_HYSTERESIS}): mean {kept_a.mean():.3f} of the face region, faces above "
          f"0.5 %: {int((kept_a > 0.005).sum())}, above 2 %: {int((kept_a > 0.02).sum())}")
    spared_a = np.array(kept_spared)
    print(f"... with the eyes, brows and mouth spared (as it swaps): mean {spared_a.mean():.3f}, "
          f"faces above 0.5 %: {int((spared_a > 0.005).sum())}, above 2 %: "
          f"{int((spared_a > 0.02).sum())}")
    print(f"face IoU net vs dlib hull: mean {np.mean(face_ious):.3f}, "
          f"10th pct {np.percentile(face_ious, 10):.3f}")
    if save is not None:
        worst.sort(key=lambda w: -w[0])
        rows = [overlay(c, h, f, o, np.zeros_like(h)) for _, _, c, h, f, o in worst[:6]]
        write_image(save / "unmarked_worst.png", np.vstack(rows))
        print("worst false-occluder faces: " + ", ".join(f"{n} {r:.3f}" for r, n, *_ in worst[:6]))


def timing(segmenter) -> None:
    rng = np.random.default_rng(0)
    print("\n4. Inference time per crop (1 thread, batch 16)")
    for size in (128, 256):
        crops = rng.integers(0, 256, (16, size, size, 3), dtype=np.uint8)
        segmenter.predict(crops)
        start = time.perf_counter()
        for _ in range(3):
            segmenter.predict(crops)
        print(f"{size} px: {(time.perf_counter() - start) / 48 * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder (default: shipped)")
    parser.add_argument("--count", type=int, default=200, help="held-out LFW photos (table 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, default=None, help="folder for overlay PNGs")
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    if shared_path("data") is None:
        sys.exit("shared data is absent: expected ../shared/data (or $FACEDANCER_SHARED)")
    torch.set_num_threads(1)
    from facedancer_torch.faces.occlusion import load_face_segmenter

    segmenter = load_face_segmenter(args.model)
    print(f"model: {segmenter.source}")
    if not args.skip_synthetic:
        synthetic_table(segmenter, args.count, args.seed)
    real_tables(segmenter, args.save)
    timing(segmenter)


if __name__ == "__main__":
    main()
