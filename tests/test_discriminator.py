"""FaceDancer discriminator: reference graph size, shapes, gradients, save/load."""

from __future__ import annotations

import pytest
import torch

from facedancer_torch.errors import FacedancerError
from facedancer_torch.models.discriminator import (Discriminator, build_discriminator,
                                                   load_discriminator)

TINY = dict(image_size=64, widths=(4, 8, 8, 16, 16))


def _expected_parameters(widths=(64, 128, 256, 512, 512, 512, 512), head=512, k=4) -> int:
    """Count from docs/reference.md §3, independently of the implementation."""
    n = 3 * widths[0] * 9 + widths[0]  # stem conv3x3
    for cin, cout in zip(widths[:-1], widths[1:]):
        n += cin * cout + cout  # shortcut conv1x1
        n += 2 * cin + 9 * cin * cout + cout  # IN, conv3x3
        n += 2 * cout + 9 * cout * cout + cout  # IN, conv3x3
    n += k * k * widths[-1] * head + head  # conv4x4 valid
    return n + head + 1  # conv1x1 -> 1 logit


def test_reference_default_size():
    with torch.device("meta"):
        model = build_discriminator()
    n = sum(p.numel() for p in model.parameters())
    assert n == _expected_parameters() == 23_972_353  # "about 24.0 M"


def test_reference_resolution_reaches_one_logit_per_image():
    model = build_discriminator()
    with torch.no_grad():
        h = model.stem(torch.zeros(1, 3, 256, 256))
        for block in model.blocks:
            h = block(h)
        assert h.shape == (1, 512, 4, 4)
        assert model.head(h).shape == (1, 512, 1, 1)


def test_tiny_forward_and_r1_gradient():
    model = build_discriminator(**TINY)
    x = (torch.rand(3, 3, 64, 64) * 2 - 1).requires_grad_(True)
    logits = model(x)
    assert logits.shape == (3,) and torch.isfinite(logits).all()
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    r1 = grad.square().sum(dim=(1, 2, 3)).mean()
    r1.backward()  # second-order gradients work (R1 penalty)
    assert model.stem.weight.grad is not None and model.head.weight.grad.abs().sum() > 0
    # each image is judged alone (instance norm, no batch statistics)
    with torch.no_grad():
        torch.testing.assert_close(model(x[:1]), logits[:1].detach())


def test_save_load_and_config_errors(tmp_path):
    model = build_discriminator(**TINY)
    model.save_pretrained(tmp_path / "d")
    loaded = load_discriminator(str(tmp_path / "d"))
    assert isinstance(loaded, Discriminator) and loaded.config == model.config
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(FacedancerError, match="less than the 4x4 head"):
        build_discriminator(image_size=64, widths=(4, 8, 8, 8, 8, 8))
