"""Colour augmentation of FaceDancer training batches (docs/reference.md §6).

The reference applies ``stateless_random_brightness(0.3)``, ``random_contrast(0.9, 1.1)`` and
``random_saturation(0.9, 1.1)`` to whole batches in [-1, 1]: **one draw per batch**, with an
independent draw for the target and the source streams. Two deliberate differences:
saturation blends with the Rec.601 grey image (TensorFlow scales S in HSV, which is undefined
for values below 0), and the result is clipped to [-1, 1] so that every network sees the
value range it expects.

Robustness (issue #13, off by default): :func:`augment_targets` rotates / scales target crops
(border reflected) and pastes synthetic occluders on them (hands, objects, microphones, masks,
glasses, hair: :mod:`.occluders`, the segmenter's painters) before the colour jitter. The
trainer compares the swap with the *occluded* target (reconstruction, perceptual, IFSR, cycle,
chroma), so the generator learns that an occluder is part of the target's attributes and keeps
it; sources (identity) stay clean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .occluders import paint_occluders


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the per-batch colour jitter; ``enabled=False`` turns it off."""

    brightness: float = 0.3
    contrast: tuple[float, float] = (0.9, 1.1)
    saturation: tuple[float, float] = (0.9, 1.1)
    enabled: bool = True


@dataclass(frozen=True)
class AugmentDraw:
    """One batch's draw: brightness delta (in [-1, 1] units), contrast and saturation factors."""

    brightness: float
    contrast: float
    saturation: float


def draw_augmentation(config: AugmentConfig, generator: torch.Generator) -> AugmentDraw:
    """Draw one (brightness, contrast, saturation) triple from ``generator``."""
    u = torch.rand(3, generator=generator, dtype=torch.float64).tolist()
    return AugmentDraw(
        brightness=(2 * u[0] - 1) * config.brightness,
        contrast=config.contrast[0] + u[1] * (config.contrast[1] - config.contrast[0]),
        saturation=config.saturation[0] + u[2] * (config.saturation[1] - config.saturation[0]),
    )


def apply_augmentation(images: torch.Tensor, draw: AugmentDraw) -> torch.Tensor:
    """Brightness, then contrast, then saturation on (B, 3, H, W) RGB in [-1, 1]; clipped.

    Contrast scales around each image's per-channel mean (as ``tf.image.adjust_contrast``).
    """
    x = images + draw.brightness
    mean = x.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * draw.contrast + mean
    grey = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = grey + (x - grey) * draw.saturation
    return x.clamp(-1.0, 1.0)


def augment_batch(images: torch.Tensor, config: AugmentConfig,
                  generator: torch.Generator) -> torch.Tensor:
    """One draw from ``generator`` applied to the whole batch (identity when disabled)."""
    if not config.enabled:
        return images
    return apply_augmentation(images, draw_augmentation(config, generator))


@dataclass(frozen=True)
class TargetAugmentConfig:
    """Per-sample geometric and occluder augmentation of target crops (all off by default).

    ``occlude_prob``: chance a crop gets one or two synthetic occluders; ``rotate_deg``: in-plane
    rotation uniform in +-``rotate_deg`` degrees; ``scale_jitter``: scale ``exp(U(-a, a))`` with
    ``a = log(1 + scale_jitter)``; ``edge_prob``: chance a held occluder (object, hand,
    microphone) enters from the crop's edge; ``crop_shrink``: the alignment shrink of the crops
    (where dlib's landmark box sits)."""

    occlude_prob: float = 0.0
    rotate_deg: float = 0.0
    scale_jitter: float = 0.0
    edge_prob: float = 0.3
    crop_shrink: float = 1.0

    @property
    def enabled(self) -> bool:
        return self.occlude_prob > 0 or self.rotate_deg > 0 or self.scale_jitter > 0


def crop_landmarks(crops: np.ndarray, shrink: float = 1.0) -> np.ndarray:
    """dlib's 68 landmarks ``(B, 68, 2)`` float32 of aligned uint8 RGB crops ``(B, S, S, 3)``
    (the segmenter's labels come from the same predictor)."""
    from ..faces.landmarks68 import get_landmarks68

    predictor = get_landmarks68()
    return np.stack([predictor.on_crop(c, shrink) for c in crops]).astype(np.float32)


def augment_targets(crops: np.ndarray, config: TargetAugmentConfig, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Augment uint8 RGB crops ``(B, S, S, 3)``: ``(images (B, S, S, 3) float32 in [0, 255],
    occluder alphas (B, S, S) float32 in [0, 1])``, a pure function of ``rng``'s state. Where
    the alpha is 0 a crop holds its (warped) pixels exactly; ``alpha > 0.5`` is the occluder.

    Each crop draws its rotation and scale (warped about the centre, border reflected), then
    with ``occlude_prob`` gets occluders placed from its landmarks (moved by the same warp);
    objects and hands borrow texture and skin from the other crops of the batch. A crop drawn
    with neither is returned exactly (as float)."""
    out = crops.astype(np.float32)
    size = crops.shape[1]
    occluders = np.zeros(crops.shape[:3], np.float32)
    if not config.enabled:
        return out, occluders
    lift = math.log1p(config.scale_jitter)
    draws = [(rng.uniform(-config.rotate_deg, config.rotate_deg) if config.rotate_deg > 0
              else 0.0,
              math.exp(rng.uniform(-lift, lift)) if config.scale_jitter > 0 else 1.0,
              rng.random() < config.occlude_prob) for _ in range(len(crops))]
    landmarks = (crop_landmarks(crops, config.crop_shrink) if any(d[2] for d in draws)
                 else None)
    for i, (angle, scale, occlude) in enumerate(draws):
        matrix = cv2.getRotationMatrix2D(((size - 1) / 2, (size - 1) / 2), angle, scale)
        if angle != 0.0 or scale != 1.0:
            out[i] = cv2.warpAffine(crops[i], matrix, (size, size), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT101)
        if occlude:
            points = landmarks[i] @ matrix[:, :2].T.astype(np.float32) + matrix[:, 2]
            occluders[i] = paint_occluders(out[i], points, crops, rng,
                                           edge_prob=config.edge_prob,
                                           other_landmarks=landmarks)
            np.clip(out[i], 0, 255, out=out[i])
    return out, occluders
