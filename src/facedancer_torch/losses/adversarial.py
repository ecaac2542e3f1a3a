"""Adversarial losses of FaceDancer (docs/reference.md §5): non-saturating GAN loss and R1.

The reference trains the discriminator on ``softplus(D(fake)) + softplus(-D(real))`` and the
generator on ``softplus(-D(fake))``; the R1 penalty ``5 * mean_b ||grad_x D(x_b)||^2`` is taken
on the real images (the reference uses the *source* batch as the real images) at every step.
A lazy R1 (every ``interval`` steps, multiplied by ``interval`` as in StyleGAN2) is an option.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REFERENCE_R1_GAMMA = 5.0


def generator_adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss ``mean(softplus(-D(y)))``; logits of shape (B,) or (B, 1)."""
    return F.softplus(-fake_logits.float()).mean()


def discriminator_adversarial_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor
                                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean(softplus(-D(real))), mean(softplus(D(fake))))``: the real and fake terms."""
    return F.softplus(-real_logits.float()).mean(), F.softplus(fake_logits.float()).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor,
               gamma: float = REFERENCE_R1_GAMMA,
               grad_scale: float | None = None) -> torch.Tensor:
    """R1 gradient penalty ``gamma * mean_b ||d sum(D(x)) / d x_b||^2`` (reference: gamma = 5).

    ``real_images`` (B, 3, H, W) must have ``requires_grad=True`` and ``real_logits`` must come
    from them. The graph is kept (``create_graph=True``) so the penalty trains D.
    ``grad_scale``: the loss scale when the logits come from an fp16 autocast region with a
    GradScaler (the gradient is computed on scaled logits to avoid underflow, then unscaled).
    """
    outputs = real_logits.float().sum()
    if grad_scale is not None:
        outputs = outputs * grad_scale
    (grad,) = torch.autograd.grad(outputs, real_images, create_graph=True)
    grad = grad.float()
    if grad_scale is not None:
        grad = grad / grad_scale
    return gamma * grad.square().sum(dim=[1, 2, 3]).mean()


def r1_weight_for_step(step: int, interval: int) -> float:
    """Multiplier of R1 at ``step`` for a lazy penalty every ``interval`` steps (1 = every step).

    Returns 0 on skipped steps and ``interval`` on penalised ones, so the expected penalty
    equals the every-step one (the StyleGAN2 lazy-regularisation rule).
    """
    if interval <= 1:
        return 1.0
    return float(interval) if step % interval == 0 else 0.0

