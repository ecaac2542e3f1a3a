"""facedancer-torch: FaceDancer face swapping (Rosberg et al., WACV 2023) in PyTorch.

Heavy submodules are imported lazily so that ``facedancer --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "build_generator": "facedancer_torch.models.generator",
    "load_generator": "facedancer_torch.models.generator",
    "build_discriminator": "facedancer_torch.models.discriminator",
    "FacedancerError": "facedancer_torch.errors",
    "load_detector": "facedancer_torch.convert.keras_retinaface",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'facedancer_torch' has no attribute '{name}'")
    return getattr(importlib.import_module(module), name)
