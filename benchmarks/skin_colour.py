"""The colour of lit skin in the training photos: where white balance starts to be wrong.

    python benchmarks/skin_colour.py [--count 1500] [--photos]

The demo generator learned from LFW. Each of the first ``--count`` LFW photos (every person's
first, in name order) is detected and aligned as a swap aligns a target (the generator's
crop), and the colour of its lit skin measured as ``swap/exposure.py`` measures it
(``skin_colour``: the mean RGB of the inner-face ellipse's pixels between the 50th and 95th
percentile of luma, as log-chromaticity ``(log R/G, log B/G)``). Printed: the mean and
covariance of that chromaticity (the constants ``SKIN_MEAN`` and ``SKIN_COVARIANCE`` of
``swap/exposure.py``) and percentiles of the Mahalanobis distance from it (``SKIN_DISTANCE``
is where the correction starts). ``--photos`` also prints each shared photo's largest face.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facedancer_torch.faces.align import transform_points
from facedancer_torch.faces.detect import largest_face
from facedancer_torch.io.images import read_image
from facedancer_torch.swap.exposure import skin_chroma
from facedancer_torch.swap.pipeline import Swapper
from facedancer_torch.testing import shared_path


def measure(swapper, image: np.ndarray) -> np.ndarray | None:
    face = largest_face(swapper.detect(image))
    if face is None:
        return None
    crop, matrix = swapper.align(image, face.landmarks)
    return skin_chroma(crop, transform_points(face.landmarks, matrix))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--photos", action="store_true")
    args = parser.parse_args()
    root = shared_path("data", "lfw", "images")
    if root is None:
        raise SystemExit("../shared/data/lfw is absent")
    swapper = Swapper()
    people = sorted(p for p in root.iterdir() if p.is_dir())[:args.count]
    values = [measure(swapper, read_image(sorted(person.iterdir())[0])) for person in people]
    values = np.array([v for v in values if v is not None and np.all(np.isfinite(v))])
    mean, covariance = values.mean(axis=0), np.cov(values.T)
    inverse = np.linalg.inv(covariance)
    centred = values - mean
    distance = np.sqrt(np.einsum("ni,ij,nj->n", centred, inverse, centred))
    print(f"LFW faces measured: {len(values)}")
    print(f"SKIN_MEAN = ({mean[0]:.4f}, {mean[1]:.4f})")
    print(f"SKIN_COVARIANCE = (({covariance[0, 0]:.5f}, {covariance[0, 1]:.5f}), "
          f"({covariance[1, 0]:.5f}, {covariance[1, 1]:.5f}))")
    for q in (50, 90, 95, 99, 99.5, 100):
        print(f"Mahalanobis distance, {q}th percentile: {np.percentile(distance, q):.2f}")
    if args.photos:
        photos = shared_path("data", "photos")
        for path in sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png")):
            value = measure(swapper, read_image(path))
            if value is None:
                continue
            d = float(np.sqrt((value - mean) @ inverse @ (value - mean)))
            print(f"{path.name}: chroma ({value[0]:+.3f}, {value[1]:+.3f}), distance {d:.2f}")


if __name__ == "__main__":
    main()
