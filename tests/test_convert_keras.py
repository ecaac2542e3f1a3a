"""Keras .h5 -> PyTorch conversion of the FaceDancer generator.

The fixture (made by the authors' Keras code) is the ground truth for Keras semantics; other
graphs are written by our own exporter from random PyTorch models and must round-trip exactly.
"""

from __future__ import annotations

import json
import shutil
import sys
import types

import h5py
import numpy as np
import pytest
import torch

from facedancer_torch.convert.api import convert_keras_file, detect_keras_model
from facedancer_torch.convert.keras_facedancer import generator_from_keras, read_generator_graph
from facedancer_torch.convert.keras_h5 import read_keras_h5
from facedancer_torch.errors import ModelError
from facedancer_torch.models.generator import build_generator, load_generator
from keras_writer import write_keras_generator
from modelutil import randomize_


def _fixture_io(keras_fixture_dir):
    io = np.load(keras_fixture_dir / "ref_default_io.npz")
    x = torch.from_numpy(io["x_target_nhwc"]).permute(0, 3, 1, 2)
    return x, torch.from_numpy(io["z_source"]), io["y_nhwc"]


def _check_reproduces_keras(model, keras_fixture_dir):
    x, z, expected = _fixture_io(keras_fixture_dir)
    with torch.no_grad():
        y = model(x, z).permute(0, 2, 3, 1).numpy()
    diff = np.abs(y - expected)
    assert np.abs(expected).max() > 5  # the fixture exercises large values
    assert diff.max() < 1e-3 and diff.mean() < 1e-5, (diff.max(), diff.mean())


def test_full_model_file_reproduces_keras(keras_fixture_dir, tmp_path):
    out = convert_keras_file(keras_fixture_dir / "ref_default.h5", tmp_path / "g")
    model = load_generator(out)
    c = model.config
    assert sum(p.numel() for p in model.parameters()) == 156_886
    assert c.up_types == ("no_skip", "no_skip", "affa", "affa", "affa", "concat")
    assert (c.mapping_depth, c.mapping_width, c.image_size) == (4, 64, 256)
    _check_reproduces_keras(model, keras_fixture_dir)
    # the inference-fused copy reproduces Keras as well
    _check_reproduces_keras(model.fused_for_inference(), keras_fixture_dir)


def test_checkpoint_pair_reproduces_keras(keras_fixture_dir, tmp_path):
    out = convert_keras_file(keras_fixture_dir / "ref_default_weights.h5", tmp_path / "g",
                             graph_json=keras_fixture_dir / "ref_default.json")
    _check_reproduces_keras(load_generator(out), keras_fixture_dir)
    # without --graph, the JSON beside the checkpoint is found
    out = convert_keras_file(keras_fixture_dir / "ref_default_weights.h5", tmp_path / "g2")
    _check_reproduces_keras(load_generator(out), keras_fixture_dir)


def test_exporter_writes_what_keras_writes(keras_fixture_dir, tmp_path):
    """Our PyTorch -> Keras writer reproduces the fixture's layer names, wiring and tensors,
    so the graphs it writes for the tests below are faithful stand-ins for Keras files."""
    original = read_keras_h5(keras_fixture_dir / "ref_default.h5")
    write_keras_generator(generator_from_keras(original), tmp_path / "again.h5")
    again = read_keras_h5(tmp_path / "again.h5")
    wiring = lambda f: {l.name: (l.class_name, l.inbound) for l in f.layers}  # noqa: E731
    assert wiring(again) == wiring(original)
    assert again.weight_names == original.weight_names
    for name, arrays in original.weights.items():
        for a, b in zip(arrays, again.weights[name]):
            assert np.array_equal(a, b), name


GRAPHS = [
    # up_types, mapping depth, mapping width, encoder widths, image size
    (("no_skip", "no_skip", "affa", "affa", "affa", "concat"), 4, 16, (4, 8, 8, 16, 16, 16, 16), 64),
    (("affa", "add", "concat", "no_skip", "add", "affa"), 0, 16, (4, 8, 8, 16, 16, 16, 16), 64),
    (("concat", "concat", "add", "affa", "concat", "no_skip"), 1, 12, (8, 4, 12, 8, 16, 4, 8), 96),
    (("add",) * 6, 2, 20, (4, 4, 4, 4, 4, 4, 4), 64),
]


@pytest.mark.parametrize("layout", ["full", "checkpoint"])
@pytest.mark.parametrize("up_types,depth,width,widths,size", GRAPHS)
def test_other_graphs_round_trip(tmp_path, layout, up_types, depth, width, widths, size):
    model = randomize_(build_generator(image_size=size, encoder_widths=widths, z_dim=32,
                                       up_types=up_types, mapping_depth=depth, mapping_width=width))
    h5 = tmp_path / "gen_7.h5"
    graph = tmp_path / "gen.json" if layout == "checkpoint" else None
    write_keras_generator(model, h5, graph_json=graph, counter_offset=5)  # names shift between files
    out = convert_keras_file(h5, tmp_path / "out", graph_json=graph)
    loaded = load_generator(out)
    assert loaded.config.to_dict() == model.config.to_dict()
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    x = torch.rand(2, 3, size, size) * 2 - 1
    z = torch.randn(2, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x, z), model(x, z))


def test_roles_come_from_topology_not_names_or_order(tmp_path):
    """Rename every layer (except the fixed AFFA/final names) and shuffle the layer list:
    the conversion must not change."""
    model = randomize_(build_generator(image_size=64, encoder_widths=(4, 8, 8, 16, 16, 16, 16),
                                       mapping_width=16, z_dim=32))
    write_keras_generator(model, tmp_path / "w.h5", graph_json=tmp_path / "g.json")
    config = json.loads((tmp_path / "g.json").read_text())
    layers = config["config"]["layers"]
    rng = np.random.default_rng(0)
    fixed = {"16x16", "32x32", "64x64", "final"}
    mapping = {l["name"]: l["name"] if l["name"] in fixed else f"layer_{i}"
               for i, l in enumerate(rng.permutation(np.array(layers, dtype=object)))}
    text = json.dumps(config)
    for old, new in sorted(mapping.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(f'"{old}"', f'"{new}"')
    config = json.loads(text)
    rng.shuffle(config["config"]["layers"])
    (tmp_path / "g2.json").write_text(json.dumps(config))
    with h5py.File(tmp_path / "w.h5", "r") as src, h5py.File(tmp_path / "w2.h5", "w") as dst:
        names = []
        for name in src.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            new = mapping[name]
            names.append(new)
            src.copy(src[name], dst, name=new)
        dst.attrs["layer_names"] = np.array(names, dtype=h5py.string_dtype())
    loaded = generator_from_keras(read_keras_h5(tmp_path / "w2.h5", tmp_path / "g2.json"))
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name


def _fixture_graph(keras_fixture_dir):
    return json.loads((keras_fixture_dir / "ref_default.json").read_text())


def _convert_with_graph(keras_fixture_dir, tmp_path, graph):
    (tmp_path / "edited.json").write_text(json.dumps(graph))
    return convert_keras_file(keras_fixture_dir / "ref_default_weights.h5", tmp_path / "out",
                              graph_json=tmp_path / "edited.json")


def _layer(graph, name):
    return next(l for l in graph["config"]["layers"] if l["name"] == name)


def test_unknown_layer_type_is_refused_by_name(keras_fixture_dir, tmp_path):
    graph = _fixture_graph(keras_fixture_dir)
    _layer(graph, "leaky_re_lu_9")["class_name"] = "PReLU"
    with pytest.raises(ModelError, match="layer 'leaky_re_lu_9' has the unknown type PReLU"):
        _convert_with_graph(keras_fixture_dir, tmp_path, graph)


def test_unsupported_settings_are_refused_by_name(keras_fixture_dir, tmp_path):
    graph = _fixture_graph(keras_fixture_dir)
    _layer(graph, "instance_normalization_4")["config"]["epsilon"] = 1e-5
    with pytest.raises(ModelError, match="'instance_normalization_4'.*epsilon"):
        _convert_with_graph(keras_fixture_dir, tmp_path, graph)
    graph = _fixture_graph(keras_fixture_dir)
    _layer(graph, "up_sampling2d_3")["config"]["interpolation"] = "nearest"
    with pytest.raises(ModelError, match="'up_sampling2d_3'.*bilinear"):
        _convert_with_graph(keras_fixture_dir, tmp_path, graph)


def test_wrong_weight_shape_is_refused_by_name(keras_fixture_dir, tmp_path):
    graph = _fixture_graph(keras_fixture_dir)
    _layer(graph, "conv2d_14")["config"]["filters"] = 64  # graph says 64, weights hold 32
    with pytest.raises(ModelError, match="layer 'conv2d_14' .*32 output channels.*64"):
        _convert_with_graph(keras_fixture_dir, tmp_path, graph)


def test_layers_without_a_role_are_refused(keras_fixture_dir, tmp_path):
    graph = _fixture_graph(keras_fixture_dir)
    extra = json.loads(json.dumps(_layer(graph, "leaky_re_lu_9")))
    extra["name"] = extra["config"]["name"] = "dangling"
    graph["config"]["layers"].append(extra)
    with pytest.raises(ModelError, match="layer 'dangling' .* has no role"):
        _convert_with_graph(keras_fixture_dir, tmp_path, graph)


def test_unusable_files_are_refused_naming_the_file(keras_fixture_dir, tmp_path):
    shutil.copy(keras_fixture_dir / "ref_default_weights.h5", tmp_path / "gen_3.h5")
    with pytest.raises(ModelError, match="gen_3.h5: .*no model graph.*--graph"):
        convert_keras_file(tmp_path / "gen_3.h5", tmp_path / "o")  # no gen.json beside it
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(ModelError, match="junk.h5: not a readable HDF5 file"):
        convert_keras_file(tmp_path / "junk.h5", tmp_path / "o")
    other = {"class_name": "Functional", "config": {
        "name": "m", "layers": [{"class_name": "InputLayer", "name": "in",
                                 "config": {"name": "in", "batch_input_shape": [None, 4]},
                                 "inbound_nodes": []}],
        "input_layers": [["in", 0, 0]], "output_layers": [["in", 0, 0]]}}
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(other)
    with pytest.raises(ModelError, match="other.h5: not a Keras model this tool converts"):
        convert_keras_file(tmp_path / "other.h5", tmp_path / "o")


def test_arcface_files_are_routed_to_the_arcface_converter(tmp_path, monkeypatch):
    """Routing only: the ArcFace converter itself is tested in its own module."""
    layers = [{"class_name": "InputLayer", "name": "input_1",
               "config": {"name": "input_1", "batch_input_shape": [None, 112, 112, 3]},
               "inbound_nodes": []}]
    for name in ("conv1_conv", "conv2_block1_1_conv"):
        layers.append({"class_name": "Conv2D", "name": name, "config": {"name": name},
                       "inbound_nodes": [[[layers[-1]["name"], 0, 0, {}]]]})
    graph = {"class_name": "Functional", "config": {"name": "arc", "layers": layers,
                                                    "input_layers": [["input_1", 0, 0]],
                                                    "output_layers": [["conv2_block1_1_conv", 0, 0]]}}
    with h5py.File(tmp_path / "ArcFace-Res50.h5", "w") as f:
        f.attrs["model_config"] = json.dumps(graph)
    calls = []
    fake = types.ModuleType("facedancer_torch.convert.keras_arcface")
    fake.convert_arcface = lambda model_file, out_dir, source: calls.append(source) or out_dir
    monkeypatch.setitem(sys.modules, "facedancer_torch.convert.keras_arcface", fake)
    assert detect_keras_model(read_keras_h5(tmp_path / "ArcFace-Res50.h5")) == "arcface-res50"
    assert convert_keras_file(tmp_path / "ArcFace-Res50.h5", tmp_path / "out") == tmp_path / "out"
    assert calls == ["ArcFace-Res50.h5"]  # the config records its source file


def test_read_generator_graph_reports_roles(keras_fixture_dir):
    roles = read_generator_graph(read_keras_h5(keras_fixture_dir / "ref_default.h5"))
    assert [s.affa["mask"][0] for s in roles.stages if s.affa] == ["64x64", "128x128", "256x256"]
    assert roles.stages[-1].block.output == "final"
    assert len(roles.mapping) == 4


def _cli(*args):
    """Run our commands on an app holding only them (independent of other command modules)."""
    import typer
    from typer.testing import CliRunner

    from facedancer_torch.cli.convert import register

    app = typer.Typer()
    register(app)
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_convert_and_errors(keras_fixture_dir, tmp_path):
    done = _cli("convert", keras_fixture_dir / "ref_default_weights.h5", tmp_path / "cli")
    assert done.exit_code == 0, done.output
    assert "using graph" in done.output and "156,886 parameters" in done.output
    _check_reproduces_keras(load_generator(tmp_path / "cli"), keras_fixture_dir)
    bad = _cli("convert", tmp_path / "missing.h5", tmp_path / "x")
    # a ModelError, which the real entry point prints as one 'error:' line with exit code 2
    assert isinstance(bad.exception, ModelError) and "missing.h5" in str(bad.exception)


def test_cli_never_replaces_an_existing_output_silently(keras_fixture_dir, tmp_path):
    from facedancer_torch.errors import InputError

    src = keras_fixture_dir / "ref_default.h5"
    assert _cli("convert", src, tmp_path / "m", "--no-check").exit_code == 0
    before = (tmp_path / "m" / "model.safetensors").read_bytes()
    again = _cli("convert", src, tmp_path / "m", "--no-check")
    assert isinstance(again.exception, InputError)
    assert "already exists (pass --overwrite" in str(again.exception)
    assert (tmp_path / "m" / "model.safetensors").read_bytes() == before
    assert _cli("convert", src, tmp_path / "m", "--no-check", "--overwrite").exit_code == 0
    (tmp_path / "g.onnx").write_bytes(b"keep me")
    export = _cli("export-onnx", tmp_path / "m", tmp_path / "g.onnx", "--no-verify")
    assert isinstance(export.exception, InputError)
    assert (tmp_path / "g.onnx").read_bytes() == b"keep me"


def test_cli_converts_the_authors_retinaface(tmp_path):
    from facedancer_torch.testing import shared_path

    authors = shared_path("fixtures", "keras-authors")
    if authors is None:
        pytest.skip("shared fixture 'fixtures/keras-authors' is absent")
    done = _cli("convert", authors / "retinaface_r50_small.h5", tmp_path / "r50")
    assert done.exit_code == 0, done.output
    assert "kind: retinaface-r50" in done.output
    assert json.loads((tmp_path / "r50" / "config.json").read_text())["source"] == \
        "retinaface_r50_small.h5"
