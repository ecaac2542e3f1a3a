"""The FaceDancer discriminator (Rosberg et al., WACV 2023, §3.3; docs/reference.md §3).

A residual CNN: ``conv3x3(64)`` at full resolution, six residual down blocks with two convs
each (128, 256, 512, 512, 512, 512 channels: 256 px -> 4x4), then ``conv4x4(512, valid)`` ->
LeakyReLU(0.2) -> ``conv1x1(1)``: one logit per image. Instance norm with eps 1e-3 as in the
generator; no spectral norm, no minibatch-std. The reference default has 23,972,353
parameters ("about 24.0 M").

Input (B, 3, H, W) in [-1, 1]; output (B,) raw logits (the reference returns (B, 1); we
drop the trailing axis). If the head's map is larger than 1x1 (an image larger than the
config's, or a config whose last block is above 4x4), the logits are averaged over it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FacedancerError
from .layers import LEAKY_SLOPE, InstanceNorm, conv1x1, conv3x3
from .pretrained import PretrainedMixin


@dataclass
class DiscriminatorConfig:
    """``widths``: stem channels then one entry per residual down block (each halves the
    resolution). ``head_width``/``head_kernel``: the valid conv before the 1x1 logit conv."""

    image_size: int = 256
    widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512)
    head_width: int = 512
    head_kernel: int = 4

    def __post_init__(self) -> None:
        self.widths = tuple(int(c) for c in self.widths)
        if len(self.widths) < 2 or min(self.widths) < 1 or self.head_width < 1:
            raise FacedancerError("invalid discriminator config: needs a stem width and at least "
                                  "one down block, all positive")
        final = self.image_size / 2 ** (len(self.widths) - 1)
        if final != int(final) or final < self.head_kernel:
            raise FacedancerError(
                f"invalid discriminator config: image_size {self.image_size} with "
                f"{len(self.widths) - 1} down blocks leaves {final:g} px, less than the "
                f"{self.head_kernel}x{self.head_kernel} head (or not an integer)")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(data["widths"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiscriminatorConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise FacedancerError(f"unknown discriminator config keys: {', '.join(unknown)}")
        return cls(**data)


class DiscriminatorDownBlock(nn.Module):
    """``conv1x1(x) -> avgpool2``  +  ``IN -> lrelu -> conv3x3 -> avgpool2 -> IN -> lrelu -> conv3x3``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.shortcut = conv1x1(in_channels, out_channels)
        self.norm1 = InstanceNorm(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels)
        self.norm2 = InstanceNorm(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = F.avg_pool2d(self.shortcut(x), 2)
        h = F.avg_pool2d(self.conv1(F.leaky_relu(self.norm1(x), LEAKY_SLOPE)), 2)
        h = self.conv2(F.leaky_relu(self.norm2(h), LEAKY_SLOPE))
        return h + r


class Discriminator(PretrainedMixin, nn.Module):
    """``D(x) -> (B,)`` logits for images ``x`` (B, 3, H, W) in [-1, 1]."""

    kind = "facedancer-discriminator"
    config_class = DiscriminatorConfig

    def __init__(self, config: DiscriminatorConfig | None = None, **overrides: Any):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        w = config.widths
        self.stem = conv3x3(3, w[0])
        self.blocks = nn.ModuleList(DiscriminatorDownBlock(w[i], w[i + 1]) for i in range(len(w) - 1))
        self.head = nn.Conv2d(w[-1], config.head_width, config.head_kernel)  # valid padding
        self.logit = conv1x1(config.head_width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        h = self.logit(F.leaky_relu(self.head(h), LEAKY_SLOPE))
        return h.mean(dim=(1, 2, 3))


def build_discriminator(**overrides: Any) -> Discriminator:
    """A randomly initialised discriminator; no arguments gives the reference graph."""
    return Discriminator(DiscriminatorConfig(**overrides))


def load_discriminator(path: str, device: str | torch.device = "cpu") -> Discriminator:
    """Load a discriminator saved with ``save_pretrained`` (eval mode; call ``.train()`` to
    resume training)."""
    return Discriminator.from_pretrained(path, device=device)
