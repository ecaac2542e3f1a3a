"""The authors' d_affa / do_affa generator stages, converted from files their Keras code saved.

``../shared/fixtures/keras-authors`` holds a generator with
``up_types=[no_skip, d_affa, do_affa, affa, d_affa, concat]`` in both file layouts, with
inputs and the Keras outputs (its README explains the graph).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from facedancer_torch.convert.api import convert_keras_file
from facedancer_torch.convert.keras_facedancer import read_generator_graph
from facedancer_torch.convert.keras_h5 import read_keras_h5
from facedancer_torch.errors import ModelError
from facedancer_torch.models.generator import build_generator, load_generator
from facedancer_torch.testing import shared_path
from modelutil import randomize_

UP_TYPES = ("no_skip", "d_affa", "do_affa", "affa", "d_affa", "concat")


@pytest.fixture(scope="module")
def authors_dir() -> Path:
    path = shared_path("fixtures", "keras-authors")
    if path is None:
        pytest.skip("shared fixture 'fixtures/keras-authors' is absent (expected in ../shared "
                    "or $FACEDANCER_SHARED)")
    return path


def _check_reproduces_keras(model, authors_dir: Path) -> None:
    io = np.load(authors_dir / "ref_daffa_io.npz")
    x = torch.from_numpy(io["x_target_nhwc"]).permute(0, 3, 1, 2)
    with torch.no_grad():
        y = model(x, torch.from_numpy(io["z_source"])).permute(0, 2, 3, 1).numpy()
    diff = np.abs(y - io["y_nhwc"])
    assert np.abs(io["y_nhwc"]).max() > 5
    assert diff.max() < 1e-3 and diff.mean() < 1e-5, (diff.max(), diff.mean())


def test_full_model_file_reproduces_keras(authors_dir, tmp_path):
    model = load_generator(convert_keras_file(authors_dir / "ref_daffa.h5", tmp_path / "g"))
    assert model.config.up_types == UP_TYPES
    assert sum(p.numel() for p in model.parameters()) == 201_195
    _check_reproduces_keras(model, authors_dir)
    _check_reproduces_keras(model.fused_for_inference(), authors_dir)


def test_checkpoint_layout_reproduces_keras(authors_dir, tmp_path):
    # save_weights + to_json: the JSON beside the checkpoint is found by name
    model = load_generator(convert_keras_file(authors_dir / "ref_daffa_weights.h5",
                                              tmp_path / "g"))
    assert model.config.up_types == UP_TYPES
    _check_reproduces_keras(model, authors_dir)


def test_roles_of_the_attention_layers(authors_dir):
    roles = read_generator_graph(read_keras_h5(authors_dir / "ref_daffa.h5"))
    by_type = {stage.up_type: stage.affa for stage in roles.stages if stage.affa}
    # the mask convs keep the names the authors gave them
    assert by_type["d_affa"]["gates.0.mask"][0] in ("32x32_0", "256x256_0")
    assert by_type["do_affa"]["mask"][0] == "64x64"
    assert by_type["do_affa"]["mask_hat"][0] == "64x64_hat"


def _tampered(authors_dir: Path, tmp_path: Path, edit) -> Path:
    graph = json.loads((authors_dir / "ref_daffa.json").read_text())
    for layer in graph["config"]["layers"]:
        edit(layer)
    shutil.copy(authors_dir / "ref_daffa_weights.h5", tmp_path / "gen_1.h5")
    (tmp_path / "gen.json").write_text(json.dumps(graph))
    return tmp_path / "gen_1.h5"


def test_unknown_tensorflow_op_is_refused_by_name(authors_dir, tmp_path):
    def edit(layer):
        if layer["name"] == "tf.math.multiply":
            layer["config"]["function"] = "math.add"
    path = _tampered(authors_dir, tmp_path, edit)
    with pytest.raises(ModelError, match="gen_1.h5: .*'tf.math.multiply'.*math.add"):
        convert_keras_file(path, tmp_path / "o")


def test_mask_product_needs_one_single_channel_mask(authors_dir, tmp_path):
    def edit(layer):
        if layer["name"] == "64x64_hat":
            layer["config"]["filters"] = 32
    path = _tampered(authors_dir, tmp_path, edit)
    with pytest.raises(ModelError, match="tf.math.multiply.*1-channel"):
        convert_keras_file(path, tmp_path / "o")


@pytest.mark.parametrize("up_types", [UP_TYPES, ("d_affa",) * 5 + ("do_affa",)])
def test_variants_save_load_and_fuse(tmp_path, up_types):
    model = build_generator(image_size=64, encoder_widths=(8, 8, 8, 8, 8, 8, 8), mapping_depth=1,
                            mapping_width=16, z_dim=16, up_types=up_types).eval()
    randomize_(model)
    x, z = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 16)
    with torch.no_grad():
        y = model(x, z)
        reloaded = load_generator(model.save_pretrained(tmp_path / "m"))
        assert torch.equal(reloaded(x, z), y)
        assert torch.allclose(model.fused_for_inference()(x, z), y, atol=1e-4)
    masks = model.attention_masks(x, z)
    names = ("4x4", "8x8", "16x16", "32x32", "64x64", "final")
    assert set(masks) == {n for n, kind in zip(names, up_types) if "affa" in kind}
    assert all(0 <= float(m.min()) and float(m.max()) <= 1 for m in masks.values())


def test_variants_export_to_onnx(tmp_path):
    # the CPU swap runs generators through ONNX Runtime: the variants must export exactly
    from facedancer_torch.convert.onnx_export import export_generator_onnx, onnx_session

    model = build_generator(image_size=64, encoder_widths=(8,) * 7, mapping_depth=1,
                            mapping_width=16, z_dim=16, up_types=UP_TYPES).eval()
    randomize_(model)
    x, z = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 16)
    with torch.no_grad():
        expected = model(x, z).numpy()
    export_generator_onnx(model, tmp_path / "g.onnx", fused=True)
    got = onnx_session(tmp_path / "g.onnx").run(None, {"x_target": x.numpy(),
                                                       "z_source": z.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-4
