"""Perceptual loss of FaceDancer (docs/reference.md §5) with a configurable feature network.

Reference: per-sample mean L1 between frozen ImageNet-VGG16 features (``block1_pool`` ..
``block5_pool``, both sides multiplied by 0.85, images fed in [-1, 1] without ImageNet
preprocessing), flag-averaged like the reconstruction loss, summed over depths with weight 1.

No ImageNet VGG16 can be downloaded here, so the network is a choice:

- ``identity`` (default): intermediate blocks of the frozen identity encoder, the ones its
  contract lists as ``perceptual_blocks`` (early, pose- and texture-rich layers);
- ``vgg16:PATH``: a VGG16 read from a user's local safetensors file with torchvision's key
  names (``features.0.weight`` ... ``features.28.bias``), tapped after its five poolings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from ..errors import ModelError
from .reconstruction import flag_average

REFERENCE_FEATURE_SCALE = 0.85

# torchvision's vgg16().features: index of each conv (then ReLU) and of each max-pool.
_VGG16_LAYOUT: tuple[tuple[str, int, int, int], ...] = (
    # (kind, index, in_channels, out_channels)
    ("conv", 0, 3, 64), ("conv", 2, 64, 64), ("pool", 4, 0, 0),
    ("conv", 5, 64, 128), ("conv", 7, 128, 128), ("pool", 9, 0, 0),
    ("conv", 10, 128, 256), ("conv", 12, 256, 256), ("conv", 14, 256, 256), ("pool", 16, 0, 0),
    ("conv", 17, 256, 512), ("conv", 19, 512, 512), ("conv", 21, 512, 512), ("pool", 23, 0, 0),
    ("conv", 24, 512, 512), ("conv", 26, 512, 512), ("conv", 28, 512, 512), ("pool", 30, 0, 0),
)
VGG16_BLOCKS = ("block1_pool", "block2_pool", "block3_pool", "block4_pool", "block5_pool")


def perceptual_loss(features_target: Mapping[str, torch.Tensor],
                    features_swap: Mapping[str, torch.Tensor],
                    same: torch.Tensor,
                    blocks: Sequence[str] | None = None,
                    feature_scale: float = REFERENCE_FEATURE_SCALE) -> torch.Tensor:
    """``sum_depths flag_average(mean |s * F(x) - s * F(y)|)`` with s = 0.85 (reference).

    ``features_*`` map block name -> (B, ...) features; ``same`` (B,) is the "same" flag.
    """
    names = list(features_target) if blocks is None else list(blocks)
    total = torch.zeros((), device=same.device)
    for name in names:
        a = features_target[name].float() * feature_scale
        b = features_swap[name].float() * feature_scale
        per_sample = (a - b).abs().flatten(1).mean(dim=1)
        total = total + flag_average(per_sample, same)
    return total


class Vgg16Features(nn.Module):
    """VGG16 convolutional trunk (torchvision layout) returning the five pooled feature maps.

    Input (B, 3, H, W) RGB in [-1, 1], fed as is (the reference's quirk) unless
    ``imagenet_normalize`` maps it to ImageNet mean/std first. Output: dict block name ->
    (B, C, H/2^k, W/2^k). Frozen and in eval mode; differentiable w.r.t. the input.
    """

    def __init__(self, imagenet_normalize: bool = False):
        super().__init__()
        self.features = nn.ModuleDict()
        for kind, index, cin, cout in _VGG16_LAYOUT:
            if kind == "conv":
                self.features[str(index)] = nn.Conv2d(cin, cout, 3, padding=1)
        self.imagenet_normalize = imagenet_normalize
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1),
                             persistent=False)
        self.blocks = list(VGG16_BLOCKS)

    @classmethod
    def from_safetensors(cls, path: str | Path, imagenet_normalize: bool = False
                         ) -> Vgg16Features:
        """Load torchvision-named VGG16 weights (``features.N.weight``) from a local file."""
        path = Path(path)
        if not path.is_file():
            raise ModelError("VGG16 weight file not found", path)
        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises several types for a bad file
            raise ModelError(f"cannot read safetensors file ({exc})", path) from exc
        net = cls(imagenet_normalize=imagenet_normalize)
        wanted = {}
        for key in net.features.state_dict():
            for candidate in (f"features.{key}", key):
                if candidate in state:
                    wanted[key] = state[candidate]
                    break
            else:
                raise ModelError(f"not a torchvision VGG16 file: tensor 'features.{key}' missing",
                                 path)
        try:
            net.features.load_state_dict(wanted)
        except RuntimeError as exc:
            raise ModelError(f"VGG16 tensors have the wrong shapes ({exc})", path) from exc
        return net.eval().requires_grad_(False)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = images
        if self.imagenet_normalize:
            x = ((x + 1) / 2 - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        pool = 0
        for kind, index, _, _ in _VGG16_LAYOUT:
            if kind == "conv":
                x = torch.relu(self.features[str(index)](x))
            else:
                x = nn.functional.max_pool2d(x, 2)
                out[VGG16_BLOCKS[pool]] = x
                pool += 1
        return out


def parse_perceptual_spec(spec: str) -> tuple[str, Path | None]:
    """``"identity"`` -> ("identity", None); ``"vgg16:PATH"`` or ``"PATH.safetensors"`` ->
    ("vgg16", PATH)."""
    spec = spec.strip()
    if spec in ("identity", "", "default"):
        return "identity", None
    if spec.startswith("vgg16:"):
        return "vgg16", Path(spec[len("vgg16:"):]).expanduser()
    if spec.endswith(".safetensors"):
        return "vgg16", Path(spec).expanduser()
    raise ModelError(f"unknown perceptual network '{spec}' (use 'identity' or "
                     "'vgg16:/path/to/vgg16.safetensors')")
