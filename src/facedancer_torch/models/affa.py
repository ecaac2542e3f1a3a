"""AFFA: Adaptive Feature Fusion Attention (Rosberg et al., WACV 2023, §3.1;
docs/reference.md §2).

In the decoder, a learned per-pixel, per-channel sigmoid mask ``m`` decides how much of each
feature comes from the target's encoder skip ``a`` (attributes: pose, expression, lighting,
occlusions) and how much from the identity-conditioned decoder path ``d``:

    m = sigmoid(conv1x1_C(IN(lrelu_0.2(conv3x3_{C/4}(concat[a, d])))))
    fused = (1 - m) * a + m * d

Quirk reproduced from the reference: LeakyReLU comes *before* the instance norm here (the
opposite order of the residual blocks). The hidden width is ``C // 4`` (Keras ``filters // 4``).
No face segmentation is involved; the mask is learned end to end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LEAKY_SLOPE, InstanceNorm, conv1x1, conv3x3, instance_norm_fast


class AFFA(nn.Module):
    """Fuse a skip ``a`` and a decoder feature ``d``, both (B, C, H, W), with a learned mask."""

    def __init__(self, channels: int):
        super().__init__()
        if channels < 4:
            raise ValueError(f"AFFA needs at least 4 channels (hidden width C // 4), got {channels}")
        hidden = channels // 4
        self.conv = conv3x3(2 * channels, hidden)
        self.norm = InstanceNorm(hidden)
        self.mask = conv1x1(hidden, channels)

    def attention(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The mask ``m`` in [0, 1], (B, C, H, W): 1 takes the decoder, 0 keeps the skip."""
        h = F.leaky_relu(self.conv(torch.cat([a, d], dim=1)), LEAKY_SLOPE)
        return torch.sigmoid(self.mask(self.norm(h)))

    def forward(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        m = self.attention(a, d)
        return (1 - m) * a + m * d


class FusedAFFA(nn.Module):
    """Inference-only :class:`AFFA` computing the same function with less memory traffic.

    ``conv3x3(concat[a, d])`` is split into ``conv3x3_a(a) + conv3x3_d(d)`` (no concatenated
    copy), the norm is :func:`.layers.instance_norm_fast` and the mix is one ``lerp``: ``a + m (d - a) == (1 - m) a + m d``.
    """

    def __init__(self, affa: AFFA):
        super().__init__()
        w = affa.conv.weight.detach()
        c = w.shape[1] // 2
        self.conv_a = nn.Conv2d(c, w.shape[0], 3, padding=1, bias=True, dtype=w.dtype, device=w.device)
        self.conv_d = nn.Conv2d(c, w.shape[0], 3, padding=1, bias=False, dtype=w.dtype, device=w.device)
        self.conv_a.weight.data.copy_(w[:, :c])
        self.conv_a.bias.data.copy_(affa.conv.bias.detach())
        self.conv_d.weight.data.copy_(w[:, c:])
        self.norm = affa.norm
        self.mask = affa.mask

    def forward(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu_(self.conv_a(a).add_(self.conv_d(d)), LEAKY_SLOPE)
        h = instance_norm_fast(h, self.norm.eps, self.norm.weight, self.norm.bias)
        m = torch.sigmoid(self.mask(h))
        return torch.lerp(a, d, m)


class DualAFFA(nn.Module):
    """``d_affa``: two chained AFFA gates (the authors' ``dual_adaptive_fusion_up_block``).

    The first gate fuses ``a`` and ``d``; the second fuses ``a`` again with the first gate's
    output. Each gate is an :class:`AFFA` (hidden width ``C // 4``); in the Keras graph their
    sigmoid mask convs are named ``<res>_0`` and ``<res>_1``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.gates = nn.ModuleList([AFFA(channels), AFFA(channels)])

    def attention(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The second gate's mask, the one that decides the stage's output."""
        return self.gates[1].attention(a, self.gates[0](a, d))

    def forward(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return self.gates[1](a, self.gates[0](a, d))


class DoubleAFFA(nn.Module):
    """``do_affa``: AFFA with a two-branch mask (the authors' ``adaptive_attention_double``).

    Two branches read ``concat[a, d]``, each ``conv3x3_C -> lrelu_0.2 -> IN``; one ends in a
    C-channel sigmoid mask, the other in a single-channel sigmoid mask (``<res>_hat``), and the
    product of the two (the single channel broadcast) is the mask of the usual AFFA mix:

        m = sigmoid(conv1x1_C(h)) * sigmoid(conv1x1_1(h_hat))
        fused = (1 - m) * a + m * d
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv3x3(2 * channels, channels)
        self.norm = InstanceNorm(channels)
        self.mask = conv1x1(channels, channels)
        self.conv_hat = conv3x3(2 * channels, channels)
        self.norm_hat = InstanceNorm(channels)
        self.mask_hat = conv1x1(channels, 1)

    def attention(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """The mask ``m`` in [0, 1], (B, C, H, W): 1 takes the decoder, 0 keeps the skip."""
        x = torch.cat([a, d], dim=1)
        h = self.norm(F.leaky_relu(self.conv(x), LEAKY_SLOPE))
        h_hat = self.norm_hat(F.leaky_relu(self.conv_hat(x), LEAKY_SLOPE))
        return torch.sigmoid(self.mask(h)) * torch.sigmoid(self.mask_hat(h_hat))

    def forward(self, a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        m = self.attention(a, d)
        return (1 - m) * a + m * d


def build_attention(up_type: str, channels: int) -> nn.Module | None:
    """The attention fusion module of a decoder stage, or None for ``concat/add/no_skip``."""
    modules = {"affa": AFFA, "d_affa": DualAFFA, "do_affa": DoubleAFFA}
    return modules[up_type](channels) if up_type in modules else None
