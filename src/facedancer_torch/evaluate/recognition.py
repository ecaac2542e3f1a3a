"""Face-recognition networks as seen by the evaluation: aligned crops in, unit embeddings out.

Two kinds plug in behind one small interface, :class:`Recognizer`:

- the project's identity encoders (``models.identity.registry``; the default is FaceNet),
  which the generator may have trained with (docs/reference.md §4), and
- dlib's ResNet descriptor (:mod:`.dlib_face`), which no generator here trains with, so it is
  the independent network the paper's ID-retrieval protocol asks for (§8).

Conventions: crops are ``(S, S, 3)`` uint8 RGB aligned to the ArcFace template with a shrink
factor ``shrink`` (§1); embeddings come back ``(N, D)`` float32 and L2-normalised, so a dot
product is the cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..device import resolve_device
from ..errors import ModelError
from ..models.identity.registry import load_identity_encoder
from .dlib_face import DESCRIPTOR_DIM, get_dlib_face

DLIB = "dlib"


class Recognizer:
    """Embeds aligned crops. ``name`` is what reports print; ``dim`` the embedding size."""

    name: str
    dim: int

    def embed_crops(self, crops: Sequence[np.ndarray], shrink: float,
                    progress: str | None = None) -> np.ndarray:
        """``(N, D)`` float32 unit embeddings of N aligned ``(S, S, 3)`` uint8 crops."""
        raise NotImplementedError


class DlibRecognizer(Recognizer):
    """dlib's 128-d ResNet face descriptor (landmarks from the template box, no detector)."""

    def __init__(self):
        self.face = get_dlib_face()
        self.name = DLIB
        self.dim = DESCRIPTOR_DIM

    def embed_crops(self, crops, shrink, progress=None):
        analyses = self.face.analyse_crops(list(crops), shrink, progress=progress)
        if not analyses:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit(np.stack([a.descriptor for a in analyses]))


class EncoderRecognizer(Recognizer):
    """A project identity encoder (:class:`~facedancer_torch.models.identity.base.IdentityEncoder`)."""

    def __init__(self, encoder, name: str, device: str | None = None, batch_size: int = 32):
        self.encoder = encoder
        self.name = name
        self.dim = int(encoder.contract.embedding_dim)
        parameter = next(encoder.parameters(), None)
        self.device = torch.device(device) if device is not None else (
            parameter.device if parameter is not None else torch.device("cpu"))
        self.batch_size = int(batch_size)

    def embed_crops(self, crops, shrink, progress=None):
        crops = list(crops)
        out = []
        starts = range(0, len(crops), self.batch_size)
        for start in tqdm(starts, desc=progress, disable=progress is None, leave=False):
            batch = np.stack(crops[start:start + self.batch_size])
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float().to(self.device)
            x = x / 127.5 - 1.0
            with torch.inference_mode():
                out.append(self.encoder.embed(x, crop_shrink=shrink).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return _unit(np.concatenate(out))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def load_recognizer(name_or_path: str | Path = "default", device: str = "auto") -> Recognizer:
    """``"dlib"`` or any name/directory :func:`load_identity_encoder` accepts."""
    if str(name_or_path).lower() == DLIB:
        return DlibRecognizer()

    torch_device = resolve_device(device)
    try:
        encoder = load_identity_encoder(str(name_or_path), device=torch_device)
    except ModelError as exc:
        if exc.path is not None:
            raise
        raise ModelError(f"{exc}; for evaluation also '{DLIB}'") from exc
    name = getattr(encoder.contract, "name", None) or str(name_or_path)
    return EncoderRecognizer(encoder, name, str(torch_device))
