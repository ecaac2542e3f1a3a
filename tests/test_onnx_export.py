"""ONNX export of the generator: ONNX Runtime must match PyTorch (dynamic batch)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="ONNX export needs the 'onnx' package")
pytest.importorskip("onnxruntime", reason="the check runs the export in ONNX Runtime")

from facedancer_torch.convert.onnx_export import export_generator_onnx, onnx_session  # noqa: E402
from facedancer_torch.models.generator import build_generator, load_generator  # noqa: E402
from modelutil import randomize_ as _randomize  # noqa: E402

randomize_ = functools.partial(_randomize, scale=0.2)  # smaller perturbation keeps ORT within 1e-4


@pytest.mark.parametrize("fused", [True, False])
def test_onnxruntime_matches_pytorch_with_dynamic_batch(tmp_path, fused):
    model = randomize_(build_generator(image_size=64, encoder_widths=(4, 8, 8, 16, 16, 16, 16),
                                       mapping_width=16, z_dim=32,
                                       up_types=("affa", "add", "concat", "no_skip", "affa", "concat")))
    path = export_generator_onnx(model, tmp_path / "g.onnx", fused=fused)
    session = onnx_session(path)
    assert [i.name for i in session.get_inputs()] == ["x_target", "z_source"]
    gen = torch.Generator().manual_seed(3)
    for batch in (1, 3):
        x = torch.rand(batch, 3, 64, 64, generator=gen) * 2 - 1
        z = torch.randn(batch, 32, generator=gen) * 2
        with torch.no_grad():
            ref = model(x, z).numpy()
        got = session.run(None, {"x_target": x.numpy(), "z_source": z.numpy()})[0]
        assert got.shape == ref.shape
        assert np.abs(ref).max() > 0.5
        assert np.abs(got - ref).max() < 1e-4


def test_export_of_the_keras_fixture_model(keras_fixture_dir, tmp_path):
    from facedancer_torch.convert.api import convert_keras_file

    model = load_generator(convert_keras_file(keras_fixture_dir / "ref_default.h5", tmp_path / "g"))
    export_generator_onnx(tmp_path / "g", tmp_path / "g.onnx")  # from the model directory
    io = np.load(keras_fixture_dir / "ref_default_io.npz")
    x = io["x_target_nhwc"].transpose(0, 3, 1, 2).copy()
    got = onnx_session(tmp_path / "g.onnx").run(None, {"x_target": x, "z_source": io["z_source"]})[0]
    with torch.no_grad():
        ref = model(torch.from_numpy(x), torch.from_numpy(io["z_source"])).numpy()
    assert np.abs(got - ref).max() < 1e-4
    # and therefore Keras itself
    assert np.abs(got.transpose(0, 2, 3, 1) - io["y_nhwc"]).max() < 1e-3


def test_generator_runner_onnxruntime_backend(tmp_path, monkeypatch):
    from facedancer_torch.models.runtime import GeneratorRunner

    monkeypatch.setenv("FACEDANCER_CACHE", str(tmp_path / "cache"))
    model = randomize_(build_generator(image_size=64, encoder_widths=(4, 8, 8, 16, 16, 16, 16),
                                       mapping_width=16))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    z = torch.randn(2, 512)
    with torch.no_grad():
        ref = model(x, z)
    runner = GeneratorRunner(model, backend="onnxruntime", threads=1)
    assert (torch.as_tensor(runner(x, z)) - ref).abs().max() < 1e-4
    cached = list((tmp_path / "cache" / "onnx").glob("generator-*.onnx"))
    assert len(cached) == 1
    # same weights -> the cached export is reused; other weights -> another file
    GeneratorRunner(model, backend="onnxruntime")
    with torch.no_grad():
        model.stem.bias.add_(1)
    GeneratorRunner(model, backend="onnxruntime")
    assert len(list((tmp_path / "cache" / "onnx").glob("generator-*.onnx"))) == 2


def test_untrained_model_with_equal_norm_parameters_exports(tmp_path):
    """Regression: equal tensors (all-ones gammas of an untrained model) once broke the
    fused export through initializer de-duplication."""
    pytest.importorskip("onnxscript", reason="the fused export uses the torch.export exporter")
    model = build_generator(image_size=64, encoder_widths=(4, 8, 8, 16, 16, 16, 16), mapping_width=16)
    session = onnx_session(export_generator_onnx(model, tmp_path / "g.onnx"))
    x, z = torch.rand(2, 3, 64, 64) * 2 - 1, torch.randn(2, 512)
    with torch.no_grad():
        ref = model(x, z).numpy()
    assert np.abs(session.run(None, {"x_target": x.numpy(), "z_source": z.numpy()})[0] - ref).max() < 1e-4
