"""The model catalogue, the local store (trust-on-first-use hashes, atomic registry),
``resolve_model`` and the ``facedancer models list|add|verify`` commands. No network."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facedancer_torch.errors import InputError, ModelError
from facedancer_torch.models.catalogue import (
    CATALOGUE,
    AssetSource,
    EmbeddedSource,
    HubSource,
    ModelKind,
    find_entry,
    get_entry,
)
from facedancer_torch.models.store import ModelStore, resolve_model, sha256_file

HAS_CONVERTER = importlib.util.find_spec("facedancer_torch.convert.api") is not None
needs_converter = pytest.mark.skipif(
    not HAS_CONVERTER, reason="facedancer_torch.convert.api (the Keras converter) is not in this "
    "checkout yet")


@pytest.fixture
def store(tmp_path, monkeypatch) -> ModelStore:
    monkeypatch.setenv("FACEDANCER_HOME", str(tmp_path / "home"))
    from facedancer_torch.convert.api import convert_keras_file

    return ModelStore(converter=convert_keras_file)


# -- the catalogue --------------------------------------------------------------------------------

def test_catalogue_lists_every_released_file():
    hub_files = {(e.source.repo_id, e.source.filename) for e in CATALOGUE if e.is_hub}
    expected = {("felixrosberg/FaceDancer", f"FaceDancer_config_{c}.h5") for c in "abcde"}
    expected |= {("felixrosberg/FaceDancer", "FaceDancer_config_c_HQ.h5"),
                 ("felixrosberg/ArcFace", "ArcFace-Res50.h5"),
                 ("felixrosberg/ArcFace", "ArcFacePerceptual-Res50.h5"),
                 ("felixrosberg/RetinaFace", "RetinaFace-Res50.h5")}
    assert hub_files == expected
    kinds = {e.name: e.kind for e in CATALOGUE}
    assert kinds["retinaface-mobilenet0.25"] is ModelKind.DETECTOR
    assert kinds["facenet"] is ModelKind.IDENTITY
    assert kinds["facedancer-demo"] is ModelKind.GENERATOR


def test_catalogue_entries_are_well_formed():
    names = [e.name for e in CATALOGUE]
    assert len(names) == len(set(names))
    for entry in CATALOGUE:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", entry.name), entry.name
        assert entry.licence and entry.description
        if entry.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256), entry.name
            assert entry.sha256_source, f"{entry.name}: a hash must say where it comes from"
            assert entry.size_bytes, entry.name
        if entry.kind is ModelKind.GENERATOR:
            encoder = find_entry(entry.identity_encoder)
            assert encoder is not None and encoder.kind is ModelKind.IDENTITY, entry.name
            height, width = entry.input.size
            assert height == width and height % 32 == 0 and entry.input.value_range == "[-1, 1]"
            assert entry.input.embedding_dim == encoder.input.embedding_dim
        if isinstance(entry.source, HubSource) and entry.source.repo_id.endswith("FaceDancer"):
            assert entry.source.gated and entry.licence == "CC-BY-NC-SA-4.0"
            assert entry.identity_encoder == "arcface-res50"
            assert entry.sha256 is None  # never published: recorded on first download


def test_find_entry_by_name_or_file_name():
    assert find_entry("FACEDANCER-C-HQ").name == "facedancer-c-hq"
    assert find_entry("FaceDancer_config_c_HQ.h5").name == "facedancer-c-hq"
    assert find_entry("ArcFace-Res50.h5").name == "arcface-res50"
    assert find_entry("nope") is None
    with pytest.raises(ModelError, match="unknown model 'nope'.*facedancer-c-hq"):
        get_entry("nope")


def test_embedded_files_match_their_catalogue_hash():
    for entry in CATALOGUE:
        if not isinstance(entry.source, EmbeddedSource):
            continue
        path = entry.source.locate()
        assert path is not None, f"{entry.source.distribution} is a dependency"
        assert path.stat().st_size == entry.size_bytes
        assert sha256_file(path) == entry.sha256


def test_demo_generator_presence_is_detected_at_run_time(store, tmp_path, monkeypatch):
    entry = get_entry("facedancer-demo")
    assert isinstance(entry.source, AssetSource)
    folder = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/demo_generator"
    shipped = (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
    status = store.status(entry)
    assert status.present == shipped
    assert status.state == ("embedded" if shipped else "not yet shipped")

    # the same check against a fake assets folder, both ways
    import facedancer_torch.models.catalogue as catalogue_module

    fake_module_file = tmp_path / "pkg" / "models" / "catalogue.py"
    fake_module_file.parent.mkdir(parents=True)
    monkeypatch.setattr(catalogue_module, "__file__", str(fake_module_file))
    assert not store.status(entry).present
    demo = tmp_path / "pkg" / "assets" / "demo_generator"
    demo.mkdir(parents=True)
    (demo / "config.json").write_text("{}")
    assert not store.status(entry).present  # weights missing: still not shipped
    (demo / "model.safetensors").write_bytes(b"x")
    assert store.status(entry).present and resolve_model("facedancer-demo") == demo


# -- resolve_model --------------------------------------------------------------------------------

def test_resolve_model_prefers_a_directory(store, tmp_path):
    folder = tmp_path / "facedancer-c-hq"  # even when named like a catalogue entry
    folder.mkdir()
    assert resolve_model(str(folder)) == folder


def test_resolve_model_missing_name_says_how_to_get_it(store):
    with pytest.raises(ModelError) as info:
        resolve_model("facedancer-c-hq")
    message = str(info.value)
    assert "\n" not in message
    assert "facedancer models fetch facedancer-c-hq" in message
    assert str(store.download_path("FaceDancer_config_c_HQ.h5")) in message
    assert "facedancer models add" in message and "HF_TOKEN" in message

    with pytest.raises(ModelError, match="neither a model directory nor a known model name"):
        resolve_model("no-such-model")
    with pytest.raises(ModelError, match="not a model directory"):
        resolve_model(str(store.root / "missing" / "dir"))


def test_resolve_model_embedded(store):
    path = resolve_model("facenet")
    assert path.name == "graph_final.pb" and path.is_file()


# -- the store: add, trust on first use, verify ---------------------------------------------------

def test_add_records_then_refuses_a_changed_file(store, tmp_path):
    first = tmp_path / "FaceDancer_config_b.h5"
    first.write_bytes(b"first version of the weights")
    result = store.add(first, convert=False)  # name found from the file name
    assert result == first
    record = store.record("facedancer-b")
    assert record["source"]["sha256"] == hashlib.sha256(first.read_bytes()).hexdigest()
    assert record["source"]["origin"].startswith("added from")

    second = tmp_path / "renamed.h5"
    second.write_bytes(b"another file")
    with pytest.raises(ModelError, match="recorded on first use") as info:
        store.add(second, "facedancer-b", convert=False)
    assert str(second) in str(info.value)
    assert store.record("facedancer-b")["source"]["sha256"] == record["source"]["sha256"]

    store.add(second, "facedancer-b", accept_new_hash=True, convert=False)
    assert store.record("facedancer-b")["source"]["sha256"] == \
        hashlib.sha256(b"another file").hexdigest()


def test_add_refuses_a_file_with_a_wrong_published_hash(store, tmp_path):
    fake = tmp_path / "ArcFace-Res50.h5"
    fake.write_bytes(b"not arcface")
    with pytest.raises(ModelError, match="published sha256"):
        store.add(fake, accept_new_hash=True, convert=False)
    assert store.record("arcface-res50") is None


def test_add_user_errors(store, tmp_path):
    with pytest.raises(InputError, match="no such file"):
        store.add(tmp_path / "missing.h5")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ModelError, match="only Keras .h5 files"):
        store.add(text, "my-notes")
    with pytest.raises(ModelError, match="invalid model name"):
        store.add(text, "bad name!")
    with pytest.raises(ModelError, match="ships inside the package"):
        store.add(text, "facenet")


def test_registry_is_valid_json_and_leaves_no_temporary_files(store, tmp_path):
    for i in range(3):
        f = tmp_path / f"FaceDancer_config_{'ade'[i]}.h5"
        f.write_bytes(bytes([i]) * 100)
        store.add(f, convert=False)
    data = json.loads(store.registry_path.read_text())
    assert set(data["models"]) == {"facedancer-a", "facedancer-d", "facedancer-e"}
    leftovers = [p.name for p in store.root.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_verify_reports_a_changed_source_file(store, tmp_path):
    f = tmp_path / "FaceDancer_config_c.h5"
    f.write_bytes(b"abc" * 1000)
    store.add(f, convert=False)
    results = {r.name: r for r in store.verify()}  # everything recorded + embedded files
    assert {"facedancer-c", "facenet", "retinaface-mobilenet0.25"} <= set(results)
    assert all(r.ok for r in results.values())
    f.write_bytes(b"abd" * 1000)
    (bad,) = store.verify(["facedancer-c"])
    assert not bad.ok and "recorded on first use" in bad.detail
    (embedded,) = store.verify(["retinaface-mobilenet0.25"])
    assert embedded.ok and "sha256 ok" in embedded.detail


@needs_converter
def test_add_converts_a_real_keras_generator(store, keras_fixture_dir, tmp_path):
    h5 = keras_fixture_dir / "ref_default.h5"
    folder = store.add(h5, "my-generator")
    assert folder == store.model_dir("my-generator")
    assert resolve_model("my-generator") == folder
    provenance = json.loads((folder / "source.json").read_text())
    assert provenance["source_sha256"] == sha256_file(h5)

    from facedancer_torch.models.generator import load_generator

    generator = load_generator(resolve_model("my-generator"))
    # the fixture's README: the narrow reference graph has 156,886 parameters
    assert sum(p.numel() for p in generator.parameters()) == 156_886

    # a converted file that changes is refused on use and reported by verify
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="refusing a changed model"):
        resolve_model("my-generator")
    assert resolve_model("my-generator", verify=False) == folder
    (result,) = store.verify(["my-generator"])
    assert not result.ok


# -- CLI ------------------------------------------------------------------------------------------

def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "FACEDANCER_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "facedancer_torch", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_cli_list_shows_every_model(tmp_path):
    out = _cli("models", "list", home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    for entry in CATALOGUE:
        assert entry.name in out.stdout
    assert "CC-BY-NC-SA-4.0" in out.stdout and "(gated)" in out.stdout


def test_cli_add_and_verify(tmp_path, keras_fixture_dir):
    home = tmp_path / "home"
    missing = _cli("models", "add", str(tmp_path / "nope.h5"), home=home)
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr
    assert "nope.h5" in missing.stderr

    if HAS_CONVERTER:
        added = _cli("models", "add", str(keras_fixture_dir / "ref_default.h5"), "--name", "mine",
                     home=home)
        assert added.returncode == 0, added.stderr
        assert f"ready: {home / 'models' / 'mine'}" in added.stdout
        assert "--model mine" in added.stdout
        listed = _cli("models", "list", home=home)
        assert re.search(r"mine\W+generator\W+added by hand\W+\?\W+yes", listed.stdout)
        verified = _cli("models", "verify", "mine", home=home)
        assert verified.returncode == 0 and verified.stdout.startswith("ok")
        (home / "models" / "mine" / "config.json").write_text("{}")
        broken = _cli("models", "verify", home=home)
        assert broken.returncode == 2 and "FAILED mine" in broken.stdout
        assert re.search(r"1 of \d+ model\(s\) failed verification: mine$", broken.stderr.strip())


def test_shipped_demo_generator_matches_its_catalogue_entry():
    import json

    folder = Path(__file__).resolve().parents[1] / "src/facedancer_torch/assets/demo_generator"
    if not (folder / "config.json").is_file():
        pytest.skip("the demo generator is not shipped in this checkout")
    config = json.loads((folder / "config.json").read_text())
    entry = get_entry("facedancer-demo")
    assert entry.input.size == (config["image_size"], config["image_size"])
    assert config["identity_encoder"] == entry.identity_encoder


def test_store_without_a_converter_refuses_to_convert(tmp_path):
    # the models layer never imports the converters above it: the caller hands one in
    bare = ModelStore(tmp_path / "home")
    (tmp_path / "x.h5").write_bytes(b"x")
    with pytest.raises(ModelError, match="given no converter"):
        bare.convert("x", tmp_path / "x.h5")


def test_every_entry_says_what_this_version_does_with_it():
    from facedancer_torch.models.catalogue import support

    said = {e.name: support(e) for e in CATALOGUE}
    assert said["facedancer-c-hq"] == "converts; uses with --model"
    assert said["retinaface-r50"] == "converts; uses with --detector"
    assert said["arcface-res50"] == "converts; uses with --identity-encoder"
    assert said["arcface-perceptual-res50"].startswith("downloads and verifies only")
    assert said["facenet"].startswith("uses")
