"""The local model store: downloaded weight files, converted model folders, recorded hashes.

Layout under ``$FACEDANCER_HOME`` (default ``~/.cache/facedancer-torch``)::

    downloads/<file>            files as published (e.g. FaceDancer_config_c_HQ.h5)
    downloads/<file>.part       an interrupted download, resumed by the next fetch
    models/<name>/              converted models: config.json + model.safetensors + source.json
    registry.json               per model: sha256 of its source file and of its converted files

Trust on first use: the catalogue publishes a sha256 only where the hub did; for the others the
first file seen (downloaded or added by hand) is recorded, and any later file or converted
folder that hashes differently is refused with a one-line ModelError. Every write is atomic
(temporary file or folder, then rename) and registry updates hold a lock.

:func:`resolve_model` is what ``--model`` options call: a directory wins, then a name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import InputError, ModelError
from ..io.atomic import atomic_write_text, current_umask, replace_directory
from .catalogue import (
    CATALOGUE,
    AssetSource,
    EmbeddedSource,
    HubSource,
    ModelEntry,
    ModelKind,
    find_entry,
)

HOME_ENV = "FACEDANCER_HOME"
REGISTRY_FORMAT = 1
MODEL_FILES = ("config.json", "model.safetensors")  # hashed and verified on every use
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HASH_PROGRESS_MIN_BYTES = 32 * 1024 * 1024  # show a bar when hashing takes noticeable time


def store_root() -> Path:
    """``$FACEDANCER_HOME`` or ``~/.cache/facedancer-torch`` (not created here)."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "facedancer-torch"


def sha256_file(path: str | Path, *, desc: str | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks; a progress bar for large files on a TTY."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256()
    bar = None
    if size >= _HASH_PROGRESS_MIN_BYTES:
        from tqdm import tqdm

        bar = tqdm(total=size, unit="B", unit_scale=True, desc=desc or f"sha256 {path.name}",
                   disable=None, leave=False)
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                if bar is not None:
                    bar.update(len(block))
    finally:
        if bar is not None:
            bar.close()
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock held while the block runs (two fetches never interleave)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; writes stay atomic
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _short(digest: str) -> str:
    return f"{digest[:12]}…"


@dataclass(frozen=True)
class ModelStatus:
    """Where a model is on this machine, for ``models list`` and error messages."""

    name: str
    present: bool
    state: str  # "converted", "downloaded", "embedded", "missing", "not yet shipped", ...
    where: str  # a path when present, else where it would come from


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing one model."""

    name: str
    ok: bool
    detail: str


class ModelStore:
    """The store at ``root`` (see the module docstring for the layout)."""

    def __init__(self, root: str | Path | None = None,
                 converter: Callable[[Path, Path], Path] | None = None):
        """``converter(source_file, out_dir) -> out_dir`` turns a Keras file into a model folder;
        the caller hands it in (the CLI passes ``convert.api.convert_keras_file``) because this
        layer must not import the converters that sit above it. Without one, ``convert``
        refuses."""
        self.root = Path(root).expanduser() if root is not None else store_root()
        self.converter = converter

    # -- paths ----------------------------------------------------------------------------------

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def registry_path(self) -> Path:
        return self.root / "registry.json"

    def download_path(self, filename: str) -> Path:
        """Where a hub file is (or will be) kept: ``downloads/<filename>``."""
        return self.downloads / Path(filename).name

    def model_dir(self, name: str) -> Path:
        return self.models / name

    # -- registry -------------------------------------------------------------------------------

    def read_registry(self) -> dict[str, Any]:
        """The registry as a dict (empty when there is none yet)."""
        if not self.registry_path.exists():
            return {"format": REGISTRY_FORMAT, "models": {}}
        try:
            data = json.loads(self.registry_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read the model registry ({exc}); move it away to start a "
                             "new one (recorded hashes would be lost)", self.registry_path) from exc
        if not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT:
            raise ModelError("unsupported model registry format", self.registry_path)
        data.setdefault("models", {})
        return data

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[dict[str, Any]]:
        """Read, modify and atomically write the registry under an exclusive lock."""
        with file_lock(self.root / "registry.lock"):
            data = self.read_registry()
            yield data
            atomic_write_text(self.registry_path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def record(self, name: str) -> dict[str, Any] | None:
        """The registry record of model ``name``, if any."""
        return self.read_registry()["models"].get(name)

    # -- hashes: trust on first use -------------------------------------------------------------

    def check_source(self, name: str, path: Path, digest: str, *, origin: str,
                     accept_new_hash: bool = False, record: bool = True) -> None:
        """Refuse ``path`` if its ``digest`` differs from the published or recorded sha256.

        A hash published in the catalogue can never be overridden. A hash recorded on first use
        can, with ``accept_new_hash`` (the authors replaced the file). The first file seen for a
        name is recorded, unless ``record`` is false: a file that is still to be converted is
        recorded by :meth:`convert` only once it converted, so that a truncated or wrong file
        never becomes the hash the genuine one is later refused against.
        """
        entry = find_entry(name)
        if entry is not None and entry.sha256 is not None and digest != entry.sha256:
            raise ModelError(
                f"sha256 {digest} differs from the published sha256 {entry.sha256} of "
                f"{_file_label(entry)} ({entry.sha256_source}); refusing the file: it is corrupt "
                "or not the released one", path)
        with contextlib.ExitStack() as stack:
            registry = (stack.enter_context(self._transaction()) if record
                        else self.read_registry())
            saved = registry["models"].setdefault(name, {})
            source = saved.get("source")
            if source is not None and source.get("sha256") != digest and not accept_new_hash:
                raise ModelError(
                    f"sha256 {_short(digest)} differs from the sha256 {_short(source['sha256'])} "
                    f"recorded on first use ({source.get('recorded_at', '?')}, "
                    f"{source.get('origin', '?')}); refusing a changed file. If the publisher "
                    "really replaced it, run again with --accept-new-hash", path)
            if source is None or source.get("sha256") != digest:
                saved["source"] = {"filename": path.name, "sha256": digest,
                                   "size": path.stat().st_size, "origin": origin,
                                   "recorded_at": _now()}
            saved["source"]["path"] = str(path.resolve())
            saved.setdefault("kind", entry.kind.value if entry is not None else None)

    # -- conversion -----------------------------------------------------------------------------

    def convert(self, name: str, source_path: Path, entry: ModelEntry | None = None, *,
                source_sha256: str | None = None, origin: str | None = None) -> Path:
        """Convert a Keras .h5 into ``models/<name>/`` atomically and record its files' hashes.

        With ``source_sha256`` (a file checked by ``check_source(record=False)``) the source's
        hash is recorded together with the converted files, only after the conversion worked.
        """
        if self.converter is None:
            raise ModelError("this model store was given no converter; convert the file with "
                             "`facedancer convert` or `facedancer models add`", source_path)
        self.models.mkdir(parents=True, exist_ok=True)
        final = self.model_dir(name)
        work = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".converting", dir=self.models))
        try:
            out = Path(self.converter(source_path, work))
            missing = [f for f in MODEL_FILES if not (out / f).is_file()]
            if missing:
                raise ModelError(f"the converter wrote no {', '.join(missing)} in {out}",
                                 source_path)
            source = ({"sha256": source_sha256} if source_sha256 is not None
                      else (self.record(name) or {}).get("source", {}))
            kind = entry.kind.value if entry is not None else _kind_from_config(out / "config.json")
            provenance = {
                "name": name,
                "kind": kind,
                "licence": entry.licence if entry is not None else None,
                "identity_encoder": entry.identity_encoder if entry is not None else None,
                "source_file": source_path.name,
                "source_sha256": source.get("sha256"),
                "converted_at": _now(),
            }
            atomic_write_text(out / "source.json", json.dumps(provenance, indent=2) + "\n")
            hashes = {f: sha256_file(out / f, desc=f"sha256 {name}/{f}") for f in MODEL_FILES}
            _share_like_umask(out)
            replace_directory(out, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        with self._transaction() as registry:
            record = registry["models"].setdefault(name, {})
            if source_sha256 is not None and (record.get("source") or {}).get("sha256") \
                    != source_sha256:
                record["source"] = {"filename": source_path.name, "sha256": source_sha256,
                                    "size": source_path.stat().st_size,
                                    "origin": origin or f"converted from {source_path.resolve()}",
                                    "recorded_at": _now()}
            if source_sha256 is not None:
                record["source"]["path"] = str(source_path.resolve())
            record["converted"] = {"dir": str(final.resolve()), "files": hashes,
                                   "converted_at": provenance["converted_at"]}
            record["kind"] = kind
        return final

    # -- adding files by hand -------------------------------------------------------------------

    def add(self, path: str | Path, name: str | None = None, *, accept_new_hash: bool = False,
            convert: bool = True) -> Path:
        """Register a weight file the user downloaded by hand, and convert it when it can be.

        ``name`` defaults to the catalogue entry whose hub file name matches ``path``'s name,
        else to the file's stem. Returns the converted model folder, or the file itself for
        entries that are kept as they are.
        """
        path = Path(path).expanduser()
        if not path.is_file():
            raise InputError("no such file (give the .h5 file you downloaded)", path)
        entry = find_entry(name) if name else find_entry(path.name)
        if name is None:
            name = entry.name if entry is not None else path.stem
        if entry is not None:
            name = entry.name
            if entry.is_embedded:
                raise ModelError(f"'{name}' ships inside the package; there is nothing to add")
            # A renamed file is fine: the hash check below is what protects the user.
        elif not _NAME_RE.match(name):
            raise ModelError(f"invalid model name '{name}': use letters, digits, '.', '_' or '-' "
                             "(pass --name)", path)
        convertible = entry.convertible if entry is not None else path.suffix.lower() == ".h5"
        if entry is None and not convertible:
            raise ModelError("only Keras .h5 files can be added; a converted model folder "
                             "(config.json + model.safetensors) can be given to --model as is",
                             path)
        digest = sha256_file(path)
        origin = f"added from {path.resolve()}"
        converting = convert and convertible
        first_use = self.record(name) is None
        self.check_source(name, path, digest, origin=origin, accept_new_hash=accept_new_hash,
                          record=not converting)
        result = (self.convert(name, path, entry, source_sha256=digest, origin=origin)
                  if converting else path)
        if entry is not None and entry.sha256 is None and first_use:
            # No published hash to check against: this file took the official name on trust.
            warnings.warn(f"{path}: registered as the catalogue model '{name}' on first use; the "
                          "catalogue publishes no sha256 for it, so nothing proves it is the "
                          "released file (its sha256 is recorded now and checked from now on)",
                          stacklevel=2)
        return result

    # -- status, verification, resolution -------------------------------------------------------

    def status(self, entry: ModelEntry) -> ModelStatus:
        """Whether ``entry`` is usable here, and where it is (or where it would come from)."""
        source = entry.source
        if isinstance(source, EmbeddedSource):
            found = source.locate()
            return (ModelStatus(entry.name, True, "embedded", str(found)) if found else
                    ModelStatus(entry.name, False, "missing", f"install {source.distribution}"))
        if isinstance(source, AssetSource):
            found = source.locate()
            return (ModelStatus(entry.name, True, "embedded", str(found)) if found else
                    ModelStatus(entry.name, False, "not yet shipped", source.describe()))
        record = self.record(entry.name) or {}
        converted = self._converted_dir(record)
        if converted is not None:
            return ModelStatus(entry.name, True, "converted", str(converted))
        download = self.download_path(source.filename)
        if download.is_file():
            state = "downloaded" if not entry.convertible else "downloaded, not converted"
            return ModelStatus(entry.name, not entry.convertible, state, str(download))
        return ModelStatus(entry.name, False, "missing", source.describe())

    def custom_names(self) -> list[str]:
        """Names registered with ``models add`` that are not in the catalogue."""
        return sorted(n for n in self.read_registry()["models"] if find_entry(n) is None)

    def _converted_dir(self, record: dict[str, Any]) -> Path | None:
        converted = record.get("converted")
        if not converted:
            return None
        folder = Path(converted["dir"])
        return folder if all((folder / f).is_file() for f in MODEL_FILES) else None

    def verify_converted(self, name: str) -> Path:
        """Re-hash ``models/<name>``'s files against the registry; the folder, or a ModelError."""
        record = self.record(name) or {}
        folder = self._converted_dir(record)
        if folder is None:
            raise ModelError(f"model '{name}' is not converted in the store {self.root}")
        for filename, expected in record["converted"]["files"].items():
            actual = sha256_file(folder / filename, desc=f"verify {name}/{filename}")
            if actual != expected:
                raise ModelError(
                    f"sha256 {_short(actual)} differs from {_short(expected)} recorded at conversion "
                    f"({record['converted'].get('converted_at', '?')}); refusing a changed model. "
                    f"Re-create it with `facedancer models fetch {name} --force` (or `models add`)",
                    folder / filename)
        return folder

    def verify(self, names: list[str] | None = None) -> list[VerifyResult]:
        """Re-hash the source file and converted files of each model (default: all recorded)."""
        registry = self.read_registry()["models"]
        if names is None:  # everything recorded, plus the embedded files that are present
            names = [e.name for e in CATALOGUE if e.is_embedded and self.status(e).present]
            names += sorted(n for n in registry if n not in names)
        results = []
        for name in names:
            entry = find_entry(name)
            if entry is not None:
                name = entry.name
            if entry is not None and entry.is_embedded:
                results.append(self._verify_embedded(entry))
                continue
            record = registry.get(name)
            if record is None:
                results.append(VerifyResult(name, False, "not in the store"))
                continue
            results.append(self._verify_record(name, record))
        return results

    def _verify_embedded(self, entry: ModelEntry) -> VerifyResult:
        status = self.status(entry)
        if not status.present:
            return VerifyResult(entry.name, False, status.state)
        if entry.sha256 is None:
            return VerifyResult(entry.name, True, f"present, no published hash ({status.where})")
        actual = sha256_file(status.where)
        if actual != entry.sha256:
            return VerifyResult(entry.name, False, f"{status.where}: sha256 {_short(actual)} != "
                                f"{_short(entry.sha256)}")
        return VerifyResult(entry.name, True, f"sha256 ok ({status.where})")

    def _verify_record(self, name: str, record: dict[str, Any]) -> VerifyResult:
        details = []
        source = record.get("source")
        if source is not None:
            path = Path(source.get("path", ""))
            if path.is_file():
                actual = sha256_file(path, desc=f"verify {path.name}")
                if actual != source["sha256"]:
                    return VerifyResult(name, False, f"{path}: sha256 {_short(actual)} differs "
                                        f"from {_short(source['sha256'])} recorded on first use")
                details.append(f"source sha256 ok ({path.name})")
            else:
                details.append("source file no longer present")
        if record.get("converted"):
            try:
                self.verify_converted(name)
            except ModelError as exc:
                return VerifyResult(name, False, str(exc))
            details.append("converted files ok")
        return VerifyResult(name, True, "; ".join(details) or "nothing recorded")


def _kind_from_config(config_path: Path) -> str | None:
    """Our kind of a converted folder, from the ``kind`` its config.json declares."""
    try:
        declared = str(json.loads(config_path.read_text(encoding="utf-8")).get("kind", ""))
    except (OSError, ValueError, AttributeError):
        return None
    if "generator" in declared:
        return ModelKind.GENERATOR.value
    if any(word in declared for word in ("arcface", "facenet", "identity")):
        return ModelKind.IDENTITY.value
    if "retinaface" in declared:
        return ModelKind.DETECTOR.value
    return None


def _file_label(entry: ModelEntry) -> str:
    return entry.source.filename if isinstance(entry.source, HubSource) else entry.name


def _share_like_umask(folder: Path) -> None:
    """mkdtemp/mkstemp make owner-only entries; give the model folder the usual permissions."""
    umask = current_umask()
    os.chmod(folder, 0o777 & ~umask)
    for item in folder.iterdir():
        if item.is_file():
            os.chmod(item, 0o666 & ~umask)


def manual_instructions(entry: ModelEntry, store: ModelStore) -> str:
    """How to install a hub file without this machine reaching the hub (one sentence)."""
    source = entry.source
    assert isinstance(source, HubSource)
    gated = " (gated: log in and accept its terms first)" if source.gated else ""
    place = store.download_path(source.filename)
    return (f"on a connected machine download {source.filename} from {source.page_url}{gated}, "
            f"place it at {place} and run `facedancer models fetch {entry.name}` again, or run "
            f"`facedancer models add PATH/TO/{source.filename}`")


def how_to_get(entry: ModelEntry, store: ModelStore) -> str:
    """One sentence telling the user how to obtain ``entry`` (used by several errors)."""
    source = entry.source
    if isinstance(source, HubSource):
        token = " (set HF_TOKEN after accepting its terms on the hub page)" if source.gated else ""
        return (f"run `facedancer models fetch {entry.name}`{token}; offline, "
                f"{manual_instructions(entry, store)}")
    if isinstance(source, EmbeddedSource):
        return f"install {source.distribution}"
    return "it is not shipped with this version yet"


def resolve_model(name_or_dir: str | Path, *, store: ModelStore | None = None,
                  verify: bool = True) -> Path:
    """The model folder (or file) for a ``--model`` value.

    Order: an existing directory path wins (used as is, not verified); else a catalogue or
    ``models add`` name present locally (its converted files re-hashed when ``verify``);
    else a one-line ModelError saying how to get it. Embedded models resolve to their file or
    folder inside the installed packages.
    """
    candidate = Path(name_or_dir).expanduser()
    if candidate.is_dir():
        return candidate
    text = str(name_or_dir)
    if candidate.exists() or os.sep in text or "/" in text:
        raise ModelError("not a model directory (expected a folder with config.json and "
                         "model.safetensors, or a name from `facedancer models list`)", candidate)
    store = store or ModelStore()
    entry = find_entry(text)
    name = entry.name if entry is not None else text
    if entry is not None and entry.is_embedded:
        status = store.status(entry)
        if not status.present:
            raise ModelError(f"model '{name}' is not available here: {how_to_get(entry, store)}")
        return Path(status.where)
    record = store.record(name)
    if record is not None and store._converted_dir(record) is not None:
        return store.verify_converted(name) if verify else store._converted_dir(record)
    if entry is not None:
        if not entry.convertible and record is not None and record.get("source"):
            path = Path(record["source"]["path"])
            if path.is_file():
                return path
        raise ModelError(f"model '{name}' is not in the local store {store.root}: "
                         f"{how_to_get(entry, store)}")
    raise ModelError(f"'{text}' is neither a model directory nor a known model name "
                     "(see `facedancer models list`)")


def model_kind(name: str, store: ModelStore | None = None) -> ModelKind | None:
    """The kind of a catalogue or added model, if known."""
    entry = find_entry(name)
    if entry is not None:
        return entry.kind
    record = (store or ModelStore()).record(name) or {}
    return ModelKind(record["kind"]) if record.get("kind") else None
