"""Saving and loading every model of this project: a directory with ``config.json`` +
``model.safetensors``.

``config.json`` holds the model's constructor arguments plus a few reserved keys:

* ``kind``: what the directory holds (``facedancer-generator``, ``facedancer-discriminator``,
  an identity encoder...), so that loading the wrong kind of model fails with a clear error;
* ``format_version``: layout version of this directory (currently 1);
* ``weights_dtype``: the dtype of the floating tensors in ``model.safetensors`` (``float32``
  or ``float16``; half precision halves the file, loading casts back);
* ``source`` (optional): where the weights came from (e.g. the converted Keras file).

Nothing here unpickles: safetensors only.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from ..errors import FacedancerError, ModelError
from ..io.atomic import atomic_path, atomic_write_text

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
# Metadata next to a model's own constructor arguments: what it is, how it was stored, where it
# came from, and "identity_strength", the --identity-strength its model card recommends.
RESERVED_KEYS = ("kind", "format_version", "weights_dtype", "source", "identity_strength")

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class ModelDir:
    """What a model directory holds once read: its kind, config and weights (CPU tensors)."""

    path: Path
    kind: str
    config: dict[str, Any]  # constructor arguments, reserved keys removed
    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)  # the reserved keys


def dtype_name(dtype: torch.dtype) -> str:
    for name, value in _DTYPES.items():
        if value == dtype:
            return name
    raise ValueError(f"unsupported weights dtype {dtype} (use float32, float16 or bfloat16)")


def save_safetensors(tensors: Mapping[str, torch.Tensor], path: str | Path,
                     metadata: dict[str, str] | None = None) -> None:
    """``safetensors.torch.save_file``, whose I/O failures (a full disk) become the
    ``OSError`` they are (its own error type carries only the text ``... (os error 28)``), so
    that :func:`~facedancer_torch.io.atomic.atomic_path` reports them as one line."""
    import os
    import re

    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        save_file(dict(tensors), str(path), metadata=metadata)
    except SafetensorError as exc:
        code = re.search(r"os error (\d+)", str(exc))
        if code is None:
            raise
        number = int(code.group(1))
        raise OSError(number, os.strerror(number), str(path)) from exc


def save_model_dir(directory: str | Path, *, kind: str, config: Mapping[str, Any],
                   state_dict: Mapping[str, torch.Tensor], dtype: torch.dtype | None = None,
                   source: str | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``directory`` (created if needed).

    ``dtype`` (e.g. ``torch.float16``) converts floating tensors for storage only. Both files
    are written atomically; the weights first, so a ``config.json`` never points at nothing.
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise ModelError("exists and is not a directory", directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    clash = set(config) & set(RESERVED_KEYS)
    if clash:
        raise ValueError(f"config keys {sorted(clash)} are reserved")
    tensors = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().to("cpu")
        if dtype is not None and tensor.is_floating_point():
            tensor = tensor.to(dtype)
        tensors[name] = tensor.contiguous()
    stored = dtype if dtype is not None else next(
        (t.dtype for t in tensors.values() if t.is_floating_point()), torch.float32)
    meta: dict[str, Any] = {"kind": kind, "format_version": FORMAT_VERSION,
                            "weights_dtype": dtype_name(stored)}
    if source is not None:
        meta["source"] = source
    try:
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_safetensors(tensors, tmp, metadata={"format": "pt", "kind": kind})
        atomic_write_text(directory / CONFIG_NAME,
                          json.dumps({**meta, **config}, indent=2) + "\n")
    except BaseException:
        if created:  # a folder this call made, left with nothing usable in it: remove it
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory


def resolve_model_dir(path: str | Path) -> Path:
    """A model directory from a path to it or to one of its two files."""
    path = Path(path)
    if path.is_file() and path.name in (CONFIG_NAME, WEIGHTS_NAME):
        return path.parent
    return path


def read_model_dir(path: str | Path, kind: str | tuple[str, ...] | None = None) -> ModelDir:
    """Read a model directory. ``kind`` (one or several) is checked against ``config.json``.

    Raises :class:`ModelError` naming the directory when a file is missing or unreadable or
    the kind differs.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    directory = resolve_model_dir(path)
    if directory.is_file():
        hint = " (a Keras file: convert it first with 'facedancer convert')" \
            if directory.suffix.lower() in (".h5", ".hdf5", ".keras") else ""
        raise ModelError(f"expected a model directory with {CONFIG_NAME} and {WEIGHTS_NAME}{hint}",
                         directory)
    if not directory.is_dir():
        raise ModelError("model directory not found", directory)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (directory / name).is_file():
            raise ModelError(f"incomplete model directory: {name} is missing", directory)
    try:
        raw = json.loads((directory / CONFIG_NAME).read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError(f"{CONFIG_NAME} is not valid JSON", directory) from exc
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ModelError(f"{CONFIG_NAME} has no 'kind' field (not a facedancer-torch model)",
                         directory)
    wanted = (kind,) if isinstance(kind, str) else kind
    if wanted is not None and raw["kind"] not in wanted:
        raise ModelError(f"holds a '{raw['kind']}' model, expected {' or '.join(wanted)}",
                         directory)
    try:
        state_dict = load_file(str(directory / WEIGHTS_NAME))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{WEIGHTS_NAME} is unreadable ({exc})", directory) from exc
    meta = {k: raw.pop(k) for k in RESERVED_KEYS if k in raw}
    return ModelDir(directory, meta["kind"], raw, state_dict, meta)


def load_state_dict_checked(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                            where: str | Path) -> None:
    """``model.load_state_dict(strict=True)`` with a one-line :class:`ModelError` naming
    ``where`` on missing, unexpected or mis-shaped tensors (instead of PyTorch's wall of text)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
        raise ModelError(f"weights do not match the config: {', '.join(parts)} tensors", where)
    for name, tensor in state_dict.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ModelError(f"weights do not match the config: {name} has shape "
                             f"{tuple(tensor.shape)}, expected {tuple(expected[name].shape)}", where)
        # One NaN weight turns every output pixel NaN: the swap would paste a black box.
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelError(f"weights hold NaN or infinite values (first in {name}): the file is "
                             "damaged or the model diverged in training", where)
    with torch.no_grad():
        model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state_dict.items()},
                              strict=True)


ModelT = TypeVar("ModelT", bound="PretrainedMixin")


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` with a ``config``.

    Subclasses set ``kind`` and ``config_class`` (a dataclass with ``to_dict``/``from_dict``)
    and take the config as the first constructor argument.
    """

    kind: ClassVar[str]
    config_class: ClassVar[type]
    config: Any

    @classmethod
    def resolve_config(cls, config: Any = None, overrides: dict[str, Any] | None = None) -> Any:
        """The constructor's config: ``config`` (default ``config_class()``) with the keyword
        ``overrides`` applied on top."""
        overrides = overrides or {}
        if config is None:
            return cls.config_class(**overrides)
        if overrides:
            return cls.config_class(**{**config.to_dict(), **overrides})
        return config

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None,
                        source: str | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (``dtype=torch.float16`` halves it)."""
        assert isinstance(self, nn.Module)
        return save_model_dir(directory, kind=self.kind, config=self.config.to_dict(),
                              state_dict=self.state_dict(), dtype=dtype, source=source)

    @classmethod
    def from_pretrained(cls: type[ModelT], directory: str | Path, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> ModelT:
        """Load a saved model (eval mode, float32 unless ``dtype`` is given)."""
        loaded = read_model_dir(directory, kind=cls.kind)
        try:
            config = cls.config_class.from_dict(loaded.config)
        except (TypeError, ValueError, FacedancerError) as exc:
            raise ModelError(f"{CONFIG_NAME} does not describe a valid model: {exc}",
                             loaded.path) from exc
        model = cls(config)  # type: ignore[call-arg]
        load_state_dict_checked(model, loaded.state_dict, loaded.path)  # type: ignore[arg-type]
        model = model.to(device=device, dtype=dtype or torch.float32)  # type: ignore[attr-defined]
        model.eval()  # type: ignore[attr-defined]
        model.source = loaded.meta.get("source")  # type: ignore[attr-defined]
        # All of config.json's metadata (RESERVED_KEYS), for readers such as the swapper's
        # recommended identity strength, without reading the file again.
        model.meta = dict(loaded.meta)  # type: ignore[attr-defined]
        return model
