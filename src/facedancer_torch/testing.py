"""Where the shared real data lives, for tests and benchmarks.

The project never copies ``../shared`` (real photos, videos, LFW, Keras fixtures) into the
repository: tests and benchmarks read it from beside the checkout, or from the folder named by
``FACEDANCER_SHARED``, and skip with a reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_root() -> Path | None:
    """The shared folder (``$FACEDANCER_SHARED`` or ``<repo>/../shared``), or None if absent."""
    env = os.environ.get("FACEDANCER_SHARED")
    candidates = [Path(env)] if env else []
    candidates += [_REPO_ROOT.parent / "shared", Path.cwd().parent / "shared"]
    for candidate in candidates:
        if (candidate / "data").is_dir() or (candidate / "fixtures").is_dir():
            return candidate.resolve()
    return None


def shared_path(*parts: str) -> Path | None:
    """``shared_root()/parts...`` if it exists, else None."""
    root = shared_root()
    if root is None:
        return None
    path = root.joinpath(*parts)
    return path if path.exists() else None


PHOTOS_ABSENT = "photos are absent: expected ../shared/data/photos (or $FACEDANCER_SHARED)"


def shared_photos() -> list[Path]:
    """The shared photos (JPEG and PNG files of ``data/photos``), sorted by name; empty when
    the folder is absent (benchmarks then stop with :data:`PHOTOS_ABSENT`)."""
    photos = shared_path("data", "photos")
    if photos is None:
        return []
    return sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))
