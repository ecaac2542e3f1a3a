"""The embedded FaceNet identity encoder: graph reader, exactness vs an independent interpreter of
the frozen graph, contract, real faces."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from facedancer_torch.errors import ModelError
from facedancer_torch.models.identity.base import IdentityEncoder, load_margins_file, resize_crop
from facedancer_torch.models.identity.facenet import (
    FACENET_BLOCKS,
    FACENET_IFSR_BLOCKS,
    facenet_graph_path,
)
from facedancer_torch.models.identity.registry import available_encoders, load_identity_encoder

cv2 = pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def facenet() -> IdentityEncoder:
    return load_identity_encoder("default")


@pytest.fixture(scope="module")
def graph_reference():
    """A reference that executes the frozen graph as TensorFlow defines it, node by node.

    This used to be ``cv2.dnn.readNetFromTensorflow``, which OpenCV 5 removed. The interpreter
    below is independent of our hand-built Inception-ResNet module: it knows only the 17 generic
    ops of the graph (TF semantics: NHWC, SAME padding split low/high, average pooling without
    the padded cells), not the architecture.
    """
    return _GraphInterpreter(facenet_graph_path())


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _GraphInterpreter:
    def __init__(self, path):
        from facedancer_torch.models.identity.graphdef import read_graphdef

        self.nodes = read_graphdef(path)
        self.input = None

    def setInput(self, blob_nchw: np.ndarray) -> None:  # named as cv2.dnn.Net, which it replaces
        self.input = torch.from_numpy(blob_nchw).permute(0, 2, 3, 1).double()

    def forward(self) -> np.ndarray:
        values: dict[str, torch.Tensor] = {}
        stack = ["embeddings"]
        with torch.no_grad():
            while stack:  # depth-first: a node runs once all of its inputs have values
                node = self.nodes[stack[-1]]
                pending = [i.split(":")[0] for i in node.inputs
                           if i.split(":")[0] not in values]
                if pending:
                    stack.extend(pending)
                else:
                    values[node.name] = self._run(node, values)
                    stack.pop()
            return values["embeddings"].float().numpy()

    @staticmethod
    def _pad_nchw(x, kernel, strides, padding, value=0.0):
        if padding == b"VALID":
            return x
        top, bottom = _same_padding(x.shape[2], kernel[0], strides[0])
        left, right = _same_padding(x.shape[3], kernel[1], strides[1])
        return F.pad(x, (left, right, top, bottom), value=value)

    def _run(self, node, values):
        arg = [values[i.split(":")[0]] for i in node.inputs]
        a = node.attrs
        if node.op == "Const":
            return torch.from_numpy(np.array(a["value"])).double()
        if node.op == "Placeholder":
            return self.input
        if node.op == "Conv2D":
            x = arg[0].permute(0, 3, 1, 2)
            w = arg[1].permute(3, 2, 0, 1)  # HWIO -> OIHW
            strides = a["strides"][1:3]
            x = self._pad_nchw(x, w.shape[2:], strides, a["padding"])
            return F.conv2d(x, w, stride=strides).permute(0, 2, 3, 1)
        if node.op in ("MaxPool", "AvgPool"):
            x = arg[0].permute(0, 3, 1, 2)
            kernel, strides = a["ksize"][1:3], a["strides"][1:3]
            if node.op == "MaxPool":
                x = self._pad_nchw(x, kernel, strides, a["padding"], float("-inf"))
                return F.max_pool2d(x, kernel, strides).permute(0, 2, 3, 1)
            ones = torch.ones_like(x[:, :1])
            total = F.avg_pool2d(self._pad_nchw(x, kernel, strides, a["padding"]), kernel,
                                 strides, divisor_override=1)
            count = F.avg_pool2d(self._pad_nchw(ones, kernel, strides, a["padding"]), kernel,
                                 strides, divisor_override=1)
            return (total / count).permute(0, 2, 3, 1)
        if node.op == "FusedBatchNorm":
            x, scale, offset, mean, var = arg
            return (x - mean) / torch.sqrt(var + a["epsilon"]) * scale + offset
        if node.op == "ConcatV2":
            return torch.cat(arg[:-1], dim=int(arg[-1]))
        if node.op == "Reshape":
            return arg[0].reshape([int(v) for v in arg[1].reshape(-1)])
        if node.op == "Sum":
            dims = [int(v) for v in arg[1].reshape(-1)]
            return arg[0].sum(dim=dims, keepdim=bool(a.get("keep_dims")))
        unary = {"Relu": torch.relu, "Square": torch.square, "Rsqrt": torch.rsqrt}
        binary = {"BiasAdd": torch.add, "Add": torch.add, "Mul": torch.mul,
                  "Maximum": torch.maximum, "MatMul": torch.matmul}
        if node.op in unary:
            return unary[node.op](arg[0])
        if node.op in binary:
            return binary[node.op](arg[0], arg[1])
        raise NotImplementedError(f"op {node.op} of node {node.name}")


@pytest.fixture(scope="module")
def aligned_photos(request) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(RGB uint8 photo, 5 landmarks of its largest face) for every df_* pair photo."""
    photos_dir = request.getfixturevalue("photos_dir")
    from facedancer_torch.faces.detect import get_detector, largest_face

    pairs = list(csv.DictReader(open(photos_dir / "deepface_master_pairs.csv")))
    names = sorted({p["file_x"] for p in pairs} | {p["file_y"] for p in pairs})
    detector = get_detector(device="cpu")
    crops = {}
    for name in names:
        image = cv2.cvtColor(cv2.imread(str(photos_dir / name)), cv2.COLOR_BGR2RGB)
        face = largest_face(detector.detect(image))
        if face is not None:
            crops[name] = (image, face.landmarks)
    return crops


def _to_tensor(images_rgb: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images_rgb)).permute(0, 3, 1, 2).float() / 127.5 - 1


def _reference_embedding(net, image_160_rgb: np.ndarray) -> np.ndarray:
    # the frozen graph reshapes with a fixed batch of 1: one image at a time
    blob = ((image_160_rgb.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
    net.setInput(np.ascontiguousarray(blob))
    return net.forward().reshape(-1)


def test_graphdef_reader_sees_the_inception_resnet_graph():
    from facedancer_torch.models.identity.graphdef import const_value, read_graphdef

    nodes = read_graphdef(facenet_graph_path())
    assert nodes["input"].op == "Placeholder"
    assert nodes["input"].attrs["shape"] == [1, 160, 160, 3]
    assert const_value(nodes, "InceptionResnetV1/Conv2d_1a_3x3/weights").shape == (3, 3, 3, 32)
    assert const_value(nodes, "InceptionResnetV1/Bottleneck/weights").shape == (1792, 512)
    assert float(const_value(nodes, "InceptionResnetV1/Repeat/block35_3/mul/x")) == pytest.approx(0.17)
    assert float(const_value(nodes, "InceptionResnetV1/Block8/mul/x")) == 1.0
    assert nodes["InceptionResnetV1/Conv2d_4b_3x3/Conv2D"].attrs["padding"] == b"VALID"
    bn = nodes["InceptionResnetV1/Bottleneck/BatchNorm/cond/FusedBatchNorm_1"]
    assert bn.attrs["epsilon"] == pytest.approx(1e-3)


def test_graphdef_reader_refuses_garbage(tmp_path):
    from facedancer_torch.models.identity.graphdef import read_graphdef

    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x07")
    with pytest.raises(ModelError, match="bad.pb"):
        read_graphdef(bad)
    with pytest.raises(ModelError, match="missing.pb"):
        read_graphdef(tmp_path / "missing.pb")


def test_matches_the_graph_on_noise(facenet, graph_reference):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 160, 160, 3)).astype(np.float32)
    reference = np.stack([_reference_embedding(graph_reference, im) for im in images])
    with torch.no_grad():
        ours = facenet.embed(_to_tensor(list(images))).numpy()
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    cosine = (ours * reference).sum(1)
    assert cosine.min() > 0.9999, cosine
    assert np.abs(ours - reference).max() < 1e-4


def test_matches_the_graph_on_real_faces(facenet, graph_reference, aligned_photos):
    from facedancer_torch.faces.align import align_face

    crops = [align_face(image, landmarks, 160)[0]
             for image, landmarks in list(aligned_photos.values())[:4]]
    reference = np.stack([_reference_embedding(graph_reference, c) for c in crops])
    with torch.no_grad():
        ours = F.normalize(facenet.embed(_to_tensor(crops)), dim=1).numpy()
    assert (ours * reference).sum(1).min() > 0.9999


def test_same_person_scores_above_different_person(facenet, aligned_photos, photos_dir):
    from facedancer_torch.faces.align import align_face

    names = list(aligned_photos)
    crops = [align_face(*aligned_photos[n], 256)[0] for n in names]
    with torch.no_grad():
        embeddings = F.normalize(facenet.embed(_to_tensor(crops)), dim=1)
    index = {n: i for i, n in enumerate(names)}
    same, different = [], []
    for pair in csv.DictReader(open(photos_dir / "deepface_master_pairs.csv")):
        if pair["file_x"] in index and pair["file_y"] in index:
            cos = float(embeddings[index[pair["file_x"]]] @ embeddings[index[pair["file_y"]]])
            (same if pair["Decision"] == "Yes" else different).append(cos)
    assert len(same) >= 30 and len(different) >= 200
    # measured: same-person min 0.63 / mean 0.82, different-person max 0.45 / mean 0.17
    assert min(same) > max(different)
    assert np.mean(same) - np.mean(different) > 0.5


def test_crop_shrink_recovers_the_encoder_framing(facenet, aligned_photos):
    from facedancer_torch.faces.align import align_face

    image, landmarks = next(iter(aligned_photos.values()))
    exact = _to_tensor([align_face(image, landmarks, 256, 1.0)[0]])
    loose = _to_tensor([align_face(image, landmarks, 256, 0.75)[0]])
    with torch.no_grad():
        reference = facenet.embed(exact)
        reframed = facenet.embed(loose, crop_shrink=0.75)
        ignored = facenet.embed(loose)  # the classic mistake: wrong framing for the encoder
    good = F.cosine_similarity(reference, reframed).item()
    bad = F.cosine_similarity(reference, ignored).item()
    assert good > 0.99 and bad < good - 0.05, (good, bad)


def test_contract_frozen_eval_and_differentiable(facenet):
    c = facenet.contract
    assert (c.input_size, c.mean, c.std, c.embedding_dim) == (160, 127.5, 128.0, 512)
    assert c.normalized is False and c.template == "arcface" and c.shrink_factor == 1.0
    assert c.ifsr_blocks == FACENET_IFSR_BLOCKS and len(c.ifsr_blocks) == 11
    assert set(c.ifsr_blocks) <= set(FACENET_BLOCKS) and set(c.perceptual_blocks) <= set(FACENET_BLOCKS)
    assert not any(p.requires_grad for p in facenet.parameters())
    facenet.train()
    assert not facenet.training and not any(m.training for m in facenet.modules())

    x = (torch.rand(1, 3, 128, 128) * 2 - 1).requires_grad_(True)
    embedding, feats = facenet.embed_and_features(x)
    assert embedding.shape == (1, 512) and list(feats) == list(c.ifsr_blocks)
    assert feats["block35_5"].shape == (1, 256, 17, 17) and feats["block17_10"].shape == (1, 896, 8, 8)
    (embedding.square().sum() + sum(f.mean() for f in feats.values())).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with torch.no_grad():
        alone = facenet.features(x.detach(), blocks=["conv2d_4b", "block17_2"])
        torch.testing.assert_close(alone["block17_2"], feats["block17_2"].detach())
        torch.testing.assert_close(facenet.embed(x.detach()), embedding.detach())
    with pytest.raises(ValueError, match="no block"):
        facenet.features(x.detach(), blocks=["conv5_block3_out"])


def test_preprocess_contract():
    x = torch.full((1, 3, 320, 320), 0.5)
    framed = resize_crop(x, 0.5, 1.0, 160)
    assert framed.shape == (1, 3, 160, 160)
    ramp = torch.linspace(-1, 1, 200).view(1, 1, 1, 200).expand(1, 3, 200, 200)
    centre = resize_crop(ramp, 0.5, 1.0, 100)  # the central half of a horizontal ramp
    assert centre[0, 0, 0, 0].item() == pytest.approx(-0.5, abs=0.02)
    assert centre[0, 0, 0, -1].item() == pytest.approx(0.5, abs=0.02)
    with pytest.raises(ValueError, match="re-crop"):
        resize_crop(x, 1.0, 0.8, 112)


def test_margins_file(tmp_path):
    blocks = ("a", "b")
    assert load_margins_file(tmp_path / "absent.json", blocks) is None
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"encoder": "facenet", "margins": {"a": 0.1, "b": 0.2, "c": 1}}))
    assert load_margins_file(good, blocks) == {"a": 0.1, "b": 0.2}
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"a": 0.1, "b": 0}))
    assert load_margins_file(flat, blocks) == {"a": 0.1, "b": 0.0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"margins": {"a": 0.1}}))
    with pytest.raises(ModelError, match="bad.json.*'b'"):
        load_margins_file(bad, blocks)


def test_registry_errors(tmp_path):
    assert "default" in available_encoders() and "facenet" in available_encoders()
    with pytest.raises(ModelError, match="unknown identity encoder"):
        load_identity_encoder("not-an-encoder")
    h5 = tmp_path / "ArcFace-Res50.h5"
    h5.write_bytes(b"x")
    with pytest.raises(ModelError, match="convert"):
        load_identity_encoder(h5)
    with pytest.raises(ModelError, match="config.json"):
        load_identity_encoder(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "facedancer_generator"}))
    with pytest.raises(ModelError, match="not an identity encoder"):
        load_identity_encoder(tmp_path)
