"""The ONNX-to-torch executor: the embedded RetinaFace computes what onnxruntime computes on a
real photo, gradients reach the input, and what it does not implement is refused at build."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from facedancer_torch.errors import ModelError
from facedancer_torch.faces.detect import RetinaFaceConfig, embedded_mobilenet_weights
from facedancer_torch.io.images import read_image
from facedancer_torch.models.onnx_torch import OnnxModule


def _session(model: bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def retinaface() -> OnnxModule:
    return OnnxModule(embedded_mobilenet_weights())


def _network_input(photos_dir, height: int, width: int) -> np.ndarray:
    image = cv2.resize(read_image(photos_dir / "df_img1.jpg"), (width, height),
                       interpolation=cv2.INTER_AREA)
    mean = np.asarray(RetinaFaceConfig().mean_bgr, dtype=np.float32)
    return (image[:, :, ::-1].astype(np.float32) - mean).transpose(2, 0, 1)[None].copy()


# 250 x 330: not multiples of 32, so the FPN's nearest upsampling meets odd sizes (floor).
@pytest.mark.parametrize("size", [(256, 256), (330, 250)])
def test_embedded_retinaface_matches_onnxruntime_on_a_real_face(photos_dir, retinaface, size):
    x = _network_input(photos_dir, *size)
    want = _session(embedded_mobilenet_weights()).run(["loc", "conf", "landmarks"],
                                                       {"input": x})
    with torch.no_grad():
        got = retinaface(torch.from_numpy(x))
    assert [g.shape for g in got] == [w.shape for w in want]
    assert want[1][0, :, 1].max() > 0.99, "the photo must hold a clear face"
    for name, g, w in zip(("loc", "conf", "landmarks"), got, want):
        # float32 arithmetic in another order: regressions up to ~12, observed diff ~2e-5
        assert np.abs(g.numpy() - w).max() < 1e-3, name


def test_gradients_reach_the_input_and_the_weights_are_frozen(photos_dir, retinaface):
    x = torch.from_numpy(_network_input(photos_dir, 128, 128)).requires_grad_(True)
    _, conf, landmarks = retinaface(x)
    (landmarks.square().sum() + conf[..., 1].sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().max() > 0
    assert not list(retinaface.parameters())
    assert not retinaface.state_dict(), "weights must never end up in a checkpoint"


def _graph(nodes, inputs, outputs, initializers=(), opset=11) -> bytes:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 6
    return model.SerializeToString()


def test_other_operators_match_onnxruntime():
    """BatchNormalization, Sub / Mul / Div, Sigmoid, Slice, Flatten, Squeeze, asymmetric pads,
    linear Resize by scales and an opset-11 Softmax over flattened trailing dimensions."""
    rng = np.random.default_rng(0)
    f = TensorProto.FLOAT
    inits = [numpy_helper.from_array(a.astype(np.float32), n) for n, a in [
        ("w", rng.normal(size=(4, 3, 3, 3))), ("scale", rng.uniform(0.5, 2, 4)),
        ("bias", rng.normal(size=4)), ("mean", rng.normal(size=4)),
        ("var", rng.uniform(0.5, 2, 4)), ("two", np.array(2.0))]]
    inits += [numpy_helper.from_array(np.asarray(v, dtype=np.int64), n) for n, v in [
        ("starts", [1]), ("ends", [2 ** 63 - 1]), ("axes", [1]), ("steps", [2])]]
    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 1.5], dtype=np.float32), "scales"))
    inits.append(numpy_helper.from_array(np.zeros(0, dtype=np.float32), "roi"))
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[0, 1, 2, 1], strides=[1, 2]),
        helper.make_node("BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["bn"],
                         epsilon=1e-3),
        helper.make_node("Sigmoid", ["bn"], ["sg"]),
        helper.make_node("Mul", ["sg", "two"], ["m"]),
        helper.make_node("Sub", ["m", "bn"], ["sb"]),
        helper.make_node("Div", ["sb", "two"], ["dv"]),
        helper.make_node("Slice", ["dv", "starts", "ends", "axes", "steps"], ["sl"]),
        helper.make_node("Resize", ["sl", "roi", "scales"], ["rs"], mode="linear",
                         coordinate_transformation_mode="half_pixel"),
        helper.make_node("Softmax", ["rs"], ["sm"], axis=2),
        helper.make_node("Flatten", ["sm"], ["fl"], axis=1),
        helper.make_node("Unsqueeze", ["fl"], ["un"], axes=[0]),
        helper.make_node("Squeeze", ["un"], ["y"], axes=[0]),
    ]
    model = _graph(nodes, [helper.make_tensor_value_info("x", f, [2, 3, 9, 10])],
                   [helper.make_tensor_value_info("y", f, None)], inits)
    x = rng.normal(size=(2, 3, 9, 10)).astype(np.float32)
    (want,) = _session(model).run(["y"], {"x": x})
    (got,) = OnnxModule(model)(torch.from_numpy(x))
    assert got.shape == want.shape
    assert np.abs(got.numpy() - want).max() < 1e-5


def test_unknown_operators_and_attributes_are_refused_when_built():
    f = TensorProto.FLOAT
    io = ([helper.make_tensor_value_info("x", f, [1, 1, 4, 4])],
          [helper.make_tensor_value_info("y", f, None)])
    erf = _graph([helper.make_node("Erf", ["x"], ["y"])], *io)
    with pytest.raises(ModelError, match="Erf"):
        OnnxModule(erf)
    cubic = _graph([helper.make_node("Resize", ["x", "", "s"], ["y"], name="up", mode="cubic")],
                   *io, [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "s")])
    with pytest.raises(ModelError, match="'up' .*mode=cubic"):
        OnnxModule(cubic)
    same = _graph([helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER")], *io,
                  [numpy_helper.from_array(np.ones((1, 1, 3, 3), np.float32), "w")])
    with pytest.raises(ModelError, match="auto_pad"):
        OnnxModule(same)
