"""FaceDancer generator: the reference graph, its quirks, configurability, save/load."""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F

from facedancer_torch.errors import FacedancerError, ModelError
from facedancer_torch.models.affa import AFFA
from facedancer_torch.models.generator import (FaceDancerGenerator, GeneratorConfig,
                                               build_generator, load_generator)
from facedancer_torch.models.layers import AdaIN, InstanceNorm, MappingNetwork, ResidualUpBlock
from modelutil import randomize_

TINY = dict(image_size=64, encoder_widths=(4, 8, 8, 16, 16, 16, 16), mapping_width=16, z_dim=24)


def inputs(batch: int = 2, size: int = 64, z_dim: int = 24, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, size, size, generator=gen) * 2 - 1,
            torch.randn(batch, z_dim, generator=gen) * 2)


def test_reference_default_has_exactly_24_505_894_parameters():
    with torch.device("meta"):
        model = build_generator()
    assert sum(p.numel() for p in model.parameters()) == 24_505_894
    c = model.config
    assert c.up_types == ("no_skip", "no_skip", "affa", "affa", "affa", "concat")
    assert c.decoder_widths == (512, 512, 512, 256, 128, 64)
    assert (c.mapping_depth, c.mapping_width, c.z_dim, c.image_size) == (4, 512, 512, 256)


def test_instance_norm_is_tf_addons_eps_1e3_biased_variance_affine():
    norm = randomize_(InstanceNorm(5))
    x = torch.randn(2, 5, 7, 6) * 0.05  # small variance: eps matters
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = ((x - mean) ** 2).mean(dim=(2, 3), keepdim=True)  # biased
    expected = (x - mean) / torch.sqrt(var + 1e-3) * norm.weight[:, None, None] + norm.bias[:, None, None]
    torch.testing.assert_close(norm(x), expected, atol=1e-5, rtol=1e-5)


def test_adain_is_s_times_x_plus_b_scale_first():
    ada = randomize_(AdaIN(3, 4))
    x, w = torch.randn(2, 3, 5, 5), torch.randn(2, 4)
    s = w @ ada.scale.weight.T + ada.scale.bias
    b = w @ ada.bias.weight.T + ada.bias.bias
    torch.testing.assert_close(ada(x, w), s[:, :, None, None] * x + b[:, :, None, None])


def test_up_block_convolves_before_half_pixel_bilinear_upsampling():
    block = randomize_(ResidualUpBlock(4, 3, w_dim=6))
    x, w = torch.randn(2, 4, 8, 8), torch.randn(2, 6)
    h = F.leaky_relu(block.adain(block.norm(x), w), 0.2)
    up = lambda t: F.interpolate(t, size=(16, 16), mode="bilinear", align_corners=False)  # noqa: E731
    expected = up(block.conv(h)) + up(block.shortcut(x))
    torch.testing.assert_close(block(x, w), expected)
    # half-pixel centres: a 2-pixel ramp [0, 1] upsamples to [0, .25, .75, 1]
    ramp = torch.tensor([[[[0.0, 1.0]]]]).expand(1, 1, 2, 2)
    assert F.interpolate(ramp, scale_factor=2.0, mode="bilinear",
                         align_corners=False)[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]


def test_affa_applies_leaky_relu_before_instance_norm_and_mixes_skip_and_decoder():
    affa = randomize_(AFFA(8))
    a, d = torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6)
    h = F.leaky_relu(affa.conv(torch.cat([a, d], 1)), 0.2)
    m = torch.sigmoid(affa.mask(affa.norm(h)))
    torch.testing.assert_close(affa(a, d), (1 - m) * a + m * d)
    assert affa.conv.out_channels == 2  # C // 4
    # the order matters: IN then LeakyReLU gives another mask
    m_swapped = torch.sigmoid(affa.mask(F.leaky_relu(affa.norm(affa.conv(torch.cat([a, d], 1))), 0.2)))
    assert (m - m_swapped).abs().max() > 1e-3
    with torch.no_grad():  # mask saturated at 0 -> skip only; at 1 -> decoder only
        affa.mask.bias.fill_(-1e4)
        torch.testing.assert_close(affa(a, d), a)
        affa.mask.bias.fill_(1e4)
        torch.testing.assert_close(affa(a, d), d)


def test_mapping_network_depth_and_identity():
    z = torch.randn(3, 10)
    assert torch.equal(MappingNetwork(10, 7, 0)(z), z)
    net = randomize_(MappingNetwork(10, 7, 2))
    first = F.leaky_relu(net.layers[0](z), 0.2)
    torch.testing.assert_close(net(z), net.layers[1](first))  # no activation at the end


@pytest.mark.parametrize("up_types,depth", [
    (("no_skip", "no_skip", "affa", "affa", "affa", "concat"), 4),
    (("affa", "add", "concat", "no_skip", "add", "affa"), 0),
    (("concat",) * 6, 1),
    (("add",) * 6, 2),
])
def test_configurable_graphs_run_and_train(up_types, depth):
    model = randomize_(build_generator(**TINY, up_types=up_types, mapping_depth=depth), scale=0.1)
    x, z = inputs()
    y = model(x, z)
    assert y.shape == (2, 3, 64, 64) and torch.isfinite(y).all()
    y.square().mean().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not unused
    # the identity changes the output, the skip connections carry the target
    with torch.no_grad():
        assert (model(x, z) - model(x, z.flip(0))).abs().mean() > 1e-4


def test_output_is_not_squashed():
    """No tanh: outputs leave [-1, 1] when the weights say so."""
    model = randomize_(build_generator(**TINY), scale=0.5)
    x, z = inputs()
    with torch.no_grad():
        assert model(x, z).abs().max() > 1.0


def test_fused_inference_copy_matches_reference():
    model = randomize_(build_generator(**TINY, up_types=("add", "concat", "affa", "affa", "no_skip",
                                                         "concat")))
    fused = model.fused_for_inference()
    x, z = inputs(3)
    with torch.no_grad():
        got = fused(x, z)
        exact = copy.deepcopy(model).double()(x.double(), z.double())
        exact_fused = model.double().fused_for_inference()(x.double(), z.double())
    scale = exact.abs().max()
    assert scale > 0.5
    # algebraically identical (float64 shows it), and within float32 rounding of the reference
    assert (exact_fused - exact).abs().max() < 1e-10 * scale
    assert (got.double() - exact).abs().max() < 5e-5 * scale
    with pytest.raises(RuntimeError):
        fused.save_pretrained("unused")


def test_attention_masks_named_by_resolution():
    model = randomize_(build_generator(**TINY))
    x, z = inputs(1)
    masks = model.attention_masks(x, z)
    assert sorted(masks) == ["16x16", "32x32", "64x64"]
    assert masks["64x64"].shape == (1, 8, 32, 32)  # computed at the stage input resolution
    assert 0 <= masks["16x16"].min() and masks["16x16"].max() <= 1


def test_invalid_configs_are_refused():
    with pytest.raises(FacedancerError, match="up_types"):
        build_generator(**TINY, up_types=("affa",) * 5)
    with pytest.raises(FacedancerError, match="expected one of"):
        build_generator(**TINY, up_types=("skip",) * 6)
    with pytest.raises(FacedancerError, match="equal skip and decoder widths"):
        build_generator(**TINY, up_types=("affa",) * 6, decoder_widths=(16, 8, 16, 8, 8, 4))
    with pytest.raises(FacedancerError, match="multiple of 32"):
        build_generator(**{**TINY, "image_size": 100})
    model = build_generator(**TINY)
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.zeros(1, 3, 48, 64), torch.zeros(1, 24))


def test_config_dict_round_trip():
    config = GeneratorConfig(**TINY, up_types=("add",) * 6, identity_encoder="facenet")
    data = json.loads(json.dumps(config.to_dict()))
    assert GeneratorConfig.from_dict(data) == config
    with pytest.raises(FacedancerError, match="unknown generator config keys: colour"):
        GeneratorConfig.from_dict({**data, "colour": 1})


def test_save_and_load_round_trip(tmp_path):
    model = randomize_(build_generator(**TINY))
    model.save_pretrained(tmp_path / "g")
    config = json.loads((tmp_path / "g" / "config.json").read_text())
    assert config["kind"] == "facedancer-generator" and config["weights_dtype"] == "float32"
    loaded = load_generator(tmp_path / "g")
    assert not loaded.training and loaded.config == model.config
    for (name, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    assert isinstance(FaceDancerGenerator.from_pretrained(tmp_path / "g"), FaceDancerGenerator)

    model.save_pretrained(tmp_path / "half", dtype=torch.float16)
    assert (tmp_path / "half" / "model.safetensors").stat().st_size < \
        0.6 * (tmp_path / "g" / "model.safetensors").stat().st_size
    half = load_generator(tmp_path / "half")
    x, z = inputs()
    with torch.no_grad():
        torch.testing.assert_close(half(x, z), model(x, z), atol=2e-2, rtol=2e-2)
    assert next(half.parameters()).dtype == torch.float32


def test_load_errors_name_the_directory(tmp_path):
    with pytest.raises(ModelError, match="model directory not found"):
        load_generator(tmp_path / "nothing")
    model = build_generator(**TINY)
    model.save_pretrained(tmp_path / "g")
    (tmp_path / "g" / "model.safetensors").unlink()
    with pytest.raises(ModelError, match=r"g: incomplete model directory: model.safetensors"):
        load_generator(tmp_path / "g")

    model.save_pretrained(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    config["mapping_width"] = 32
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=r"m: weights do not match the config: .*adain"):
        load_generator(tmp_path / "m")

    config["up_types"] = ["affa"] * 2
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="does not describe a valid model"):
        load_generator(tmp_path / "m")

    from facedancer_torch.models.discriminator import build_discriminator
    build_discriminator(image_size=64, widths=(4, 8, 8, 8, 8)).save_pretrained(tmp_path / "d")
    with pytest.raises(ModelError, match="holds a 'facedancer-discriminator' model"):
        load_generator(tmp_path / "d")

    (tmp_path / "w.h5").write_bytes(b"x")
    with pytest.raises(ModelError, match="facedancer convert"):
        load_generator(tmp_path / "w.h5")


@pytest.mark.parametrize("backend,tol", [("eager", 0.0), ("fused", 1e-4), ("bf16", 0.1)])
def test_generator_runner_backends_agree_with_the_model(backend, tol):
    from facedancer_torch.models.runtime import GeneratorRunner

    model = randomize_(build_generator(**TINY), scale=0.2)
    x, z = inputs(2)
    with torch.no_grad():
        ref = model(x, z)
    runner = GeneratorRunner(model, backend=backend)
    y = runner(x, z)
    assert runner.backend == backend and y.dtype == torch.float32 and y.shape == ref.shape
    err = (y - ref).abs().max() / ref.abs().max()
    assert err <= tol
    if backend == "bf16":
        assert err > 0  # it really ran in reduced precision


def test_generator_runner_refuses_bad_backends():
    from facedancer_torch.models.runtime import GeneratorRunner

    model = build_generator(**TINY)
    with pytest.raises(FacedancerError, match="unknown generator backend 'tf'"):
        GeneratorRunner(model, backend="tf")
    with pytest.raises(FacedancerError, match="needs a CUDA device"):
        GeneratorRunner(model, backend="fp16")


def test_bf16_runs_models_whose_inner_blocks_are_narrow():
    """Blocks of <= 8 output channels return float32 (narrow_conv_sum); a bf16 block after one
    must still run (this failed for the 8-channel benchmark generator)."""
    from facedancer_torch.models.runtime import GeneratorRunner

    model = randomize_(build_generator(image_size=64, encoder_widths=(4, 8, 8, 8, 8, 8, 8),
                                       mapping_depth=1, mapping_width=16), scale=0.2)
    x, z = inputs(2, size=64, z_dim=model.config.z_dim)
    with torch.no_grad():
        ref = model(x, z)
    y = GeneratorRunner(model, backend="bf16")(x, z)
    assert y.dtype == torch.float32 and y.shape == ref.shape
    assert (y - ref).abs().max() / ref.abs().max() <= 0.1
