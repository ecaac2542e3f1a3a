"""Atomic file writes: nothing half-written is ever left at the destination."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import FacedancerError

# Errors that mean "the destination cannot take the bytes", whatever wrote them (Pillow, PyAV,
# safetensors, torch.save): reported as one line naming the output instead of a traceback.
WRITE_ERRNOS: frozenset[int] = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
     errno.EISDIR, errno.ENOTDIR})


def _umask_by_toggling() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Read once at import, while nothing else runs: os.umask(0) briefly leaves the process with no
# mask, and a file another thread creates in that window would be world-writable.
_IMPORT_UMASK = _umask_by_toggling()


def current_umask() -> int:
    """The process umask, read without changing it (``/proc/self/status`` on Linux; elsewhere
    the umask at import time)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def write_error(exc: OSError, destination: str | Path) -> FacedancerError:
    """The one-line error for an ``OSError`` met while writing ``destination``."""
    reason = (exc.strerror or os.strerror(exc.errno)) if exc.errno else str(exc)
    return FacedancerError(f"cannot write the output: {reason}", destination)


def check_writable(path: str | Path, *, folder: bool = False) -> Path:
    """Fail now, with one line naming ``path``, if an output there cannot be written.

    Checked before any work starts (so that a long job does not fail at its very end): ``path``
    is not a folder when a file is expected (nor a file when ``folder``), the nearest existing
    folder above it is a folder, and a file can really be created there (which also covers
    read-only folders and file systems). A full disk is only found while writing; see
    :func:`atomic_path`.
    """
    path = Path(path)
    if path.is_dir() and not folder:
        raise FacedancerError("the output is a folder; give a file name", path)
    if path.exists() and not path.is_dir() and folder:
        raise FacedancerError("the output must be a folder, but a file has this name", path)
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise FacedancerError(f"cannot create the output: '{parent}' is a file, not a folder",
                              path)
    try:
        with tempfile.TemporaryFile(dir=parent, prefix=".facedancer-write-check."):
            pass
    except OSError as exc:
        raise write_error(exc, path) from None
    return path


@contextlib.contextmanager
def atomic_path(destination: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``destination``; rename it there only on success.

    The temporary file lives in the destination's folder (so the rename is atomic on one
    filesystem) and keeps the destination's suffix (so encoders that pick a format from the
    extension still work). On an exception the temporary file is removed and the
    destination is left as it was.
    """
    destination = Path(destination)
    suffix = destination.suffix if suffix is None else suffix
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.stem}.",
                                        suffix=f".part{suffix}", dir=destination.parent)
    except OSError as exc:
        raise write_error(exc, destination) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600; give the result the permissions a plain open() would.
            os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, destination)
    except OSError as exc:
        # Disk full or file too large while the caller wrote, or the rename refused (the
        # destination became a folder): one line naming the output, not a traceback.
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS) \
                or (exc.errno in WRITE_ERRNOS and exc.filename in (str(tmp), str(destination))):
            raise write_error(exc, destination) from None
        raise
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
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part",
                                    dir=destination.parent))
    except OSError as exc:
        raise write_error(exc, destination) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        replace_directory(tmp, destination)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
            raise write_error(exc, destination) from None  # as atomic_path
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
