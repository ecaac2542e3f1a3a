"""Helpers shared by the model tests."""

from __future__ import annotations

import torch


def randomize_(module: torch.nn.Module, seed: int = 0, scale: float = 0.3) -> torch.nn.Module:
    """Perturb every parameter (norm gammas around 1) so that a misplaced tensor shows."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=gen) * scale
            p.copy_(1 + noise if name.endswith("norm.weight") else noise)
    return module
