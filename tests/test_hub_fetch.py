"""``facedancer models fetch`` against a local fake hub (tests/hubmock.py): no internet.

Covers: download, in-process and next-run resume, sha256 recorded on first download then a
changed file refused, the hub's own LFS hash, a published catalogue hash, gated (401/403)
messages, offline and unreachable-network messages, and the CLI's one-line errors.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from facedancer_torch.errors import ModelError
from facedancer_torch.models.hub import fetch_model
from facedancer_torch.models.store import ModelStore, resolve_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hubmock import COMMIT, HubMock  # noqa: E402

REPO = "felixrosberg/FaceDancer"
FILE_A = "FaceDancer_config_a.h5"
TOKEN = "hf_test_token"
HAS_CONVERTER = importlib.util.find_spec("facedancer_torch.convert.api") is not None


def _payload(n: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes (not a model: fetch runs with convert=False)."""
    out = bytearray()
    block = hashlib.sha256(f"seed{seed}".encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A running fake hub, with the environment and huggingface_hub pointed at it."""
    from huggingface_hub import constants
    from huggingface_hub import file_download

    with HubMock(lifetime_s=120) as mock:
        monkeypatch.setenv("HF_ENDPOINT", mock.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "home"))
        monkeypatch.delenv("HF_TOKEN", raising=False)
        # huggingface_hub reads these once at import (conftest made it offline).
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
        # Resume granularity is one read chunk (10 MB by default): use small files, small chunks.
        monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)
        # http_get waits 1 s before retrying a dropped connection.
        monkeypatch.setattr(file_download.time, "sleep", lambda seconds: None)
        yield mock


def _store() -> ModelStore:
    from facedancer_torch.convert.api import convert_keras_file

    return ModelStore(converter=convert_keras_file)


def test_fetch_downloads_records_hash_and_reuses_the_file(hub):
    data = _payload(200_000)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN)

    path = fetch_model("facedancer-a", token=TOKEN, convert=False)

    store = _store()
    assert path == store.download_path(FILE_A)
    assert _sha(path.read_bytes()) == _sha(data)
    source = store.record("facedancer-a")["source"]
    assert source["sha256"] == _sha(data)
    assert source["size"] == len(data)
    assert COMMIT in source["origin"]
    # the token went to the hub, never to the (other-origin) CDN
    assert all(r.authorization == f"Bearer {TOKEN}" for r in hub.requests_for("/resolve/"))
    cdn = hub.requests_for("/cdn/")
    assert cdn and all(r.authorization is None for r in cdn)
    assert not list(store.downloads.glob("*.part*"))

    # a second fetch uses the stored file: no network at all
    before = len(hub.requests)
    assert fetch_model("facedancer-a", convert=False) == path
    assert len(hub.requests) == before


def test_truncated_transfer_is_resumed_with_a_range_request(hub):
    data = _payload(300_000, seed=1)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN, truncate_once=1)

    path = fetch_model("facedancer-a", token=TOKEN, convert=False)

    assert _sha(path.read_bytes()) == _sha(data)
    gets = hub.requests_for("/cdn/", "GET")
    assert len(gets) == 2
    assert gets[0].range is None and gets[0].status == 200
    start = int(gets[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start <= len(data) // 2
    assert gets[1].status == 206


def test_interrupted_download_resumes_on_the_next_run(hub):
    data = _payload(400_000, seed=2)
    # the link dies at the same byte every time: http_get's retries give up, the part stays
    served = hub.add(REPO, FILE_A, data, gated_token=TOKEN, cut_at=150_000)
    with pytest.raises(ModelError, match="run the same command again to resume") as info:
        fetch_model("facedancer-a", token=TOKEN, convert=False)
    assert "\n" not in str(info.value)
    part = _store().download_path(FILE_A).with_name(FILE_A + ".part")
    kept = part.stat().st_size
    assert 0 < kept <= 150_000
    assert part.read_bytes() == data[:kept]
    assert _store().record("facedancer-a") is None  # nothing recorded for a partial file

    served.cut_at = None  # the connection is back
    n_before = len(hub.requests_for("/cdn/", "GET"))
    path = fetch_model("facedancer-a", token=TOKEN, convert=False)

    assert _sha(path.read_bytes()) == _sha(data)
    resumed = hub.requests_for("/cdn/", "GET")[n_before:]
    assert len(resumed) == 1
    assert resumed[0].range == f"bytes={kept}-"
    assert resumed[0].status == 206
    assert not part.exists()


def test_changed_file_is_refused_after_the_first_download(hub):
    first = _payload(50_000, seed=3)
    hub.add(REPO, FILE_A, first, gated_token=TOKEN)
    fetch_model("facedancer-a", token=TOKEN, convert=False)
    recorded = _store().record("facedancer-a")["source"]["sha256"]

    second = _payload(50_000, seed=4)  # the hub now serves other bytes
    hub.add(REPO, FILE_A, second, gated_token=TOKEN)
    with pytest.raises(ModelError, match="recorded on first use") as info:
        fetch_model("facedancer-a", token=TOKEN, force=True, convert=False)
    message = str(info.value)
    assert "--accept-new-hash" in message and "\n" not in message
    store = _store()
    assert store.record("facedancer-a")["source"]["sha256"] == recorded
    rejected = store.download_path(FILE_A).with_name(FILE_A + ".rejected")
    assert _sha(rejected.read_bytes()) == _sha(second)
    assert not store.download_path(FILE_A).exists()

    # the user decides the publisher really replaced it
    path = fetch_model("facedancer-a", token=TOKEN, force=True, accept_new_hash=True,
                       convert=False)
    assert _store().record("facedancer-a")["source"]["sha256"] == _sha(second)
    assert _sha(path.read_bytes()) == _sha(second)


def test_a_file_tampered_with_in_the_store_is_refused(hub):
    data = _payload(40_000, seed=5)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN)
    path = fetch_model("facedancer-a", token=TOKEN, convert=False)
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ModelError, match="refusing a changed file"):
        fetch_model("facedancer-a", convert=False)


def test_corrupted_transfer_is_refused_using_the_hub_sha256(hub):
    data = _payload(60_000, seed=6)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN, announced_sha256=_sha(b"other bytes"))
    with pytest.raises(ModelError, match="corrupt transfer"):
        fetch_model("facedancer-a", token=TOKEN, convert=False)
    store = _store()
    assert not store.download_path(FILE_A).exists()
    assert not list(store.downloads.glob("*.part*"))
    assert store.record("facedancer-a") is None


def test_published_catalogue_hash_is_enforced(hub):
    fake = _payload(30_000, seed=7)  # not the real ArcFace-Res50.h5
    hub.add("felixrosberg/ArcFace", "ArcFace-Res50.h5", fake)
    for accept in (False, True):  # a published hash can never be overridden
        with pytest.raises(ModelError, match="published sha256 4ea35770ad85"):
            fetch_model("arcface-res50", force=True, accept_new_hash=accept, convert=False)
    assert _store().record("arcface-res50") is None


@pytest.mark.parametrize("token, status, words", [
    (None, 401, "no token was given"),
    ("hf_wrong", 403, "no access yet"),
])
def test_gated_repository_message(hub, token, status, words):
    hub.add(REPO, FILE_A, _payload(1000), gated_token=TOKEN)
    with pytest.raises(ModelError) as info:
        fetch_model("facedancer-a", token=token, convert=False)
    message = str(info.value)
    assert "\n" not in message
    assert f"HTTP {status}" in message and words in message
    assert "https://huggingface.co/felixrosberg/FaceDancer" in message
    assert "accept its terms" in message and "HF_TOKEN" in message


def test_token_from_hf_token_environment_variable(hub, monkeypatch):
    data = _payload(5000, seed=8)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    path = fetch_model("facedancer-a", convert=False)
    assert _sha(path.read_bytes()) == _sha(data)


def test_offline_message_names_the_file_and_where_to_put_it(hub, monkeypatch):
    hub.add(REPO, FILE_A, _payload(1000), gated_token=TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError) as info:
        fetch_model("facedancer-c-hq", token=TOKEN)
    message = str(info.value)
    expected_place = str(_store().download_path("FaceDancer_config_c_HQ.h5"))
    assert "\n" not in message
    assert "offline" in message and "HF_HUB_OFFLINE" in message
    assert expected_place in message
    assert "facedancer models add" in message
    assert hub.requests == []  # nothing was even attempted


def test_unreachable_network_gives_the_offline_message(hub, monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    with pytest.raises(ModelError) as info:
        fetch_model("facedancer-b", token=TOKEN)
    message = str(info.value)
    assert "\n" not in message and "cannot reach" in message
    assert str(_store().download_path("FaceDancer_config_b.h5")) in message


def test_file_placed_by_hand_is_used_without_network(hub, monkeypatch):
    data = _payload(20_000, seed=9)
    place = _store().download_path(FILE_A)
    place.parent.mkdir(parents=True)
    place.write_bytes(data)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch_model("facedancer-a", convert=False) == place
    assert _store().record("facedancer-a")["source"]["sha256"] == _sha(data)
    assert hub.requests == []


def _cli(*args: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", **env_extra}
    env.pop("HF_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "facedancer_torch", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_fetch_and_gated_error(hub, tmp_path):
    data = _payload(10_000, seed=10)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN)
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_OFFLINE": "0",
           "FACEDANCER_HOME": str(tmp_path / "cli-home")}

    denied = _cli("models", "fetch", "facedancer-a", "--no-convert", env_extra=env)
    assert denied.returncode == 2
    assert denied.stderr.startswith("error: ") and "Traceback" not in denied.stderr
    assert "gated" in denied.stderr and len(denied.stderr.strip().splitlines()) == 1

    ok = _cli("models", "fetch", "facedancer-a", "--no-convert", "--token", TOKEN, env_extra=env)
    assert ok.returncode == 0, ok.stderr
    stored = tmp_path / "cli-home" / "downloads" / FILE_A
    assert f"ready: {stored}" in ok.stdout
    registry = json.loads((tmp_path / "cli-home" / "registry.json").read_text())
    assert registry["models"]["facedancer-a"]["source"]["sha256"] == _sha(data)


@pytest.mark.skipif(not HAS_CONVERTER,
                    reason="facedancer_torch.convert.api (the Keras converter) is not in this "
                    "checkout yet")
def test_fetch_converts_a_real_keras_generator(hub, keras_fixture_dir):
    h5 = (keras_fixture_dir / "ref_default.h5").read_bytes()
    hub.add(REPO, FILE_A, h5, gated_token=TOKEN)

    folder = fetch_model("facedancer-a", store=_store(), token=TOKEN)

    store = _store()
    assert folder == store.model_dir("facedancer-a")
    assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    provenance = json.loads((folder / "source.json").read_text())
    assert provenance["source_sha256"] == _sha(h5)
    assert provenance["identity_encoder"] == "arcface-res50"
    assert resolve_model("facedancer-a") == folder
    # a later fetch verifies the converted files and does not download again
    before = len(hub.requests)
    assert fetch_model("facedancer-a") == folder
    assert len(hub.requests) == before


@pytest.mark.parametrize("lfs", [True, False])
def test_fake_hub_is_faithful_enough_for_hf_hub_download(hub, tmp_path, lfs):
    """The mock answers huggingface_hub's own downloader (redirect or not), so the tests above
    exercise the real client code paths rather than a private protocol."""
    from huggingface_hub import hf_hub_download

    data = _payload(70_000, seed=11)
    hub.add(REPO, FILE_A, data, gated_token=TOKEN, lfs=lfs)
    got = hf_hub_download(REPO, FILE_A, token=TOKEN, endpoint=hub.endpoint,
                          local_dir=tmp_path / "plain", cache_dir=tmp_path / "hf-cache")
    assert _sha(Path(got).read_bytes()) == _sha(data)

    # and our fetch handles a file without a sha256 ETag (git blob) the same way
    path = fetch_model("facedancer-a", token=TOKEN, convert=False)
    assert _sha(path.read_bytes()) == _sha(data)
