"""Building blocks of the FaceDancer generator and discriminator (docs/reference.md §2-§3).

Rosberg et al., "FaceDancer: Pose- and Occlusion-Aware High Fidelity Face Swapping",
WACV 2023, §3.1 (generator) and the authors' Keras code. Every block here reproduces a quirk
of the reference so that its released weights give the same outputs:

* instance norm: affine, ``eps = 1e-3`` (TensorFlow-Addons default), biased variance;
* AdaIN: ``s * x + b`` with two dense maps of the mapped identity (not ``(1 + s) * x + b``);
* down block: conv, then 2x2 average pool; up block: conv, then bilinear x2 (half-pixel
  centres, i.e. ``align_corners=False``), so the up-block conv runs at the *low* resolution;
* every conv is stride 1, "same" padding, with bias.

All tensors are NCHW. The ``Fused*`` variants at the end compute the same function with
fewer FLOPs for inference (see :func:`fuse_for_inference`); they are never trained or saved.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.2
IN_EPS = 1e-3  # tfa.layers.InstanceNormalization default


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 conv, stride 1, "same" padding, with bias (Keras ``Conv2D(padding='same')``)."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


def conv1x1(in_channels: int, out_channels: int) -> nn.Conv2d:
    """1x1 conv with bias."""
    return nn.Conv2d(in_channels, out_channels, 1)


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm as TensorFlow-Addons computes it: affine, eps 1e-3, biased variance.

    ``torch.nn.InstanceNorm2d`` already uses the biased variance; only eps and the affine
    parameters differ from its defaults. No running statistics (the reference has none).
    """

    def __init__(self, channels: int):
        super().__init__(channels, eps=IN_EPS, affine=True, track_running_stats=False)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 with half-pixel centres (Keras ``UpSampling2D(interpolation='bilinear')``)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class AdaIN(nn.Module):
    """Identity modulation ``s * x + b`` with ``s = scale(w)``, ``b = bias(w)``.

    ``x``: (B, C, H, W), usually already instance-normalised; ``w``: (B, w_dim) mapped
    identity. The reference multiplies by ``s`` directly (no ``1 +``), so a converted model
    needs exactly this form.
    """

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.scale = nn.Linear(w_dim, channels)
        self.bias = nn.Linear(w_dim, channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.scale(w)[:, :, None, None]
        b = self.bias(w)[:, :, None, None]
        return s * x + b


class MappingNetwork(nn.Module):
    """Identity mapping network: ``depth`` linear layers of ``width``, LeakyReLU(0.2) between.

    ``z``: (B, z_dim) raw identity embedding -> (B, width). ``depth == 0`` is the identity
    (then ``out_dim == z_dim``).
    """

    def __init__(self, z_dim: int, width: int, depth: int):
        super().__init__()
        dims = [z_dim] + [width] * depth
        self.layers = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(depth))
        self.out_dim = dims[-1]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            z = layer(z)
            if i < len(self.layers) - 1:  # no activation after the last layer
                z = F.leaky_relu(z, LEAKY_SLOPE)
        return z


class ResidualDownBlock(nn.Module):
    """Encoder block: ``conv1x1(x) [-> avgpool2]  +  conv3x3(lrelu(IN(x))) [-> avgpool2]``."""

    def __init__(self, in_channels: int, out_channels: int, resample: bool = True):
        super().__init__()
        self.resample = resample
        self.shortcut = conv1x1(in_channels, out_channels)
        self.norm = InstanceNorm(in_channels)
        self.conv = conv3x3(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.shortcut(x)
        h = self.conv(F.leaky_relu(self.norm(x), LEAKY_SLOPE))
        if self.resample:
            r = F.avg_pool2d(r, 2)
            h = F.avg_pool2d(h, 2)
        return h + r


class ResidualUpBlock(nn.Module):
    """Decoder block: ``conv1x1(x) [-> up2]  +  conv3x3(lrelu(AdaIN(IN(x), w))) [-> up2]``.

    The convs run *before* the upsampling, as in the reference.
    """

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resample: bool = True):
        super().__init__()
        self.resample = resample
        self.shortcut = conv1x1(in_channels, out_channels)
        self.norm = InstanceNorm(in_channels)
        self.adain = AdaIN(in_channels, w_dim)
        self.conv = conv3x3(in_channels, out_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        r = self.shortcut(x)
        h = self.conv(F.leaky_relu(self.adain(self.norm(x), w), LEAKY_SLOPE))
        if self.resample:
            r = upsample2x(r)
            h = upsample2x(h)
        return h + r


# --------------------------------------------------------------------------------------
# Inference-only equivalents. Each computes the same function as its reference block up to
# float rounding, with less work; build them from a trained block. They are frozen copies
# (no gradients, never saved) used by ``FaceDancerGenerator.fused_for_inference``.


def instance_norm_fast(x: torch.Tensor, eps: float, weight: torch.Tensor | None = None,
                       bias: torch.Tensor | None = None) -> torch.Tensor:
    """Instance norm for inference on channels-last (and half-precision) maps.

    PyTorch's CPU ``instance_norm`` and ``var_mean`` copy or crawl on channels-last maps; its
    ``group_norm`` with one group per channel (the same function) has a native channels-last
    kernel, 6-20x faster on 256x256 maps, but takes the variance as E[x^2] - E[x]^2 and so
    loses everything when |mean| >> std (an error of 0.1 std at mean/std = 100 in float32,
    garbage in bfloat16). Instance norm ignores a per-channel shift, so the map is first
    centred on the mean of a sparse subsample, which removes the cancellation.
    ONNX export keeps the ``InstanceNormalization`` op.
    """
    if torch.onnx.is_in_onnx_export():
        return F.instance_norm(x, weight=weight, bias=bias, eps=eps)
    if x.shape[-1] * x.shape[-2] < 32 * 32:
        # small maps: that group_norm kernel is slow there, a layout round trip is cheap
        y = F.instance_norm(x.contiguous(), eps=eps,
                            weight=None if weight is None else weight.to(x.dtype),
                            bias=None if bias is None else bias.to(x.dtype))
        return y.contiguous(memory_format=torch.channels_last) \
            if x.is_contiguous(memory_format=torch.channels_last) else y
    step = max(1, x.shape[-1] // 16, x.shape[-2] // 16)
    centre = x[:, :, ::step, ::step].float().mean(dim=(2, 3), keepdim=True).to(x.dtype)
    if weight is not None:
        weight, bias = weight.to(x.dtype), bias.to(x.dtype)
    return F.group_norm(x - centre, x.shape[1], weight, bias, eps)


def _affine_lrelu(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float,
                  ) -> torch.Tensor:
    """``lrelu(IN(x) * scale + shift)`` for per-sample (B, C, 1, 1) ``scale``/``shift``:
    instance-norm affine and AdaIN collapse into one multiply-add, then an in-place LeakyReLU."""
    if x.shape[0] == 1 or (scale.shape[0] == 1 and shift.shape[0] == 1):
        # one affine for the whole batch: the norm applies it in the same pass
        h = instance_norm_fast(x, eps, scale.reshape(-1), shift.reshape(-1))
    else:
        h = instance_norm_fast(x, eps)
        # contiguous (B, C, 1, 1) factors keep addcmul on its vectorised path
        h = torch.addcmul(shift.to(h.dtype).contiguous(), h, scale.to(h.dtype).contiguous())
    return F.leaky_relu_(h, LEAKY_SLOPE)


class FusedResidualDownBlock(nn.Module):
    """``ResidualDownBlock`` with ``avgpool2(conv3x3(h)) == conv4x4_stride2(h)``.

    A 3x3 conv followed by a 2x2 mean is linear, so it equals one 4x4 conv with stride 2
    whose kernel is the 3x3 kernel box-filtered (padding 1 keeps the "same" border zeros).
    That costs 16/4 = 4 MACs per output pixel per channel pair instead of 9 at 4x the pixels.
    The 1x1 shortcut commutes with the pooling, so it runs at the low resolution.
    """

    def __init__(self, block: ResidualDownBlock):
        super().__init__()
        self.resample = block.resample
        # the norm's own parameters, not copies in buffers: the TorchScript ONNX exporter
        # de-duplicates equal buffers (e.g. untrained all-ones gammas) into a broken graph
        self.norm = block.norm
        self.shortcut = block.shortcut
        if self.resample:
            w = block.conv.weight.detach()  # (O, I, 3, 3)
            w4 = torch.zeros(w.shape[0], w.shape[1], 4, 4, dtype=w.dtype, device=w.device)
            for dy in (0, 1):
                for dx in (0, 1):
                    w4[:, :, dy:dy + 3, dx:dx + 3] += w
            self.conv = nn.Conv2d(w.shape[1], w.shape[0], 4, stride=2, padding=1,
                                  dtype=w.dtype, device=w.device)
            self.conv.weight.data.copy_(w4 / 4)
            self.conv.bias.data.copy_(block.conv.bias.detach())
        else:
            self.conv = block.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gamma = self.norm.weight[None, :, None, None]
        beta = self.norm.bias[None, :, None, None]
        h = self.conv(_affine_lrelu(x, gamma, beta, self.norm.eps))
        r = self.shortcut(F.avg_pool2d(x, 2) if self.resample else x)
        return h.add_(r)


class FusedResidualUpBlock(nn.Module):
    """``ResidualUpBlock`` with one upsampling of the sum (bilinear resize is linear and
    preserves constants, so ``up(h) + up(r) == up(h + r)``) and instance-norm affine and
    AdaIN folded into one per-sample scale and shift."""

    def __init__(self, block: ResidualUpBlock):
        super().__init__()
        self.resample = block.resample
        self.shortcut = block.shortcut
        self.conv = block.conv
        self.norm = block.norm  # only its affine parameters are used
        self.adain = block.adain

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.norm.weight, self.norm.bias
        s = self.adain.scale(w).to(gamma.dtype)  # float32 even under autocast
        scale = (gamma * s)[:, :, None, None]
        shift = (beta * s + self.adain.bias(w).to(gamma.dtype))[:, :, None, None]
        if x.dtype != self.conv.weight.dtype and x.dtype != torch.float64:
            # a narrow block before this one returned float32 (narrow_conv_sum); with bf16 or
            # fp16 weights (GeneratorRunner) the convs here want their own dtype
            x = x.to(self.conv.weight.dtype)
        h = _affine_lrelu(x, scale, shift, self.norm.eps)
        if _use_narrow(self.conv, self.resample):
            return narrow_conv_sum([(h, self.conv), (x, self.shortcut)])
        out = self.conv(h).add_(self.shortcut(x))
        return upsample2x(out) if self.resample else out


NARROW_OUT = 8  # convs with at most this many output channels take the GEMM route below


def _use_narrow(conv: nn.Conv2d, resample: bool) -> bool:
    return conv.out_channels <= NARROW_OUT and not resample and not torch.onnx.is_in_onnx_export()


def narrow_conv_sum(terms: list[tuple[torch.Tensor, nn.Conv2d]]) -> torch.Tensor:
    """``sum_i conv_i(x_i)`` ("same" 3x3 or 1x1 convs, stride 1) for few output channels.

    oneDNN runs a conv with 3 output channels (the generator's last layer) at a small
    fraction of its usual rate. Here each conv is one GEMM over the channels-last pixels that
    produces all nine taps at once, ``(9 O, C) @ (C, HW)``, and ``F.fold`` (col2im) adds the
    shifted taps, in float32, so the output is not rounded to bf16 at the end. Returns
    (B, O, H, W) in float32 (float64 for float64 inputs).
    """
    x0 = terms[0][0]
    b, _, h, w = x0.shape
    out_ch = terms[0][1].out_channels
    acc = torch.promote_types(x0.dtype, torch.float32)
    out = torch.zeros(b, out_ch, h, w, dtype=acc, device=x0.device)
    for x, conv in terms:
        # (B, HW, C) view of the channels-last map, multiplied as it lies (a transposed or
        # float32 copy of it would cost more than the GEMM); only the small (B, HW, 9 O)
        # result is transposed and summed in float32
        v = x.permute(0, 2, 3, 1).reshape(b, h * w, x.shape[1])
        weight = conv.weight.to(x.dtype)
        if conv.bias is not None:
            out += conv.bias.to(acc)[:, None, None]
        if conv.kernel_size[0] == 1:
            y = v @ weight[:, :, 0, 0].T
            out += y.to(acc).reshape(b, h, w, out_ch).permute(0, 3, 1, 2)
            continue
        # fold puts column (ky, kx) of location p at pixel p + (ky - 1, kx - 1); a conv needs
        # p - (ky - 1, kx - 1), hence the flipped kernel
        cols = v @ weight.flip(2, 3).permute(0, 2, 3, 1).reshape(out_ch * 9, x.shape[1]).T
        out += F.fold(cols.transpose(1, 2).to(acc), (h, w), kernel_size=3, padding=1)
    return out.contiguous(memory_format=torch.channels_last)


def _split_conv(conv: nn.Conv2d, split: int) -> tuple[nn.Conv2d, nn.Conv2d]:
    """Two convs over input channels ``[:split]`` and ``[split:]`` whose sum is ``conv``
    (the first carries the bias)."""
    w = conv.weight.detach()
    k = conv.kernel_size[0]
    first = nn.Conv2d(split, w.shape[0], k, padding=k // 2, dtype=w.dtype, device=w.device)
    second = nn.Conv2d(w.shape[1] - split, w.shape[0], k, padding=k // 2, bias=False,
                       dtype=w.dtype, device=w.device)
    first.weight.data.copy_(w[:, :split])
    first.bias.data.copy_(conv.bias.detach())
    second.weight.data.copy_(w[:, split:])
    return first, second


class FusedConcatUpBlock(nn.Module):
    """``ResidualUpBlock(concat[a, d])`` without building the concatenation.

    Instance norm and AdaIN act per channel and a conv over concatenated inputs is the sum of
    convs over each part, so the two halves are normalised and convolved separately.
    """

    def __init__(self, block: ResidualUpBlock, split: int):
        super().__init__()
        self.resample = block.resample
        self.split = split
        self.norm = block.norm
        self.adain = block.adain
        self.conv_a, self.conv_d = _split_conv(block.conv, split)
        self.shortcut_a, self.shortcut_d = _split_conv(block.shortcut, split)

    def forward(self, a: torch.Tensor, d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.norm.weight, self.norm.bias
        s = self.adain.scale(w).to(gamma.dtype)
        scale = (gamma * s)[:, :, None, None]
        shift = (beta * s + self.adain.bias(w).to(gamma.dtype))[:, :, None, None]
        k = self.split
        ha = _affine_lrelu(a, scale[:, :k], shift[:, :k], self.norm.eps)
        hd = _affine_lrelu(d, scale[:, k:], shift[:, k:], self.norm.eps)
        if _use_narrow(self.conv_a, self.resample):
            return narrow_conv_sum([(ha, self.conv_a), (hd, self.conv_d), (a, self.shortcut_a),
                                    (d, self.shortcut_d)])
        out = self.conv_a(ha).add_(self.conv_d(hd))
        out = out.add_(self.shortcut_a(a)).add_(self.shortcut_d(d))
        return upsample2x(out) if self.resample else out
