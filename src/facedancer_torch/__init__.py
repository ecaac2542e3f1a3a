"""facedancer-torch: FaceDancer face swapping (Rosberg et al., WACV 2023) in PyTorch.

The front door is :class:`Swapper` (generator, identity encoder and face detector, loaded once)
with :class:`SwapOptions`::

    from facedancer_torch import SwapOptions, Swapper

    swapper = Swapper()  # the shipped demo model, or a model directory / catalogue name
    swapper.swap_path("group.jpg", "swapped.png", source="me.jpg")

Heavy submodules (torch, PyAV, ONNX Runtime) are imported on first use of a name listed below,
so that ``import facedancer_torch`` and ``facedancer --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "Swapper": "facedancer_torch.swap.pipeline",
    "SwapOptions": "facedancer_torch.swap.options",
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


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
