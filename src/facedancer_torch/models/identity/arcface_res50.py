"""ArcFace-Res50, the identity encoder of the FaceDancer reference (FaceDancer §3.2-3.3; docs/reference.md §4-§5).

A Keras ResNet50-v1 backbone (He et al. 2016; ``keras.applications.ResNet50`` layout and layer
names: stride 2 in the first 1x1 conv of each stage, convs with bias, BatchNorm eps 1.001e-5,
stem ZeroPad(3) -> 7x7/2 valid conv -> BN -> ReLU -> ZeroPad(1) -> 3x3/2 valid max-pool)
followed by the embedding head of the authors' ArcFace (Deng et al. 2019) model:
BN -> dropout -> flatten of the 4x4x2048 map **in HWC order** -> dense 512 -> BN.
Input 112x112 RGB in [0, 1] (no mean/std), output the raw (not normalised) 512-d embedding.

The weights are the authors' ``ArcFace-Res50.h5`` (not redistributable here): convert it with
``facedancer convert ArcFace-Res50.h5 OUT_DIR`` (``convert/keras_arcface.py``), which writes
``config.json`` + ``model.safetensors`` for :func:`load_arcface_res50`. Modules are keyed by
their Keras layer names (``layers.conv4_block6_3_conv.weight``) so the mapping can be read off.
IFSR taps the Keras block outputs with the reference margins (docs/reference.md §5).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ModelError
from .base import EncoderContract, IdentityEncoder

ARCHITECTURE = "arcface_res50"
KIND = "arcface-res50"  # config.json "kind", as every model folder of this project declares
STAGE_STRIDES = (1, 2, 2, 2)  # conv2 .. conv5
RESNET50_STAGE_BLOCKS = (3, 4, 6, 3)

# The reference IFSR blocks and margins (docs/reference.md §5; FaceDancer train.py defaults), in
# the reference's order. Margins are before the 1.2 IFSR scale.
REFERENCE_IFSR_MARGINS: dict[str, float] = {
    "conv4_block6_out": 0.121357,
    "conv4_block5_out": 0.128827,
    "conv4_block4_out": 0.117972,
    "conv4_block3_out": 0.109391,
    "conv4_block2_out": 0.097296,
    "conv4_block1_out": 0.089046,
    "conv3_block4_out": 0.044928,
    "conv3_block3_out": 0.048719,
    "conv3_block2_out": 0.047487,
    "conv3_block1_out": 0.047970,
    "conv2_block3_out": 0.035144,
}
# Stem output and the last block of each stage: a shallow -> deep ladder (56, 28, 14, 7, 4 px).
PERCEPTUAL_BLOCKS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                     "conv5_block3_out")


def block_names(stage_blocks: tuple[int, ...]) -> list[tuple[str, int, int]]:
    """``[(prefix, stage_index, block_index)]`` e.g. ``("conv3_block2", 1, 1)``."""
    return [(f"conv{s + 2}_block{b + 1}", s, b)
            for s, count in enumerate(stage_blocks) for b in range(count)]


def default_config(**overrides: Any) -> dict[str, Any]:
    """The config of the reference ArcFace-Res50 (what the converter writes for it)."""
    config: dict[str, Any] = {
        "architecture": ARCHITECTURE,
        "input_size": 112,
        "base_width": 64,
        "stage_blocks": list(RESNET50_STAGE_BLOCKS),
        "bn_eps": 1.001e-5,
        # head ops after conv5, in order; bn eps are read from the Keras file
        "head": [{"type": "batchnorm", "eps": 1e-3}, {"type": "dropout"},
                 {"type": "flatten_hwc"}, {"type": "dense", "units": 512, "bias": True},
                 {"type": "batchnorm", "eps": 1e-3}],
        "ifsr_margins": dict(REFERENCE_IFSR_MARGINS),
        "source": "",
    }
    config.update(overrides)
    return config


def arcface_contract(config: dict[str, Any]) -> EncoderContract:
    """The input contract of a (converted) ArcFace-Res50 described by ``config``."""
    stage_blocks = tuple(config["stage_blocks"])
    blocks = ["conv1_relu", "pool1_pool"] + [f"{p}_out" for p, _, _ in block_names(stage_blocks)]
    margins = config.get("ifsr_margins")
    ifsr = tuple(b for b in REFERENCE_IFSR_MARGINS if b in blocks)
    if margins is not None:
        ifsr = tuple(margins)
        missing = [b for b in ifsr if b not in blocks]
        if missing:
            raise ModelError(f"ifsr_margins name blocks this network does not have: {missing}")
        margins = {b: float(margins[b]) for b in ifsr}
    dense = [op for op in config["head"] if op["type"] == "dense"]
    return EncoderContract(
        name=ARCHITECTURE,
        input_size=int(config["input_size"]),
        mean=0.0,
        std=255.0,  # [0, 1] input, no mean/std normalisation (reference: x / 255)
        template="arcface",
        shrink_factor=1.0,
        embedding_dim=int(dense[-1]["units"]) if dense else 0,
        normalized=False,
        ifsr_blocks=ifsr,
        ifsr_margins=margins,
        perceptual_blocks=tuple(b for b in PERCEPTUAL_BLOCKS if b in blocks),
        feature_blocks=tuple(blocks),
        margins_file=None,  # margins live in the model's config.json
        source=str(config.get("source", "")),
        license="see the authors' ArcFace release (felixrosberg/ArcFace)",
    )


class ArcFaceRes50(IdentityEncoder):
    """Keras ResNet50-v1 + ArcFace head. Input (B, 3, 112, 112) in [0, 1] after preprocess.

    ``layers`` is a ModuleDict keyed by Keras layer name; ``head`` holds the post-backbone ops
    in order (``head.0`` ...). Widths and depths come from the config so that small random
    variants exist for tests; the reference is :func:`default_config`.
    """

    def __init__(self, config: dict[str, Any]):
        super().__init__(arcface_contract(config))
        self.config = config
        width = int(config["base_width"])
        eps = float(config["bn_eps"])
        stage_blocks = tuple(config["stage_blocks"])
        layers: dict[str, nn.Module] = {
            "conv1_conv": nn.Conv2d(3, width, 7, stride=2, padding=3),  # = ZeroPad(3) + valid
            "conv1_bn": nn.BatchNorm2d(width, eps=eps),
        }
        cin = width
        for prefix, stage, index in block_names(stage_blocks):
            filters = width * 2 ** stage
            stride = STAGE_STRIDES[stage] if index == 0 else 1
            if index == 0:  # projection shortcut
                layers[f"{prefix}_0_conv"] = nn.Conv2d(cin, 4 * filters, 1, stride=stride)
                layers[f"{prefix}_0_bn"] = nn.BatchNorm2d(4 * filters, eps=eps)
            layers[f"{prefix}_1_conv"] = nn.Conv2d(cin, filters, 1, stride=stride)
            layers[f"{prefix}_1_bn"] = nn.BatchNorm2d(filters, eps=eps)
            layers[f"{prefix}_2_conv"] = nn.Conv2d(filters, filters, 3, padding=1)
            layers[f"{prefix}_2_bn"] = nn.BatchNorm2d(filters, eps=eps)
            layers[f"{prefix}_3_conv"] = nn.Conv2d(filters, 4 * filters, 1)
            layers[f"{prefix}_3_bn"] = nn.BatchNorm2d(4 * filters, eps=eps)
            cin = 4 * filters
        self.layers = nn.ModuleDict(layers)
        self.stage_blocks = stage_blocks

        size = int(config["input_size"])
        spatial = (size + 6 - 7) // 2 + 1  # conv1
        spatial = (spatial + 2 - 3) // 2 + 1  # pool1
        for stride in STAGE_STRIDES[1:]:
            spatial = (spatial - 1) // stride + 1
        features = cin  # before flatten: channels; after: channels * spatial^2
        flat = False
        head: list[nn.Module] = []
        for op in config["head"]:
            kind = op["type"]
            if kind == "batchnorm":
                head.append((nn.BatchNorm1d if flat else nn.BatchNorm2d)(features, eps=float(op["eps"])))
            elif kind == "dropout":
                head.append(nn.Identity())  # inference only
            elif kind == "flatten_hwc":
                head.append(nn.Identity())  # marker; the permute happens in _head()
                features, flat = features * spatial * spatial, True
            elif kind == "dense":
                if not flat:
                    raise ModelError("ArcFace head: dense before flatten is not supported")
                head.append(nn.Linear(features, int(op["units"]), bias=bool(op["bias"])))
                features = int(op["units"])
            else:
                raise ModelError(f"ArcFace head: unknown op '{kind}'")
        self.head = nn.ModuleList(head)
        self.head_ops = [op["type"] for op in config["head"]]
        self.final_spatial = spatial

    def _block(self, x: Tensor, prefix: str, projection: bool) -> Tensor:
        L = self.layers
        shortcut = L[f"{prefix}_0_bn"](L[f"{prefix}_0_conv"](x)) if projection else x
        y = F.relu(L[f"{prefix}_1_bn"](L[f"{prefix}_1_conv"](x)))
        y = F.relu(L[f"{prefix}_2_bn"](L[f"{prefix}_2_conv"](y)))
        y = L[f"{prefix}_3_bn"](L[f"{prefix}_3_conv"](y))
        return F.relu(shortcut + y)

    def _head(self, x: Tensor) -> Tensor:
        for kind, module in zip(self.head_ops, self.head):
            if kind == "flatten_hwc":
                x = x.permute(0, 2, 3, 1).flatten(1)  # Keras flattens NHWC: (h, w, c) order
            else:
                x = module(x)
        return x

    def _run(self, x: Tensor, blocks: list[str], need_embedding: bool
             ) -> tuple[Tensor | None, dict[str, Tensor]]:
        wanted = set(blocks)
        feats: dict[str, Tensor] = {}

        def tap(name: str, value: Tensor) -> bool:
            if name in wanted:
                feats[name] = value
            return not need_embedding and len(feats) == len(wanted)

        L = self.layers
        x = F.relu(L["conv1_bn"](L["conv1_conv"](x)))
        done = tap("conv1_relu", x)
        if not done:
            # ZeroPad(1) then a VALID pool; after the ReLU, zero padding equals -inf padding
            x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
            done = tap("pool1_pool", x)
        if not done:
            for prefix, _, index in block_names(self.stage_blocks):
                x = self._block(x, prefix, projection=index == 0)
                if tap(f"{prefix}_out", x):
                    done = True
                    break
        ordered = {b: feats[b] for b in blocks}
        if not need_embedding:
            return None, ordered
        if not self.head_ops:
            raise ModelError("this ArcFace model has no embedding head (a backbone-only file); "
                             "convert ArcFace-Res50.h5 to get embeddings")
        if x.shape[-1] != self.final_spatial:
            raise ValueError(f"ArcFace expects {self.contract.input_size}px input")
        return self._head(x), ordered


def load_arcface_res50(path: str | Path, device: str | torch.device = "cpu") -> ArcFaceRes50:
    """Load a converted ArcFace-Res50 directory (``config.json`` + ``model.safetensors``)."""
    from safetensors.torch import load_file

    path = Path(path)
    config_path, weights_path = path / "config.json", path / "model.safetensors"
    if not config_path.is_file() or not weights_path.is_file():
        raise ModelError("not a model directory (needs config.json and model.safetensors)", path)
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelError("config.json is not valid JSON", config_path) from exc
    # Folders written before ArcFace had a "kind" carry only "architecture"; both load.
    if config.get("kind", KIND) != KIND or config.get("architecture") != ARCHITECTURE:
        raise ModelError(f"config.json describes '{config.get('kind') or config.get('architecture')}'"
                         f", not an {ARCHITECTURE} identity encoder", config_path)
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelError(f"cannot read weights ({exc.__class__.__name__}: {exc})",
                         weights_path) from exc
    with torch.device("meta"):
        model = ArcFaceRes50(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ModelError(f"weights do not match config.json (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})", weights_path)
    for key, value in expected.items():
        if state[key].shape != value.shape:
            raise ModelError(f"tensor '{key}' has shape {tuple(state[key].shape)}, config.json "
                             f"implies {tuple(value.shape)}", weights_path)
    model.load_state_dict(state, assign=True)
    return model.to(device).freeze()


def save_arcface_res50(model: ArcFaceRes50, out_dir: str | Path) -> Path:
    """Write ``config.json`` + ``model.safetensors`` into ``out_dir``: the one model-folder
    format of :mod:`..pretrained` (``kind`` ``arcface-res50``, ``source`` when known)."""
    from ..pretrained import RESERVED_KEYS, save_model_dir

    config = {k: v for k, v in model.config.items() if k not in RESERVED_KEYS}
    return save_model_dir(out_dir, kind=KIND, config=config, state_dict=model.state_dict(),
                          source=str(model.config.get("source") or "") or None)
