"""Training data and loop of the occlusion-aware face segmenter (:mod:`..faces.occlusion`).

Labels come from clean LFW photos: each photo is detected and aligned exactly as the swapper
aligns (``align_face(..., shrink_factor=1.0)``, ArcFace template), dlib's 68 landmarks on the
aligned crop give the face region (:func:`..faces.occlusion.face_region_mask`), and occluders
are pasted on synthetically, each with its own mask, the usual way occlusion masks are trained
when no labelled occlusion data is at hand:

* textured polygons and ellipses cut from other LFW photos, or flat shaded objects (balls...);
* hand-like blobs (palm + fingers) in skin colour, taken from this or another face: skin on
  skin is the hard case;
* microphones: a dark rod with a meshed ball head, near the mouth;
* surgical masks (light blue, white, black) over the lower face, with pleats and straps;
* sunglasses and clear glasses (only the frame is an occluder for clear glasses);
* hair: thin strands and locks falling over the forehead and eyes.

Then colour jitter, blur, noise, down-up sampling and JPEG. The face target is the hull of the
*clean* landmarks, so the network learns to predict the face region under the occluder too.

Identities whose ``crc32(name) % 10 == 0`` are held out (:func:`is_held_out`) for the benchmark.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..data.occluders import (EDGE_KINDS, PAINTERS, paint_face_mask, paint_glasses,  # noqa: F401
                              paint_hair, paint_hand, paint_microphone, paint_object,
                              paint_occluders, paint_text)
from ..errors import InputError
from ..faces.occlusion import face_region_mask

HELD_OUT_MODULO = 10


def is_held_out(identity: str) -> bool:
    """True for the ~10 % of LFW identities kept out of training (stable across runs)."""
    return zlib.crc32(identity.encode("utf-8")) % HELD_OUT_MODULO == 0


def list_lfw(lfw_images: str | Path, held_out: bool, limit: int, seed: int) -> list[Path]:
    """Up to ``limit`` LFW photos (``<Name>/<Name>_NNNN.jpg``) of the training (or held-out)
    identities, at most 3 per identity for variety, in a seeded random order."""
    root = Path(lfw_images)
    if not root.is_dir():
        raise InputError("LFW images folder not found", root)
    rng = np.random.default_rng(seed)
    people = sorted(p for p in root.iterdir() if p.is_dir() and is_held_out(p.name) == held_out)
    rng.shuffle(people)
    files: list[Path] = []
    for person in people:
        files.extend(sorted(person.glob("*.jpg"))[:3])
        if len(files) >= limit * 2:
            break
    files = [files[i] for i in rng.permutation(len(files))]
    if not files:
        raise InputError("no LFW photos (expected <Name>/<Name>_NNNN.jpg)", root)
    return files[:limit]


@dataclass
class PreparedFaces:
    """Aligned crops ``(N, S, S, 3)`` uint8 RGB and their dlib landmarks ``(N, 68, 2)`` float32
    (crop pixels), plus the file each came from."""

    crops: np.ndarray
    landmarks: np.ndarray
    names: list[str]

    def save(self, path: Path) -> None:
        from ..io.atomic import atomic_path

        with atomic_path(path, suffix=".npz") as tmp:
            np.savez_compressed(tmp, crops=self.crops, landmarks=self.landmarks,
                                names=np.array(self.names))

    @classmethod
    def load(cls, path: Path) -> PreparedFaces:
        data = np.load(path)
        return cls(data["crops"], data["landmarks"], [str(n) for n in data["names"]])


def prepare_faces(files: list[Path], size: int = 128, progress: bool = False) -> PreparedFaces:
    """Detect, align (``shrink_factor=1.0``) and landmark each photo; photos without a face or
    with implausible landmarks are skipped. Landmarks are found on a 256 px crop (the shape
    predictor is more precise there) and scaled to ``size`` (both crops share one template, so
    the scale is exact)."""
    from tqdm.auto import tqdm

    from ..evaluate.dlib_face import get_dlib_face, template_box
    from ..faces.align import align_face
    from ..faces.detect import get_detector
    from ..io.images import read_image

    detector = get_detector(threads=1)
    dlib_face = get_dlib_face()
    crops, landmarks, names = [], [], []
    for path in tqdm(files, disable=not progress, desc="prepare", leave=False):
        image = read_image(path)
        faces = detector.detect(image)
        if not faces:
            continue
        centre = np.array(image.shape[1::-1], dtype=np.float64) / 2
        # LFW centres the labelled person; other faces in the photo are bystanders.
        face = min(faces, key=lambda f: np.hypot(*(f.landmarks.mean(axis=0) - centre)))
        big, _ = align_face(image, face.landmarks, 256, shrink_factor=1.0)
        points = dlib_face.landmarks(big, template_box(256)) * (size / 256.0)
        crop, _ = align_face(image, face.landmarks, size, shrink_factor=1.0)
        # dlib sometimes collapses on profile or blurred faces: keep crops whose eye and
        # mouth landmarks fall near the template (within a fifth of the crop).
        eyes = np.array([points[36:42].mean(0), points[42:48].mean(0)]) / size
        if np.abs(eyes - np.array([[0.342, 0.46], [0.657, 0.46]])).max() > 0.2:
            continue
        crops.append(crop)
        landmarks.append(points.astype(np.float32))
        names.append(f"{path.parent.name}/{path.name}")
    if not crops:
        raise InputError("no face found in any of the LFW photos")
    return PreparedFaces(np.stack(crops), np.stack(landmarks), names)


def _jitter_geometry(crop: np.ndarray, landmarks: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A small random similarity (detector and landmark jitter of real alignments)."""
    size = crop.shape[0]
    angle = rng.normal(0, 6)
    scale = math.exp(rng.normal(0, 0.06))
    shift = rng.normal(0, size * 0.025, 2)
    matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, scale)
    matrix[:, 2] += shift
    warped = cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT101)
    points = landmarks @ matrix[:, :2].T + matrix[:, 2]
    return warped, points


def _photometric(image: np.ndarray, rng: np.random.Generator,
                 sharpen_prob: float = 0.0) -> np.ndarray:
    """Colour jitter, sharpening (with ``sharpen_prob``), blur, noise, down-up sampling, JPEG:
    float (S, S, 3) -> uint8."""
    size = image.shape[0]
    image = image * rng.uniform(0.7, 1.3) + rng.uniform(-25, 25)
    grey = image.mean(axis=2, keepdims=True)
    image = grey + (image - grey) * rng.uniform(0.6, 1.4)
    image = image * rng.uniform(0.9, 1.1, 3)
    # LFW's faces are soft (250 px JPEGs); a sharp photo aligned to the same size shows skin
    # folds and teeth edges as crisp as a painted hair strand, which the segmenter learnt to
    # call an occluder. Sharpening some whole samples (face, folds and occluders alike) shows
    # it crisp skin that is still face. Drawn only when asked, so that runs without it keep
    # their exact samples.
    if sharpen_prob > 0 and rng.random() < sharpen_prob:
        sigma = rng.uniform(0.6, 1.5)
        image = image + rng.uniform(0.5, 2.0) * (image - cv2.GaussianBlur(image, (0, 0), sigma))
    if rng.random() < 0.25:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.4, 1.5))
    if rng.random() < 0.2:
        small = int(size * rng.uniform(0.35, 0.8))
        image = cv2.resize(cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA),
                           (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:
        image = image + rng.normal(0, rng.uniform(2, 10), image.shape)
    image = np.clip(image, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        quality = int(rng.integers(30, 90))
        _, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return image


def cast_shadow(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (float (S, S, 3)) with a hard cast shadow over part of it: the side of a wavy
    line (mostly from above, as hair or a hat shade a face) darkened to 25-65 % with a soft
    edge of 0.5-4 % of the crop. The labels stay: shadowed skin is still face. Without such
    samples the segmenter called a child's hair-shadowed face an occluder
    (``fr_obama_and_biden.jpg``), and the swap came out as a patchwork of kept shadow and
    the generator's evenly lit skin."""
    size = image.shape[0]
    angle = rng.normal(-np.pi / 2, 0.6)  # the shadow's side: mostly the top
    direction = np.array([np.cos(angle), np.sin(angle)])
    u = np.arange(size, dtype=np.float32) - (size - 1) / 2
    x, y = np.meshgrid(u, u)
    along = x * direction[0] + y * direction[1]  # distance towards the shadow's side
    across = -x * direction[1] + y * direction[0]
    wave = rng.uniform(0, 0.08) * size * np.sin(across / size * rng.uniform(3, 12)
                                                + rng.uniform(0, 2 * np.pi))
    edge = rng.uniform(-0.25, 0.2) * size  # where the line crosses (0: the crop's centre)
    softness = max(rng.uniform(0.005, 0.04) * size, 0.5)
    shade = 1.0 / (1.0 + np.exp(-(along - edge + wave) / softness))  # 1 in the shadow
    dark = rng.uniform(0.25, 0.65)
    tint = 1.0 + rng.uniform(-0.06, 0.06, 3)  # shadows are a little cooler or warmer
    factor = 1.0 - shade[..., None] * (1.0 - dark * tint)
    return image * factor.astype(np.float32)


def synthesize(faces: PreparedFaces, index: int, rng: np.random.Generator,
               occlusion_prob: float = 0.8, kind: str | None = None, edge_prob: float = 0.0,
               sharpen_prob: float = 0.0, shadow_prob: float = 0.0, text_prob: float = 0.0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One training sample from prepared face ``index``: ``(image (S, S, 3) uint8,
    face (S, S) float32 {0, 1}, occluder (S, S) float32 {0, 1})``. ``kind`` (a key of
    :data:`PAINTERS`) forces exactly one occluder of that kind (benchmarks). ``edge_prob``: chance
    that an object, hand or microphone is held at the crop's edge (:func:`_edge_point`);
    ``sharpen_prob``: chance that the whole sample is sharpened (:func:`_photometric`);
    ``shadow_prob``: chance of a cast shadow over face and occluders alike (:func:`cast_shadow`,
    drawn only when asked, so runs without it keep their exact samples); ``text_prob``: chance
    of words laid over the sample on top of everything (:func:`..data.occluders.paint_text`;
    ``kind="text"`` paints only them)."""
    crop, points = _jitter_geometry(faces.crops[index], faces.landmarks[index], rng)
    size = crop.shape[0]
    face = face_region_mask(points, (size, size)).astype(np.float32)
    image = crop.astype(np.float32)
    occluder = np.zeros((size, size), np.float32)
    if kind != "text" and (kind is not None or rng.random() < occlusion_prob):
        alpha = paint_occluders(image, points, faces.crops, rng, kind=kind,
                                edge_prob=edge_prob, other_landmarks=faces.landmarks)
        occluder = (alpha > 0.5).astype(np.float32)
    if shadow_prob > 0 and rng.random() < shadow_prob:
        image = cast_shadow(image, rng)
    # Text is laid over the finished photo (a caption, a subtitle), so after its shadows; it
    # is drawn only when asked, so that runs without it keep their exact samples.
    if kind == "text" or (kind is None and text_prob > 0 and rng.random() < text_prob):
        text = paint_text(image, points, faces.crops, rng)
        occluder = np.maximum(occluder, (text > 0.5).astype(np.float32))
    image = _photometric(image, rng, sharpen_prob)
    if rng.random() < 0.5:
        image, face, occluder = image[:, ::-1], face[:, ::-1], occluder[:, ::-1]
    return np.ascontiguousarray(image), np.ascontiguousarray(face), np.ascontiguousarray(occluder)


def synthesize_batch(faces: PreparedFaces, indices, rng: np.random.Generator,
                     occlusion_prob: float = 0.8, edge_prob: float = 0.0,
                     sharpen_prob: float = 0.0, shadow_prob: float = 0.0,
                     text_prob: float = 0.0):
    """:func:`synthesize` for each index: ``(B, S, S, 3)`` uint8, two ``(B, S, S)`` float32."""
    samples = [synthesize(faces, int(i), rng, occlusion_prob, edge_prob=edge_prob,
                          sharpen_prob=sharpen_prob, shadow_prob=shadow_prob,
                          text_prob=text_prob)
               for i in indices]
    return tuple(np.stack(parts) for parts in zip(*samples))


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------

def segmentation_loss(logits, face, occluder):
    """BCE on both channels plus a soft Dice on the occluder (thin strands and rods are few
    pixels; Dice keeps them from being ignored)."""
    import torch
    from torch.nn import functional as F

    loss_face = F.binary_cross_entropy_with_logits(logits[:, 0], face)
    loss_occ = F.binary_cross_entropy_with_logits(logits[:, 1], occluder,
                                                  pos_weight=torch.tensor(2.0))
    prob = torch.sigmoid(logits[:, 1])
    inter = (prob * occluder).sum(dim=(1, 2))
    dice = 1 - (2 * inter + 1) / (prob.sum(dim=(1, 2)) + occluder.sum(dim=(1, 2)) + 1)
    return loss_face + loss_occ + 0.5 * dice.mean()


@dataclass
class SegmenterTrainConfig:
    """What ``facedancer train-segmenter`` runs."""

    lfw_images: Path
    out: Path
    steps: int = 3000
    batch_size: int = 24
    lr: float = 3e-3
    images: int = 3000
    image_size: int = 128
    seed: int = 0
    save_every: int = 250
    threads: int = 1
    edge_prob: float = 0.3
    sharpen_prob: float = 0.0  # share of samples sharpened whole (crisp skin that is face)
    shadow_prob: float = 0.0  # share of samples with a cast shadow (shadowed skin is face)
    text_prob: float = 0.0  # share of samples with words laid over them (captions: occluder)
    init: Path | None = None  # start from these weights (fine-tuning) instead of random


def train_segmenter(config: SegmenterTrainConfig, progress: bool = True, log=print) -> Path:
    """Prepare (or reuse) the LFW faces in ``out/prepared_<S>.npz``, train, and write the model
    folder ``out/model`` (``config.json`` + ``model.safetensors``) every ``save_every`` steps
    and at the end; ``out/log.jsonl`` gets the losses. Returns ``out/model``."""
    import torch

    from ..faces.occlusion import FaceSegmenterNet, SegmenterConfig, save_face_segmenter
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    cache = out / f"prepared_{config.image_size}_{config.images}_{config.seed}.npz"
    if cache.is_file():
        faces = PreparedFaces.load(cache)
    else:
        files = list_lfw(config.lfw_images, held_out=False, limit=config.images, seed=config.seed)
        faces = prepare_faces(files, config.image_size, progress=progress)
        faces.save(cache)
    log(f"{len(faces.crops)} training faces ({cache.name})")
    training = {"command": "facedancer train-segmenter", "lfw_faces": len(faces.crops),
                "held_out_identities": f"crc32(name) % {HELD_OUT_MODULO} == 0",
                "steps": config.steps, "batch_size": config.batch_size, "lr": config.lr,
                "seed": config.seed, "occluders": list(PAINTERS), "edge_prob": config.edge_prob,
                "sharpen_prob": config.sharpen_prob, "shadow_prob": config.shadow_prob,
                "text_prob": config.text_prob}
    if config.init is not None:
        from ..faces.occlusion import load_face_segmenter

        start = load_face_segmenter(config.init).net
        training["init"] = {"from": str(config.init), **start.config.training}
        net = FaceSegmenterNet(SegmenterConfig(image_size=start.config.image_size,
                                               widths=start.config.widths, training=training))
        net.load_state_dict(start.state_dict())
    else:
        net = FaceSegmenterNet(SegmenterConfig(image_size=config.image_size, training=training))
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=1e-4)
    warmup = min(100, max(config.steps // 10, 1))

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(config.steps - warmup, 1)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model_dir = out / "model"
    started = time.time()
    running = []
    # The log is progress, not a result: appended as training goes so it can be followed.
    with open(out / "log.jsonl", "w") as log_file:
        for step in range(config.steps):
            net.train()
            indices = rng.integers(0, len(faces.crops), config.batch_size)
            images, face, occ = synthesize_batch(faces, indices, rng, edge_prob=config.edge_prob,
                                                 sharpen_prob=config.sharpen_prob,
                                                 shadow_prob=config.shadow_prob,
                                                 text_prob=config.text_prob)
            x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            loss = segmentation_loss(net(x), torch.from_numpy(face), torch.from_numpy(occ))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            running.append(loss.item())
            done = step + 1
            if done % 25 == 0 or done == config.steps:
                record = {"step": done, "loss": float(np.mean(running)),
                          "lr": scheduler.get_last_lr()[0],
                          "seconds": round(time.time() - started, 1)}
                running = []
                log_file.write(json.dumps(record) + "\n")
                log_file.flush()
                if progress:
                    log(json.dumps(record))
            if done % config.save_every == 0 or done == config.steps:
                net.config.training["steps_done"] = done
                net.eval()
                save_face_segmenter(net, model_dir)
    return model_dir
