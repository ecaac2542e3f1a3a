"""ArcFace-Res50: Keras-layout HDF5 written here with h5py (random weights) -> converter -> PyTorch.

No real ``ArcFace-Res50.h5`` exists in this environment, so these tests check that every Keras
tensor lands in the right place: an independent NumPy (NHWC, Keras semantics) forward of the
stem, a projection block, an identity block and the head must match the converted model, and
the conversion must round-trip through config.json + model.safetensors. Small widths keep the
files tiny; layer names, order, configs and weight layouts are those of keras.applications.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from facedancer_torch.convert.keras_arcface import convert_arcface, is_arcface_model
from facedancer_torch.convert.keras_h5 import read_keras_h5
from facedancer_torch.errors import ModelError
from facedancer_torch.models.identity.arcface_res50 import (
    REFERENCE_IFSR_MARGINS,
    arcface_contract,
    default_config,
)
from facedancer_torch.models.identity.registry import load_identity_encoder

h5py = pytest.importorskip("h5py")

WIDTH = 4  # Keras ResNet50 uses 64; every name and stride is kept, only channels shrink
SIZE = 112


# ----------------------------------------------------------------------------------------
# A Keras 2 HDF5 writer for ResNet50 + ArcFace head (keras.applications layer names)
# ----------------------------------------------------------------------------------------
def _node(*sources: str, index: int = 0) -> list:
    return [[[s, index, 0, {}] for s in sources]]


def _layer(cls: str, name: str, inbound: list, **config: Any) -> dict:
    return {"class_name": cls, "name": name, "inbound_nodes": inbound,
            "config": {"name": name, "trainable": True, "dtype": "float32", **config}}


def _conv(name: str, src: str, filters: int, kernel: int, stride: int = 1, padding: str = "valid"):
    return _layer("Conv2D", name, _node(src), filters=filters, kernel_size=[kernel, kernel],
                  strides=[stride, stride], padding=padding, data_format="channels_last",
                  dilation_rate=[1, 1], groups=1, activation="linear", use_bias=True)


def _bn(name: str, src: str, eps: float = 1.001e-5, **extra: Any):
    return _layer("BatchNormalization", name, _node(src), axis=[3], momentum=0.99, epsilon=eps,
                  center=True, scale=True, **extra)


def _act(name: str, src: str):
    return _layer("Activation", name, _node(src), activation="relu")


def resnet50_layers(width: int, stage_blocks=(3, 4, 6, 3), input_name: str = "input_1",
                    size: int = SIZE) -> list[dict]:
    """keras.applications.ResNet50(include_top=False) layers in model.layers order."""
    layers = [{"class_name": "InputLayer", "name": input_name, "inbound_nodes": [],
               "config": {"name": input_name, "batch_input_shape": [None, size, size, 3],
                          "dtype": "float32", "sparse": False, "ragged": False}},
              _layer("ZeroPadding2D", "conv1_pad", _node(input_name), padding=[[3, 3], [3, 3]]),
              _conv("conv1_conv", "conv1_pad", width, 7, 2),
              _bn("conv1_bn", "conv1_conv"), _act("conv1_relu", "conv1_bn"),
              _layer("ZeroPadding2D", "pool1_pad", _node("conv1_relu"), padding=[[1, 1], [1, 1]]),
              _layer("MaxPooling2D", "pool1_pool", _node("pool1_pad"), pool_size=[3, 3],
                     padding="valid", strides=[2, 2], data_format="channels_last")]
    x = "pool1_pool"
    for stage, count in enumerate(stage_blocks):
        filters = width * 2 ** stage
        for block in range(count):
            p = f"conv{stage + 2}_block{block + 1}"
            stride = (1 if stage == 0 else 2) if block == 0 else 1
            layers += [_conv(f"{p}_1_conv", x, filters, 1, stride), _bn(f"{p}_1_bn", f"{p}_1_conv"),
                       _act(f"{p}_1_relu", f"{p}_1_bn"),
                       _conv(f"{p}_2_conv", f"{p}_1_relu", filters, 3, 1, "same"),
                       _bn(f"{p}_2_bn", f"{p}_2_conv"), _act(f"{p}_2_relu", f"{p}_2_bn")]
            if block == 0:  # Keras lists the shortcut conv after the main branch's 2_relu
                layers += [_conv(f"{p}_0_conv", x, 4 * filters, 1, stride),
                           _conv(f"{p}_3_conv", f"{p}_2_relu", 4 * filters, 1),
                           _bn(f"{p}_0_bn", f"{p}_0_conv"), _bn(f"{p}_3_bn", f"{p}_3_conv"),
                           _layer("Add", f"{p}_add", _node(f"{p}_0_bn", f"{p}_3_bn"))]
            else:
                layers += [_conv(f"{p}_3_conv", f"{p}_2_relu", 4 * filters, 1),
                           _bn(f"{p}_3_bn", f"{p}_3_conv"),
                           _layer("Add", f"{p}_add", _node(x, f"{p}_3_bn"))]
            layers.append(_act(f"{p}_out", f"{p}_add"))
            x = f"{p}_out"
    return layers


def head_layers(src: str, index: int = 0) -> list[dict]:
    """The ArcFace embedding head with Keras auto-names."""
    return [_layer("BatchNormalization", "batch_normalization", [[[src, index, 0, {}]]], axis=[3],
                   momentum=0.99, epsilon=2e-5, center=True, scale=True),
            _layer("Dropout", "dropout", _node("batch_normalization"), rate=0.4),
            _layer("Flatten", "flatten", _node("dropout"), data_format="channels_last"),
            _layer("Dense", "dense", _node("flatten"), units=512, activation="linear", use_bias=True),
            _bn("batch_normalization_1", "dense", eps=2e-5)]


def random_weights(layers: list[dict], rng: np.random.Generator, channels_in: int = 3,
                   flat_features: int | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Random tensors in Keras layouts for every weighted layer (shapes follow the graph)."""
    channels: dict[str, int] = {}
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer in layers:
        name, cls, cfg = layer["name"], layer["class_name"], layer["config"]
        src = [item[0] for node in layer["inbound_nodes"] for item in node]
        cin = channels.get(src[0], channels_in) if src else channels_in
        if cls == "Conv2D":
            k = cfg["kernel_size"][0]
            std = 1.0 / np.sqrt(k * k * cin)
            weights[name] = {"kernel": rng.normal(0, std, (k, k, cin, cfg["filters"])),
                             "bias": rng.normal(0, 0.1, cfg["filters"])}
            channels[name] = cfg["filters"]
        elif cls == "BatchNormalization":
            weights[name] = {"gamma": rng.uniform(0.5, 1.5, cin), "beta": rng.normal(0, 0.2, cin),
                             "moving_mean": rng.normal(0, 0.2, cin),
                             "moving_variance": rng.uniform(0.5, 2.0, cin)}
            channels[name] = cin
        elif cls == "Dense":
            fin = flat_features if flat_features is not None else cin
            weights[name] = {"kernel": rng.normal(0, 1 / np.sqrt(fin), (fin, cfg["units"])),
                             "bias": rng.normal(0, 0.1, cfg["units"])}
            channels[name] = cfg["units"]
        elif cls == "Add":
            channels[name] = channels[src[0]]
        else:
            channels[name] = cin
    return {k: {s: v.astype(np.float32) for s, v in w.items()} for k, w in weights.items()}


SLOTS = {"Conv2D": ["kernel", "bias"], "Dense": ["kernel", "bias"],
         "BatchNormalization": ["gamma", "beta", "moving_mean", "moving_variance"]}


def write_keras_h5(path: Path, layout: str, weights_order: str = "trainable_first",
                   width: int = WIDTH, stage_blocks=(3, 4, 6, 3), rng_seed: int = 0,
                   with_head: bool = True) -> dict[str, dict[str, np.ndarray]]:
    """Write an ArcFace-Res50-like Keras 2 full-model HDF5; return its weights by layer.

    layout ``nested``: Input -> Functional 'resnet50' -> head (what the reference loads with
    ``load_model(path).layers[1]``); ``flat``: every layer at the top level.
    ``weights_order`` of the nested group: ``trainable_first`` (Keras default:
    trainable_weights + non_trainable_weights) or ``frozen`` (a frozen nested model: each
    layer's weights in layer order).
    """
    rng = np.random.default_rng(rng_seed)
    backbone = resnet50_layers(width, stage_blocks)
    spatial = 4
    c5 = width * 8 * 4
    last = backbone[-1]["name"]
    if layout == "nested":
        nested = {"class_name": "Functional", "name": "resnet50", "inbound_nodes": _node("input_2"),
                  "config": {"name": "resnet50", "layers": backbone,
                             "input_layers": [["input_1", 0, 0]],
                             "output_layers": [[last, 0, 0]]}}
        top = [{"class_name": "InputLayer", "name": "input_2", "inbound_nodes": [],
                "config": {"name": "input_2", "batch_input_shape": [None, SIZE, SIZE, 3],
                           "dtype": "float32"}}, nested]
        top += head_layers("resnet50", index=1) if with_head else []
    else:
        top = backbone + (head_layers(last) if with_head else [])
    all_layers = backbone + (head_layers(last) if with_head else [])
    weights = random_weights(all_layers, rng, flat_features=spatial * spatial * c5)
    output = (top[-1]["name"] if with_head else ("resnet50" if layout == "nested" else last))
    model_config = {"class_name": "Functional", "config": {
        "name": "model", "layers": top, "input_layers": [[top[0]["name"], 0, 0]],
        "output_layers": [[output, 0, 0]]}, "keras_version": "2.9.0", "backend": "tensorflow"}

    def layer_entries(layer: dict) -> list[tuple[str, np.ndarray]]:
        slots = SLOTS.get(layer["class_name"], [])
        return [(f"{layer['name']}/{s}:0", weights[layer["name"]][s]) for s in slots]

    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(model_config)
        f.attrs["keras_version"] = "2.9.0"
        f.attrs["backend"] = "tensorflow"
        group = f.create_group("model_weights")
        # Keras stores name lists as fixed-length byte strings
        group.attrs["layer_names"] = np.array([l["name"].encode() for l in top], dtype="S")
        for layer in top:
            g = group.create_group(layer["name"])
            if layer["class_name"] == "Functional":
                if weights_order == "trainable_first":
                    entries = [e for l in backbone for e in layer_entries(l)
                               if e[0].split("/")[1] in ("kernel:0", "bias:0", "gamma:0", "beta:0")]
                    entries += [e for l in backbone for e in layer_entries(l)
                                if e[0].split("/")[1] in ("moving_mean:0", "moving_variance:0")]
                else:
                    entries = [e for l in backbone for e in layer_entries(l)]
            else:
                entries = layer_entries(layer)
            g.attrs["weight_names"] = np.array([n.encode() for n, _ in entries], dtype="S")
            for n, value in entries:
                g.create_dataset(n, data=value)
    return weights


# ----------------------------------------------------------------------------------------
# An independent NumPy forward with Keras semantics (NHWC)
# ----------------------------------------------------------------------------------------
def np_conv(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray, stride: int, padding: str):
    k = kernel.shape[0]
    if padding == "same":  # stride 1, odd kernel
        x = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("bhwcij,ijco->bhwo", windows, kernel, optimize=True) + bias


def np_bn(x: np.ndarray, w: dict[str, np.ndarray], eps: float) -> np.ndarray:
    return (x - w["moving_mean"]) / np.sqrt(w["moving_variance"] + eps) * w["gamma"] + w["beta"]


def np_block(x, weights, prefix, stride, projection):
    relu = lambda v: np.maximum(v, 0)
    W = lambda n: weights[f"{prefix}_{n}"]
    shortcut = x
    if projection:
        shortcut = np_bn(np_conv(x, W("0_conv")["kernel"], W("0_conv")["bias"], stride, "valid"),
                         W("0_bn"), 1.001e-5)
    y = relu(np_bn(np_conv(x, W("1_conv")["kernel"], W("1_conv")["bias"], stride, "valid"), W("1_bn"), 1.001e-5))
    y = relu(np_bn(np_conv(y, W("2_conv")["kernel"], W("2_conv")["bias"], 1, "same"), W("2_bn"), 1.001e-5))
    y = np_bn(np_conv(y, W("3_conv")["kernel"], W("3_conv")["bias"], 1, "valid"), W("3_bn"), 1.001e-5)
    return relu(shortcut + y)


def nhwc(t: torch.Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def nested_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("arcface")
    h5 = root / "ArcFace-Res50.h5"
    weights = write_keras_h5(h5, "nested")
    out = convert_arcface(read_keras_h5(h5), root / "converted", source=h5.name)
    return weights, out


def _inputs(seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, SIZE, SIZE, generator=g) * 2 - 1  # (B, 3, 112, 112) in [-1, 1]


def test_independent_numpy_forward_matches(nested_model):
    weights, out = nested_model
    model = load_identity_encoder(out)
    images = _inputs()
    x_keras = nhwc((images + 1) / 2).astype(np.float64)  # the reference feeds x / 255 in [0, 1]
    with torch.no_grad():
        embedding, feats = model.embed_and_features(
            images, blocks=["conv1_relu", "conv2_block1_out", "conv2_block2_out", "conv5_block3_out"])

    stem = np_conv(np.pad(x_keras, ((0, 0), (3, 3), (3, 3), (0, 0))), weights["conv1_conv"]["kernel"],
                   weights["conv1_conv"]["bias"], 2, "valid")
    stem = np.maximum(np_bn(stem, weights["conv1_bn"], 1.001e-5), 0)
    np.testing.assert_allclose(nhwc(feats["conv1_relu"]), stem, rtol=1e-4, atol=1e-4)

    pooled = np.lib.stride_tricks.sliding_window_view(
        np.pad(stem, ((0, 0), (1, 1), (1, 1), (0, 0))), (3, 3), axis=(1, 2))[:, ::2, ::2].max(axis=(-1, -2))
    block1 = np_block(pooled, weights, "conv2_block1", 1, projection=True)
    np.testing.assert_allclose(nhwc(feats["conv2_block1_out"]), block1, rtol=1e-4, atol=1e-4)
    block2 = np_block(block1, weights, "conv2_block2", 1, projection=False)
    np.testing.assert_allclose(nhwc(feats["conv2_block2_out"]), block2, rtol=1e-4, atol=1e-4)

    # head on the converted backbone's output, with Keras' HWC flatten and the head's own eps
    c5 = nhwc(feats["conv5_block3_out"]).astype(np.float64)
    assert c5.shape[1:3] == (4, 4)
    h = np_bn(c5, weights["batch_normalization"], 2e-5).reshape(len(c5), -1)
    h = h @ weights["dense"]["kernel"] + weights["dense"]["bias"]
    h = np_bn(h, weights["batch_normalization_1"], 2e-5)
    np.testing.assert_allclose(embedding.numpy(), h, rtol=1e-4, atol=1e-4)


def test_every_tensor_lands_in_place(nested_model):
    weights, out = nested_model
    from safetensors.numpy import load_file

    state = load_file(str(out / "model.safetensors"))
    config = json.loads((out / "config.json").read_text())
    head_index = {n: i for i, n in enumerate(config["keras_head_layers"])}
    seen = set()
    for layer, tensors in weights.items():
        if layer in head_index:
            prefix = f"head.{head_index[layer]}"
        else:
            prefix = f"layers.{layer}"
        for slot, value in tensors.items():
            if slot == "kernel" and value.ndim == 4:
                key, expected = f"{prefix}.weight", value.transpose(3, 2, 0, 1)
            elif slot == "kernel":
                key, expected = f"{prefix}.weight", value.T
            else:
                key = f"{prefix}.{dict(bias='bias', gamma='weight', beta='bias', moving_mean='running_mean', moving_variance='running_var')[slot]}"
                expected = value
            np.testing.assert_array_equal(state[key], expected, err_msg=key)
            seen.add(key)
    assert seen == {k for k in state if not k.endswith("num_batches_tracked")}
    assert config["stage_blocks"] == [3, 4, 6, 3] and config["base_width"] == WIDTH
    assert config["bn_eps"] == pytest.approx(1.001e-5)
    assert [op["type"] for op in config["head"]] == ["batchnorm", "dropout", "flatten_hwc",
                                                     "dense", "batchnorm"]
    assert config["head"][0]["eps"] == pytest.approx(2e-5)


@pytest.mark.parametrize("layout,order,names", [
    ("flat", "trainable_first", True), ("nested", "frozen", True),
    # without weight_names the nested list is split by Keras' weight order, both variants
    ("nested", "trainable_first", False), ("nested", "frozen", False)])
def test_other_layouts_convert_identically(nested_model, tmp_path, layout, order, names):
    _, reference_dir = nested_model
    h5 = tmp_path / "arcface.h5"
    write_keras_h5(h5, layout, order)  # same seed -> same weights as the nested file
    model_file = read_keras_h5(h5)
    if not names:
        model_file.weight_names = {}
    assert is_arcface_model(model_file)
    out = convert_arcface(model_file, tmp_path / "out")
    images = _inputs(2)
    with torch.no_grad():
        a = load_identity_encoder(out).embed(images)
        b = load_identity_encoder(reference_dir).embed(images)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_weight_names_are_used_when_the_reader_provides_them(nested_model, tmp_path):
    _, reference_dir = nested_model
    h5 = tmp_path / "arcface.h5"
    write_keras_h5(h5, "nested", "trainable_first")
    model_file = read_keras_h5(h5)
    # shuffle the nested list (and its names): only the names can then place the tensors
    names = model_file.weight_names["resnet50"]
    assert names[0] == "conv1_conv/kernel:0"
    order = np.random.default_rng(0).permutation(len(names))
    model_file.weights["resnet50"] = [model_file.weights["resnet50"][i] for i in order]
    model_file.weight_names = {"resnet50": [names[i] for i in order]}
    out = convert_arcface(model_file, tmp_path / "out")
    images = _inputs(3)
    with torch.no_grad():
        torch.testing.assert_close(load_identity_encoder(out).embed(images),
                                   load_identity_encoder(reference_dir).embed(images),
                                   rtol=0, atol=0)


def test_contract_ifsr_and_encoder_behaviour(nested_model):
    _, out = nested_model
    model = load_identity_encoder(out)
    c = model.contract
    assert (c.input_size, c.mean, c.std, c.normalized, c.embedding_dim) == (112, 0.0, 255.0, False, 512)
    assert c.ifsr_blocks == tuple(REFERENCE_IFSR_MARGINS)
    assert c.ifsr_margins is None  # reference margins belong to the real (width 64) network
    x = (torch.rand(1, 3, 256, 256) * 2 - 1).requires_grad_(True)  # a 256 crop, resized inside
    embedding, feats = model.embed_and_features(x)
    assert feats["conv2_block3_out"].shape == (1, 4 * WIDTH, 28, 28)
    assert feats["conv3_block4_out"].shape == (1, 8 * WIDTH, 14, 14)
    assert feats["conv4_block6_out"].shape == (1, 16 * WIDTH, 7, 7)
    (embedding.sum() + feats["conv2_block3_out"].mean()).backward()
    assert x.grad.abs().sum() > 0 and not any(p.requires_grad for p in model.parameters())
    model.train()
    assert not model.training
    # preprocess: [-1, 1] -> [0, 1], no mean/std
    torch.testing.assert_close(model.preprocess(torch.zeros(1, 3, 112, 112)),
                               torch.full((1, 3, 112, 112), 0.5))

    full = arcface_contract(default_config())
    assert full.ifsr_margins == REFERENCE_IFSR_MARGINS and len(full.ifsr_blocks) == 11


def test_backbone_only_file_has_features_but_no_embedding(tmp_path):
    h5 = tmp_path / "ArcFacePerceptual-Res50.h5"
    write_keras_h5(h5, "flat", stage_blocks=(3, 4, 6, 0), with_head=False)
    model = load_identity_encoder(convert_arcface(read_keras_h5(h5), tmp_path / "out"))
    assert model.contract.embedding_dim == 0
    feats = model.features(_inputs())
    assert len(feats) == 11
    with pytest.raises(ModelError, match="no embedding head"):
        model.embed(_inputs())


def _edit_config(h5: Path, edit) -> None:
    with h5py.File(h5, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)


def test_unexpected_layers_are_refused_by_name(tmp_path):
    h5 = tmp_path / "a.h5"
    write_keras_h5(h5, "flat", stage_blocks=(1, 1, 1, 1))

    def wrong_stride(config):
        for layer in config["config"]["layers"]:
            if layer["name"] == "conv3_block1_1_conv":
                layer["config"]["strides"] = [1, 1]

    _edit_config(h5, wrong_stride)
    with pytest.raises(ModelError, match="conv3_block1_1_conv"):
        convert_arcface(read_keras_h5(h5), tmp_path / "out")

    write_keras_h5(h5, "flat", stage_blocks=(1, 1, 1, 1))

    def lambda_head(config):
        for layer in config["config"]["layers"]:
            if layer["name"] == "dropout":
                layer["class_name"] = "Lambda"

    _edit_config(h5, lambda_head)
    with pytest.raises(ModelError, match="dropout.*Lambda"):
        convert_arcface(read_keras_h5(h5), tmp_path / "out")
    assert not (tmp_path / "out" / "model.safetensors").exists()


def test_converted_folder_has_the_one_model_format(tmp_path):
    # convert through the same entry point as `facedancer convert`: the folder declares its
    # kind and source like every model folder, and the generic reader accepts it
    from facedancer_torch.convert.api import convert_keras_file
    from facedancer_torch.models.pretrained import read_model_dir

    h5 = tmp_path / "My-Face-Encoder.h5"
    write_keras_h5(h5, "nested")
    out = convert_keras_file(h5, tmp_path / "custom-name")
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "arcface-res50" and config["source"] == "My-Face-Encoder.h5"
    assert read_model_dir(out).kind == "arcface-res50"
    assert load_identity_encoder(out).contract.embedding_dim == 512
