"""Evaluation test sets: aligned face crops with identities and a manifest (docs/reference.md §8).

The paper's protocol (FaceForensics++): 10 random frames of each original video, the video
being the identity. :func:`make_testset` builds the same from any folder:

- videos at the top level: ``frames_per_video`` distinct frames drawn uniformly at random per
  video (seeded per video from ``seed`` and the file name, so adding a video does not change
  the frames of the others); identity = file name without suffix;
- sub-folders of images: identity = folder name (e.g. LFW's ``images/<Name>/``); all images,
  or a seeded random ``max_per_identity`` of them.

Each frame/image is detected (largest face), aligned to the ArcFace template (§1) and saved as
a PNG crop under ``images/<identity>/``. The default crop, 512 px at shrink 0.5, keeps the
whole head: the generator's crop (any size, shrink >= 0.5) and every encoder's crop are cut
from its centre, and the landmark-based metrics see the jaw and brows. Frames without a face
are listed in the manifest under ``skipped``.

``manifest.json``::

    {"format": "facedancer-testset/1", "crop": {"size": 512, "shrink": 0.5, "template": "arcface"},
     "seed": 0, "frames_per_video": 10, "source": "<input folder>",
     "images": [{"path": "images/<id>/<name>.png", "identity": "<id>", "origin": "<file>",
                 "frame": 17 | null, "score": 0.99, "landmarks": [[x, y] x5 in the origin]}],
     "skipped": [{"origin": ..., "frame": ..., "reason": ...}]}
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..errors import FacedancerError, InputError
from ..faces.align import align_face
from ..faces.detect import get_detector, largest_face
from ..io.atomic import atomic_write_text
from ..io.images import is_image_path, is_video_path, read_image, write_image
from ..io.video import probe_video, read_frames

MANIFEST = "manifest.json"
FORMAT = "facedancer-testset/1"
DEFAULT_SIZE: int = 512
DEFAULT_SHRINK: float = 0.5


@dataclass(frozen=True)
class TestImage:
    """One aligned test crop; ``path`` is relative to the test set folder."""

    path: str
    identity: str
    origin: str
    frame: int | None = None
    score: float | None = None
    landmarks: list | None = None


@dataclass
class Testset:
    """A loaded test set: its folder, crop geometry and images (manifest order)."""

    root: Path
    size: int
    shrink: float
    images: list[TestImage]
    info: dict = field(default_factory=dict)

    @property
    def identities(self) -> list[str]:
        """Distinct identities, sorted."""
        return sorted({image.identity for image in self.images})

    def file(self, index: int) -> Path:
        return self.root / self.images[index].path

    def read(self, index: int) -> np.ndarray:
        """The aligned crop ``(size, size, 3)`` uint8 RGB of image ``index``."""
        image = read_image(self.file(index))
        if image.shape[:2] != (self.size, self.size):
            raise InputError(f"test image is {image.shape[1]}x{image.shape[0]}, the manifest "
                             f"says {self.size}x{self.size}", self.file(index))
        return image


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def _scan(input_dir: Path) -> list[tuple[str, str, list[Path]]]:
    """``(kind, identity, files)`` for every top-level video and image sub-folder."""
    entries: list[tuple[str, str, list[Path]]] = []
    loose_images = []
    for path in sorted(input_dir.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_file() and is_video_path(path):
            entries.append(("video", path.stem, [path]))
        elif path.is_file() and is_image_path(path):
            loose_images.append(path)
        elif path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and is_image_path(p))
            if files:
                entries.append(("images", path.name, files))
    if not entries:
        hint = (" (images must be grouped in one folder per identity)" if loose_images else "")
        raise InputError(f"no videos and no identity folders of images found{hint}", input_dir)
    names = [_safe_name(name) for _, name, _ in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(f"identity names collide: {', '.join(duplicates[:5])}", input_dir)
    return [(kind, _safe_name(name), files) for kind, name, files in entries]


def _video_frames(path: Path, count: int, rng: np.random.Generator):
    """Yield ``(index, rgb)`` for ``count`` distinct random frames of a video, in order."""
    total = probe_video(path).frame_count
    if total <= 0:
        raise InputError("video reports no frames", path)
    wanted = sorted(rng.choice(total, size=min(count, total), replace=False).tolist())
    remaining = set(wanted)
    for frame in read_frames(path, max_frames=max(wanted) + 1):
        if frame.index in remaining:
            remaining.discard(frame.index)
            yield frame.index, frame.rgb
            if not remaining:
                return
    for index in sorted(remaining):  # the container's frame count was too high
        yield index, None


def make_testset(input_dir: str | Path, out_dir: str | Path, frames_per_video: int = 10,
                 seed: int = 0, size: int = DEFAULT_SIZE, shrink: float = DEFAULT_SHRINK,
                 max_per_identity: int | None = None, detector=None,
                 progress: bool = True) -> Testset:
    """Build a test set in ``out_dir`` from videos or identity folders (see module doc).

    Raises :class:`InputError` for an unusable input folder and :class:`FacedancerError` if
    ``out_dir`` already holds a test set or fewer than two identities have a usable face.
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    if not input_dir.is_dir():
        raise InputError("input folder does not exist", input_dir)
    if frames_per_video < 1:
        raise FacedancerError("--frames-per-video must be at least 1")
    if max_per_identity is not None and max_per_identity < 1:
        raise FacedancerError("--max-per-identity must be at least 1")
    if (out_dir / MANIFEST).exists():
        raise FacedancerError("already holds a test set; choose another folder or delete it",
                              out_dir)
    entries = _scan(input_dir)
    detector = detector or get_detector()
    images: list[dict] = []
    skipped: list[dict] = []
    used: set[str] = set()

    def add(identity: str, origin: Path, frame: int | None, rgb: np.ndarray | None) -> None:
        where = {"origin": str(origin), "frame": frame}
        if rgb is None:
            skipped.append({**where, "reason": "frame could not be decoded"})
            return
        face = largest_face(detector.detect(rgb))
        if face is None:
            skipped.append({**where, "reason": "no face detected"})
            return
        crop, _ = align_face(rgb, face.landmarks, size, shrink_factor=shrink)
        stem = _safe_name(origin.stem) if frame is None else f"{identity}_{frame:06d}"
        relative = f"images/{identity}/{stem}.png"
        suffix = 1
        while relative in used:  # a.jpg and a.png of one identity
            suffix += 1
            relative = f"images/{identity}/{stem}_{suffix}.png"
        used.add(relative)
        write_image(out_dir / relative, crop)
        images.append({"path": relative, "identity": identity, "origin": str(origin),
                       "frame": frame, "score": round(float(face.score), 4),
                       "landmarks": np.round(np.asarray(face.landmarks, np.float64), 2).tolist()})

    bar = tqdm(entries, desc="make-testset", unit="identity", disable=not progress)
    for kind, identity, files in bar:
        rng = _rng(seed, identity)
        if kind == "video":
            for index, rgb in _video_frames(files[0], frames_per_video, rng):
                add(identity, files[0], index, rgb)
        else:
            chosen = files
            if max_per_identity is not None and len(files) > max_per_identity:
                picks = sorted(rng.choice(len(files), size=max_per_identity, replace=False))
                chosen = [files[i] for i in picks]
            for path in chosen:
                try:
                    rgb = read_image(path)
                except InputError as exc:
                    skipped.append({"origin": str(path), "frame": None, "reason": str(exc)})
                    continue
                add(identity, path, None, rgb)
    if len({image["identity"] for image in images}) < 2:
        raise FacedancerError("fewer than two identities with a detected face; a test set "
                              "needs at least two", input_dir)
    manifest = {"format": FORMAT, "crop": {"size": int(size), "shrink": float(shrink),
                                           "template": "arcface"},
                "seed": int(seed), "frames_per_video": int(frames_per_video),
                "max_per_identity": max_per_identity, "source": str(input_dir.resolve()),
                "detector": getattr(detector, "name", "retinaface"),
                "images": images, "skipped": skipped}
    atomic_write_text(out_dir / MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return load_testset(out_dir)


def load_testset(directory: str | Path) -> Testset:
    """Read a test set folder written by :func:`make_testset`."""
    directory = Path(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"not a test set (no {MANIFEST}; make one with 'facedancer "
                         "make-testset')", directory)
    try:
        data = json.loads(manifest_path.read_text())
        crop = data["crop"]
        images = [TestImage(path=str(e["path"]), identity=str(e["identity"]),
                            origin=str(e.get("origin", "")), frame=e.get("frame"),
                            score=e.get("score"), landmarks=e.get("landmarks"))
                  for e in data["images"]]
        size, shrink = int(crop["size"]), float(crop["shrink"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"malformed test set manifest ({exc})", manifest_path) from exc
    if data.get("format") != FORMAT:
        raise InputError(f"unknown test set format {data.get('format')!r} (expected {FORMAT})",
                         manifest_path)
    if not images:
        raise InputError("the test set has no images", manifest_path)
    info = {k: v for k, v in data.items() if k not in ("images",)}
    return Testset(root=directory, size=size, shrink=shrink, images=images, info=info)
