"""Convert the authors' Keras FaceDancer generator (HDF5) to a PyTorch model directory.

docs/reference.md §9. Layer auto-names (``conv2d_17``, ``dense_3``) are not stable between
files, so roles are recovered from the graph *topology* only:

1. every residual block is read backwards from its ``Add``: two branches (``conv1x1`` shortcut,
   ``conv3x3`` main, each optionally followed by the same ``AveragePooling2D`` or
   ``UpSampling2D``); the main conv is fed by ``LeakyReLU <- InstanceNorm`` (down block) or
   ``LeakyReLU <- AdaIN <- InstanceNorm`` (up block), both fed by the block input;
2. the encoder is the chain stem conv -> 6 down blocks from the image input;
3. the decoder starts with the up block fed by ``x6``; each later stage is recognised by what
   consumes the previous decoder output ``d``: an ``AdaptiveAttention([m, a, d])`` (``affa``),
   a ``Concatenate([a, d])`` (``concat``), an ``Add`` of ``a`` and ``d`` (``add``), or the next
   up block directly (``no_skip``), where ``a`` must be the matching encoder skip. An
   ``AdaptiveAttention`` whose output feeds a second one reading ``[m2, a, first]`` is a
   ``d_affa`` stage; one whose mask is a ``TFOpLambda`` ``tf.math.multiply`` of a C-channel and
   a 1-channel sigmoid mask is a ``do_affa`` stage;
4. the mapping network is the Dense/LeakyReLU chain between the identity input and the
   tensor every AdaIN reads.

Widths, mapping depth/width, ``up_types`` and the input size are inferred; every layer of the
file must get a role, and unknown layer types, settings or weight shapes are refused with a
:class:`ModelError` naming the layer. Weight layout: conv kernel (kh, kw, in, out) ->
(out, in, kh, kw); dense kernel (in, out) -> transposed; AdaIN stores two dense layers,
scale first, then bias.

The inverse (PyTorch -> Keras HDF5 layout), used to test graphs other than the released one
without TensorFlow, lives with the tests (``tests/keras_writer.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import FacedancerError, ModelError
from ..models.generator import NUM_DOWN, FaceDancerGenerator, GeneratorConfig
from ..models.pretrained import load_state_dict_checked
from .keras_h5 import KerasLayer, KerasModelFile, read_keras_h5

INSTANCE_NORM_CLASSES = ("Addons>InstanceNormalization", "InstanceNormalization")
KNOWN_CLASSES = ("InputLayer", "Conv2D", "Dense", "LeakyReLU", "AveragePooling2D", "UpSampling2D",
                 "Add", "Concatenate", "AdaIN", "AdaptiveAttention", "TFOpLambda",
                 *INSTANCE_NORM_CLASSES)


def is_facedancer_generator(model_file: KerasModelFile) -> bool:
    """True if the graph uses the FaceDancer-specific layers (AdaIN, AdaptiveAttention)."""
    return any(layer.class_name in ("AdaIN", "AdaptiveAttention") for layer in model_file.layers)


# --------------------------------------------------------------------------------------
# Graph reading


@dataclass
class _Block:
    """A residual block found in the graph (names of its Keras layers)."""

    output: str
    input: str
    kind: str  # "down" or "up"
    resample: str | None  # "AveragePooling2D", "UpSampling2D" or None
    shortcut: str
    conv: str
    norm: str
    adain: str | None
    identity: str | None  # the tensor the AdaIN reads (mapped identity)
    layers: list[str] = field(default_factory=list)


class _Graph:
    def __init__(self, model_file: KerasModelFile, path: Path | None):
        self.path = path
        self.layers: dict[str, KerasLayer] = {}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for layer in model_file.layers:
            self.layers[layer.name] = layer
            for src in layer.inbound:
                self.consumers[src].append(layer.name)
        self.outputs = model_file.output_names
        self.used: set[str] = set()

    def error(self, message: str) -> ModelError:
        return ModelError(f"unsupported FaceDancer graph: {message}", self.path)

    def get(self, name: str, *classes: str) -> KerasLayer:
        layer = self.layers.get(name)
        if layer is None:
            raise self.error(f"layer '{name}' is referenced but not defined")
        if classes and layer.class_name not in classes:
            raise self.error(f"layer '{name}' is a {layer.class_name}, expected {' or '.join(classes)}")
        return layer

    def single_input(self, name: str) -> str:
        layer = self.layers[name]
        if len(layer.inbound) != 1:
            raise self.error(f"layer '{name}' has {len(layer.inbound)} inputs, expected 1")
        return layer.inbound[0]

    def kernel(self, name: str) -> int:
        return int(self.get(name, "Conv2D").config["kernel_size"][0])

    def residual_block(self, add_name: str) -> _Block:
        """Read the residual block that ends in ``add_name`` (see the module docstring)."""
        add = self.get(add_name, "Add")
        if len(add.inbound) != 2:
            raise self.error(f"'{add_name}' adds {len(add.inbound)} tensors, a residual block adds 2")
        branches = []
        for src in add.inbound:
            layers = []
            resample = None
            layer = self.get(src)
            if layer.class_name in ("AveragePooling2D", "UpSampling2D"):
                resample = layer.class_name
                layers.append(src)
                layer = self.get(self.single_input(src))
            if layer.class_name != "Conv2D" or layer.config.get("activation") != "linear":
                raise self.error(f"'{add_name}' is not a residual block: its input '{src}' does "
                                 "not come from a linear Conv2D")
            layers.append(layer.name)
            branches.append((self.kernel(layer.name), layer.name, resample, layers))
        branches.sort()
        (k_short, shortcut, res_short, l_short), (k_main, conv, res_main, l_main) = branches
        if (k_short, k_main) != (1, 3) or res_short != res_main:
            raise self.error(f"'{add_name}' is not a residual block (expected a 1x1 shortcut and a "
                             "3x3 main conv with the same resampling)")
        block_input = self.single_input(shortcut)
        act = self.get(self.single_input(conv), "LeakyReLU")
        prev = self.get(self.single_input(act.name), "AdaIN", *INSTANCE_NORM_CLASSES)
        adain = identity = None
        if prev.class_name == "AdaIN":
            adain = prev.name
            if len(prev.inbound) != 2:
                raise self.error(f"AdaIN '{adain}' must have 2 inputs (features, identity)")
            norm_name, identity = prev.inbound
            norm = self.get(norm_name, *INSTANCE_NORM_CLASSES)
        else:
            norm = prev
        if self.single_input(norm.name) != block_input:
            raise self.error(f"'{add_name}': the instance norm '{norm.name}' and the shortcut "
                             f"'{shortcut}' read different tensors")
        kind = "up" if adain else "down"
        expected = {"down": "AveragePooling2D", "up": "UpSampling2D"}[kind]
        if res_main not in (None, expected):
            raise self.error(f"'{add_name}': a {kind} block resamples with {expected}, "
                             f"found {res_main}")
        layers = [add_name, *l_short, *l_main, act.name, norm.name] + ([adain] if adain else [])
        return _Block(add_name, block_input, kind, res_main, shortcut, conv, norm.name, adain,
                      identity, layers)

    def block_from_input(self, tensor: str, kind: str) -> _Block:
        """The residual block of ``kind`` that reads ``tensor`` (found via its 1x1 shortcut)."""
        shortcuts = [c for c in self.consumers[tensor]
                     if self.layers[c].class_name == "Conv2D" and self.kernel(c) == 1
                     and self.layers[c].config.get("activation") == "linear"]
        if len(shortcuts) != 1:
            raise self.error(f"expected one {kind} block reading '{tensor}', found "
                             f"{len(shortcuts)} 1x1 convs reading it")
        name = shortcuts[0]
        nxt = self.consumers[name]
        if len(nxt) == 1 and self.layers[nxt[0]].class_name in ("AveragePooling2D", "UpSampling2D"):
            nxt = self.consumers[nxt[0]]
        if len(nxt) != 1:
            raise self.error(f"the shortcut conv '{name}' must feed exactly one layer")
        block = self.residual_block(nxt[0])
        if block.input != tensor or block.kind != kind:
            raise self.error(f"'{block.output}' is not the {kind} block reading '{tensor}'")
        self.used.update(block.layers)
        return block


@dataclass
class _Stage:
    up_type: str
    block: _Block
    # attention module weights: PyTorch sub-prefix under ``affa`` -> (Keras layer, kind)
    affa: dict[str, tuple[str, str]] | None = None


@dataclass
class KerasGeneratorGraph:
    """Roles of the Keras layers of a FaceDancer generator, and the config they imply."""

    config: GeneratorConfig
    mapping: list[str]  # Dense layers, input to output
    stem: str
    encoder: list[_Block]
    bottleneck: _Block
    stages: list[_Stage]


def _check_layer(layer: KerasLayer, graph: _Graph) -> None:
    """Refuse layer types and settings this port does not implement."""
    c = layer.config
    name = layer.name

    def refuse(what: str) -> ModelError:
        return graph.error(f"layer '{name}' ({layer.class_name}) has {what}")

    if layer.class_name not in KNOWN_CLASSES:
        raise graph.error(f"layer '{name}' has the unknown type {layer.class_name}")
    if layer.class_name == "Conv2D":
        k = list(c.get("kernel_size", []))
        if k not in ([1, 1], [3, 3]):
            raise refuse(f"kernel size {k} (only 1x1 and 3x3 exist in FaceDancer)")
        if list(c.get("strides", [1, 1])) != [1, 1] or list(c.get("dilation_rate", [1, 1])) != [1, 1]:
            raise refuse("strides or dilation other than 1")
        if c.get("padding") != "same" or c.get("groups", 1) != 1 or not c.get("use_bias", True):
            raise refuse("padding other than 'same', groups, or no bias")
        if c.get("activation") not in ("linear", "sigmoid"):
            raise refuse(f"activation '{c.get('activation')}'")
        if c.get("data_format", "channels_last") != "channels_last":
            raise refuse("data_format channels_first")
    elif layer.class_name == "Dense":
        if c.get("activation") != "linear" or not c.get("use_bias", True):
            raise refuse(f"activation '{c.get('activation')}' or no bias")
    elif layer.class_name == "LeakyReLU":
        if abs(float(c.get("alpha", c.get("negative_slope", 0.3))) - 0.2) > 1e-6:
            raise refuse(f"slope {c.get('alpha')} (FaceDancer uses 0.2)")
    elif layer.class_name in INSTANCE_NORM_CLASSES:
        if abs(float(c.get("epsilon", 1e-3)) - 1e-3) > 1e-9 or not c.get("center", True) \
                or not c.get("scale", True) or c.get("axis", -1) not in (-1, 3):
            raise refuse("epsilon, axis or affine settings other than the reference's")
        # ``groups`` is -1 or the channel count for an instance norm: checked with the weights
    elif layer.class_name == "AveragePooling2D":
        if list(c.get("pool_size", [2, 2])) != [2, 2] or list(c.get("strides") or [2, 2]) != [2, 2] \
                or c.get("padding", "valid") != "valid":
            raise refuse("a pooling other than 2x2 / stride 2 / valid")
    elif layer.class_name == "UpSampling2D":
        if list(c.get("size", [2, 2])) != [2, 2] or c.get("interpolation") != "bilinear":
            raise refuse("an upsampling other than bilinear x2")
    elif layer.class_name == "Concatenate":
        if c.get("axis", -1) not in (-1, 3):
            raise refuse(f"axis {c.get('axis')} (only channel concatenation exists)")
    elif layer.class_name == "TFOpLambda":
        # do_affa multiplies its two masks; any other TensorFlow op is not understood.
        if c.get("function") != "math.multiply" or len(layer.inbound) != 2:
            raise refuse(f"the TensorFlow op '{c.get('function')}' with {len(layer.inbound)} "
                         "inputs (only the do_affa mask product tf.math.multiply(x, y) exists)")


def _attention_gate(graph: _Graph, att: KerasLayer, a: str, d: str) -> dict[str, tuple[str, str]]:
    """Read one ``AdaptiveAttention([m, a, d])`` gate back to its concatenation.

    Returns the weighted layers by PyTorch sub-name: ``conv/norm/mask`` for an AFFA gate, plus
    ``conv_hat/norm_hat/mask_hat`` when ``m`` is the do_affa product of a C-channel and a
    1-channel mask.
    """
    if len(att.inbound) != 3 or att.inbound[1:] != [a, d]:
        raise graph.error(f"AdaptiveAttention '{att.name}' must read [mask, skip '{a}', "
                          f"decoder '{d}']")
    mask_layer = graph.get(att.inbound[0], "Conv2D", "TFOpLambda")
    if mask_layer.class_name == "TFOpLambda":
        masks = [graph.get(n, "Conv2D") for n in mask_layer.inbound]
        masks.sort(key=lambda m: int(m.config["filters"]) == 1)
        if [int(m.config["filters"]) == 1 for m in masks] != [False, True]:
            raise graph.error(f"'{mask_layer.name}' must multiply a C-channel and a 1-channel "
                              "mask (do_affa)")
        branches = {"": masks[0], "_hat": masks[1]}
        graph.used.add(mask_layer.name)
    else:
        branches = {"": mask_layer}
    found: dict[str, tuple[str, str]] = {}
    for suffix, mask in branches.items():
        if graph.kernel(mask.name) != 1 or mask.config.get("activation") != "sigmoid":
            raise graph.error(f"attention mask '{mask.name}' must be a 1x1 conv with sigmoid")
        norm = graph.get(graph.single_input(mask.name), *INSTANCE_NORM_CLASSES)
        act = graph.get(graph.single_input(norm.name), "LeakyReLU")
        conv = graph.get(graph.single_input(act.name), "Conv2D")
        cat = graph.get(graph.single_input(conv.name), "Concatenate")
        if graph.kernel(conv.name) != 3 or conv.config.get("activation") != "linear" \
                or cat.inbound != [a, d]:
            raise graph.error(f"attention '{att.name}': expected conv3x3(concat[{a}, {d}]) -> "
                              "LeakyReLU -> InstanceNorm -> conv1x1 sigmoid")
        graph.used.update((mask.name, norm.name, act.name, conv.name, cat.name))
        found.update({f"conv{suffix}": (conv.name, "conv"), f"norm{suffix}": (norm.name, "norm"),
                      f"mask{suffix}": (mask.name, "conv")})
    graph.used.add(att.name)
    return found


def _input_shape(layer: KerasLayer) -> list[Any]:
    shape = layer.config.get("batch_input_shape", layer.config.get("batch_shape"))
    if shape is None:
        raise ModelError(f"input layer '{layer.name}' declares no shape")
    return list(shape)


def read_generator_graph(model_file: KerasModelFile, path: str | Path | None = None
                         ) -> KerasGeneratorGraph:
    """Recover every layer's role and the :class:`GeneratorConfig` from a Keras graph.

    Raises :class:`ModelError` naming the file and the offending layer when the graph is not
    a FaceDancer generator this port can reproduce exactly.
    """
    graph = _Graph(model_file, Path(path) if path is not None else None)
    for layer in graph.layers.values():
        _check_layer(layer, graph)

    inputs = [graph.get(n, "InputLayer") for n in model_file.input_names]
    image_inputs = [i for i in inputs if len(_input_shape(i)) == 4]
    id_inputs = [i for i in inputs if len(_input_shape(i)) == 2]
    if len(image_inputs) != 1 or len(id_inputs) != 1 or len(inputs) != 2:
        raise graph.error("expected two inputs, an image (B, H, W, 3) and an identity (B, D)")
    image, ident = image_inputs[0], id_inputs[0]
    _, height, width, channels = _input_shape(image)
    if channels != 3 or (height is not None and height != width):
        raise graph.error(f"image input '{image.name}' has shape {_input_shape(image)}, expected "
                          "square RGB")
    image_size = int(height) if height is not None else 256
    z_dim = _input_shape(ident)[1]
    graph.used.update((image.name, ident.name))

    # encoder
    stems = graph.consumers[image.name]
    if len(stems) != 1 or graph.layers[stems[0]].class_name != "Conv2D" or graph.kernel(stems[0]) != 3:
        raise graph.error(f"the image input '{image.name}' must feed exactly one 3x3 Conv2D")
    stem = stems[0]
    graph.used.add(stem)
    skips = [stem]
    encoder = []
    for i in range(NUM_DOWN + 1):
        block = graph.block_from_input(skips[-1], "down")
        want = "AveragePooling2D" if i < NUM_DOWN else None
        if block.resample != want:
            raise graph.error(f"encoder block {i + 1} ('{block.output}') should "
                              f"{'downsample' if want else 'keep the resolution'}")
        encoder.append(block)
        skips.append(block.output)

    # decoder
    bottleneck = graph.block_from_input(skips[-1], "up")
    if bottleneck.resample is not None:
        raise graph.error(f"the first decoder block '{bottleneck.output}' should not upsample")
    d = bottleneck.output
    stages: list[_Stage] = []
    for s in range(NUM_DOWN + 1):
        a = skips[NUM_DOWN - s]
        consumers = [graph.layers[c] for c in graph.consumers[d]]
        attention = [c for c in consumers if c.class_name == "AdaptiveAttention"]
        concat = [c for c in consumers if c.class_name == "Concatenate"
                  and not any(graph.layers[n].class_name == "Conv2D" and graph.kernel(n) == 3
                              for n in graph.consumers[c.name])]
        fused_add = [c for c in consumers if c.class_name == "Add" and sorted(c.inbound) == sorted([a, d])]
        affa = None
        if attention:
            if len(attention) != 1:
                raise graph.error(f"'{d}' feeds {len(attention)} AdaptiveAttention layers")
            att = attention[0]
            affa = _attention_gate(graph, att, a, d)
            fused = att.name
            second = [graph.layers[c] for c in graph.consumers[att.name]
                      if graph.layers[c].class_name == "AdaptiveAttention"]
            if second:  # d_affa: a second gate blends the skip with the first gate's output
                if len(second) != 1 or "mask_hat" in affa:
                    raise graph.error(f"'{att.name}' feeds an attention chain this port does "
                                      "not know (only d_affa's two AFFA gates exist)")
                gate2 = _attention_gate(graph, second[0], a, att.name)
                if "mask_hat" in gate2:
                    raise graph.error(f"'{second[0].name}': a d_affa gate with a double mask")
                affa = {**{f"gates.0.{k}": v for k, v in affa.items()},
                        **{f"gates.1.{k}": v for k, v in gate2.items()}}
                up_type, fused = "d_affa", second[0].name
            else:
                up_type = "do_affa" if "mask_hat" in affa else "affa"
        elif concat:
            cat = concat[0]
            if len(concat) != 1 or cat.inbound != [a, d]:
                raise graph.error(f"Concatenate '{cat.name}' must read [skip '{a}', decoder '{d}']")
            graph.used.add(cat.name)
            up_type, fused = "concat", cat.name
        elif fused_add:
            graph.used.add(fused_add[0].name)
            up_type, fused = "add", fused_add[0].name
        else:
            up_type, fused = "no_skip", d
        block = graph.block_from_input(fused, "up")
        want = "UpSampling2D" if s < NUM_DOWN else None
        if block.resample != want:
            raise graph.error(f"decoder stage {s + 1} ('{block.output}') should "
                              f"{'upsample' if want else 'keep the resolution'}")
        stages.append(_Stage(up_type, block, affa))
        d = block.output
    if model_file.output_names != [d]:
        raise graph.error(f"the model output is {model_file.output_names}, but the decoder ends "
                          f"in '{d}'")

    # mapping network: walk back from the tensor that every AdaIN reads
    identities = {b.identity for b in [bottleneck, *(st.block for st in stages)]}
    if len(identities) != 1:
        raise graph.error(f"the AdaIN layers read different identity tensors: {sorted(identities)}")
    node = identities.pop()
    mapping: list[str] = []
    expect_dense = True
    while node != ident.name:
        layer = graph.get(node, "Dense" if expect_dense else "LeakyReLU")
        if expect_dense:
            mapping.append(node)
        graph.used.add(node)
        node = graph.single_input(node)
        expect_dense = not expect_dense
    if mapping and expect_dense:
        raise graph.error("the mapping network starts with a LeakyReLU")
    mapping.reverse()

    unused = [n for n in graph.layers if n not in graph.used]
    if unused:
        layer = graph.layers[unused[0]]
        raise graph.error(f"layer '{layer.name}' ({layer.class_name}) has no role in a FaceDancer "
                          f"generator ({len(unused)} such layers)")

    def filters(name: str) -> int:
        return int(graph.layers[name].config["filters"])

    units = {int(graph.layers[n].config["units"]) for n in mapping}
    if len(units) > 1:
        raise graph.error(f"mapping layers have different widths {sorted(units)}")
    try:
        config = GeneratorConfig(
            image_size=image_size,
            encoder_widths=tuple([filters(stem)] + [filters(b.conv) for b in encoder]),
            decoder_widths=tuple([filters(bottleneck.conv)]
                                 + [filters(st.block.conv) for st in stages[:-1]]),
            out_channels=filters(stages[-1].block.conv),
            z_dim=int(z_dim),
            mapping_depth=len(mapping),
            mapping_width=units.pop() if units else int(z_dim),
            up_types=tuple(st.up_type for st in stages),
        )
    except FacedancerError as exc:
        raise graph.error(str(exc)) from exc
    return KerasGeneratorGraph(config, mapping, stem, encoder, bottleneck, stages)


# --------------------------------------------------------------------------------------
# Weights


def _torch_modules(model: FaceDancerGenerator, roles: KerasGeneratorGraph
                   ) -> list[tuple[str, str, str]]:
    """(PyTorch module prefix, Keras layer name, kind) for every layer with weights."""
    out: list[tuple[str, str, str]] = []
    for i, name in enumerate(roles.mapping):
        out.append((f"mapping.layers.{i}", name, "dense"))
    out.append(("stem", roles.stem, "conv"))

    def block(prefix: str, b: _Block) -> None:
        out.extend([(f"{prefix}.shortcut", b.shortcut, "conv"), (f"{prefix}.conv", b.conv, "conv"),
                    (f"{prefix}.norm", b.norm, "norm")])
        if b.adain:
            out.append((f"{prefix}.adain", b.adain, "adain"))

    for i, b in enumerate(roles.encoder):
        block(f"encoder.{i}", b)
    block("bottleneck", roles.bottleneck)
    for s, stage in enumerate(roles.stages):
        if stage.affa:
            out.extend((f"decoder.{s}.affa.{sub}", name, kind)
                       for sub, (name, kind) in stage.affa.items())
        block(f"decoder.{s}.block", stage.block)
    return out


def _keras_to_torch(kind: str, prefix: str, arrays: list[np.ndarray], names: list[str]
                    ) -> dict[str, np.ndarray]:
    if kind == "conv":
        kernel, bias = arrays
        return {f"{prefix}.weight": kernel.transpose(3, 2, 0, 1), f"{prefix}.bias": bias}
    if kind == "dense":
        kernel, bias = arrays
        return {f"{prefix}.weight": kernel.T, f"{prefix}.bias": bias}
    if kind == "norm":
        gamma, beta = arrays
        if names and (names[0].endswith("beta:0") or names[1].endswith("gamma:0")):
            gamma, beta = beta, gamma  # stored in the other order
        return {f"{prefix}.weight": gamma, f"{prefix}.bias": beta}
    # AdaIN: the first dense layer is the scale, the second the bias (Keras tracking order)
    ks, bs, kb, bb = arrays
    return {f"{prefix}.scale.weight": ks.T, f"{prefix}.scale.bias": bs,
            f"{prefix}.bias.weight": kb.T, f"{prefix}.bias.bias": bb}


_N_TENSORS = {"conv": 2, "dense": 2, "norm": 2, "adain": 4}


def generator_from_keras(model_file: KerasModelFile, path: str | Path | None = None
                         ) -> FaceDancerGenerator:
    """Build the PyTorch generator (eval mode, float32) from a read Keras file."""
    roles = read_generator_graph(model_file, path)
    configs = {layer.name: layer.config for layer in model_file.layers}
    for layer in model_file.layers:  # the graph's widths must be those of the stored weights
        arrays = model_file.weights.get(layer.name)
        width = layer.config.get("filters", layer.config.get("units"))
        if arrays and width is not None and arrays[0].shape[-1] != width:
            raise ModelError(f"layer '{layer.name}' stores weights with {arrays[0].shape[-1]} "
                             f"output channels but the graph says {width}", path)
    model = FaceDancerGenerator(roles.config)
    expected = model.state_dict()
    state: dict[str, torch.Tensor] = {}
    for prefix, name, kind in _torch_modules(model, roles):
        arrays = model_file.weights.get(name)
        if arrays is None:
            raise ModelError(f"layer '{name}' has no weights in the file", path)
        if len(arrays) != _N_TENSORS[kind]:
            raise ModelError(f"layer '{name}' stores {len(arrays)} tensors, expected "
                             f"{_N_TENSORS[kind]}", path)
        groups = configs[name].get("groups", -1)
        if kind == "norm" and groups not in (-1, None, arrays[0].shape[0]):
            raise ModelError(f"layer '{name}' is a group norm with {groups} groups over "
                             f"{arrays[0].shape[0]} channels, not an instance norm", path)
        for key, value in _keras_to_torch(kind, prefix, arrays,
                                          model_file.weight_names.get(name, [])).items():
            if tuple(value.shape) != tuple(expected[key].shape):
                raise ModelError(f"layer '{name}' has a tensor of shape {tuple(value.shape)} where "
                                 f"{key} needs {tuple(expected[key].shape)} (Keras layout)", path)
            state[key] = torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    load_state_dict_checked(model, state, path or "keras file")
    return model.eval()


def convert_generator(model_file: KerasModelFile, out_dir: str | Path,
                      source: str | Path | None = None, identity_encoder: str = "arcface-res50",
                      dtype: torch.dtype | None = None) -> Path:
    """Convert a read Keras FaceDancer generator and save it as a model directory."""
    model = generator_from_keras(model_file, source)
    model.config.identity_encoder = identity_encoder
    return model.save_pretrained(out_dir, dtype=dtype,
                                 source=None if source is None else Path(source).name)


def convert_generator_file(path: str | Path, out_dir: str | Path,
                           graph_json: str | Path | None = None, **kwargs: Any) -> Path:
    """Read ``path`` (full model, or checkpoint + ``graph_json``) and convert it."""
    return convert_generator(read_keras_h5(path, graph_json), out_dir, source=path, **kwargs)
