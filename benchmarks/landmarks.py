"""Landmark precision of detection on a downscaled copy, with and without the refinement pass.

    python benchmarks/landmarks.py                      # every shared photo longer than 640 px
    python benchmarks/landmarks.py --refine 0 480 960 full --photos df_img1.jpg fr_obama.jpg
    python benchmarks/landmarks.py --refine 0 1024 2048whole 2048crop0 2048 --sizes
    python benchmarks/landmarks.py --refine 0 2048 2048crop640 2048crop576
    python benchmarks/landmarks.py --refine 0 2048 2048crop640 --upscale 1.5 --repeat 1

The reference is detection at full resolution (``max_side=0``), the way the authors align
their datasets. For each setting and photo the largest face found is aligned to a 256 px crop
on the setting's landmarks and on the landmarks of the same face (highest box IoU) found at
full resolution; full-resolution detection also finds large false faces (0.7-0.95 scores on
df_img20, df_img41), so "the largest reference face" would compare different faces. The
table gives the mean absolute grey difference of the two crops (0-255: mean, median and worst
over photos), the largest landmark distance in eye distances, and the detection CPU time per
photo relative to the first setting, plain 640 px detection by default (one onnxruntime
thread, ``time.process_time``; each photo goes through every setting in turn and the least of
``--repeat`` runs counts, so that other jobs on the machine weigh on all settings alike), after
one untimed pass over the photos (one-time costs: onnxruntime's first runs, and importing onnx
and cutting the graph for the refinement by level, about 0.7 CPU s once per process).

``--refine`` values: 0 = no refinement, N = refinement crops downscaled above N px, ``full`` =
refinement crops never downscaled; a suffix ``whole`` (``2048whole``) refines through the
whole network instead of only the anchor levels a face's size needs (``REFINE_FIRST_LEVEL``),
and ``cropN`` (``2048crop0``, ``2048crop576``) sets the largest crop of a face refined on the
stride-32 level alone (``REFINE_MAX_CROP``, the side of its square; 0 = box plus context); ``firstF``
(``2048first0.8``) runs the first pass at F times the 640 px max side when refining
(``REFINE_FIRST_PASS``, 1 by default: the same copy as without refinement); ``faceN`` last
(``2048face0``) sets the largest face refined at full resolution (``REFINE_MAX_FACE``; 0 = no
limit: every face refined at full resolution, as before session 27). ``--sizes`` adds the mean
grey difference by the face's eye distance in the 640 px copy (does a large face need refining?);
``--upscale F`` enlarges every photo first (larger faces than the shared photos hold).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from facedancer_torch.testing import shared_path

MIN_REFERENCE_IOU = 0.5  # the full-resolution face must overlap the one aligned this much


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refine", nargs="+", default=["0", "480", "640", "960", "full"])
    parser.add_argument("--photos", nargs="*", help="file names under data/photos")
    parser.add_argument("--min-side", type=int, default=641,
                        help="photos whose longest side is at least this (default 641)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per photo and setting; the least counts (default 3)")
    parser.add_argument("--upscale", type=float, default=1.0,
                        help="enlarge every photo by this factor first (bicubic): larger faces")
    parser.add_argument("--sizes", action="store_true",
                        help="also the grey difference by eye distance in the 640 px copy")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    import cv2

    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.tracking import box_iou
    from facedancer_torch.io.images import read_image

    root = shared_path("data", "photos")
    if root is None:
        sys.exit("photos are absent: expected ../shared/data/photos (or $FACEDANCER_SHARED)")
    names = args.photos or sorted(p.name for p in root.iterdir()
                                  if p.suffix.lower() in (".jpg", ".png"))
    images = {}
    for name in names:
        image = read_image(root / name)
        if args.upscale != 1.0:
            image = cv2.resize(image, None, fx=args.upscale, fy=args.upscale,
                               interpolation=cv2.INTER_CUBIC)
        if max(image.shape[:2]) >= args.min_side:
            images[name] = image
    reference = get_detector(device="cpu", threads=1, max_side=0, rotate="off")
    truth = {}
    for name, image in images.items():
        faces = reference.detect(image)
        if faces:
            truth[name] = faces
    # A face much larger than the detector's largest anchors (512 px) is not found whole at
    # full resolution (df_img40, df_img49: faces of 1,200-1,700 px come out as 0.7-0.99
    # "faces" on parts of them); such a photo has no full-resolution reference to compare with.
    first = get_detector(device="cpu", threads=1, rotate="off")
    unmatched = {}
    for name in list(truth):
        face = largest_face(first.detect(images[name]))
        overlap = max((float(box_iou(f.box, face.box)[0, 0]) for f in truth[name]), default=0.0) \
            if face is not None else 1.0
        if overlap < MIN_REFERENCE_IOU:
            unmatched[name] = overlap
            del truth[name]
    print(f"{len(truth)} photos with a face, longest side >= {args.min_side} px; reference: "
          "full-resolution detection; crops 256 px")
    for name, overlap in unmatched.items():
        print(f"left out: {name}: full-resolution detection finds no face overlapping the "
              f"largest face (best box IoU {overlap:.2f} < {MIN_REFERENCE_IOU})")
    print(f"{'refine':>8} | {'grey mean':>9} | {'median':>6} | {'grey max':>8} | "
          f"{'photos > 3':>10} | {'landmark max / eye':>18} | {'detect CPU':>10}")
    bins = (0, 40, 80, 120)  # eye distance in the 640 px copy
    detectors = {}
    for setting in args.refine:
        value, _, face = setting.partition("face")
        value, _, crop = value.partition("crop")
        value, _, first = value.partition("first")
        whole = value.endswith("whole")
        value = value.removesuffix("whole")
        cap = 100_000 if value == "full" else int(value)
        detector = get_detector(device="cpu", threads=1, refine_max_side=cap, rotate="off")
        detector.refine_by_level = detector.refine_by_level and not whole
        if crop:
            detector.refine_max_crop = int(crop)
        if first:
            detector.first_pass = float(first)
        if face:
            detector.refine_max_face = int(face)
        for image in images.values():  # steady state: one-time costs (onnxruntime's first
            detector.detect(image)  # run; importing onnx and cutting the graph) left out
        detectors[setting] = detector
    # CPU time: each photo through every setting in turn, the least of --repeat runs, so that
    # what else the machine runs weighs on every setting alike.
    cpu = dict.fromkeys(detectors, 0.0)
    found = {}
    for name in truth:
        for setting, detector in detectors.items():
            times = []
            for _ in range(args.repeat):
                start = time.process_time()
                faces = detector.detect(images[name])
                times.append(time.process_time() - start)
            cpu[setting] += min(times)
            found[setting, name] = faces
    baseline = cpu[args.refine[0]]
    by_size = []
    for setting in detectors:
        greys, errors, eyes = [], [], []
        for name, candidates in truth.items():
            image = images[name]
            face = largest_face(found[setting, name])
            if face is None:
                greys.append(255.0)
                eyes.append(float("nan"))
                continue
            ref = max(candidates, key=lambda f: float(box_iou(f.box, face.box)[0, 0]))
            ours, _ = align_face(image, face.landmarks, 256)
            theirs, _ = align_face(image, ref.landmarks, 256)
            greys.append(float(np.abs(ours.astype(np.float32) - theirs).mean()))
            eye = float(np.linalg.norm(ref.landmarks[0] - ref.landmarks[1]))
            eyes.append(eye * 640 / max(image.shape[:2]))
            errors.append(float(np.linalg.norm(face.landmarks - ref.landmarks, axis=1).max())
                          / max(eye, 1.0))
        greys_a = np.array(greys)
        print(f"{setting:>8} | {greys_a.mean():9.2f} | {np.median(greys_a):6.2f} | "
              f"{greys_a.max():8.2f} | "
              f"{int((greys_a > 3).sum()):>4} of {len(greys):<3} | {max(errors):18.3f} | "
              f"{cpu[setting] / baseline:9.2f}x")
        if args.sizes:
            which = np.digitize(eyes, bins[1:])
            cells = []
            for k, low in enumerate(bins):
                chosen = [g for g, w, e in zip(greys, which, eyes) if w == k and e == e]
                if chosen:
                    cells.append(f"eye {low}+ px: {np.mean(chosen):.2f} ({len(chosen)})")
            by_size.append(f"{setting:>8} | " + " | ".join(cells))
    if by_size:
        print("mean grey difference by eye distance in the 640 px copy (photos):")
        print("\n".join(by_size))


if __name__ == "__main__":
    main()
