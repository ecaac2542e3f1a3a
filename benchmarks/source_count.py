"""How many source photos to give: dlib identity of the swaps against the person's other photos.

    python benchmarks/source_count.py [--people Kofi_Annan,Serena_Williams] [--pool 5]
        [--held-out 20] [--targets 30] [--seed 46]

``facedancer swap -s A -s B ...`` averages the photos' identity embeddings (swap/source.py).
Does that help, and by how much? For each person (LFW names with at least ``--pool`` +
``--held-out`` photos), the first ``--pool`` photos are the candidate sources and the next
``--held-out`` ones stand for the person (the mean of their dlib descriptors; never used as a
source). Each source set is swapped onto ``--targets`` LFW photos of other people (a seeded
random draw, the first photo of each, largest face) with the default settings and the shipped
demo model, and each swap scored by dlib (independent of the generator's FaceNet): the
identity gain, the distance from the target's face to the person minus the swap's. Sets: each
pool photo alone, every run of three consecutive pool photos, all of the pool together
(``--pool`` 5: 5 + 3 + 1 sets). The single photos are also scored against their own photo
(what benchmarks/quality.py's gain does): a source photo's own lighting and expression count
there as the person's.
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np

from facedancer_torch.testing import shared_path


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", default="Kofi_Annan,Serena_Williams,Arnold_Schwarzenegger")
    parser.add_argument("--pool", type=int, default=5, help="candidate source photos")
    parser.add_argument("--held-out", type=int, default=20, help="photos that stand for the person")
    parser.add_argument("--targets", type=int, default=30)
    parser.add_argument("--seed", type=int, default=46)
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

    dlib_face = get_dlib_face()
    swapper = Swapper(None)
    options = SwapOptions()
    print(f"demo model, default settings; {len(targets)} LFW targets (seed {args.seed}); dlib "
          f"identity gain against the mean of {args.held_out} other photos of the person "
          "(never a source), and for single photos against that photo itself\n")
    print("| person | source photos | sets | swaps | gain vs the person (mean) | "
          "gain vs the source photo (mean) |")
    print("|---|---|---|---|---|---|")
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
        by_size: dict[int, list] = {}
        for chosen in source_sets(len(pool)):
            plan = swapper.plan([pool[i] for i in chosen])
            gains, own_gains = [], []
            for picture, target, faces in target_pictures:
                jobs = swapper.jobs_for(picture, faces, plan)
                if not jobs:
                    continue
                output = swapper.compositor.composite(
                    picture, jobs, swapper.swap_jobs([(picture, jobs)], options), options)
                swapped = descriptor(dlib_face, output)
                if swapped is None:
                    continue
                gains.append(float(np.linalg.norm(target - reference)
                                   - np.linalg.norm(swapped - reference)))
                if len(chosen) == 1 and own[chosen[0]] is not None:
                    source = own[chosen[0]]
                    own_gains.append(float(np.linalg.norm(target - source)
                                           - np.linalg.norm(swapped - source)))
            entry = by_size.setdefault(len(chosen), [0, [], []])
            entry[0] += 1
            entry[1] += gains
            entry[2] += own_gains
            print(f"  {person} {'+'.join(str(i + 1) for i in chosen)}: {np.mean(gains):+.4f}",
                  file=sys.stderr, flush=True)
        for size, (sets, gains, own_gains) in sorted(by_size.items()):
            own_cell = f"{np.mean(own_gains):+.4f}" if own_gains else ""
            print(f"| {person} | {size} | {sets} | {len(gains)} | {np.mean(gains):+.4f} | "
                  f"{own_cell} |", flush=True)


if __name__ == "__main__":
    main()
