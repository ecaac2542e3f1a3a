"""Is a face located alike at every size? Every shared photo's largest face, the photo scaled so
that the face's box is S px long, detected as a swap detects it; landmarks compared with the
reading at a reference size (docs/align.md "Large faces").

    python benchmarks/face_scale.py                          # sizes 160 .. 1600 px
    python benchmarks/face_scale.py --sizes 320 800 1200 --list
    python benchmarks/face_scale.py --refine-max-face 0 448  # the rule off, and at 448 px

No detection at any one size is the truth: full-resolution detection itself misreads a face
larger than the network's largest anchors (512 px), and a small face is read coarsely. The
reference is each face at ``--reference`` px (default 320: inside the anchors' range, refined
at full resolution), and every other size is compared with it after scaling back: the largest
landmark distance in eye distances, and the mean absolute grey difference of 256 px crops
aligned on the two readings (0-255; what the generator is given). A face whose reading at a
size is off by more than 0.15 eye distances is counted as misread (its crop turned, shifted or
zoomed so that the swap smears). Since a rule that reads large faces at the reference's size
agrees with the reference by construction, a check independent of the detector comes with it:
dlib's 68 landmarks found on the 256 px crop aligned on the reading, mapped back (eye centres,
nose tip, mouth corners), and their distance to the reading's five points (median over faces,
in eye distances; the two landmark schemes differ a little by definition, alike at every
size). Photos are scaled with area averaging down and bicubic up.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from facedancer_torch.testing import PHOTOS_ABSENT, shared_photos

MISREAD = 0.15  # eye distances


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[160, 240, 320, 480, 640, 800, 1000, 1300, 1600])
    parser.add_argument("--reference", type=int, default=320)
    parser.add_argument("--refine-max-face", type=int, nargs="+", metavar="PX",
                        help="REFINE_MAX_FACE settings compared side by side (default: the "
                        "module's; 0 = off)")
    parser.add_argument("--min-face", type=int, default=120,
                        help="photos whose largest face is at least this long (px)")
    parser.add_argument("--list", action="store_true", help="print every misread face")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")

    import cv2

    from facedancer_torch.faces import detect
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.faces.detect import get_detector, largest_face
    from facedancer_torch.faces.landmarks68 import get_landmarks68
    from facedancer_torch.faces.tracking import box_iou
    from facedancer_torch.io.images import read_image

    paths = shared_photos()
    if not paths:
        sys.exit(PHOTOS_ABSENT)
    detector = get_detector(device="cpu", threads=2)
    settings = args.refine_max_face or [detect.REFINE_MAX_FACE]

    def scaled(image, factor):
        return cv2.resize(image, None, fx=factor, fy=factor,
                          interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)

    predictor = get_landmarks68()

    def dlib_gap(image, points):
        """dlib's five points on the crop aligned on ``points``, against ``points``."""
        crop, matrix = align_face(image, points, 256)
        marks = predictor.on_crop(crop)
        five = np.stack([marks[36:42].mean(0), marks[42:48].mean(0), marks[30], marks[48],
                         marks[54]])
        back = cv2.invertAffineTransform(matrix)
        five = five @ back[:, :2].T + back[:, 2]
        eyes = float(np.hypot(*(points[1] - points[0])))
        return float(np.hypot(*(five - points).T).max() / eyes)

    def reading(image, factor, near):
        """The face overlapping ``near`` (a box at scale 1) in the image scaled by ``factor``,
        its landmarks scaled back."""
        faces = detector.detect(scaled(image, factor))
        if not faces:
            return None
        boxes = np.stack([f.box / factor for f in faces])
        overlap = box_iou(boxes, near)[:, 0]
        best = int(np.argmax(overlap))
        return faces[best].landmarks / factor if overlap[best] > 0.3 else None

    cases = []  # (name, image, box at scale 1, factor per size)
    for path in paths:
        image = read_image(path)
        face = largest_face(detector.detect(image))
        if face is None or max(face.width, face.height) < args.min_face:
            continue
        side = max(face.width, face.height)
        cases.append((path.name, image, face.box, side))
    print(f"{len(cases)} photos whose largest face is at least {args.min_face} px; reference: "
          f"each face at {args.reference} px; misread: landmarks off by > {MISREAD} eye "
          "distances")
    header = (f"{'max face':>8} | {'face px':>7} | {'misread':>7} | {'landmark median':>15} | "
              f"{'landmark max':>12} | {'crop grey mean':>14} | {'dlib gap median':>15}")
    print(header)
    references = {name: reading(image, args.reference / side, box)
                  for name, image, box, side in cases}  # (the rule acts on larger faces)
    for setting in settings:
        detector.refine_max_face = setting
        for size in args.sizes:
            errors, greys, gaps, missed = [], [], [], 0
            for name, image, box, side in cases:
                reference = references[name]
                if reference is None:
                    continue
                found = reading(image, size / side, box)
                if found is None:
                    missed += 1
                    continue
                eyes = float(np.hypot(*(reference[1] - reference[0])))
                error = float(np.hypot(*(found - reference).T).max() / eyes)
                errors.append(error)
                gaps.append(dlib_gap(image, found))
                crop_a = align_face(image, reference, 256)[0].astype(np.float32)
                crop_b = align_face(image, found, 256)[0].astype(np.float32)
                greys.append(float(np.abs(crop_a - crop_b).mean()))
                if args.list and error > MISREAD:
                    print(f"  {setting} px: {name} at {size} px: off by {error:.2f} eye "
                          f"distances")
            errors_a = np.asarray(errors)
            label = f"{setting}" if setting else "off"
            print(f"{label:>8} | {size:>7} | {int((errors_a > MISREAD).sum()) + missed:>3} / "
                  f"{len(errors) + missed:<3}| {np.median(errors_a):>15.3f} | "
                  f"{errors_a.max():>12.2f} | {np.mean(greys):>14.2f} | "
                  f"{np.median(gaps):>15.3f}")


if __name__ == "__main__":
    main()
