"""Identity loss of FaceDancer (docs/reference.md §5): ``mean(1 - cos(z_source, E(swap)))``."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def identity_loss(z_source: torch.Tensor, z_swap: torch.Tensor) -> torch.Tensor:
    """``mean_b(1 - cos(z_source_b, z_swap_b))`` for embeddings of shape (B, D).

    Cosine is scale-free, so raw and L2-normalised embeddings give the same loss.
    """
    return (1.0 - F.cosine_similarity(z_source.float(), z_swap.float(), dim=1)).mean()
