"""FaceDancer losses (docs/reference.md §5) on plain tensors: formulas, gating, hinge placement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facedancer_torch.errors import ModelError
from facedancer_torch.losses import (IfsrLoss, Vgg16Features, block_cosine_distances, cycle_loss,
                                     discriminator_adversarial_loss, flag_average,
                                     generator_adversarial_loss, identity_loss,
                                     parse_perceptual_spec, perceptual_loss, r1_penalty,
                                     r1_weight_for_step, reconstruction_loss)


def test_adversarial_losses_are_the_non_saturating_softplus_forms():
    fake = torch.tensor([-2.0, 0.0, 3.0])
    real = torch.tensor([1.0, -1.0])
    assert torch.isclose(generator_adversarial_loss(fake), torch.log1p(torch.exp(-fake)).mean())
    d_real, d_fake = discriminator_adversarial_loss(real, fake)
    assert torch.isclose(d_real, torch.log1p(torch.exp(-real)).mean())
    assert torch.isclose(d_fake, torch.log1p(torch.exp(fake)).mean())


def test_r1_is_gamma_times_mean_squared_gradient_norm():
    # D(x) = <w, x_b> per image: grad_x D = w for every sample, so R1 = gamma * ||w||^2.
    w = torch.randn(3, 4, 4)
    real = torch.randn(5, 3, 4, 4, requires_grad=True)
    logits = (real * w).sum(dim=[1, 2, 3])
    penalty = r1_penalty(logits, real, gamma=5.0)
    assert torch.isclose(penalty, 5.0 * w.square().sum(), rtol=1e-5)
    # a loss-scaled computation (fp16 GradScaler recipe) gives the same value
    logits = (real * w).sum(dim=[1, 2, 3])
    assert torch.isclose(r1_penalty(logits, real, 5.0, grad_scale=1024.0), penalty, rtol=1e-5)


def test_r1_trains_the_discriminator_through_a_double_backward():
    weight = torch.randn(1, 3 * 4 * 4, requires_grad=True)
    real = torch.randn(2, 3, 4, 4, requires_grad=True)
    logits = torch.tanh(real.flatten(1) @ weight.t()).squeeze(1)
    r1_penalty(logits, real).backward()
    assert weight.grad is not None and weight.grad.abs().sum() > 0


def test_lazy_r1_weights_keep_the_expected_penalty():
    assert [r1_weight_for_step(s, 1) for s in range(3)] == [1.0, 1.0, 1.0]
    weights = [r1_weight_for_step(s, 4) for s in range(8)]
    assert weights == [4.0, 0, 0, 0, 4.0, 0, 0, 0]
    assert sum(weights) / len(weights) == 1.0


def test_identity_loss_is_one_minus_cosine_and_scale_free():
    z = torch.randn(4, 16)
    assert identity_loss(z, z).abs() < 1e-6
    assert torch.isclose(identity_loss(z, -3 * z), torch.tensor(2.0))
    other = torch.randn(4, 16)
    expected = (1 - F.cosine_similarity(z, other)).mean()
    assert torch.isclose(identity_loss(z, 7 * other), expected, atol=1e-6)


def test_reconstruction_is_flag_gated_and_halved():
    target = torch.zeros(3, 3, 8, 8)
    swap = torch.zeros(3, 3, 8, 8)
    swap[0] += 0.5  # flagged: counts
    swap[1] += 4.0  # not flagged: ignored whatever its error
    same = torch.tensor([1.0, 0.0, 1.0])
    expected = 0.5 * (0.5 + 0.0) / (2 + 1e-3)
    assert torch.isclose(reconstruction_loss(target, swap, same), torch.tensor(expected))
    # no flagged sample: exactly zero (the 1e-3 keeps it finite)
    assert reconstruction_loss(target, swap, torch.zeros(3)) == 0
    assert torch.isclose(flag_average(torch.tensor([2.0, 6.0]), torch.tensor([0, 1])),
                         torch.tensor(6 / 1.001))


def test_cycle_loss_is_mean_absolute_error():
    x = torch.randn(2, 3, 8, 8)
    assert cycle_loss(x, x) == 0
    assert torch.isclose(cycle_loss(x, x + 0.25), torch.tensor(0.25))


def test_perceptual_loss_is_flag_averaged_per_depth_with_the_reference_scale():
    a = {"b1": torch.zeros(2, 4, 8, 8), "b2": torch.zeros(2, 8, 4, 4)}
    b = {"b1": torch.ones(2, 4, 8, 8), "b2": torch.full((2, 8, 4, 4), 2.0)}
    both = torch.tensor([1.0, 1.0])
    expected = 0.85 * (1 + 2) * 2 / (2 + 1e-3)
    assert torch.isclose(perceptual_loss(a, b, both), torch.tensor(expected))
    assert perceptual_loss(a, b, torch.zeros(2)) == 0
    assert torch.isclose(perceptual_loss(a, b, both, blocks=["b2"]),
                         torch.tensor(0.85 * 2 * 2 / 2.001))


def test_vgg16_from_a_local_safetensors_file(tmp_path):
    from safetensors.torch import save_file

    net = Vgg16Features()
    state = {f"features.{k}": v for k, v in net.features.state_dict().items()}
    path = tmp_path / "vgg16.safetensors"
    save_file(state, str(path))
    loaded = Vgg16Features.from_safetensors(path)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    feats = loaded(x)
    assert list(feats) == ["block1_pool", "block2_pool", "block3_pool", "block4_pool",
                           "block5_pool"]
    assert [f.shape[-1] for f in feats.values()] == [32, 16, 8, 4, 2]
    assert torch.equal(feats["block5_pool"], net(x)["block5_pool"])
    assert not any(p.requires_grad for p in loaded.parameters())
    assert parse_perceptual_spec(f"vgg16:{path}") == ("vgg16", path)
    assert parse_perceptual_spec("identity") == ("identity", None)
    del state["features.28.bias"]
    save_file(state, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ModelError, match="features.28.bias"):
        Vgg16Features.from_safetensors(tmp_path / "bad.safetensors")
    with pytest.raises(ModelError, match="not found"):
        Vgg16Features.from_safetensors(tmp_path / "missing.safetensors")
    with pytest.raises(ModelError, match="unknown perceptual"):
        parse_perceptual_spec("alexnet")


def test_ifsr_is_zero_when_swap_equals_target():
    feats = {"a": torch.randn(3, 8, 5, 5), "b": torch.randn(3, 16, 3, 3)}
    same = {k: v.clone() for k, v in feats.items()}
    loss, distances = IfsrLoss({"a": 0.0, "b": 0.0})(feats, same)
    assert loss.abs() < 1e-6
    assert all(d.abs() < 1e-6 for d in distances.values())


def test_ifsr_hinge_comes_after_the_batch_mean_with_scaled_margins():
    x = {"a": torch.tensor([[1.0, 0.0], [1.0, 0.0]])}
    # sample 0 identical (distance 0), sample 1 orthogonal (distance 1): batch mean 0.5
    y = {"a": torch.tensor([[2.0, 0.0], [0.0, 3.0]])}
    per_sample = block_cosine_distances(x, y)["a"]
    assert torch.allclose(per_sample, torch.tensor([0.0, 1.0]), atol=1e-6)
    loss, distances = IfsrLoss({"a": 0.25}, scale=1.2)(x, y)
    assert torch.isclose(distances["a"], torch.tensor(0.5))
    assert torch.isclose(loss, torch.tensor(0.5 - 1.2 * 0.25))
    # a per-sample hinge would give mean(relu([0, 1] - 0.3)) = 0.35, not 0.2
    assert not torch.isclose(loss, torch.tensor(0.35))
    loss, _ = IfsrLoss({"a": 0.5}, scale=1.2)(x, y)  # under its margin: no penalty
    assert loss == 0


def test_ifsr_sums_blocks_and_trains_the_swap():
    x = {"a": torch.randn(2, 4, 3, 3), "b": torch.randn(2, 4, 3, 3)}
    y = {k: torch.randn(2, 4, 3, 3, requires_grad=True) for k in x}
    loss, distances = IfsrLoss({"a": 0.01, "b": 0.02})(x, y)
    expected = sum(torch.relu(distances[k] - 1.2 * m) for k, m in (("a", 0.01), ("b", 0.02)))
    assert torch.isclose(loss, expected)
    loss.backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in y.values())
    with pytest.raises(Exception, match="missing"):
        IfsrLoss({"c": 0.1})(x, y)
