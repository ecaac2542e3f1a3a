"""IFSR, Interpreted Feature Similarity Regularization (paper §3.3; docs/reference.md §5).

Intermediate feature maps ``F_b`` of the frozen identity encoder are kept close between the
target x and the swap y, up to a per-block margin: pose, expression, lighting and occlusion
live in those blocks while the final embedding moves to the source identity. Per block b:

    d_b = mean_batch(1 - cos(flatten F_b(x), flatten F_b(y)))
    L_IFSR = sum_b relu(d_b - scale * m_b)          (reference scale 1.2)

The hinge is applied **after** the batch mean, exactly as the reference does: one sample far
over its margin can be compensated by others under it. Margins belong to one identity encoder
(see ``facedancer calibrate-ifsr``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import FacedancerError

REFERENCE_IFSR_SCALE = 1.2


def block_cosine_distances(features_a: Mapping[str, torch.Tensor],
                           features_b: Mapping[str, torch.Tensor],
                           blocks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """Per-sample cosine distance ``1 - cos(flat a_b, flat b_b)`` of each block, shape (B,).

    Feature maps (B, C, H, W) (any layout, as long as both sides share it) are flattened per
    sample, so the distance compares whole maps, spatial layout included.
    """
    names = list(features_a) if blocks is None else list(blocks)
    distances: dict[str, torch.Tensor] = {}
    for name in names:
        if name not in features_a or name not in features_b:
            raise FacedancerError(f"IFSR block '{name}' missing from the encoder features "
                                  f"(have: {', '.join(sorted(features_a))})")
        a = features_a[name].float().flatten(1)
        b = features_b[name].float().flatten(1)
        distances[name] = 1.0 - F.cosine_similarity(a, b, dim=1, eps=1e-8)
    return distances


class IfsrLoss(nn.Module):
    """``sum_b relu(mean_batch(1 - cos(F_b(x), F_b(y))) - scale * m_b)`` over the margin blocks.

    ``margins`` maps block name -> margin ``m_b`` (before scaling); the blocks used are exactly
    its keys, in order. ``forward`` returns ``(loss, batch-mean distance per block)``.
    """

    def __init__(self, margins: Mapping[str, float], scale: float = REFERENCE_IFSR_SCALE):
        super().__init__()
        if not margins:
            raise FacedancerError("IFSR needs at least one block margin")
        self.blocks: list[str] = list(margins)
        self.scale = float(scale)
        self.register_buffer("margins", torch.tensor([float(margins[b]) for b in self.blocks]),
                             persistent=False)

    def forward(self, features_target: Mapping[str, torch.Tensor],
                features_swap: Mapping[str, torch.Tensor]
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        per_sample = block_cosine_distances(features_target, features_swap, self.blocks)
        means = torch.stack([per_sample[b].mean() for b in self.blocks])
        loss = torch.relu(means - self.scale * self.margins.to(means.device)).sum()
        return loss, {b: means[i].detach() for i, b in enumerate(self.blocks)}

    def extra_repr(self) -> str:
        return f"blocks={len(self.blocks)}, scale={self.scale}"
