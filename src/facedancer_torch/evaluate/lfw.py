"""LFW verification accuracy of a recognition network (a sanity check of encoders + alignment).

Protocol (Huang et al. 2007, "unrestricted, labeled outside data"): ``pairs.txt`` holds 10
folds of 300 same-person and 300 different-person pairs. Each image is re-detected and
re-aligned with the project's own detector and ArcFace-template alignment (docs/reference.md §1),
exactly as faces reach the encoders during training, swapping and evaluation; a pair's score
is the cosine similarity of the two embeddings. For each fold the threshold that maximises
accuracy on the other 9 folds is applied to it; the accuracy is the mean over the 10 folds.

A wrong alignment (channel order, template, shrink factor) shows up here as an accuracy far
below the encoder's published one, which is the point of the check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import InputError
from ..faces.align import align_face
from ..faces.detect import get_detector
from ..io.images import read_image
from .recognition import load_recognizer

# Aligned crops for the check: 256 px with shrink 0.5 keeps the whole head, which dlib's
# chips need, and every encoder re-frames it to its own contract.
CROP_SIZE: int = 256
CROP_SHRINK: float = 0.5


@dataclass(frozen=True)
class LfwPair:
    """One verification pair: image paths relative to the images folder, label, fold (0-9)."""

    left: str
    right: str
    same: bool
    fold: int


def _image_name(name: str, number: str) -> str:
    return f"{name}/{name}_{int(number):04d}.jpg"


def read_pairs(pairs_file: str | Path, limit: int | None = None) -> list[LfwPair]:
    """Parse an LFW ``pairs.txt`` (header ``folds<TAB>n``, then per fold n same + n different).

    ``limit`` keeps a balanced subset of about that many pairs: the first
    ``ceil(limit / (2 * folds))`` same and different pairs of every fold, in file order.
    """
    pairs_file = Path(pairs_file)
    if not pairs_file.is_file():
        raise InputError("LFW pairs file does not exist", pairs_file)
    lines = [line.split() for line in pairs_file.read_text().splitlines() if line.strip()]
    try:
        folds, per_fold = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError) as exc:
        raise InputError("not an LFW pairs file: the first line must be '<folds> <n>'",
                         pairs_file) from exc
    body = lines[1:]
    if len(body) != folds * 2 * per_fold:
        raise InputError(f"expected {folds * 2 * per_fold} pairs after the header, found "
                         f"{len(body)}", pairs_file)
    keep = per_fold if limit is None else max(1, math.ceil(limit / (2 * folds)))
    pairs: list[LfwPair] = []
    for index, fields in enumerate(body):
        fold, position = divmod(index, 2 * per_fold)
        same = position < per_fold
        if (position if same else position - per_fold) >= keep:
            continue
        if same and len(fields) == 3:
            pairs.append(LfwPair(_image_name(fields[0], fields[1]),
                                 _image_name(fields[0], fields[2]), True, fold))
        elif not same and len(fields) == 4:
            pairs.append(LfwPair(_image_name(fields[0], fields[1]),
                                 _image_name(fields[2], fields[3]), False, fold))
        else:
            raise InputError(f"line {index + 2} is not a {'same' if same else 'different'}-"
                             f"person pair: {' '.join(fields)}", pairs_file)
    return pairs


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold ``t`` maximising the accuracy of ``score > t`` (ties: the smallest).

    Candidates are the midpoints between consecutive sorted scores (and the two ends), so the
    maximum over all thresholds is found exactly, in O(n log n).
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_same = scores[order], same[order]
    # Threshold just below sorted_scores[i]: pairs 0..i-1 predicted "different".
    different_below = np.concatenate([[0], np.cumsum(~sorted_same)])
    same_above = np.concatenate([[0], np.cumsum(sorted_same[::-1])])[::-1]
    correct = different_below + same_above
    # Only positions between distinct scores are real thresholds.
    valid = np.concatenate([[True], sorted_scores[1:] > sorted_scores[:-1], [True]])
    correct = np.where(valid, correct, -1)
    best = int(np.argmax(correct))
    if best == 0:
        return float(sorted_scores[0] - 1e-6)
    if best == len(scores):
        return float(sorted_scores[-1])
    return float((sorted_scores[best - 1] + sorted_scores[best]) / 2.0)


def kfold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> dict:
    """10-fold protocol: threshold on the other folds, accuracy on each fold.

    Returns ``accuracy`` (mean over folds), ``std``, ``fold_accuracies`` and ``thresholds``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    folds = np.asarray(folds)
    accuracies, thresholds = [], []
    for fold in sorted(set(folds.tolist())):
        test = folds == fold
        train = ~test
        if not train.any():  # a single fold: the threshold can only come from itself
            train = test
        threshold = best_threshold(scores[train], same[train])
        accuracies.append(float(np.mean((scores[test] > threshold) == same[test])))
        thresholds.append(threshold)
    return {"accuracy": float(np.mean(accuracies)), "std": float(np.std(accuracies)),
            "fold_accuracies": accuracies, "thresholds": thresholds}


def align_images(paths: Sequence[Path], detector=None, size: int = CROP_SIZE,
                 shrink: float = CROP_SHRINK) -> tuple[list[np.ndarray], list[str]]:
    """Detect and align each image; the face nearest the image centre is the subject.

    Images without a detected face are aligned with the mean landmarks of the detected ones
    (LFW faces are centred, so this is close); their paths are returned as the second value.
    """
    detector = detector or get_detector()
    crops: list[np.ndarray | None] = []
    found: list[np.ndarray] = []
    missing: dict[int, np.ndarray] = {}  # only undetected images are kept in memory
    for index, path in enumerate(tqdm(paths, desc="detect", leave=False)):
        image = read_image(path)
        faces = detector.detect(image)
        if not faces:
            missing[index] = image
            crops.append(None)
            continue
        centre = np.array([image.shape[1], image.shape[0]], dtype=np.float64) / 2.0

        def distance(face):
            box = np.asarray(face.box, dtype=np.float64)
            return float(np.linalg.norm((box[:2] + box[2:]) / 2.0 - centre))

        landmarks = np.asarray(min(faces, key=distance).landmarks, dtype=np.float64)
        found.append(landmarks)
        crops.append(align_face(image, landmarks, size, shrink)[0])
    if not found:
        raise InputError("no face was detected in any of the images", Path(paths[0]).parent)
    mean_landmarks = np.mean(found, axis=0)
    for index, image in missing.items():
        crops[index] = align_face(image, mean_landmarks, size, shrink)[0]
    return crops, [str(paths[i]) for i in sorted(missing)]


def resolve_images_dir(images_dir: str | Path) -> Path:
    """``DIR`` holding ``<Name>/<Name>_NNNN.jpg``; ``DIR/images`` is accepted too."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise InputError("LFW images folder does not exist", images_dir)
    if (images_dir / "images").is_dir() and not any(
            p.suffix.lower() == ".jpg" for p in images_dir.glob("*/*.jpg")):
        return images_dir / "images"
    return images_dir


def evaluate_lfw(images_dir: str | Path, pairs_file: str | Path,
                 encoders: Sequence[str] = ("default",), limit: int | None = None,
                 device: str = "auto", detector=None) -> dict:
    """LFW 10-fold verification accuracy of each encoder (``"dlib"`` or an identity encoder).

    Returns ``{"accuracy": <first encoder's>, "encoders": {name: {accuracy, std, ...}},
    "n_pairs", "n_images", "detection_failures", ...}``.
    """
    images_dir = resolve_images_dir(images_dir)
    pairs = read_pairs(pairs_file, limit)
    names = sorted({p.left for p in pairs} | {p.right for p in pairs})
    paths = [images_dir / name for name in names]
    absent = [p for p in paths if not p.is_file()]
    if absent:
        raise InputError(f"{len(absent)} image(s) of the pairs file are missing, e.g. "
                         f"{absent[0].relative_to(images_dir)}", images_dir)
    recognizers = [load_recognizer(name, device) for name in encoders]
    crops, missing = align_images(paths, detector)
    index = {name: i for i, name in enumerate(names)}
    left = np.array([index[p.left] for p in pairs])
    right = np.array([index[p.right] for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    results: dict[str, dict] = {}
    for requested, recognizer in zip(encoders, recognizers):
        embeddings = recognizer.embed_crops(crops, CROP_SHRINK, progress=recognizer.name)
        scores = np.sum(embeddings[left] * embeddings[right], axis=1)
        result = kfold_accuracy(scores, same, folds)
        result["encoder"] = recognizer.name
        result["requested"] = str(requested)
        result["mean_cosine_same"] = float(scores[same].mean())
        result["mean_cosine_different"] = float(scores[~same].mean())
        results[recognizer.name] = result
    first = results[recognizers[0].name]
    return {"accuracy": first["accuracy"], "std": first["std"], "encoder": first["encoder"],
            "encoders": results, "n_pairs": len(pairs), "n_same": int(same.sum()),
            "n_folds": int(len(set(folds.tolist()))), "n_images": len(names),
            "detection_failures": len(missing), "undetected_images": missing,
            "pairs_file": str(pairs_file), "images_dir": str(images_dir),
            "alignment": {"template": "arcface", "size": CROP_SIZE, "shrink": CROP_SHRINK,
                          "detector": getattr(detector, "name", "retinaface")}}
