"""Cycle loss of FaceDancer (docs/reference.md §5): ``mean |G(y, E(x)) - x|``.

The caller computes ``E(x)`` without gradient and lets gradients flow through both generator
passes (the swap ``y = G(x, E(s))`` and the cycled ``G(y, E(x))``), as the reference does.
"""

from __future__ import annotations

import torch


def cycle_loss(target: torch.Tensor, cycled: torch.Tensor) -> torch.Tensor:
    """Mean absolute error between the target x and the cycled swap, (B, 3, H, W) in [-1, 1]."""
    return (cycled.float() - target.float()).abs().mean()
