"""dlib identity of swaps against the person, not only against the source photo: how many
source photos to give, and what compositing settings cost.

    python benchmarks/person_identity.py [--people Kofi_Annan,Serena_Williams] [--pool 5]
        [--held-out 20] [--targets 30] [--seed 46] [--shared-photos]
        [--configs reference,default]

``facedancer swap -s A -s B ...`` averages the photos' identity embeddings (swap/source.py).
Does that help, and by how much? For each person (LFW names with at least ``--pool`` +
``--held-out`` photos), the first ``--pool`` photos are the candidate sources and the next
``--held-out`` ones stand for the person (the mean of their dlib descriptors; never used as a
source). Each source set is swapped onto ``--targets`` LFW photos of other people (a seeded
random draw among the names not in ``--people``, so other people draw other targets; the
first photo of each, largest face; ``--shared-photos``: the shared photos
too) with the shipped demo model, and each swap scored by dlib (independent of the generator's
FaceNet): the identity gain, the distance from the target's face to the person minus the
swap's. Sets: each pool photo alone, every run of three consecutive pool photos, all of the
pool together (``--pool`` 5: 5 + 3 + 1 sets; ``--pool`` 1: the first photo alone). The single
photos are also scored against their own photo (what benchmarks/quality.py's gain does): a
source photo's own lighting and expression count there as the person's.

``--configs`` (benchmarks/quality.py names or ``+``-joined knobs; default ``default``): the
same generated crops (default generation options) composited with each, so the rows compare
compositing alone: e.g. ``reference,default`` is what this project's compositing costs against
the reference's box with that source.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np

from facedancer_torch.testing import shared_path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import compose_constants, config_settings  # noqa: E402


def descriptor(dlib_face, image: np.ndarray) -> np.ndarray | None:
    """dlib's descriptor of the largest face in ``image``, or None."""
    found = dlib_face.analyse_image(image)
    if not found:
        return None
    return max(found, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])).descriptor


def source_sets(pool: int) -> list[tuple[int, ...]]:
    """Indices into the pool: each alone, each run of three, all together."""
    sets = [(i,) for i in range(pool)]
    if pool > 3:
        sets += [tuple(range(i, i + 3)) for i in range(pool - 2)]
    if pool > 1:
        sets.append(tuple(range(pool)))
    return sets


def main() -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--people", default="Kofi_Annan,Serena_Williams,Arnold_Schwarzenegger")
    parser.add_argument("--pool", type=int, default=5, help="candidate source photos")
    parser.add_argument("--held-out", type=int, default=20, help="photos that stand for the person")
    parser.add_argument("--targets", type=int, default=30)
    parser.add_argument("--seed", type=int, default=46)
    parser.add_argument("--shared-photos", action="store_true",
                        help="the shared photos as targets too")
    parser.add_argument("--configs", default="default",
                        help="comma-separated benchmarks/quality.py configs")
    args = parser.parse_args()

    try:
        lfw = shared_path("data", "lfw", "images")
    except Exception as error:  # noqa: BLE001 - say why and stop
        raise SystemExit(f"error: {error}")
    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.options import SwapOptions
    from facedancer_torch.swap.pipeline import Swapper

    people = [p for p in args.people.split(",") if p]
    for person in people:
        count = len(list((lfw / person).glob("*.jpg"))) if (lfw / person).is_dir() else 0
        if count < args.pool + args.held_out:
            raise SystemExit(f"error: {person}: {count} LFW photos, fewer than --pool + "
                             f"--held-out ({args.pool + args.held_out})")
    names = sorted(p.name for p in lfw.iterdir() if p.name not in people)
    drawn = random.Random(args.seed).sample(names, args.targets)
    targets = [sorted((lfw / name).glob("*.jpg"))[0] for name in drawn]
    if args.shared_photos:
        photos_dir = shared_path("data", "photos")
        targets += sorted(p for p in photos_dir.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    configs = [c for c in args.configs.split(",") if c]
    settings = {config: config_settings(config) for config in configs}

    dlib_face = get_dlib_face()
    swapper = Swapper(None)
    options = SwapOptions()
    print(f"demo model; {len(targets)} targets ({args.targets} LFW, seed {args.seed}"
          f"{', and the shared photos' if args.shared_photos else ''}); dlib identity gain "
          f"against the mean of {args.held_out} other photos of the person (never a source), "
          "and for single photos against that photo itself\n")
    print("| person | config | source photos | sets | swaps | gain vs the person (mean) | "
          "gain vs the source photo (mean) |")
    print("|---|---|---|---|---|---|---|")
    target_pictures = []
    for path in targets:
        picture = read_image(path)
        found = descriptor(dlib_face, picture)
        if found is not None:
            target_pictures.append((picture, found, swapper.detect(picture)))
    for person in people:
        photos = sorted((lfw / person).glob("*.jpg"))
        pool = photos[:args.pool]
        held = [d for d in (descriptor(dlib_face, read_image(p))
                            for p in photos[args.pool:args.pool + args.held_out])
                if d is not None]
        reference = np.mean(held, axis=0)
        own = [descriptor(dlib_face, read_image(p)) for p in pool]
        by_size: dict[tuple[str, int], list] = {}
        for chosen in source_sets(len(pool)):
            plan = swapper.plan([pool[i] for i in chosen])
            gains: dict[str, list] = {config: [] for config in configs}
            own_gains: dict[str, list] = {config: [] for config in configs}
            for picture, target, faces in target_pictures:
                jobs = swapper.jobs_for(picture, faces, plan)
                if not jobs:
                    continue
                generated = swapper.swap_jobs([(picture, jobs)], options)
                for config in configs:
                    kwargs, constants = settings[config]
                    with compose_constants(constants):
                        output = swapper.compositor.composite(picture, jobs, generated,
                                                              SwapOptions(**kwargs))
                    swapped = descriptor(dlib_face, output)
                    if swapped is None:
                        continue
                    gains[config].append(float(np.linalg.norm(target - reference)
                                               - np.linalg.norm(swapped - reference)))
                    if len(chosen) == 1 and own[chosen[0]] is not None:
                        source = own[chosen[0]]
                        own_gains[config].append(float(np.linalg.norm(target - source)
                                                       - np.linalg.norm(swapped - source)))
            for config in configs:
                entry = by_size.setdefault((config, len(chosen)), [0, [], []])
                entry[0] += 1
                entry[1] += gains[config]
                entry[2] += own_gains[config]
                print(f"  {person} {config} {'+'.join(str(i + 1) for i in chosen)}: "
                      f"{np.mean(gains[config]):+.4f}", file=sys.stderr, flush=True)
        for (config, size), (sets, found, own_found) in sorted(
                by_size.items(), key=lambda item: (configs.index(item[0][0]), item[0][1])):
            own_cell = f"{np.mean(own_found):+.4f}" if own_found else ""
            print(f"| {person} | {config} | {size} | {sets} | {len(found)} | "
                  f"{np.mean(found):+.4f} | {own_cell} |", flush=True)


if __name__ == "__main__":
    main()
