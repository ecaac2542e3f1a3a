"""Do several source photos show one person? The check behind the mixed-people warning.

    python benchmarks/source_photos.py                   # shared pairs + LFW's first fold
    python benchmarks/source_photos.py --lfw-pairs 1200  # the first two folds
    python benchmarks/source_photos.py --thresholds 0.5 0.6 0.7

``facedancer swap -s A -s B`` averages the photos' identities as one person's
(``swap/source.py``); photos of two people would give a face of neither, so
``mixed_people_note`` warns when two photos are further apart than the identity encoder's
same-person threshold (the ``--threshold`` default). This prints, for the shipped identity
encoder, how often that warning would fire on pairs of one person (false alarms) and of two
people (caught), on the same / different pairs of the shared photos'
``deepface_master_pairs.csv`` and on LFW's ``pairs.txt`` (each photo's face chosen as the swap
chooses a source face, so a pair is exactly what ``-s A -s B`` would embed), with the
distance percentiles of each kind.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from facedancer_torch.testing import shared_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lfw-pairs", type=int, default=600,
                        help="lines of pairs.txt to use (600 = the first fold)")
    parser.add_argument("--thresholds", type=float, nargs="*", default=None,
                        help="thresholds to tabulate (default: around the encoder's own)")
    args = parser.parse_args()

    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.pipeline import Swapper
    from facedancer_torch.swap.source import (embed_faces, odd_photo, same_person_threshold,
                                              source_face)

    photos, lfw = shared_path("data", "photos"), shared_path("data", "lfw")
    if photos is None:
        raise SystemExit("the shared data (../shared/data/photos) is not here")
    swapper = Swapper()
    threshold = same_person_threshold(swapper.encoder)
    units: dict[Path, np.ndarray | None] = {}

    def unit(path: Path) -> np.ndarray | None:
        if path not in units:
            image = read_image(path)
            faces = swapper.detector.detect(image)
            units[path] = None
            if faces:
                face = source_face(faces, None, "source", path)
                raw = embed_faces(image, [face.landmarks], swapper.encoder)[0]
                units[path] = raw / np.linalg.norm(raw)
        return units[path]

    def distance(a: Path, b: Path) -> float | None:
        ua, ub = unit(a), unit(b)
        return None if ua is None or ub is None else odd_photo(np.stack([ua, ub]))[1]

    sets: dict[str, tuple[list[float], list[float]]] = {}
    same, different = [], []
    with open(photos / "deepface_master_pairs.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            d = distance(photos / row["file_x"], photos / row["file_y"])
            if d is not None:
                (same if row["Decision"] == "Yes" else different).append(d)
    sets["shared photos"] = same, different
    if lfw is not None and args.lfw_pairs:
        same, different = [], []
        image = lambda name, n: lfw / "images" / name / f"{name}_{int(n):04d}.jpg"  # noqa: E731
        lines = (lfw / "pairs.txt").read_text().split("\n")[1:1 + args.lfw_pairs]
        for line in lines:
            fields = line.split()
            if len(fields) == 3:
                d, kind = distance(image(*fields[:2]), image(fields[0], fields[2])), same
            elif len(fields) == 4:
                d, kind = distance(image(*fields[:2]), image(*fields[2:])), different
            else:
                continue
            if d is not None:
                kind.append(d)
        sets[f"LFW pairs.txt, first {args.lfw_pairs} lines"] = same, different
    else:
        print("LFW (../shared/data/lfw) not here or --lfw-pairs 0: shared photos only")

    thresholds = args.thresholds or sorted({0.5, 0.55, threshold, 0.65, 0.7})
    print(f"identity encoder {Path(swapper.encoder_name).name}, same-person threshold "
          f"{threshold:.2f} (what the warning uses)\n")
    print("| pairs | one person: n, distance p50 / p90 / p99 / max | two people: n, distance "
          "min / p1 / p10 / p50 |")
    print("|---|---|---|")
    for name, (same, different) in sets.items():
        s, d = np.asarray(same), np.asarray(different)
        print(f"| {name} | {len(s)}: " + " / ".join(f"{v:.3f}" for v in
                                                   np.percentile(s, [50, 90, 99, 100]))
              + f" | {len(d)}: " + " / ".join(f"{v:.3f}" for v in
                                              np.percentile(d, [0, 1, 10, 50])) + " |")
    print("\n| threshold | " + " | ".join(f"{n}: one person warned | two people warned"
                                           for n in sets) + " |")
    print("|---|" + "---|---|" * len(sets))
    for t in thresholds:
        cells = []
        for same, different in sets.values():
            s, d = np.asarray(same), np.asarray(different)
            cells += [f"{int((s > t).sum())} of {len(s)}", f"{int((d > t).sum())} of {len(d)}"]
        mark = " (default)" if abs(t - threshold) < 1e-9 else ""
        print(f"| {t:.2f}{mark} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
