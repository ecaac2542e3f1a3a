"""The evaluation protocol of the paper (docs/reference.md §8) on a test set of aligned crops.

1. **Pairing** (:func:`make_pairs`): each target test image gets a source image of another
   identity, drawn with a seeded generator and written to ``pairs.json``, so every model is
   scored on the same pairs.
2. **Swaps** (:func:`generate_swaps`): the generator runs directly on the aligned crops. The
   target crop is re-framed to the generator's own crop (size, shrink) with the template
   points, the source identity is the raw embedding of the source crop by the generator's
   identity encoder (the one in its config unless overridden), and the output is pasted back
   into the target crop through the reference's soft box mask (§7), so metrics see what a user
   sees. Swaps made elsewhere can be scored instead (:func:`load_swaps`): a folder of crops of
   the test set's size plus a ``pairs.json``.
3. **Metrics** (:func:`evaluate_swaps`): ID retrieval with dlib's descriptor (independent of
   every generator here), identity cosines with each encoder, pose and expression errors from
   dlib's 68 landmarks, and non-standard FD/KID on the default identity encoder's features.

``pairs.json``::

    {"format": "facedancer-pairs/1", "seed": 0, "testset": "<folder>",
     "pairs": [{"target": "images/a/x.png", "source": "images/b/y.png", "swap": "000000.png"}]}

``target``/``source`` are relative to the test set, ``swap`` to the folder of ``pairs.json``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .. import __version__
from ..errors import FacedancerError, InputError
from ..faces.align import paste_back, template_points
from ..io.atomic import atomic_write_text
from ..io.images import read_image, write_image
from ..swap.options import SwapOptions
from ..swap.pipeline import Swapper
from ..swap.source import steer_identity
from .color import CAST_THRESHOLD, color_cast_fraction
from .dlib_face import get_dlib_face
from .expression import expression_distance, expression_embedding
from .fid import frechet_distance, kernel_distance, l2_normalise, standard_fid
from .pose import geodesic_angle_deg, head_rotation
from .recognition import DLIB, Recognizer, load_recognizer
from .report import write_report
from .retrieval import identity_centres, rank_identities, rank_of, top_k_accuracy
from .testset import Testset, load_testset

PAIRS_FILE = "pairs.json"
PAIRS_FORMAT = "facedancer-pairs/1"
RETRIEVAL_NETWORK = "dlib"
FD_ENCODER = "default"


@dataclass(frozen=True)
class Pair:
    """Indices into the test set's images, and the swap file (None until made)."""

    target: int
    source: int
    swap: Path | None = None


# ----------------------------------------------------------------------------- pairing


def make_pairs(testset: Testset, n_pairs: int | None = None, seed: int = 0) -> list[Pair]:
    """A seeded pairing: targets (all images once, or ``n_pairs`` of them; more than the test
    set cycles through it), each with a source drawn uniformly from the other identities."""
    identities = np.array([image.identity for image in testset.images])
    if len(set(identities.tolist())) < 2:
        raise FacedancerError("a test set needs at least two identities to pair", testset.root)
    if n_pairs is not None and n_pairs < 1:
        raise FacedancerError("--pairs must be at least 1")
    rng = np.random.default_rng(seed)
    count = len(identities)
    if n_pairs is None:
        targets = np.arange(count)
    else:
        rounds = math.ceil(n_pairs / count)
        targets = np.concatenate([rng.permutation(count) for _ in range(rounds)])[:n_pairs]
    pairs = []
    for target in targets.tolist():
        candidates = np.flatnonzero(identities != identities[target])
        pairs.append(Pair(int(target), int(rng.choice(candidates))))
    return pairs


def write_pairs(path: Path, testset: Testset, pairs: Sequence[Pair], seed: int | None) -> None:
    """Write ``pairs.json`` (swap paths relative to its folder)."""
    entries = []
    for pair in pairs:
        entry = {"target": testset.images[pair.target].path,
                 "source": testset.images[pair.source].path}
        if pair.swap is not None:
            entry["swap"] = Path(pair.swap).relative_to(path.parent).as_posix()
        entries.append(entry)
    data = {"format": PAIRS_FORMAT, "seed": seed, "testset": str(Path(testset.root).resolve()),
            "pairs": entries}
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


def load_swaps(swaps_dir: str | Path, testset: Testset) -> tuple[list[Pair], int | None]:
    """Pairs (with swap files) of a folder of precomputed swaps and the seed it records."""
    swaps_dir = Path(swaps_dir)
    path = swaps_dir / PAIRS_FILE
    if not path.is_file():
        raise InputError(f"no {PAIRS_FILE} in the swaps folder (it lists target, source and "
                         "swap of every pair)", swaps_dir)
    try:
        data = json.loads(path.read_text())
        entries = data["pairs"]
        index = {image.path: i for i, image in enumerate(testset.images)}
        pairs = []
        for number, entry in enumerate(entries):
            for key in ("target", "source", "swap"):
                if key not in entry:
                    raise InputError(f"pair {number} has no '{key}'", path)
            for key in ("target", "source"):
                if entry[key] not in index:
                    raise InputError(f"pair {number}: {key} '{entry[key]}' is not an image of "
                                     f"the test set {testset.root}", path)
            swap = swaps_dir / entry["swap"]
            if not swap.is_file():
                raise InputError(f"pair {number}: swap file is missing", swap)
            pairs.append(Pair(index[entry["target"]], index[entry["source"]], swap))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"malformed {PAIRS_FILE} ({exc})", path) from exc
    if not pairs:
        raise InputError("the pairs file lists no pairs", path)
    seed = data.get("seed")
    return pairs, seed if isinstance(seed, int) else None


# ----------------------------------------------------------------------------- swapping


def generate_swaps(model: str | Path, testset: Testset, pairs: Sequence[Pair],
                   out_dir: str | Path, identity_encoder: str | Path | None = None,
                   device: str = "auto", batch_size: int = 8, blend: bool = True,
                   seed: int | None = None, progress: bool = True,
                   identity_strength: float | None = None) -> tuple[list[Pair], dict]:
    """Swap every pair with the generator in ``model``; PNGs and ``pairs.json`` in ``out_dir``.

    ``identity_strength`` > 0 conditions the generator on each source embedding pushed away
    from its target's (``swap/source.steer_identity``, as ``facedancer swap
    --identity-strength``), the target embedded from its test-set crop like the sources; None
    = the model's recommendation, as ``facedancer swap`` does.

    Returns the pairs with their swap files and a description of the swapper (model,
    identity encoder, generator crop, blending) for the report.
    """
    swapper = Swapper(model, identity_encoder=identity_encoder, device=device)
    identity_strength = swapper.identity_strength_for(
        SwapOptions(identity_strength=identity_strength))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    points = template_points(testset.size, testset.shrink)
    if swapper.crop_shrink < testset.shrink:
        raise FacedancerError(f"the generator's crop (shrink {swapper.crop_shrink}) is wider "
                              f"than the test set's crops (shrink {testset.shrink}); make the "
                              "test set with a smaller --shrink", testset.root)
    # The reference's soft box (docs/reference.md §7), as the paper's protocol pastes.
    mask = swapper.mask(SwapOptions(mask="box")) if blend else np.ones(
        (swapper.image_size, swapper.image_size), dtype=np.float32)
    provenance = swapper.provenance()  # every swap file says it is synthetic media
    done: list[Pair] = []
    source_cache: dict[int, np.ndarray] = {}
    bar = tqdm(total=len(pairs), desc="swap", unit="pair", disable=not progress)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        new_sources = sorted({p.source for p in chunk} - set(source_cache))
        if new_sources:
            raw = _embed_raw(swapper.encoder, [testset.read(i) for i in new_sources],
                             testset.shrink)
            source_cache.update(zip(new_sources, raw))
        targets, crops, matrices = [], [], []
        for pair in chunk:
            target = testset.read(pair.target)
            # The reference's bilinear crop, as every earlier report was made: reports of one
            # test set stay comparable pair by pair (compare-reports). A test set's crops are
            # 2x the demo generator's, so the swap command's antialiased crop would differ.
            crop, matrix = swapper.align(target, points, antialias=False)
            targets.append(target)
            crops.append(crop)
            matrices.append(matrix)
        embeddings = np.stack([source_cache[p.source] for p in chunk])
        if identity_strength > 0:
            own = _embed_raw(swapper.encoder, targets, testset.shrink)
            embeddings = np.stack([steer_identity(z, t, identity_strength)[0]
                                   for z, t in zip(embeddings, own)])
        swapped = swapper.generate(np.stack(crops), embeddings, batch_size)
        for offset, (pair, target, crop, matrix) in enumerate(zip(chunk, targets, swapped,
                                                                  matrices)):
            result = paste_back(target.copy(), crop, matrix, mask)
            path = out_dir / f"{start + offset:06d}.png"
            write_image(path, result, metadata=provenance)
            done.append(Pair(pair.target, pair.source, path))
        bar.update(len(chunk))
    bar.close()
    write_pairs(out_dir / PAIRS_FILE, testset, done, seed)
    info = {"model": str(swapper.model_dir), "identity_encoder": str(swapper.encoder_name),
            "generator_crop": {"size": swapper.image_size, "shrink": swapper.crop_shrink},
            "blend": "reference soft box mask (section 7)" if blend else "none (whole crop)",
            "identity_strength": float(identity_strength),
            "device": str(swapper.device)}
    return done, info


def _embed_raw(encoder, crops: Sequence[np.ndarray], shrink: float) -> np.ndarray:
    """Raw (not normalised) embeddings ``(N, D)`` of aligned crops made with ``shrink``; the
    encoder cuts its own crop from their centre (``IdentityEncoder.preprocess``)."""
    parameter = next(encoder.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    with torch.inference_mode():
        return encoder.embed(x.to(device), crop_shrink=shrink).float().cpu().numpy()


# ----------------------------------------------------------------------------- measuring


@dataclass
class Measurements:
    """What the metrics need from N aligned crops: dlib's 68 ``landmarks`` (N, 68, 2) and
    unit ``embeddings`` (N, D) per network name (``"dlib"`` always included)."""

    landmarks: np.ndarray
    embeddings: dict[str, np.ndarray]


def measure_crops(read, count: int, shrink: float, recognizers, what: str = "faces",
                  progress: bool = True, chunk: int = 32) -> Measurements:
    """dlib landmarks + descriptor and every recognizer's embedding of ``count`` crops
    (``read(i)`` returns crop ``i``, aligned with ``shrink``), ``chunk`` crops at a time."""
    dlib_face = get_dlib_face()

    landmarks, descriptors = [], []
    embeddings: dict[str, list[np.ndarray]] = {r.name: [] for r in recognizers}
    bar = tqdm(total=count, desc=what, unit="face", disable=not progress)
    for start in range(0, count, chunk):
        crops = [read(i) for i in range(start, min(start + chunk, count))]
        for crop in crops:
            analysis = dlib_face.analyse_crop(crop, shrink)
            landmarks.append(analysis.landmarks)
            descriptors.append(analysis.descriptor)
        for recognizer in recognizers:
            embeddings[recognizer.name].append(recognizer.embed_crops(crops, shrink))
        bar.update(len(crops))
    bar.close()

    result = {name: np.concatenate(parts).astype(np.float32) for name, parts in embeddings.items()}
    result[RETRIEVAL_NETWORK] = l2_normalise(np.stack(descriptors)).astype(np.float32)
    return Measurements(np.stack(landmarks), result)


def measure_testset(testset: Testset, recognizers, progress: bool = True) -> Measurements:
    """:func:`measure_crops` of every real image of a test set (reusable across evaluations
    of the same test set; pass it as ``real`` to :func:`evaluate_swaps`)."""
    return measure_crops(testset.read, len(testset.images), testset.shrink, recognizers,
                         "real faces", progress)


def _stats(values: np.ndarray) -> dict:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "median": float(np.median(values)),
            "std": float(values.std()), "min": float(values.min()), "max": float(values.max())}


def _check_swap_sizes(pairs: Sequence[Pair], size: int, error) -> None:
    """Read only the headers of the swap files and raise ``error(path, w, h)`` on a mismatch."""
    for pair in pairs:
        try:
            with Image.open(pair.swap) as image:
                width, height = image.size
        except Exception:  # unreadable files are reported by read_image, with their reason
            continue
        if (width, height) != (size, size):
            raise error(Path(pair.swap), width, height)


def load_encoders(names: Sequence[str | Path], device: str = "auto") -> list:
    """Identity-encoder recognizers for the cosine metrics, one per distinct network."""
    recognizers, seen = [], set()
    for name in names:
        if str(name).lower() == DLIB:
            continue  # dlib is always measured, from the same analysis as the landmarks
        recognizer = load_recognizer(name, device)
        if recognizer.name in seen:
            continue
        seen.add(recognizer.name)
        recognizers.append(recognizer)
    return recognizers


def _hull_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the convex hull of 68 landmarks."""
    mask = np.zeros(size, np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def evaluate_swaps(testset: Testset, pairs: Sequence[Pair], encoders: Sequence = (FD_ENCODER,),
                   device: str = "auto", kid_subsets: int = 100, seed: int = 0,
                   progress: bool = True, real: Measurements | None = None) -> dict:
    """All metrics of §8 for swaps already on disk (``pair.swap`` set for every pair).

    ``encoders``: identity encoders (names, or recognizers from :func:`load_encoders`) for the
    cosine metrics; dlib is always added. The first is also the feature extractor of the
    non-standard FD/KID. ``real``: :func:`measure_testset` of this test set with the same
    encoders, if already computed. Returns the ``metrics`` and ``samples`` of the report.
    """
    if not pairs:
        raise FacedancerError("nothing to evaluate: no pairs")
    if all(isinstance(e, Recognizer) for e in encoders):
        recognizers = list(encoders)
    else:
        recognizers = load_encoders(encoders, device)

    def size_error(path: Path, width: int, height: int) -> InputError:
        return InputError(f"swap is {width}x{height}; swaps must be crops of the test set's "
                          f"size {testset.size}x{testset.size}", path)

    _check_swap_sizes(pairs, testset.size, size_error)  # fail before minutes of measuring

    def read_swap(i: int) -> np.ndarray:
        image = read_image(pairs[i].swap)
        if image.shape[:2] != (testset.size, testset.size):
            raise size_error(pairs[i].swap, image.shape[1], image.shape[0])
        return image

    if real is None:
        real = measure_testset(testset, recognizers, progress)
    elif len(real.landmarks) != len(testset.images) or any(
            r.name not in real.embeddings for r in recognizers):
        raise ValueError("'real' measurements do not match this test set and these encoders")
    fake = measure_crops(read_swap, len(pairs), testset.shrink, recognizers, "swaps", progress)
    size = (testset.size, testset.size)
    targets = np.array([p.target for p in pairs])
    sources = np.array([p.source for p in pairs])
    names = [image.identity for image in testset.images]

    # ID retrieval against identity centres of the real test images.
    retrieval: dict[str, dict] = {}
    source_ranks = target_ranks = None
    for name in fake.embeddings:
        centre_names, centres = identity_centres(real.embeddings[name], names)
        order, _ = rank_identities(fake.embeddings[name], centres)
        s_ranks = rank_of(order, centre_names, [names[i] for i in sources])
        t_ranks = rank_of(order, centre_names, [names[i] for i in targets])
        retrieval[name] = {"top1": top_k_accuracy(s_ranks, 1), "top5": top_k_accuracy(s_ranks, 5),
                           "target_top1": top_k_accuracy(t_ranks, 1)}
        if name == RETRIEVAL_NETWORK:
            source_ranks, target_ranks = s_ranks, t_ranks
    identities = len(set(names))

    # Identity cosines (all embeddings are unit vectors).
    cosines: dict[str, dict] = {}
    per_sample_cos: dict[str, dict[str, np.ndarray]] = {}
    for name in fake.embeddings:
        swap_e, real_e = fake.embeddings[name], real.embeddings[name]
        values = {"swap_source": np.sum(swap_e * real_e[sources], axis=1),
                  "swap_target": np.sum(swap_e * real_e[targets], axis=1),
                  "source_target": np.sum(real_e[sources] * real_e[targets], axis=1)}
        per_sample_cos[name] = values
        cosines[name] = {key: float(v.mean()) for key, v in values.items()}

    # Pose and expression from the 68 landmarks.
    real_rot = {i: head_rotation(real.landmarks[i], size) for i in set(targets) | set(sources)}
    fake_rot = [head_rotation(lm, size) for lm in fake.landmarks]
    pose = np.array([geodesic_angle_deg(real_rot[t], r) for t, r in zip(targets, fake_rot)])
    pose_base = np.array([geodesic_angle_deg(real_rot[t], real_rot[s])
                          for t, s in zip(targets, sources)])
    real_expr = {i: expression_embedding(real.landmarks[i]) for i in set(targets) | set(sources)}
    expr = np.array([expression_distance(real_expr[t], expression_embedding(lm))
                     for t, lm in zip(targets, fake.landmarks)])
    expr_base = np.array([expression_distance(real_expr[t], real_expr[s])
                          for t, s in zip(targets, sources)])

    # Colour casts inside the target's face (convex hull of its 68 dlib landmarks: jaw,
    # brows, eyes, nose, mouth), on the aligned crops, swap against its own target.
    cast = np.array([color_cast_fraction(testset.read(t), read_swap(k),
                                         _hull_mask(real.landmarks[t], size))
                     for k, t in enumerate(targets)])

    # Non-standard FD / KID on the first identity encoder's (unit) features.
    fd_name = recognizers[0].name if recognizers else RETRIEVAL_NETWORK
    fd_value = kid = None
    if len(pairs) >= 2:
        fd_value = frechet_distance(fake.embeddings[fd_name], real.embeddings[fd_name])
        kid = kernel_distance(fake.embeddings[fd_name], real.embeddings[fd_name],
                              subsets=kid_subsets, seed=seed)

    primary = retrieval[RETRIEVAL_NETWORK]
    metrics = {
        "id_retrieval": {
            "network": RETRIEVAL_NETWORK, "top1": primary["top1"], "top5": primary["top5"],
            "target_top1": primary["target_top1"], "identities": identities,
            "chance_top1": 1.0 / identities, "chance_top5": min(5, identities) / identities,
            "by_network": retrieval},
        "pose_error_deg": {**_stats(pose), "baseline_target_source": _stats(pose_base),
                           "method": "geodesic angle between solvePnP head rotations "
                                     "(68 dlib landmarks, generic 3D face)"},
        "expression_error": {**_stats(expr), "baseline_target_source": _stats(expr_base),
                             "unit": "percent of inter-ocular distance",
                             "method": "RMS distance of pose-normalised brow/eye/mouth "
                                       "landmarks (dlib 68)"},
        "identity_cosine": cosines,
        "color_cast": {**_stats(cast), "pairs_over_1pct": float(np.mean(cast > 0.01)),
                       "unit": "fraction of face pixels",
                       "method": "a* or b* (CIE-Lab) warm in the target and cold in the swap "
                                 f"by more than {CAST_THRESHOLD:g} (evaluate.color); face = "
                                 "convex hull of the target's 68 dlib landmarks"},
        "fd_nonstandard": {"value": fd_value, "encoder": fd_name, "n_swaps": len(pairs),
                           "n_real": len(testset.images),
                           "note": "Fréchet distance on L2-normalised identity-encoder "
                                   "embeddings; NOT the standard Inception FID"},
        "kid_nonstandard": {"mean": None if kid is None else kid[0],
                            "std": None if kid is None else kid[1], "encoder": fd_name,
                            "subsets": kid_subsets, "kernel": "(cos + 1)^3",
                            "note": "NOT the standard Inception KID"},
        "fid": {"value": None, "note": "standard Inception FID needs TF-Inception weights, "
                                       "which this project does not ship"},
    }
    samples = []
    for k, pair in enumerate(pairs):
        sample = {"target": testset.images[pair.target].path,
                  "source": testset.images[pair.source].path,
                  "swap": str(pair.swap), "source_identity": names[pair.source],
                  "target_identity": names[pair.target],
                  "source_rank": int(source_ranks[k]), "target_rank": int(target_ranks[k]),
                  "pose_error_deg": float(pose[k]), "expression_error": float(expr[k]),
                  "pose_baseline_deg": float(pose_base[k]),
                  "expression_baseline": float(expr_base[k]),
                  "color_cast": float(cast[k]),
                  "cosine": {name: {key: float(v[k]) for key, v in values.items()}
                             for name, values in per_sample_cos.items()}}
        samples.append(sample)
    return {"metrics": metrics, "samples": samples}


# ----------------------------------------------------------------------------- the command


def run_evaluation(testset_dir: str | Path, out_dir: str | Path, *, model: str | Path | None = None,
                   swaps_dir: str | Path | None = None, n_pairs: int | None = None,
                   seed: int = 0, identity_encoder: str | Path | None = None,
                   encoders: Sequence[str] = (), inception_weights: str | Path | None = None,
                   device: str = "auto", batch_size: int = 8, blend: bool = True,
                   examples: int = 8, overwrite: bool = False, progress: bool = True,
                   identity_strength: float | None = None) -> dict:
    """``facedancer evaluate``: pair, swap (or read swaps), measure, write the report.

    Exactly one of ``model`` (a generator directory or catalogue name) and ``swaps_dir``
    (precomputed swaps with ``pairs.json``). Writes ``report.json``, ``report.md``,
    ``plots/*.png`` and ``examples.png`` into ``out_dir`` (and ``swaps/`` when generating).
    """
    if (model is None) == (swaps_dir is None):
        raise FacedancerError("give either --model (swap with a generator) or --swaps (score "
                              "precomputed swaps), not both or neither")
    if inception_weights is not None:
        standard_fid(inception_weights)  # raises: not supported, clearly
    SwapOptions(identity_strength=identity_strength)  # its range, worded as for swap
    out_dir = Path(out_dir)
    if (out_dir / "report.json").exists() and not overwrite:
        raise FacedancerError("already holds a report; pass --overwrite or another --out",
                              out_dir)
    testset = load_testset(testset_dir)
    swapper_info: dict = {}
    if swaps_dir is not None:
        if n_pairs is not None:
            raise FacedancerError("--pairs cannot be used with --swaps: the pairing is the one "
                                  f"recorded in {Path(swaps_dir) / PAIRS_FILE}")
        pairs, recorded_seed = load_swaps(swaps_dir, testset)
        pairing_seed = recorded_seed
        pairs_file = Path(swaps_dir) / PAIRS_FILE
        swapper_info = {"precomputed_swaps": str(Path(swaps_dir).resolve())}
        generator_encoder = None
    else:
        pairs = make_pairs(testset, n_pairs, seed)
        pairs, swapper_info = generate_swaps(model, testset, pairs, out_dir / "swaps",
                                             identity_encoder, device, batch_size, blend,
                                             seed, progress, identity_strength)
        pairing_seed = seed
        pairs_file = out_dir / "swaps" / PAIRS_FILE
        generator_encoder = swapper_info["identity_encoder"]
    encoder_names: list[str] = [FD_ENCODER]
    if generator_encoder is not None:
        encoder_names.append(generator_encoder)
    encoder_names.extend(encoders)
    result = evaluate_swaps(testset, pairs, encoder_names, device=device, seed=seed,
                            progress=progress)
    for sample in result["samples"]:
        sample["swap"] = os.path.relpath(sample["swap"], pairs_file.parent)
    report = {
        "format": "facedancer-evaluation/1",
        "tool": f"facedancer-torch {__version__}",
        "synthetic_media": "the swaps scored here are synthetic images",
        "testset": {"path": str(Path(testset_dir).resolve()), "images": len(testset.images),
                    "identities": len(testset.identities),
                    "crop": {"size": testset.size, "shrink": testset.shrink}},
        "swaps": swapper_info,
        "pairing": {"seed": pairing_seed, "pairs": len(pairs),
                    "file": str(pairs_file.resolve())},
        "metric_seed": seed,
        **result,
    }
    write_report(report, testset, pairs, out_dir, examples=examples)
    return report
