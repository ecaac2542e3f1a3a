"""RetinaFace-ResNet50 as the authors ship it (``RetinaFace-Res50.h5``), ported to PyTorch.

Deng et al., "RetinaFace: Single-shot multi-level face localisation in the wild" (CVPR 2020),
in the form of the authors' ``retinaface/`` package (a copy of retinaface-tf2): a Keras
ResNet50 v1 backbone (strides 8 / 16 / 32), an FPN whose top-down path uses TensorFlow's
nearest resize (half-pixel centres: ``'nearest-exact'``, not PyTorch's legacy ``'nearest'``,
which differs whenever a level is not an exact doubling), one SSH context module per level and
1x1 class / box / landmark heads with 2 anchors per pixel. The released FaceDancer models were
trained on crops aligned with this detector's landmarks.

Conventions: images are ``(H, W, 3)`` uint8 **RGB**, fed as given (the authors' caffe-style
preprocessing happens inside: RGB -> BGR, minus the ImageNet BGR mean, no scaling). Head
outputs are NHWC reshaped to ``(1, h * w * 2, k)``: pixels row-major, the 2 anchors fastest.
Decoded coordinates are fractions of the input width and height, like the Keras graph's.

A converted model is a folder: ``config.json`` (``{"kind": "retinaface-r50", ...}``) and
``model.safetensors`` (:mod:`facedancer_torch.convert.keras_retinaface` writes it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ModelError

KIND = "retinaface-r50"
# ResNet50 v1 stages of keras.applications: (name, blocks, bottleneck width, stride)
STAGES = (("conv2", 3, 64, 1), ("conv3", 4, 128, 2), ("conv4", 6, 256, 2), ("conv5", 3, 512, 2))
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
HEAD_NAMES = ("bbox_head", "bbox_head_1", "bbox_head_2", "LandmarkHead_0", "LandmarkHead_1",
              "LandmarkHead_2", "ClassHead_0", "ClassHead_1", "ClassHead_2", "softmax")


class _ConvBN(nn.Module):
    """Keras ``Conv2D`` (+ optional bias) followed by ``BatchNormalization`` (inference)."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, bias: bool = True,
                 eps: float = 1.001e-5):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, padding=k // 2 if stride == 1 else 0,
                              bias=bias)
        self.bn = nn.BatchNorm2d(cout, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _Bottleneck(nn.Module):
    """keras.applications ``block1``: the stride sits on the first 1x1 conv (v1)."""

    def __init__(self, cin: int, width: int, stride: int, shortcut: bool):
        super().__init__()
        self.shortcut = _ConvBN(cin, 4 * width, 1, stride) if shortcut else None
        self.conv1 = _ConvBN(cin, width, 1, stride)
        self.conv2 = _ConvBN(width, width, 3)
        self.conv3 = _ConvBN(width, 4 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        short = x if self.shortcut is None else self.shortcut(x)
        h = F.relu(self.conv1(x))
        h = F.relu(self.conv2(h))
        return F.relu(self.conv3(h) + short)


class ResNet50Backbone(nn.Module):
    """keras.applications ResNet50 (v1) up to ``conv5``; returns the stride 8/16/32 maps."""

    def __init__(self):
        super().__init__()
        self.conv1 = _ConvBN(3, 64, 7, stride=2)
        stages = []
        cin = 64
        for _, blocks, width, stride in STAGES:
            stages.append(nn.Sequential(*(
                _Bottleneck(cin if b == 0 else 4 * width, width, stride if b == 0 else 1, b == 0)
                for b in range(blocks))))
            cin = 4 * width
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # ZeroPadding2D(3) + valid 7x7/2, then ZeroPadding2D(1) + valid 3x3/2 max-pool (zero
        # padding equals -inf padding here: the input is a ReLU output).
        x = F.relu(self.conv1(F.pad(x, (3, 3, 3, 3))))
        x = F.max_pool2d(F.pad(x, (1, 1, 1, 1)), 3, 2)
        outs = []
        for stage in self.stages:
            x = stage(x)
            outs.append(x)
        return outs[1:]


class _ConvUnit(nn.Module):
    """retinaface-tf2 ``ConvUnit``: conv without bias, BN (epsilon 1e-5), ReLU or nothing."""

    def __init__(self, cin: int, cout: int, k: int, act: bool):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-5)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x


class FPN(nn.Module):
    """Feature pyramid; the Keras construction order is output1..3, merge1, merge2."""

    def __init__(self, in_channels: tuple[int, int, int], out_ch: int):
        super().__init__()
        self.output1 = _ConvUnit(in_channels[0], out_ch, 1, True)
        self.output2 = _ConvUnit(in_channels[1], out_ch, 1, True)
        self.output3 = _ConvUnit(in_channels[2], out_ch, 1, True)
        self.merge1 = _ConvUnit(out_ch, out_ch, 3, True)
        self.merge2 = _ConvUnit(out_ch, out_ch, 3, True)

    def forward(self, c3: torch.Tensor, c4: torch.Tensor, c5: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        o1, o2, o3 = self.output1(c3), self.output2(c4), self.output3(c5)
        # tf.image.resize(method='nearest') samples with half-pixel centres.
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[-2:], mode="nearest-exact"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[-2:], mode="nearest-exact"))
        return o1, o2, o3


class SSH(nn.Module):
    """Single-stage headless context module; Keras construction order as the attributes."""

    def __init__(self, out_ch: int):
        super().__init__()
        self.conv_3x3 = _ConvUnit(out_ch, out_ch // 2, 3, False)
        self.conv_5x5_1 = _ConvUnit(out_ch, out_ch // 4, 3, True)
        self.conv_5x5_2 = _ConvUnit(out_ch // 4, out_ch // 4, 3, False)
        self.conv_7x7_2 = _ConvUnit(out_ch // 4, out_ch // 4, 3, True)
        self.conv_7x7_3 = _ConvUnit(out_ch // 4, out_ch // 4, 3, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv_5x5_1(x)
        out = torch.cat([self.conv_3x3(x), self.conv_5x5_2(c5_1),
                         self.conv_7x7_3(self.conv_7x7_2(c5_1))], dim=1)
        return F.relu(out)


class RetinaFaceR50(nn.Module):
    """The network of ``RetinaFace-Res50.h5``: raw head outputs, decoding and NMS."""

    kind = KIND

    def __init__(self, out_ch: int = 256, num_anchor: int = 2):
        super().__init__()
        self.config = {"kind": KIND, "out_ch": int(out_ch), "num_anchor": int(num_anchor)}
        self.backbone = ResNet50Backbone()
        self.fpn = FPN((512, 1024, 2048), out_ch)
        self.ssh = nn.ModuleList(SSH(out_ch) for _ in range(3))
        self.bbox = nn.ModuleList(nn.Conv2d(out_ch, num_anchor * 4, 1) for _ in range(3))
        self.landmark = nn.ModuleList(nn.Conv2d(out_ch, num_anchor * 10, 1) for _ in range(3))
        self.cls = nn.ModuleList(nn.Conv2d(out_ch, num_anchor * 2, 1) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                                list[torch.Tensor]]:
        """``x``: (B, 3, H, W) float, BGR minus the caffe mean. Per-level raw heads
        (box, landmark, class logits), each ``(B, h * w * 2, k)``."""
        levels = [ssh(f) for ssh, f in zip(self.ssh, self.fpn(*self.backbone(x)))]

        def flat(conv: nn.Module, f: torch.Tensor, k: int) -> torch.Tensor:
            return conv(f).permute(0, 2, 3, 1).reshape(f.shape[0], -1, k)

        return ([flat(c, f, 4) for c, f in zip(self.bbox, levels)],
                [flat(c, f, 10) for c, f in zip(self.landmark, levels)],
                [flat(c, f, 2) for c, f in zip(self.cls, levels)])

    @staticmethod
    def preprocess(image: np.ndarray) -> torch.Tensor:
        """``(H, W, 3)`` uint8 RGB -> ``(1, 3, H, W)`` float32 BGR minus the caffe mean."""
        x = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1], dtype=np.float32))
        x = x - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float32)
        return x.permute(2, 0, 1).unsqueeze(0)

    @torch.no_grad()
    def raw_outputs(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """The Keras graph's head layers for one RGB uint8 image, used as given, keyed by the
        Keras layer names (``bbox_head``, ``LandmarkHead_0`` ... ``softmax``)."""
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} "
                             f"{image.dtype}")
        device = next(self.parameters()).device
        boxes, marks, logits = self(self.preprocess(image).to(device))
        out = {}
        for i in range(3):
            out["bbox_head" if i == 0 else f"bbox_head_{i}"] = boxes[i]
            out[f"LandmarkHead_{i}"] = marks[i]
            out[f"ClassHead_{i}"] = logits[i]
        out["softmax"] = torch.softmax(torch.cat(logits, dim=1), dim=-1)
        return {k: v.float().cpu().numpy() for k, v in out.items()}

    # -- weights ---------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path, source: str | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` into ``directory`` (atomically), in
        the layout of every model folder (``models/pretrained.py``: ``kind``,
        ``format_version``, ``weights_dtype``, ``source``), which this layer cannot import."""
        from safetensors.torch import save_file

        from ..io.atomic import atomic_directory

        config = {"kind": KIND, "format_version": 1, "weights_dtype": "float32",
                  **{k: v for k, v in self.config.items() if k != "kind"}}
        if source:
            config["source"] = source
        directory = Path(directory)
        with atomic_directory(directory) as tmp:
            state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()
                     if not k.endswith("num_batches_tracked")}
            save_file(state, str(Path(tmp) / "model.safetensors"),
                      metadata={"format": "pt", "kind": KIND})
            (Path(tmp) / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu"
                        ) -> RetinaFaceR50:
        """Load a folder written by :meth:`save_pretrained` (eval mode)."""
        from safetensors.torch import load_file

        directory = Path(directory)
        try:
            config = json.loads((directory / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise ModelError("not a model folder (no readable config.json)", directory) from exc
        if config.get("kind") != KIND:
            raise ModelError(f"holds a '{config.get('kind')}' model, not {KIND}", directory)
        weights = directory / "model.safetensors"
        if not weights.is_file():
            raise ModelError("model.safetensors is missing", directory)
        model = cls(out_ch=int(config.get("out_ch", 256)),
                    num_anchor=int(config.get("num_anchor", 2)))
        state = load_file(str(weights))
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ModelError(f"weights do not match the network (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})", directory)
        return model.eval().to(device)


# -- decoding and NMS, as the Keras graph does them --------------------------------------------

def priors(height: int, width: int) -> np.ndarray:
    """``(N, 4)`` ``cx, cy, w, h`` as fractions of the input, in the heads' order."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        yy, xx = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        cx = (xx.ravel() + 0.5) * step / width
        cy = (yy.ravel() + 0.5) * step / height
        per_pixel = [np.stack([cx, cy, np.full_like(cx, m / width), np.full_like(cy, m / height)],
                              axis=1) for m in sizes]
        out.append(np.stack(per_pixel, axis=1).reshape(-1, 4))
    return np.concatenate(out, axis=0).astype(np.float32)


def decode(heads: dict[str, np.ndarray], height: int, width: int) -> np.ndarray:
    """``(N, 16)`` float32 ``[x1, y1, x2, y2, 5 x (x, y), 1, score]`` (the graph's
    ``tf.concat_10``) from :meth:`RetinaFaceR50.raw_outputs` of an ``height`` x ``width`` input."""
    loc = np.concatenate([heads["bbox_head"][0], heads["bbox_head_1"][0],
                          heads["bbox_head_2"][0]]).astype(np.float32)
    lms = np.concatenate([heads[f"LandmarkHead_{i}"][0] for i in range(3)]).astype(np.float32)
    score = heads["softmax"][0][:, 1].astype(np.float32)
    p = priors(height, width)
    v0, v1 = np.float32(VARIANCES[0]), np.float32(VARIANCES[1])
    centre = p[:, :2] + loc[:, :2] * v0 * p[:, 2:]
    size = p[:, 2:] * np.exp(loc[:, 2:] * v1)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    points = (p[:, None, :2] + lms.reshape(-1, 5, 2) * v0 * p[:, None, 2:]).reshape(-1, 10)
    ones = np.ones((len(p), 1), dtype=np.float32)
    return np.concatenate([boxes, points, ones, score[:, None]], axis=1).astype(np.float32)


def nms_indices(preds: np.ndarray, iou_threshold: float = 0.4,
                score_threshold: float = 0.02) -> np.ndarray:
    """``tf.image.non_max_suppression`` as the graph calls it: greedy, best score first,
    keep scores above ``score_threshold``, a kept box suppresses IoU > ``iou_threshold``,
    ties to the lower index."""
    from .detect import nms

    candidates = np.flatnonzero(preds[:, 15] > score_threshold)
    kept = nms(preds[candidates, :4].astype(np.float64), preds[candidates, 15], iou_threshold)
    return candidates[kept].astype(np.int32)


def load_folder(directory: str | Path, device: Any = "cpu") -> RetinaFaceR50:
    """A converted RetinaFace-R50 model folder."""
    return RetinaFaceR50.from_pretrained(directory, device=device)
