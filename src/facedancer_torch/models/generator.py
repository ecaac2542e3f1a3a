"""The FaceDancer generator (Rosberg et al., WACV 2023, §3.1 and Fig. 2; docs/reference.md §2).

A U-Net-like encoder-decoder. The encoder sees only the target crop; the decoder is
conditioned on the source identity through AdaIN in every up block (after a mapping
network), and each decoder stage fuses the matching encoder skip by one of six rules
(``up_types``): ``affa`` (learned attention mask, :mod:`.affa`), its two variants in the
authors' code ``d_affa`` (two chained gates) and ``do_affa`` (a mask with a second,
single-channel branch), ``concat``, ``add`` or ``no_skip``. The reference uses ``[no_skip, no_skip, affa, affa, affa, concat]``, mapping
depth 4 and width 512: exactly 24,505,894 parameters.

Conventions: ``x_target`` (B, 3, H, W) in [-1, 1] (``(pixel - 127.5) / 127.5``, RGB);
``z_source`` (B, z_dim), the *raw* (not L2-normalised) embedding of the identity encoder the
model was trained with; output (B, 3, H, W), nominally [-1, 1] but unbounded (no tanh):
map to pixels with ``clip((y + 1) / 2, 0, 1)``.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import FacedancerError, ModelError
from .affa import AFFA, FusedAFFA, build_attention
from .layers import (FusedConcatUpBlock, FusedResidualDownBlock, FusedResidualUpBlock,
                     MappingNetwork, ResidualDownBlock, ResidualUpBlock, conv3x3)
from .pretrained import PretrainedMixin

UP_TYPES = ("no_skip", "affa", "d_affa", "do_affa", "concat", "add")
ATTENTION_TYPES = ("affa", "d_affa", "do_affa")
NUM_DOWN = 5  # resampling encoder blocks; inputs must be multiples of 2**5


@dataclass
class GeneratorConfig:
    """Constructor arguments of :class:`FaceDancerGenerator` (saved as ``config.json``).

    ``encoder_widths``: channels of ``x0 .. x6`` (stem conv, five resampling down blocks, one
    down block without resampling). ``decoder_widths``: channels of ``u5 .. u0`` (bottleneck up
    block, then the outputs of decoder stages 1-5); ``None`` mirrors the encoder
    (``u_k = x_k``), as the reference does. The output stage always has ``out_channels``.
    ``up_types``: fusion rule of the six decoder stages (skips ``x5 .. x0``).
    ``mapping_depth == 0`` feeds the raw embedding straight to AdaIN (``mapping_width`` then
    equals ``z_dim``).
    ``identity_encoder``: name or path of the encoder whose raw embedding ``z_source`` must
    come from (released FaceDancer weights only work with ArcFace-Res50).
    """

    image_size: int = 256
    encoder_widths: tuple[int, ...] = (64, 128, 256, 512, 512, 512, 512)
    decoder_widths: tuple[int, ...] | None = None
    out_channels: int = 3
    z_dim: int = 512
    mapping_depth: int = 4
    mapping_width: int = 512
    up_types: tuple[str, ...] = ("no_skip", "no_skip", "affa", "affa", "affa", "concat")
    identity_encoder: str = "arcface-res50"

    def __post_init__(self) -> None:
        self.encoder_widths = tuple(int(c) for c in self.encoder_widths)
        if self.decoder_widths is None:
            self.decoder_widths = tuple(reversed(self.encoder_widths[:NUM_DOWN + 1]))
        self.decoder_widths = tuple(int(c) for c in self.decoder_widths)
        self.up_types = tuple(str(t) for t in self.up_types)
        if self.mapping_depth == 0:
            self.mapping_width = self.z_dim  # no mapping: AdaIN reads z itself (canonical form)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`FacedancerError` if the numbers cannot make a generator."""
        def bad(msg: str) -> FacedancerError:
            return FacedancerError(f"invalid generator config: {msg}")

        if len(self.encoder_widths) != NUM_DOWN + 2:
            raise bad(f"encoder_widths needs {NUM_DOWN + 2} values (x0..x6), "
                      f"got {len(self.encoder_widths)}")
        if len(self.decoder_widths) != NUM_DOWN + 1:
            raise bad(f"decoder_widths needs {NUM_DOWN + 1} values (u5..u0), "
                      f"got {len(self.decoder_widths)}")
        if min(self.encoder_widths + self.decoder_widths) < 1 or self.out_channels < 1:
            raise bad("widths must be positive")
        if self.image_size < 2 ** (NUM_DOWN + 1) or self.image_size % 2 ** NUM_DOWN:
            # the bottleneck must keep at least 2x2 pixels for its instance norms
            raise bad(f"image_size must be a multiple of {2 ** NUM_DOWN} and at least "
                      f"{2 ** (NUM_DOWN + 1)}, got {self.image_size}")
        if self.mapping_depth < 0 or self.z_dim < 1 or (self.mapping_depth and self.mapping_width < 1):
            raise bad("z_dim, mapping_width must be positive and mapping_depth >= 0")
        if len(self.up_types) != NUM_DOWN + 1:
            raise bad(f"up_types needs {NUM_DOWN + 1} entries, got {len(self.up_types)}")
        for stage, kind in enumerate(self.up_types):
            if kind not in UP_TYPES:
                raise bad(f"up_types[{stage}] is '{kind}', expected one of {', '.join(UP_TYPES)}")
            skip, dec = self.stage_channels(stage)[:2]
            if (kind in ATTENTION_TYPES or kind == "add") and skip != dec:
                raise bad(f"stage {stage + 1} ('{kind}') needs equal skip and decoder widths, "
                          f"got {skip} and {dec}")
            if kind in ("affa", "d_affa") and skip < 4:
                raise bad(f"stage {stage + 1} ('{kind}') needs at least 4 channels, got {skip}")

    def stage_channels(self, stage: int) -> tuple[int, int, int]:
        """(skip, decoder input, output) channels of decoder stage ``stage`` (0-based)."""
        skip = self.encoder_widths[NUM_DOWN - stage]
        dec = self.decoder_widths[stage]
        out = self.decoder_widths[stage + 1] if stage < NUM_DOWN else self.out_channels
        return skip, dec, out

    @property
    def w_dim(self) -> int:
        """Width of the mapped identity that feeds every AdaIN."""
        return self.mapping_width if self.mapping_depth > 0 else self.z_dim

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("encoder_widths", "decoder_widths", "up_types"):
            data[key] = list(data[key])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratorConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error (a config from elsewhere)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FacedancerError(f"unknown generator config keys: {', '.join(unknown)}")
        return cls(**data)


class FusionUpBlock(nn.Module):
    """One decoder stage: fuse skip ``a`` with decoder ``d`` (per ``up_type``), then an up block."""

    def __init__(self, up_type: str, skip_channels: int, dec_channels: int, out_channels: int,
                 w_dim: int, resample: bool):
        super().__init__()
        self.up_type = up_type
        self.skip_channels = skip_channels
        self.affa = build_attention(up_type, skip_channels)
        in_channels = skip_channels + dec_channels if up_type == "concat" else dec_channels
        self.block = ResidualUpBlock(in_channels, out_channels, w_dim, resample=resample)

    def forward(self, a: torch.Tensor, d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.affa is not None:
            h = self.affa(a, d)
        elif self.up_type == "concat":
            h = torch.cat([a, d], dim=1)  # skip first, as in the reference
        elif self.up_type == "add":
            h = a + d
        else:  # no_skip
            h = d
        return self.block(h, w)


class FusedFusionUpBlock(nn.Module):
    """Inference-only :class:`FusionUpBlock` built from the fused blocks (same function)."""

    def __init__(self, stage: FusionUpBlock):
        super().__init__()
        self.up_type = stage.up_type
        # Only the plain AFFA has a fused twin; the variants run as they are.
        self.affa = FusedAFFA(stage.affa) if isinstance(stage.affa, AFFA) else stage.affa
        if self.up_type == "concat":
            self.block: nn.Module = FusedConcatUpBlock(stage.block, stage.skip_channels)
        else:
            self.block = FusedResidualUpBlock(stage.block)

    def forward(self, a: torch.Tensor, d: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up_type == "concat":
            return self.block(a, d, w)
        if self.affa is not None:
            h = self.affa(a, d)
        elif self.up_type == "add":
            h = a + d
        else:
            h = d
        return self.block(h, w)


class FaceDancerGenerator(PretrainedMixin, nn.Module):
    """FaceDancer generator: ``G(x_target, z_source) -> swap``.

    ``x_target``: (B, 3, H, W) in [-1, 1], H = W a multiple of 32 (trained at
    ``config.image_size``); ``z_source``: (B, z_dim) raw identity embedding. Returns
    (B, out_channels, H, W), nominally [-1, 1], not clamped.
    """

    kind = "facedancer-generator"
    config_class = GeneratorConfig

    def __init__(self, config: GeneratorConfig | None = None, **overrides: Any):
        super().__init__()
        self.config = config = self.resolve_config(config, overrides)
        enc = config.encoder_widths
        self.mapping = MappingNetwork(config.z_dim, config.mapping_width, config.mapping_depth)
        w_dim = self.mapping.out_dim
        self.stem = conv3x3(3, enc[0])
        self.encoder = nn.ModuleList(
            ResidualDownBlock(enc[i], enc[i + 1], resample=i < NUM_DOWN) for i in range(NUM_DOWN + 1))
        self.bottleneck = ResidualUpBlock(enc[-1], config.decoder_widths[0], w_dim, resample=False)
        self.decoder = nn.ModuleList(
            FusionUpBlock(kind, *config.stage_channels(s), w_dim, resample=s < NUM_DOWN)
            for s, kind in enumerate(config.up_types))

    def forward(self, x_target: torch.Tensor, z_source: torch.Tensor) -> torch.Tensor:
        if x_target.dim() != 4 or x_target.shape[1] != 3:
            raise ValueError(f"x_target must be (B, 3, H, W), got {tuple(x_target.shape)}")
        if x_target.shape[-1] % 2 ** NUM_DOWN or x_target.shape[-2] % 2 ** NUM_DOWN:
            raise ValueError(f"x_target height and width must be multiples of {2 ** NUM_DOWN}, "
                             f"got {tuple(x_target.shape[-2:])}")
        if z_source.dim() != 2 or z_source.shape[1] != self.config.z_dim:
            raise ValueError(f"z_source must be (B, {self.config.z_dim}), got {tuple(z_source.shape)}")
        w = self.mapping(z_source)
        skips = [self.stem(x_target)]  # x0 .. x6
        for block in self.encoder:
            skips.append(block(skips[-1]))
        u = self.bottleneck(skips[-1], w)
        for stage, fusion in enumerate(self.decoder):
            u = fusion(skips[NUM_DOWN - stage], u, w)
        return u

    def attention_masks(self, x_target: torch.Tensor, z_source: torch.Tensor) -> dict[str, torch.Tensor]:
        """The AFFA masks of one forward pass, keyed by the stage's output resolution
        (``"64x64"``; ``"final"`` for the output stage, as the reference names them): (B, C, h, w) in [0, 1], 1 = decoder."""
        masks: dict[str, torch.Tensor] = {}
        hooks = []
        size = x_target.shape[-1]
        for stage, fusion in enumerate(self.decoder):
            if fusion.affa is not None:
                res = size // 2 ** (NUM_DOWN - stage - 1)
                name = f"{res}x{res}" if stage < NUM_DOWN else "final"

                def hook(module: nn.Module, args: tuple, _out: Any, name: str = name) -> None:
                    masks[name] = module.attention(*args).detach()
                hooks.append(fusion.affa.register_forward_hook(hook))
        try:
            with torch.no_grad():
                self(x_target, z_source)
        finally:
            for h in hooks:
                h.remove()
        return masks

    def fused_for_inference(self, conv_dtype: torch.dtype | None = None) -> FaceDancerGenerator:
        """A copy computing the same function with about 40 % fewer FLOPs (inference only).

        Down blocks become stride-2 4x4 convs (conv3x3 + avgpool2 folded), up blocks upsample
        once and fold IN + AdaIN into one scale/shift, concatenations are replaced by split
        convs. Outputs match this model to float rounding (about 1e-6 relative); the copy is
        frozen, in eval mode, and not saveable.

        ``conv_dtype`` (e.g. ``torch.bfloat16``) stores the conv weights in that dtype, so the
        copy runs on ``x_target`` of that dtype without autocast (the mapping network, AdaIN
        and norm parameters stay float32); the output then has that dtype too.
        """
        fused = copy.deepcopy(self).eval()
        fused.encoder = nn.ModuleList(FusedResidualDownBlock(b) for b in fused.encoder)
        fused.bottleneck = FusedResidualUpBlock(fused.bottleneck)
        fused.decoder = nn.ModuleList(FusedFusionUpBlock(stage) for stage in fused.decoder)
        if conv_dtype is not None:
            for module in fused.modules():
                if isinstance(module, nn.Conv2d):
                    module.to(conv_dtype)
        fused.requires_grad_(False)
        fused.is_fused = True
        return fused

    def save_pretrained(self, directory: str | Path, dtype: torch.dtype | None = None,
                        source: str | None = None) -> Path:
        if getattr(self, "is_fused", False):
            raise RuntimeError("a fused inference copy cannot be saved; save the original model")
        return super().save_pretrained(directory, dtype=dtype, source=source)


def build_generator(**overrides: Any) -> FaceDancerGenerator:
    """A randomly initialised generator; no arguments gives the reference default graph
    (24,505,894 parameters). Keyword arguments override :class:`GeneratorConfig` fields."""
    return FaceDancerGenerator(GeneratorConfig(**overrides))


def load_generator(path: str | Path, device: str | torch.device = "cpu",
                   dtype: torch.dtype | None = None) -> FaceDancerGenerator:
    """Load a generator saved by :meth:`FaceDancerGenerator.save_pretrained` or by
    ``facedancer convert``; eval mode, on ``device``, float32 unless ``dtype`` is given.

    Raises :class:`ModelError` naming the directory when files are missing, the directory
    holds another kind of model, or the weights do not match the config.
    """
    from ..device import resolve_device

    try:
        return FaceDancerGenerator.from_pretrained(path, device=resolve_device(device), dtype=dtype)
    except FacedancerError as exc:
        if isinstance(exc, ModelError):
            raise
        raise ModelError(str(exc), path) from exc
