"""Fetch catalogue files from the Hugging Face hub into the local store, resumably.

Only ``facedancer models fetch`` reaches the network; nothing downloads at swap time.

Why not ``hf_hub_download``: in huggingface_hub 2.x it downloads to a process-unique temporary
file that is deleted when the transfer fails, so an interrupted 160 MB download restarts from
zero. We use the same library's pieces instead (``get_hf_file_metadata`` for the HEAD call, its errors, its token handling, and ``http_get``,
which retries a dropped connection with a ``Range`` request and shows a progress bar) and keep
the partial file as ``downloads/<file>.part`` with the ETag it belongs to, so that running the
command again continues where it stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlparse

from ..errors import ModelError
from .catalogue import HubSource, ModelEntry, get_entry
from .store import ModelStore, file_lock, how_to_get, manual_instructions, sha256_file

_SHA256_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class Download:
    """A completed download: where it is, its sha256 and the hub commit it came from."""

    path: Path
    sha256: str
    commit: str | None


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or huggingface_hub's own offline switch) is on."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.is_offline_mode())


def hub_endpoint() -> str:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level failures of whichever HTTP client this huggingface_hub uses."""
    errors: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
            errors.append(module.TransportError)
        except (ImportError, AttributeError):
            pass
    try:
        import requests

        errors += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    return tuple(errors)


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = urlparse(url)
    return parsed.scheme, (parsed.hostname or "").lower(), parsed.port


def offline_message(entry: ModelEntry, store: ModelStore, reason: str) -> str:
    """One line: why we cannot download, which file to place by hand, where, and what to run."""
    return f"{reason}: cannot download {entry.name}; {manual_instructions(entry, store)}"


def gated_message(source: HubSource, status: int | None, token_sent: bool) -> str:
    who = ("your token has no access yet" if token_sent and status == 403
           else "the token was refused" if token_sent else "no token was given")
    return (f"{source.repo_id} is gated and {who} (HTTP {status}): log in on {source.page_url}, "
            "accept its terms (the authors approve requests by hand, which can take days), "
            "then set HF_TOKEN to a read token or pass --token")


def download_hub_file(entry: ModelEntry, store: ModelStore, *, token: str | None = None,
                      force: bool = False) -> Download:
    """Download ``entry``'s hub file to ``store.downloads`` (resuming a ``.part``), then hash it.

    Raises a one-line ModelError when offline, when the network is unreachable, for a gated
    repository without access, or when the bytes do not match the hub's own LFS sha256.
    """
    source = entry.source
    if not isinstance(source, HubSource):
        raise ModelError(f"'{entry.name}' is not a hub file")
    if hub_offline():
        raise ModelError(offline_message(entry, store, "offline (HF_HUB_OFFLINE is set)"))
    try:
        from huggingface_hub import get_hf_file_metadata, get_token
        from huggingface_hub.utils import (
            EntryNotFoundError,
            GatedRepoError,
            HfHubHTTPError,
            OfflineModeIsEnabled,
            RepositoryNotFoundError,
        )
    except ImportError as exc:
        raise ModelError("downloading needs huggingface_hub: pip install 'facedancer-torch[hub]' "
                         f"({offline_message(entry, store, 'or get the file by hand')})") from exc

    endpoint = hub_endpoint()
    # Built here rather than with hf_hub_url, whose endpoint override depends on the
    # HF_ENDPOINT seen at import time.
    url = (f"{endpoint}/{source.repo_id}/resolve/{quote(source.revision, safe='')}/"
           f"{quote(source.filename)}")
    network_errors = _network_errors()
    token_sent = bool(token or get_token())  # $HF_TOKEN or the one saved by `hf auth login`
    try:
        meta = get_hf_file_metadata(url, token=token)
    except GatedRepoError as exc:
        raise ModelError(gated_message(source, _status(exc), token_sent)) from None
    except RepositoryNotFoundError as exc:
        status = _status(exc)
        if status in (401, 403) and source.gated:
            raise ModelError(gated_message(source, status, token_sent)) from None
        raise ModelError(f"{source.repo_id} was not found on {endpoint} (HTTP {status}); "
                         "if it is private or gated, set HF_TOKEN") from None
    except EntryNotFoundError:
        raise ModelError(f"{source.filename} is not (or no longer) in {source.repo_id} at "
                         f"revision {source.revision} on {endpoint}") from None
    except OfflineModeIsEnabled:
        raise ModelError(offline_message(entry, store, "offline (HF_HUB_OFFLINE is set)")) from None
    except HfHubHTTPError as exc:
        status = _status(exc)
        if status in (401, 403):
            raise ModelError(gated_message(source, status, token_sent)) from None
        raise ModelError(f"{endpoint} answered HTTP {status} for {source.repo_id}/"
                         f"{source.filename}; try again later") from None
    except network_errors as exc:
        raise ModelError(offline_message(entry, store, f"cannot reach {endpoint} "
                                         f"({type(exc).__name__})")) from None
    if meta.commit_hash is None or meta.etag is None:
        raise ModelError(f"{endpoint} does not look like a Hugging Face hub (no X-Repo-Commit or "
                         "ETag header); check HF_ENDPOINT, proxies and firewall")

    store.downloads.mkdir(parents=True, exist_ok=True)
    final = store.download_path(source.filename)
    with file_lock(final.with_name(final.name + ".lock")):
        return _download_locked(source, meta, url, final, token=token, force=force)


def _download_locked(source: HubSource, meta, url: str, final: Path, *, token: str | None,
                     force: bool) -> Download:
    """The transfer itself, with ``final``'s lock held (see :func:`download_hub_file`)."""
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import HfHubHTTPError, build_hf_headers

    network_errors = _network_errors()
    part = final.with_name(final.name + ".part")
    sidecar = final.with_name(final.name + ".part.json")
    state = {"etag": meta.etag, "commit": meta.commit_hash, "size": meta.size}
    resume = 0
    if part.exists() and not force and _read_json(sidecar) == state:
        resume = part.stat().st_size
        if meta.size is not None and resume > meta.size:
            resume = 0
    if resume == 0:
        part.unlink(missing_ok=True)
    sidecar.write_text(json.dumps(state))

    headers = build_hf_headers(token=token)
    if _origin(meta.location) != _origin(url):
        # A signed CDN URL: the hub token must not leave the hub (as huggingface_hub does).
        headers.pop("authorization", None)
        headers.pop("Authorization", None)
    try:
        with part.open("r+b" if resume else "w+b") as handle:
            handle.seek(resume)
            handle.truncate()
            http_get(meta.location, handle, resume_size=resume, headers=headers,
                     expected_size=meta.size, displayed_filename=source.filename)
    except network_errors as exc:
        raise ModelError(f"download of {source.filename} interrupted ({type(exc).__name__}); "
                         f"{part.stat().st_size if part.exists() else 0} bytes kept, run the same "
                         "command again to resume") from None
    except HfHubHTTPError as exc:
        raise ModelError(f"download of {source.filename} failed with HTTP {_status(exc)}; run "
                         "the same command again to resume") from None
    except OSError as exc:  # http_get's size consistency check, disk full...
        raise ModelError(f"download of {source.filename} failed: {exc}", part) from None

    digest = sha256_file(part, desc=f"sha256 {source.filename}")
    etag = meta.etag.lower()
    if len(etag) == 64 and set(etag) <= _SHA256_HEX and digest != etag:
        # For LFS files the hub's ETag is the file's sha256: a mismatch is a corrupt transfer.
        part.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise ModelError(f"the downloaded {source.filename} has sha256 {digest[:12]}… but the hub "
                         f"announced {etag[:12]}…: corrupt transfer, deleted; run the command again")
    os.replace(part, final)
    sidecar.unlink(missing_ok=True)
    return Download(final, digest, meta.commit_hash)


def fetch_model(name: str, *, store: ModelStore | None = None, token: str | None = None,
                force: bool = False, accept_new_hash: bool = False, convert: bool = True) -> Path:
    """Get catalogue model ``name`` ready to use; returns its folder (or file) in the store.

    A file already in ``downloads/`` (fetched before, or placed there by hand) is used without
    network unless ``force``. The file's sha256 is checked against the catalogue or the hash
    recorded on first use (recorded now if it is the first), then ``.h5`` files are converted
    into ``models/<name>/``.
    """
    store = store or ModelStore()
    entry = get_entry(name)
    if entry.is_embedded:
        status = store.status(entry)
        if not status.present:
            raise ModelError(f"model '{entry.name}' is not available here: "
                             f"{how_to_get(entry, store)}")
        return Path(status.where)
    source = entry.source
    assert isinstance(source, HubSource)
    record = store.record(entry.name) or {}
    if not force and convert and entry.convertible and record.get("converted"):
        try:
            return store.verify_converted(entry.name)
        except ModelError:
            pass  # missing or changed: rebuild it from the (re-verified) source below
    final = store.download_path(source.filename)
    if final.is_file() and not force:
        digest = sha256_file(final)
        origin = f"placed in {store.downloads}"
        if record.get("source", {}).get("sha256") == digest:
            origin = record["source"].get("origin", origin)
    else:
        download = download_hub_file(entry, store, token=token, force=force)
        digest = download.sha256
        origin = f"hub {source.repo_id}@{download.commit}"
    try:
        # a file that is converted next is recorded only once the conversion worked
        store.check_source(entry.name, final, digest, origin=origin,
                           accept_new_hash=accept_new_hash,
                           record=not (convert and entry.convertible))
    except ModelError as exc:
        # Keep the refused bytes for inspection, out of the way of the next fetch.
        rejected = final.with_name(final.name + ".rejected")
        os.replace(final, rejected)
        raise ModelError(f"{exc} (the file was moved to {rejected.name})") from None
    if convert and entry.convertible:
        return store.convert(entry.name, final, entry, source_sha256=digest, origin=origin)
    return final


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
