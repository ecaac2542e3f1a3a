"""Provenance tags: every output says it is synthetic media, which tool and model made it.

The tag is a flat ``dict[str, str]`` (see :func:`provenance_tag`). It is stored as text
metadata next to the pixels:

- images (through :func:`facedancer_torch.io.images.write_image`): PNG text chunks, or EXIF
  ``ImageDescription`` JSON for JPEG/WebP/TIFF;
- videos (through :class:`facedancer_torch.io.video.VideoWriter`): MP4/MOV/MKV container tags,
  a GIF comment extension, or an XMP chunk in animated WebP.

In every case the keys are the same (:func:`provenance_metadata`): ``comment`` holds a
human-readable sentence (shown by players and file browsers) followed by the tag as JSON,
``description`` the JSON alone; :func:`read_provenance` parses it back.
``digital_source_type`` is the IPTC term for AI-made media (``trainedAlgorithmicMedia``), the
label that C2PA and photo agencies use. Metadata is easy to strip; the invisible watermark
(:mod:`.watermark`) is the second signal.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import __version__
from ..errors import InputError
from .images import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, is_animated, read_image,
                     read_image_metadata, write_image)
from .probe import probe_video, read_video_metadata
from .video_reader import sample_frames
from .watermark import detect_watermark

if TYPE_CHECKING:
    from .watermark import WatermarkResult

TOOL_NAME = "facedancer-torch"
SYNTHETIC_LABEL = "synthetic media"
IPTC_DIGITAL_SOURCE_TYPE = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia")
_KEYS = ("comment", "description")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance_tag(model: str, *, sources: Iterable[str | Path] = (),
                    operation: str = "face swap",
                    timestamp: _dt.datetime | None = None,
                    extra: dict[str, str] | None = None) -> dict[str, str]:
    """The provenance tag of one output.

    Args:
        model: the model that made it (a directory name or registry name).
        sources: files whose SHA-256 is recorded (the source faces); listed in order.
        operation: what was done, e.g. ``"face swap"``.
        timestamp: creation time (default: now, UTC, ISO 8601 to the second).
        extra: more string entries (they cannot override the fixed ones).
    """
    when = (timestamp or _dt.datetime.now(_dt.timezone.utc)).astimezone(_dt.timezone.utc)
    tag = {str(k): str(v) for k, v in (extra or {}).items()}
    tag.update({
        "content": SYNTHETIC_LABEL,
        "tool": TOOL_NAME,
        "tool_version": __version__,
        "model": str(model),
        "operation": operation,
        "created": when.replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "digital_source_type": IPTC_DIGITAL_SOURCE_TYPE,
    })
    hashes = [sha256_file(p) for p in sources]
    if hashes:
        tag["source_sha256"] = ",".join(hashes)
    return tag


def provenance_metadata(tag: dict[str, str]) -> dict[str, str]:
    """File metadata carrying ``tag``, for ``write_image(metadata=)`` and ``VideoWriter``.

    ``comment``: a sentence for people, then the tag as JSON (``comment`` is the one key that
    MP4, MOV, MKV, WebM, PNG and our GIF/WebP/EXIF paths all keep); ``description``: the JSON
    alone (shown by MP4 players; MOV drops it).
    """
    sentence = (f"Synthetic media: {tag.get('operation', 'edited')} made with "
                f"{tag.get('tool', TOOL_NAME)} {tag.get('tool_version', '')} "
                f"(model {tag.get('model', 'unknown')}).")
    text = json.dumps(tag, ensure_ascii=True, sort_keys=True)
    return {"comment": " ".join(sentence.split()) + " " + text, "description": text}


def write_image_with_provenance(path: str | Path, rgb: np.ndarray, tag: dict[str, str],
                                quality: int = 95) -> None:
    """``write_image`` with the provenance tag embedded (atomic)."""
    write_image(path, rgb, metadata=provenance_metadata(tag), quality=quality)


def _is_tag(value: object) -> bool:
    return isinstance(value, dict) and bool(value.get("tool")) and bool(value.get("content"))


def parse_provenance(metadata: dict[str, str]) -> dict[str, str] | None:
    """Find our tag in file metadata, or None: a value holding the tag as JSON (what
    :func:`provenance_metadata` writes), or the tag's keys stored one by one."""
    lowered = {str(k).lower(): str(v) for k, v in metadata.items()}
    if _is_tag(lowered):
        return lowered
    candidates = [lowered[k] for k in _KEYS if k in lowered] + list(lowered.values())
    for text in candidates:
        start = text.find("{")  # JSON alone, or after the sentence in ``comment``
        if start < 0:
            continue
        try:
            value = json.loads(text[start:])
        except ValueError:
            continue
        if _is_tag(value):
            return {str(k): str(v) for k, v in value.items()}
    return None


def read_file_metadata(path: str | Path) -> dict[str, str]:
    """Text metadata of an image or video file (empty if it has none).

    Raises:
        InputError: the file is missing or readable neither as an image nor as a video.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if (suffix in IMAGE_EXTENSIONS and suffix != ".webp") or suffix == ".apng":
        return read_image_metadata(path)  # PNG text chunks, of a still or an animation
    if suffix in VIDEO_EXTENSIONS:
        return read_video_metadata(path)
    # .webp: EXIF (a still written by write_image) or XMP (an animation); unknown suffixes:
    # whatever reads it
    readers = [read_image_metadata, read_video_metadata]
    errors: list[InputError] = []
    for reader in readers:
        try:
            found = reader(path)
        except InputError as exc:
            errors.append(exc)
            continue
        if found:
            return found
    if len(errors) == len(readers):
        raise errors[0]
    return {}


def read_provenance(path: str | Path) -> dict[str, str] | None:
    """The provenance tag stored in an image or video file, or None if it has none.

    Raises:
        InputError: the file is missing or unreadable (the message names it).
    """
    return parse_provenance(read_file_metadata(path))


@dataclass(frozen=True)
class Verification:
    """What :func:`verify_file` found in one file."""

    path: Path
    kind: str  # "image" or "video"
    provenance: dict[str, str] | None
    watermark: WatermarkResult | None  # None when no frame could be checked
    frames_checked: int

    @property
    def synthetic(self) -> bool:
        """True when the provenance tag or the invisible watermark is present."""
        return self.provenance is not None or bool(self.watermark and self.watermark.found)

    def as_dict(self) -> dict:
        """JSON-ready summary."""
        mark = self.watermark
        return {
            "path": str(self.path), "kind": self.kind, "synthetic": self.synthetic,
            "provenance": self.provenance,
            "watermark": None if mark is None else {
                "found": mark.found, "payload": mark.payload.hex(), "version": mark.version,
                "bit_errors": mark.bit_errors, "z": round(mark.z, 2),
                "confidence": round(mark.confidence, 4)},
            "frames_checked": self.frames_checked,
        }


# Video frames `verify` pools: the watermark's z grows with the square root of the frames, and
# 16 keep a margin after an H.264 crf 28 re-encode that 8 did not (docs/media.md).
VERIFY_FRAMES: int = 16


def verify_sequence(pattern: str | Path) -> list[Verification]:
    """:func:`verify_file` of every frame of an image sequence (``out_%04d.png``), in frame
    order: each frame is its own file, labelled only if a face was swapped in it.

    Raises:
        InputError: no file matches the pattern, or a frame is unreadable.
    """
    from .sequence import probe_sequence, sequence_files

    probe_sequence(pattern)  # one line naming the pattern when nothing matches
    return [verify_file(path) for _, path in sequence_files(pattern)]


def verify_file(path: str | Path, frames: int = VERIFY_FRAMES) -> Verification:
    """Read the provenance tag and look for the watermark in an image or video file.

    Videos are checked on ``frames`` frames spread over the clip, pooled (one detection over
    all of them). A file is an image when it is one of ``IMAGE_EXTENSIONS`` and Pillow reads
    it as a single frame; otherwise it is opened as a video.

    Raises:
        InputError: the file is missing or readable neither as an image nor as a video.
    """
    path = Path(path)
    tag = read_provenance(path)
    image = None
    if path.suffix.lower() in IMAGE_EXTENSIONS and not is_animated(path):
        image = read_image(path)
    if image is not None:
        return Verification(path, "image", tag, detect_watermark(image), 1)
    probe_video(path)  # raises InputError naming the file when it is no usable video
    sampled = [f.rgb for f in sample_frames(path, frames)]
    mark = detect_watermark(sampled) if sampled else None
    return Verification(path, "video", tag, mark, len(sampled))
