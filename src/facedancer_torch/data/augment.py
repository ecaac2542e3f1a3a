"""Colour augmentation of FaceDancer training batches (docs/reference.md §6).

The reference applies ``stateless_random_brightness(0.3)``, ``random_contrast(0.9, 1.1)`` and
``random_saturation(0.9, 1.1)`` to whole batches in [-1, 1]: **one draw per batch**, with an
independent draw for the target and the source streams. Two deliberate differences:
saturation blends with the Rec.601 grey image (TensorFlow scales S in HSV, which is undefined
for values below 0), and the result is clipped to [-1, 1] so that every network sees the
value range it expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
