"""Occlusion-aware face segmentation for the compositor (issue #12).

FaceDancer's paper handles occlusion inside the generator (AFFA, §3.1), but the reference paste
back (docs/reference.md §7) uses a soft box, so whatever covers the target face (a hand, a
microphone, a mask, glasses, hair) is overwritten by the swap. No occlusion network ships
offline, so this project trains its own: a small U-Net that reads an aligned crop and returns

* ``face``: the region a swap may replace, the convex hull of dlib's 68 landmarks with the brow
  points lifted a little (eyebrows down to the chin, between the jaw edges), predicted even where
  it is covered;
* ``occluder``: where something in front of the face covers it.

The compositor keeps the target wherever ``occluder`` is high. The network is trained by
:mod:`facedancer_torch.train.segmenter` on LFW crops with synthetic occluders pasted on (the
usual recipe for occlusion masks) and ships in ``assets/face_segmenter`` (``MODEL_CARD.md``
there and ``docs/segmenter.md`` give its numbers and limits).

Conventions: crops are ``(N, S, S, 3)`` uint8 RGB made exactly as the swapper makes them,
``align_face(image, landmarks5, S, shrink_factor=1.0)`` (ArcFace template); the network works
at a fixed ``image_size`` (128) and resizes in and out; its input is ``(B, 3, H, W)`` in
[-1, 1] and its output ``(B, 2, H, W)`` logits (channel 0 face, channel 1 occluder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError

KIND = "face-segmenter"
SHIPPED_DIR = Path(__file__).resolve().parents[1] / "assets" / "face_segmenter"

# iBUG 68-point layout: jaw 0-16, brows 17-26, nose top 27, chin 8.
_BROWS = slice(17, 27)
# How far the brow points are lifted, as a fraction of the nose-top-to-chin distance: about
# the height of the brows themselves, so the hull covers them and stops below the forehead.
BROW_LIFT = 0.12


def face_region_polygon(landmarks68: np.ndarray, brow_lift: float = BROW_LIFT) -> np.ndarray:
    """The face region's outline: convex hull ``(K, 2)`` float32 of the 68 landmarks with the
    ten brow points moved ``brow_lift`` x |chin - nose top| along the face's upward axis."""
    points = np.asarray(landmarks68, dtype=np.float64).copy()
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    up = points[27] - points[8]
    length = float(np.hypot(*up))
    if length > 1e-6:
        points[_BROWS] += up / length * (brow_lift * length)
    hull = cv2.convexHull(points.astype(np.float32))
    return hull.reshape(-1, 2)


def face_region_mask(landmarks68: np.ndarray, shape: tuple[int, int],
                     brow_lift: float = BROW_LIFT) -> np.ndarray:
    """``(H, W)`` bool mask of :func:`face_region_polygon` (pixel coordinates, x right, y down)."""
    mask = np.zeros(shape, dtype=np.uint8)
    # 4 bits of sub-pixel precision: the hull of a 128 px crop is drawn without a 0.5 px bias.
    polygon = np.round(face_region_polygon(landmarks68, brow_lift) * 16).astype(np.int32)
    cv2.fillPoly(mask, [polygon], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


@dataclass
class SegmenterConfig:
    """Constructor arguments of :class:`FaceSegmenterNet` (saved in ``config.json``).

    ``widths``: channels of the stride-2 stem (half resolution) and of each further stride-2
    level (64, 32, 16, 8 px for a 128 px input and four widths).
    ``training``: how the weights were made (command, steps, data), for the record only.
    """

    image_size: int = 128
    widths: tuple[int, ...] = (16, 32, 48, 64)
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmenterConfig:
        data = dict(data)
        data["widths"] = tuple(int(w) for w in data.get("widths", cls.widths))
        return cls(**data)


def _conv_bn(cin: int, cout: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FaceSegmenterNet(nn.Module):
    """A small U-Net: ``(B, 3, S, S)`` in [-1, 1] -> ``(B, 2, S, S)`` logits (face, occluder).

    Budget first (one CPU thread must run it in a few ms): the stem already halves the
    resolution, nothing but the final bilinear upsampling works at full size, and each decoder
    stage projects the coarser features with a 1x1 conv and *adds* the skip instead of
    concatenating (a third of the decoder's multiply-adds). About 70 M multiply-adds for
    S = 128. S must be a multiple of ``2 ** len(widths)``.
    """

    def __init__(self, config: SegmenterConfig | None = None):
        super().__init__()
        self.config = config or SegmenterConfig()
        widths = self.config.widths
        if len(widths) < 2:
            raise ValueError("need at least two widths")
        self.stem = nn.Sequential(_conv_bn(3, widths[0], stride=2), _conv_bn(widths[0], widths[0]))
        self.down = nn.ModuleList(
            nn.Sequential(_conv_bn(widths[i], widths[i + 1], stride=2),
                          _conv_bn(widths[i + 1], widths[i + 1]))
            for i in range(len(widths) - 1))
        self.project = nn.ModuleList(_conv_bn(widths[i + 1], widths[i], kernel=1)
                                     for i in reversed(range(len(widths) - 1)))
        self.up = nn.ModuleList(_conv_bn(widths[i], widths[i])
                                for i in reversed(range(len(widths) - 1)))
        self.head = nn.Conv2d(widths[0], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        y = skips.pop()
        for project, block in zip(self.project, self.up):
            skip = skips.pop()
            y = F.interpolate(project(y), size=skip.shape[-2:], mode="bilinear",
                              align_corners=False)
            y = block(y + skip)
        return F.interpolate(self.head(y), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


def _resize_batch(images: np.ndarray, size: int) -> np.ndarray:
    """``(N, S, S, C)`` -> ``(N, size, size, C)``: area when shrinking (no aliasing), linear."""
    if images.shape[1] == size:
        return images
    interp = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    return np.stack([cv2.resize(im, (size, size), interpolation=interp) for im in images])


def _onnx_bytes(net: FaceSegmenterNet) -> bytes:
    """The network as an ONNX graph (dynamic batch), cached on disk by a hash of its config and
    weights (next to the generator's exported graphs): exporting costs about a second, which a
    single-image swap should not pay every time."""
    import io
    import logging
    import warnings

    from ..io.atomic import atomic_path
    from ..models.runtime import onnx_cache_dir, weights_digest

    path = onnx_cache_dir() / f"face-segmenter-{weights_digest(net)}.onnx"
    if path.is_file():
        return path.read_bytes()
    size = net.config.image_size
    buffer = io.BytesIO()
    quiet = logging.getLogger("torch.onnx")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(net.cpu().eval(), torch.zeros(1, 3, size, size), buffer,
                              dynamo=False, opset_version=17, input_names=["x"],
                              output_names=["logits"], do_constant_folding=True,
                              dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    finally:
        quiet.setLevel(level)
    data = buffer.getvalue()
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
    except Exception:  # noqa: BLE001 - a read-only cache only costs the export next time
        pass
    return data


class FaceSegmenter:
    """Face-region and occluder probabilities for aligned crops (see the module docstring).

    ``backend``: ``torch`` runs the network in torch; ``onnxruntime`` through ONNX Runtime on
    one CPU thread (the network exported once and cached, see :func:`_onnx_bytes`); ``auto``
    (default) picks ONNX Runtime for a CPU network when it and ``onnx`` are installed. One
    128 px crop took 1.5-1.8 ms with ONNX Runtime against 3.8 ms in torch (one thread, eager;
    docs/live.md), probabilities equal within 1e-5. One thread because the compositor calls it
    from the video pipeline's blend stage, which has one core of the thread budget.
    """

    def __init__(self, net: FaceSegmenterNet, batch_size: int = 64,
                 source: str | None = None, backend: str = "auto"):
        if backend not in ("auto", "torch", "onnxruntime"):
            raise ValueError(f"backend is auto, torch or onnxruntime, not {backend!r}")
        self.net = net.eval()
        self.batch_size = int(batch_size)
        self.source = source
        self.backend = backend
        self._session = None

    @property
    def image_size(self) -> int:
        return self.net.config.image_size

    def _onnx_session(self):
        """The ONNX Runtime session, made on first use; None when torch runs the network."""
        if self._session is None and self.backend != "torch":
            from ..models.runtime import onnx_available

            # The graph is exported from the weights as they are now: a network trained
            # further after this point needs a new FaceSegmenter (or backend="torch").
            on_cpu = next(self.net.parameters()).device.type == "cpu"
            if self.backend == "auto" and not (on_cpu and onnx_available()):
                self.backend = "torch"
                return None
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            self._session = ort.InferenceSession(_onnx_bytes(self.net), options,
                                                 providers=["CPUExecutionProvider"])
        return self._session

    def logits(self, crops: np.ndarray) -> torch.Tensor:
        """``(N, 2, s, s)`` logits at the network's size ``s`` for ``(N, S, S, 3)`` uint8 crops."""
        crops = self._check(crops)
        small = _resize_batch(crops, self.image_size)
        session = self._onnx_session()
        if session is not None:
            x = np.ascontiguousarray(small.transpose(0, 3, 1, 2), dtype=np.float32)
            x /= 127.5
            x -= 1.0
            return torch.from_numpy(session.run(None, {"x": x})[0])
        device = next(self.net.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(small)).to(device).permute(0, 3, 1, 2)
        return self.net(x.float() / 127.5 - 1.0)

    @staticmethod
    def _check(crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2] \
                or crops.dtype != np.uint8:
            raise ValueError(f"expected (N, S, S, 3) uint8 RGB crops, got {crops.shape} "
                             f"{crops.dtype}")
        return crops

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, mirror: bool = False, mirror_above: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray]:
        """``(face, occluder)``: two ``(N, S, S)`` float32 arrays of probabilities in [0, 1]
        for ``(N, S, S, 3)`` uint8 RGB aligned crops (any N, including 0).

        ``mirror``: also segment each crop mirrored left-right and average the two (test-time
        augmentation). A thin occluder (a glasses frame) is often found on one side of the face
        and only half on the other; the mirrored pass sees each side as the other side. Twice
        the cost; the compositor uses it (docs/segmenter.md has the numbers).
        ``mirror_above``: mirror only the crops whose plain occluder map exceeds this somewhere;
        the others keep their plain maps. A caller that looks only for an averaged occluder
        probability above ``t`` loses nothing with ``2 t - 1``: an average above ``t`` needs
        the plain pass above ``2 t - 1``.
        """
        crops = self._check(crops)
        n, size = crops.shape[0], crops.shape[1]
        if mirror and n:
            face, occluder = self.predict(crops)
            again = np.flatnonzero(occluder.reshape(n, -1).max(axis=1) > mirror_above)
            if len(again):
                face_m, occluder_m = self.predict(np.ascontiguousarray(crops[again, :, ::-1]))
                face[again] = (face[again] + face_m[:, :, ::-1]) / 2.0
                occluder[again] = (occluder[again] + occluder_m[:, :, ::-1]) / 2.0
            return face, occluder
        face = np.zeros((n, size, size), dtype=np.float32)
        occluder = np.zeros((n, size, size), dtype=np.float32)
        for start in range(0, n, self.batch_size):
            logits = self.logits(crops[start:start + self.batch_size])
            if size != self.image_size:
                logits = F.interpolate(logits, size=(size, size), mode="bilinear",
                                       align_corners=False)
            probs = torch.sigmoid(logits).float().cpu().numpy()
            face[start:start + len(probs)] = probs[:, 0]
            occluder[start:start + len(probs)] = probs[:, 1]
        return face, occluder


def save_face_segmenter(net: FaceSegmenterNet, directory: str | Path,
                        dtype: torch.dtype | None = None) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (kind ``face-segmenter``) in ``directory``."""
    from ..models.pretrained import save_model_dir

    return save_model_dir(directory, kind=KIND, config=net.config.to_dict(),
                          state_dict=net.state_dict(), dtype=dtype)


def load_face_segmenter(path: str | Path | None = None,
                        device: str | torch.device = "cpu") -> FaceSegmenter:
    """The segmenter in ``path`` (a folder with ``config.json`` + ``model.safetensors``), or the
    one shipped in ``facedancer_torch/assets/face_segmenter`` when ``path`` is None.

    Raises :class:`ModelError` when the folder is missing, incomplete or of another kind.
    """
    # models.pretrained reads every model folder of the project; it imports nothing from faces.
    from ..models.pretrained import load_state_dict_checked, read_model_dir

    directory = SHIPPED_DIR if path is None else Path(path)
    loaded = read_model_dir(directory, kind=KIND)
    try:
        config = SegmenterConfig.from_dict(loaded.config)
        net = FaceSegmenterNet(config)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"config.json does not describe a face segmenter: {exc}",
                         loaded.path) from exc
    load_state_dict_checked(net, loaded.state_dict, loaded.path)
    net = net.to(device=device, dtype=torch.float32).eval()
    return FaceSegmenter(net, source=str(loaded.path))
