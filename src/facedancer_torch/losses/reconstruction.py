"""Reconstruction loss of FaceDancer (docs/reference.md §5), gated by the "same" flag.

Only samples whose source *is* the target (flag 1) are reconstructed:
``0.5 * sum_b(l_b * f_b) / (sum_b(f_b) + 1e-3)`` with ``l_b`` the per-sample mean L1. The
reference returns half of the flag-averaged value (its clips at 100 and 5 never bind).
"""

from __future__ import annotations

import torch

FLAG_EPS = 1e-3


def flag_average(per_sample: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    """``sum(l * f) / (sum(f) + 1e-3)``: the mean of ``per_sample`` (B,) over flagged samples."""
    flags = same.to(per_sample.dtype).reshape(per_sample.shape)
    return (per_sample * flags).sum() / (flags.sum() + FLAG_EPS)


def reconstruction_loss(target: torch.Tensor, swap: torch.Tensor, same: torch.Tensor
                        ) -> torch.Tensor:
    """Flag-gated, halved L1 between target (B, 3, H, W) and swap, both in [-1, 1]; same: (B,)."""
    per_sample = (target.float() - swap.float()).abs().mean(dim=[1, 2, 3])
    return 0.5 * flag_average(per_sample, same)
