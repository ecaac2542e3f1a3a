"""Device selection shared by every command (``--device auto|cpu|cuda[:N]``)."""

from __future__ import annotations

import torch

from .errors import FacedancerError


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a usable :class:`torch.device`.

    ``auto`` picks the first CUDA device when one is available, else the CPU. Asking for a
    CUDA device that does not exist is a user error, not a silent fallback.
    """
    if isinstance(spec, torch.device):
        return spec
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise FacedancerError(f"unknown device '{spec}' (use auto, cpu, cuda or cuda:N)") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise FacedancerError(f"device '{spec}' requested but no CUDA GPU is available")
        index = device.index or 0
        if index >= torch.cuda.device_count():
            raise FacedancerError(
                f"device '{spec}' requested but only {torch.cuda.device_count()} GPU(s) exist")
    elif device.type != "cpu":
        raise FacedancerError(f"unsupported device '{spec}' (use auto, cpu, cuda or cuda:N)")
    return device
