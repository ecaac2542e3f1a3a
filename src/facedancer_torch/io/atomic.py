"""Atomic file writes: nothing half-written is ever left at the destination."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def current_umask() -> int:
    """The process umask (read without changing it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(destination: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; rename it there only on success.

    The temporary file lives in the destination's folder (so the rename is atomic on one
    filesystem) and keeps the destination's suffix (so encoders that pick a format from the
    extension still work). On an exception the temporary file is removed and the
    destination is left as it was.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = destination.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.stem}.", suffix=f".part{suffix}",
                                    dir=destination.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600; give the result the permissions a plain open() would.
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, destination)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(destination: str | Path, data: bytes) -> None:
    """Write ``data`` to ``destination`` atomically."""
    with atomic_path(destination) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(destination: str | Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``destination`` atomically."""
    atomic_write_bytes(destination, text.encode("utf-8"))


def replace_directory(new: str | Path, final: str | Path) -> None:
    """Put the finished folder ``new`` at ``final``.

    An existing ``final`` is swapped out first and deleted only after ``new`` is in place; if
    the move fails, the old folder is put back.
    """
    new, final = Path(new), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    try:
        os.replace(new, final)
    except OSError:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(destination: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``destination``; it replaces ``destination``
    only on success (see :func:`replace_directory`), and is removed on an exception."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part",
                                dir=destination.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        replace_directory(tmp, destination)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
