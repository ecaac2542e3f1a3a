"""How well ``facedancer anonymize`` hides people, judged by an independent recognizer (dlib).

    python benchmarks/anonymize.py                              # shipped demo model, defaults
    python benchmarks/anonymize.py --strengths 0.5 0.75 0.9 1.0 --people 80 --frames 48
    python benchmarks/anonymize.py --model models/c_hq --population arcface_population.npz

The goals (issue 15), each printed next to its measurement:

- **Photos** (LFW people held out of the demo model's training and of the shipped population:
  ``split_identities(LFW names, 0.05, seed 0)``, the model card's protocol; first photo of
  ``--people`` of them, seeded): each photo is anonymized through the real pipeline
  (:meth:`Swapper.swap_image`, the CLI's options) and compared with the original in dlib's
  128-d descriptor space. Goal: distance > 0.6 (dlib's same-person threshold) for >= 95 % of
  faces. Also: distance to *another* photo of the same person (when LFW has one), head-pose
  and expression errors against the original (dlib's 68 landmarks, ``evaluate/pose.py``,
  ``evaluate/expression.py``), to be compared with an ordinary swap of the same photos to a
  random other held-out person and with the same draw without the population's kept axes
  (``--no-without-kept-axes`` skips that row), and how close each synthetic identity comes to
  a real LFW person (FaceNet cosine to the nearest of ``--neighbours`` training people, next
  to the same number for real held-out people: a synthetic identity should not sit closer to
  a real person than real people do).
- **Linking files**: two photos of one person anonymized as two jobs, with the same key and
  with two keys (the default draws a fresh key per run): how often dlib says the two results
  are one person (< 0.6), next to the rate for the two original photos.
- **Videos** (``../shared/data/videos``, first ``--frames`` frames): the anonymized face of
  each frame against every other frame of the same clip; goal: dlib distance < 0.5 in >= 90 %
  of frame pairs (the original clip's own rate is printed beside it), and > 0.6 from the
  original frame.

Faces the pipeline leaves untouched count as failures (they are not anonymized).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from facedancer_torch.testing import shared_path

CLIPS = ("talking_1face_512.mp4", "talking_a.mp4", "talking_b.mp4", "talking_c.mp4")
# Aligned crops for dlib: 256 px at shrink 0.5 keeps the whole head (docs/evaluation.md).
CROP, SHRINK = 256, 0.5


def _central_face(faces, image):
    centre = np.array([image.shape[1], image.shape[0]], np.float64) / 2.0
    return min(faces, key=lambda f: float(np.linalg.norm(
        (np.asarray(f.box[:2], np.float64) + np.asarray(f.box[2:], np.float64)) / 2 - centre)))


def _analyse(dlib_face, image, landmarks):
    """dlib landmarks and descriptor of the face at ``landmarks`` (5 points) of ``image``."""
    from facedancer_torch.faces.align import align_face

    crop, _ = align_face(image, np.asarray(landmarks, np.float32), CROP, shrink_factor=SHRINK)
    return dlib_face.analyse_crop(crop, SHRINK)


def _first_photos(swapper, people, names):
    """``(name, image, face)`` of each person's first photo, the face nearest its centre;
    people whose first photo has no face are skipped."""
    from facedancer_torch.io.images import read_image

    for name in names:
        image = read_image(people[name][0])
        faces = swapper.detect(image)
        if faces:
            yield name, image, _central_face(faces, image)


def _pct(values, predicate) -> str:
    values = np.asarray(values)
    return f"{100.0 * np.mean(predicate(values)):.1f} %" if len(values) else "-"


def _mean(values) -> str:
    return f"{np.mean(values):.3f}" if len(values) else "-"


def _split(args):
    """``(people, held, chosen, rng)``: LFW's ``{person: files}``, every held-out person, the
    ``--people`` of ``--split`` in benchmark order, and the seeded generator after the shuffle.

    "test": the first ``--people`` of a seeded shuffle of the held-out people; "tune": as many
    from its other end, a disjoint set on which the default strength was chosen
    (docs/anonymize.md).
    """
    from facedancer_torch.data.shard import split_identities
    from facedancer_torch.swap.anonymize import identity_folders

    people = identity_folders(args.lfw)
    held = sorted(split_identities(list(people), 0.05, 0))
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(held))
    order = order[:args.people] if args.split == "test" else order[::-1][:args.people]
    return people, held, [held[i] for i in order], rng


def _plan(swapper, args, strength, seed=None, kept_axes=True):
    """The anonymize plan of the benchmark; ``kept_axes=False``: the same draw with the
    population's kept axes (the person's pose and expression coordinates) dropped, so that the
    whole whitened vector turns."""
    from facedancer_torch.models.identity.anonymizer import SyntheticIdentitySampler
    from facedancer_torch.swap.anonymize import anonymize_plan

    plan = anonymize_plan(swapper, strength=strength, seed=args.seed if seed is None else seed,
                          population=args.population)
    if not kept_axes:
        population = dataclasses.replace(plan.sampler.population, kept_axes=None)
        plan.sampler = SyntheticIdentitySampler(population, plan.sampler.strength,
                                                plan.sampler.seed, plan.sampler.max_angle)
    return plan


def photos(args, swapper, options, dlib_face) -> None:
    from facedancer_torch.evaluate.expression import expression_error
    from facedancer_torch.evaluate.pose import pose_error_deg
    from facedancer_torch.io.images import read_image
    from facedancer_torch.swap.select import SelectionPlan

    people, held, chosen, rng = _split(args)
    train = sorted(set(people) - set(held))
    neighbours = [train[i] for i in rng.permutation(len(train))[:args.neighbours]]

    print(f"embedding {len(neighbours)} LFW training people (nearest-person check)...",
          file=sys.stderr)
    pool = np.stack([swapper.identify(image, [face.landmarks])[0]
                     for _, image, face in _first_photos(swapper, people, neighbours)])

    print(f"measuring {len(chosen)} held-out people...", file=sys.stderr)
    originals = []
    for name, image, face in _first_photos(swapper, people, chosen):
        unit = swapper.identify(image, [face.landmarks])[0]
        other = None
        if len(people[name]) > 1:  # another photo of the same person, for the second check
            second = read_image(people[name][1])
            second_faces = swapper.detect(second)
            if second_faces:
                other = _analyse(dlib_face, second,
                                 _central_face(second_faces, second).landmarks).descriptor
        originals.append((name, image, face, unit, _analyse(dlib_face, image, face.landmarks),
                          other))
    names = [o[0] for o in originals]

    def measure(label, plans, units_out=None):
        rows = {"dist": [], "dist_other": [], "pose": [], "expr": [], "facenet": [],
                "untouched": 0}
        for (name, image, face, unit, original, other), plan in zip(originals, plans):
            result = swapper.swap_image_detailed(image, plan, options)
            if not any(np.allclose(f.landmarks, face.landmarks, atol=1.0)
                       for f in result.faces):
                rows["untouched"] += 1
            if units_out is not None:
                units_out.extend(f.source.unit for f in result.faces
                                 if np.allclose(f.landmarks, face.landmarks, atol=1.0))
            out = _analyse(dlib_face, result.image, face.landmarks)
            # what the generator's own encoder (known to anyone) still sees of the person
            rows["facenet"].append(float(swapper.identify(result.image, [face.landmarks])[0]
                                         @ unit))
            rows["dist"].append(float(np.linalg.norm(out.descriptor - original.descriptor)))
            if other is not None:
                rows["dist_other"].append(float(np.linalg.norm(out.descriptor - other)))
            rows["pose"].append(pose_error_deg(out.landmarks, original.landmarks, (CROP, CROP)))
            rows["expr"].append(expression_error(out.landmarks, original.landmarks))
        return label, rows

    # Ordinary swaps of the same photos: each to a random other held-out person.
    sources = []
    for index, name in enumerate(names):
        other_index = (index + 1 + int(rng.integers(len(names) - 1))) % len(names)
        sources.append(swapper.embed(people[names[other_index]][0]))
    results = [measure("ordinary swap (random held-out source)",
                       [SelectionPlan(source=s) for s in sources])]
    synthetic_units: dict[float, list[np.ndarray]] = {}
    for strength in args.strengths:
        plan = _plan(swapper, args, strength)
        synthetic_units[strength] = []
        started = time.perf_counter()
        results.append(measure(f"anonymize --strength {strength:g}",
                               [plan] * len(originals), synthetic_units[strength]))
        print(f"  strength {strength:g}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    if args.without_kept_axes:  # what the kept axes change
        plan = _plan(swapper, args, args.video_strength, kept_axes=False)
        results.append(measure(f"anonymize --strength {args.video_strength:g}, no kept axes",
                               [plan] * len(originals)))

    same_person = [float(np.linalg.norm(o[4].descriptor - o[5])) for o in originals
                   if o[5] is not None]
    # two different real people: each original against the next one
    neighbours_pairs = list(zip(originals, originals[1:] + originals[:1]))
    different = [float(np.linalg.norm(a[4].descriptor - b[4].descriptor))
                 for a, b in neighbours_pairs]
    different_facenet = [float(a[3] @ b[3]) for a, b in neighbours_pairs]
    print(f"\n## Photos: {len(originals)} held-out LFW people ({args.split} set, first photo), "
          f"{len(same_person)} with a second photo\n")
    print("| | dlib dist. to the original (mean) | > 0.6 (goal >= 95 %) | > 0.6 from another "
          "photo of the person | FaceNet cosine to the original (mean) | pose error (deg, "
          "mean) | expression error (% IOD, mean) | faces left untouched |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| two real photos of one person | {_mean(same_person)} | "
          f"{_pct(same_person, lambda v: v > 0.6)} | | | | | |")
    print(f"| two different real people | {_mean(different)} | "
          f"{_pct(different, lambda v: v > 0.6)} | | {_mean(different_facenet)} | | | |")
    for label, rows in results:
        print(f"| {label} | {_mean(rows['dist'])} | {_pct(rows['dist'], lambda v: v > 0.6)} | "
              f"{_pct(rows['dist_other'], lambda v: v > 0.6)} | {_mean(rows['facenet'])} | "
              f"{_mean(rows['pose'])} | {_mean(rows['expr'])} | {rows['untouched']} |")

    real = np.stack([o[3] for o in originals])
    print(f"\n## Nearest real person (FaceNet cosine to the nearest of {len(pool)} LFW training "
          "people; lower = further from every real person)\n")
    print("| | mean | max |")
    print("|---|---|---|")
    nearest = (real @ pool.T).max(axis=1)
    print(f"| real held-out people | {nearest.mean():.3f} | {nearest.max():.3f} |")
    for strength, units in synthetic_units.items():
        if units:
            nearest = (np.stack(units) @ pool.T).max(axis=1)
            own = np.sum(np.stack(units) * real[:len(units)], axis=1) \
                if len(units) == len(real) else None
            print(f"| synthetic, --strength {strength:g} | {nearest.mean():.3f} | "
                  f"{nearest.max():.3f} |" + (f" (to the person's own: {own.mean():.3f})"
                                             if own is not None else ""))


def linkability(args, swapper, options, dlib_face) -> None:
    """Two different photos of one held-out person, anonymized as two separate jobs: does dlib
    link the two results (distance < 0.6) when both jobs used the same key, and when they
    used different keys (the default: a fresh key per run)?"""
    from facedancer_torch.io.images import read_image

    people, _, chosen, _ = _split(args)
    pairs = [people[name][:2] for name in chosen if len(people[name]) > 1]
    strength = args.video_strength
    keys = {"": (_plan(swapper, args, strength),
                 _plan(swapper, args, strength, seed=args.seed + 1))}
    if args.without_kept_axes:
        keys[", no kept axes"] = (_plan(swapper, args, strength, kept_axes=False),
                                  _plan(swapper, args, strength, seed=args.seed + 1,
                                        kept_axes=False))
    rows = {"original photos": []}
    for first, second in pairs:
        images = [read_image(first), read_image(second)]
        faces = [swapper.detect(image) for image in images]
        if not all(faces):
            continue
        faces = [_central_face(f, image) for f, image in zip(faces, images)]

        def descriptor(image, face):
            return _analyse(dlib_face, image, face.landmarks).descriptor

        def anonymized(index, plan):
            return descriptor(swapper.swap_image(images[index], plan, options), faces[index])

        base = [descriptor(image, face) for image, face in zip(images, faces)]
        rows["original photos"].append(float(np.linalg.norm(base[0] - base[1])))
        for suffix, (key, other_key) in keys.items():
            one = anonymized(0, key)
            for label, plan in (("same key", key), ("different keys", other_key)):
                rows.setdefault(label + suffix, []).append(
                    float(np.linalg.norm(one - anonymized(1, plan))))
    print(f"\n## Linking two files: two photos of each of {len(rows['same key'])} held-out "
          f"people anonymized separately, --strength {strength:g}\n")
    print("| | dlib distance between the two (mean) | dlib links them (< 0.6) |")
    print("|---|---|---|")
    for label, values in rows.items():
        print(f"| {label} | {_mean(values)} | {_pct(values, lambda v: v < 0.6)} |")


def figure(args, swapper, options) -> None:
    """``--figure PATH``: original | anonymized without the kept axes | anonymized (the
    benchmark's plans at ``--video-strength``) for the first ``--figure-people`` of the split,
    as aligned head crops; written with the synthetic-media tag."""
    from facedancer_torch.faces.align import align_face
    from facedancer_torch.io.provenance import provenance_tag, write_image_with_provenance

    people, _, chosen, _ = _split(args)
    plans = [_plan(swapper, args, args.video_strength, kept_axes=False),
             _plan(swapper, args, args.video_strength)]
    rows = []
    for _, image, face in _first_photos(swapper, people, chosen):
        tiles = [image] + [swapper.swap_image(image, plan, options) for plan in plans]
        rows.append(np.concatenate([align_face(tile, face.landmarks, 192, shrink_factor=0.6)[0]
                                    for tile in tiles], axis=1))
        if len(rows) == args.figure_people:
            break
    if not rows:
        sys.exit("--figure: no face found in the split's photos")
    count = len(rows)
    if count > 1 and count % 2:  # two columns of rows, the shorter one ends in a blank row
        rows.append(np.zeros_like(rows[0]))
    half = len(rows) // 2 if count > 1 else 1
    grid = np.concatenate([np.concatenate(rows[:half]), *([np.concatenate(rows[half:])]
                                                          if count > 1 else [])], axis=1)
    write_image_with_provenance(args.figure, grid, provenance_tag(swapper.model_name,
                                                                  operation="anonymize"),
                                quality=88)
    print(f"\n{args.figure}: original | --strength {args.video_strength:g} without kept axes | "
          f"--strength {args.video_strength:g}, {count} people of the {args.split} set")


def videos(args, swapper, options, dlib_face) -> None:
    from facedancer_torch.faces.detect import largest_face
    from facedancer_torch.io.video import read_frames

    folder = shared_path("data", "videos")
    print(f"\n## Videos: first {args.frames} frames, --strength {args.video_strength:g}\n")
    print("| clip | frames with a face | same person across frames: pairs < 0.5 (goal >= 90 %)"
          " | original clip: pairs < 0.5 | anonymized vs original frame: > 0.6 |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for clip in CLIPS:
            path = folder / clip
            if not path.is_file():
                continue
            plan = _plan(swapper, args, args.video_strength)
            output = Path(tmp) / f"{path.stem}.mp4"
            swapper.swap_video_file(path, output, plan,
                                    options.replace(max_frames=args.frames, overwrite=True),
                                    progress=False)
            anonymized, original, versus = [], [], []
            for before, after in zip(read_frames(path, max_frames=args.frames),
                                     read_frames(output, max_frames=args.frames)):
                face = largest_face(swapper.detect(before.rgb))
                if face is None:
                    continue
                a = _analyse(dlib_face, after.rgb, face.landmarks).descriptor
                o = _analyse(dlib_face, before.rgb, face.landmarks).descriptor
                anonymized.append(a)
                original.append(o)
                versus.append(float(np.linalg.norm(a - o)))

            def pairs(descriptors):
                return [float(np.linalg.norm(a - b))
                        for a, b in itertools.combinations(descriptors, 2)]

            print(f"| {clip} | {len(anonymized)} | {_pct(pairs(anonymized), lambda v: v < 0.5)}"
                  f" (mean {_mean(pairs(anonymized))}) | "
                  f"{_pct(pairs(original), lambda v: v < 0.5)} | "
                  f"{_pct(versus, lambda v: v > 0.6)} (mean {_mean(versus)}) |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model directory or name (default: the demo model)")
    parser.add_argument("--population", help="identity population file (default: shipped)")
    parser.add_argument("--strengths", type=float, nargs="+", default=None,
                        help="strengths measured on photos (default: 0.5, 0.75 and the default)")
    parser.add_argument("--video-strength", type=float, default=None,
                        help="strength for the videos (default: the CLI's default)")
    parser.add_argument("--people", type=int, default=80, help="held-out LFW people")
    parser.add_argument("--split", choices=("test", "tune"), default="test",
                        help="which held-out people: the test set, or the disjoint set the "
                        "default strength was chosen on")
    parser.add_argument("--neighbours", type=int, default=1000,
                        help="LFW training people for the nearest-person check")
    parser.add_argument("--frames", type=int, default=48, help="frames per video (0: none)")
    parser.add_argument("--seed", type=int, default=0, help="anonymize --seed and sampling")
    parser.add_argument("--mask", default=None, help="--mask of the swap (default: the CLI's)")
    parser.add_argument("--without-kept-axes", action=argparse.BooleanOptionalAction,
                        default=True, help="also measure the photos at the --video-strength "
                        "with the population's kept axes (pose, expression) dropped")
    parser.add_argument("--figure", type=Path, help="also write original | without kept axes"
                        " | anonymized crops of the first --figure-people to this image")
    parser.add_argument("--figure-people", type=int, default=8, help="people in --figure")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--sections", nargs="+", default=["photos", "linkability", "videos"],
                        choices=["photos", "linkability", "videos"], help="what to measure")
    args = parser.parse_args()

    from facedancer_torch.evaluate.dlib_face import get_dlib_face
    from facedancer_torch.swap.anonymize import DEFAULT_STRENGTH, anonymize_options
    from facedancer_torch.swap.pipeline import Swapper

    torch.set_num_threads(args.threads)
    lfw = shared_path("data", "lfw", "images")
    if lfw is None:
        sys.exit("benchmarks/anonymize.py needs ../shared/data/lfw (or $FACEDANCER_SHARED)")
    args.lfw = lfw
    args.strengths = args.strengths or sorted({0.5, 0.75, DEFAULT_STRENGTH})
    args.video_strength = DEFAULT_STRENGTH if args.video_strength is None \
        else args.video_strength
    swapper = Swapper(args.model, device="cpu")
    options = anonymize_options(watermark=False)
    if args.mask:
        options = options.replace(mask=args.mask)
    dlib_face = get_dlib_face()
    print(f"model {swapper.model_name}, encoder {swapper.encoder_name}, mask {options.mask}, "
          f"seed {args.seed}")
    started = time.perf_counter()
    if args.people > 0 and "photos" in args.sections:
        photos(args, swapper, options, dlib_face)
    if args.people > 0 and "linkability" in args.sections:
        linkability(args, swapper, options, dlib_face)
    if args.figure is not None:
        figure(args, swapper, options)
    if args.frames > 0 and "videos" in args.sections:
        videos(args, swapper, options, dlib_face)
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
