"""Folders of aligned faces: ``ROOT/<identity>/<image>`` (as ``facedancer align`` writes them).

The identity of an image is its first sub-folder under the root; an image directly in the root
is its own identity (its file stem). Used directly by the loader for small data, and by
``facedancer shard`` to build WebDataset shards for large data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


@dataclass(frozen=True)
class FaceRecord:
    """One aligned face image: its path, its path relative to the root, its identity."""

    path: Path
    relpath: str
    identity: str


def list_aligned_images(root: str | Path) -> list[FaceRecord]:
    """Every image under ``root`` (recursively, hidden files skipped), sorted by relative path.

    Raises :class:`InputError` when ``root`` is not a folder or holds no image.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("not a folder of aligned face images", root)
    records = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        identity = rel.parts[0] if len(rel.parts) > 1 else path.stem
        records.append(FaceRecord(path=path, relpath=rel.as_posix(), identity=identity))
    if not records:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found", root)
    return records


def image_kind(data: bytes) -> str | None:
    """The image format from its magic bytes (``jpg``, ``png``, ``webp``, ``bmp``), or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM":
        return "bmp"
    return None


def decode_bgr(data: bytes, name: str | Path | None = None) -> np.ndarray:
    """Decode encoded image bytes with OpenCV (BGR uint8, as training decodes them);
    :class:`InputError` naming ``name`` when they do not decode."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise InputError("cannot decode image", name or None)
    return image
