"""The identity-encoder interface (FaceDancer, Rosberg et al. WACV 2023, §3.2-3.3; docs/reference.md §4).

FaceDancer needs a frozen face-recognition network twice: its embedding conditions the
generator and drives the identity loss, and its intermediate features drive IFSR
(Interpreted Feature Similarity Regularization). Any network can play that role if it
declares its *input contract*: size, value range and normalisation, the alignment it was
trained on, the embedding it returns, and which blocks IFSR may tap. Everything downstream
codes against :class:`IdentityEncoder` and its :class:`EncoderContract`.

Image convention everywhere in this package: ``(B, 3, H, W)`` float RGB in ``[-1, 1]``
(``(pixel - 127.5) / 127.5``), an aligned crop made with the ArcFace 5-point template
(docs/reference.md §1) at any resolution ``H == W`` and some shrink factor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ModelError

MARGINS_DIR = Path(__file__).resolve().parents[2] / "assets" / "ifsr_margins"


@dataclass(frozen=True, kw_only=True)
class EncoderContract:
    """What an identity encoder expects and returns.

    Network input is ``(pixel_0_255 - mean) / std`` in RGB order, at ``input_size`` square.
    The crop must be aligned to the ArcFace 5-point template scaled to ``input_size`` with
    shrink ``shrink_factor`` (docs/reference.md §1). ``embed()`` returns ``embedding_dim`` values,
    L2-normalised iff ``normalized``.
    """

    name: str
    input_size: int
    mean: float
    std: float
    template: str = "arcface"
    shrink_factor: float = 1.0
    embedding_dim: int
    normalized: bool
    ifsr_blocks: tuple[str, ...]  # blocks IFSR may tap, in the order the loss sums them
    ifsr_margins: dict[str, float] | None  # per-block margin before the IFSR scale (1.2)
    perceptual_blocks: tuple[str, ...]  # shallow -> deep, usable as a perceptual network
    feature_blocks: tuple[str, ...] = ()  # every block ``features()`` can return
    margins_file: str | None = None  # JSON the margins were (or would be) read from
    source: str = ""  # where the weights come from
    license: str = ""


def load_margins_file(path: str | Path, blocks: Iterable[str]) -> dict[str, float] | None:
    """Read calibrated IFSR margins from JSON, or None when the file does not exist.

    Accepted layouts: ``{"margins": {block: margin, ...}, ...}`` (extra keys such as
    ``encoder``, ``method``, ``n_pairs`` are kept for humans) or a flat ``{block: margin}``.
    Every block in ``blocks`` must have a finite, non-negative margin; a malformed file is a
    :class:`ModelError` naming it, never silently ignored.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"IFSR margins file is not valid JSON ({exc})", path) from exc
    if isinstance(data, dict) and isinstance(data.get("margins"), dict):
        data = data["margins"]
    if not isinstance(data, dict):
        raise ModelError("IFSR margins file must map block names to margins", path)
    margins: dict[str, float] = {}
    for block in blocks:
        value = data.get(block)
        if not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
            raise ModelError(f"IFSR margins file has no valid margin for block '{block}'", path)
        margins[block] = float(value)
    return margins


def resize_crop(images: Tensor, crop_shrink: float, target_shrink: float, size: int) -> Tensor:
    """Re-frame an aligned crop for a network that wants another shrink factor and size.

    ``images`` (B, C, H, W) were aligned with shrink ``crop_shrink``: landmarks sit at
    ``c + crop_shrink * (t - c)`` around the crop centre ``c``. Taking the central fraction
    ``crop_shrink / target_shrink`` of it puts them at ``c + target_shrink * (t - c)``.
    The crop box is rounded to whole pixels (at most half a pixel of the source crop), then
    resized with bilinear half-pixel sampling, antialiased when shrinking, differentiable.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    if not 0 < crop_shrink <= 1 or not 0 < target_shrink <= 1:
        raise ValueError(f"shrink factors must lie in (0, 1], got {crop_shrink}, {target_shrink}")
    fraction = crop_shrink / target_shrink
    if fraction > 1 + 1e-6:
        raise ValueError(
            f"a crop made with shrink {crop_shrink} is tighter than the encoder's shrink "
            f"{target_shrink}; re-crop the faces with shrink <= {target_shrink}")
    height, width = images.shape[-2:]
    if fraction < 1 - 1e-6:
        crop_h = max(1, round(height * fraction))
        crop_w = max(1, round(width * fraction))
        top = (height - crop_h) // 2
        left = (width - crop_w) // 2
        images = images[..., top:top + crop_h, left:left + crop_w]
        height, width = crop_h, crop_w
    if (height, width) == (size, size):
        return images
    shrinking = height > size or width > size
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=shrinking)


class IdentityEncoder(nn.Module):
    """A frozen face-recognition network with a declared input contract.

    Subclasses implement :meth:`_run` on network-ready input. The encoder is frozen
    (``requires_grad`` False on every parameter) and always in eval mode (``train()`` is a
    no-op), but it stays differentiable w.r.t. its input, which the identity and IFSR losses
    need.
    """

    contract: EncoderContract

    def __init__(self, contract: EncoderContract):
        super().__init__()
        self.contract = contract

    # -- frozen, eval-only -------------------------------------------------------------
    def freeze(self) -> "IdentityEncoder":
        """Turn off parameter gradients and switch to eval mode (called by the loaders)."""
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> "IdentityEncoder":
        # BatchNorm statistics and dropout must never change: the encoder is a fixed metric.
        return super().train(False)

    # -- contract ----------------------------------------------------------------------
    def preprocess(self, images: Tensor, crop_shrink: float = 1.0) -> Tensor:
        """(B, 3, H, W) RGB in [-1, 1], aligned with ``crop_shrink`` -> network input.

        Centre-crops to the encoder's shrink factor, resizes to ``input_size`` and applies
        ``(pixel - mean) / std``. Returns (B, 3, input_size, input_size).
        """
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected RGB images (B, 3, H, W), got {tuple(images.shape)}")
        c = self.contract
        parameter = next(self.parameters(), None)
        if parameter is not None and images.dtype != parameter.dtype:
            images = images.to(parameter.dtype)
        images = resize_crop(images, crop_shrink, c.shrink_factor, c.input_size)
        # [-1, 1] -> (pixel - mean) / std without materialising 0..255 pixels
        scale = 127.5 / c.std
        offset = (127.5 - c.mean) / c.std
        return images * scale + offset

    def _check_blocks(self, blocks: Iterable[str]) -> list[str]:
        blocks = list(blocks)
        unknown = [b for b in blocks if b not in self.contract.feature_blocks]
        if unknown:
            raise ValueError(f"{self.contract.name} has no block(s) {unknown}; "
                             f"available: {list(self.contract.feature_blocks)}")
        return blocks

    def _run(self, x: Tensor, blocks: list[str], need_embedding: bool
             ) -> tuple[Tensor | None, dict[str, Tensor]]:
        """Run the network on preprocessed ``x``; return (embedding or None, {block: map}).

        Implementations stop early when no embedding is needed and every block was seen.
        """
        raise NotImplementedError

    # -- public API ----------------------------------------------------------------------
    def embed(self, images: Tensor, crop_shrink: float = 1.0) -> Tensor:
        """Identity embedding (B, D) of aligned crops (B, 3, H, W) in [-1, 1]."""
        embedding, _ = self._run(self.preprocess(images, crop_shrink), [], True)
        return embedding

    def features(self, images: Tensor, blocks: Iterable[str] | None = None,
                 crop_shrink: float = 1.0) -> dict[str, Tensor]:
        """Intermediate block outputs {name: (B, C, h, w)}; default ``contract.ifsr_blocks``."""
        blocks = self._check_blocks(self.contract.ifsr_blocks if blocks is None else blocks)
        _, feats = self._run(self.preprocess(images, crop_shrink), blocks, False)
        return feats

    def embed_and_features(self, images: Tensor, blocks: Iterable[str] | None = None,
                           crop_shrink: float = 1.0) -> tuple[Tensor, dict[str, Tensor]]:
        """Embedding and block outputs from one forward pass (what training wants)."""
        blocks = self._check_blocks(self.contract.ifsr_blocks if blocks is None else blocks)
        return self._run(self.preprocess(images, crop_shrink), blocks, True)

    def forward(self, images: Tensor, crop_shrink: float = 1.0) -> Tensor:
        return self.embed(images, crop_shrink)
