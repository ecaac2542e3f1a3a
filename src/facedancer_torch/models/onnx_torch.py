"""Run a frozen ONNX graph with torch operations, so that gradients flow to its inputs.

onnxruntime computes an ONNX graph but cannot differentiate it; a training loss that looks
through a shipped ONNX network (the embedded RetinaFace detector, whose weights exist only as
ONNX bytes) needs the same graph as torch operations. :class:`OnnxModule` compiles each node
once into a torch function and runs them in the graph's order (ONNX requires topological
order). The weights become non-persistent buffers: they follow ``.to(device)``, never get
gradients nor optimiser state, and never end up in a checkpoint.

Only the operators in :data:`SUPPORTED_OPS` exist here, each with the attribute values it was
written and tested for; anything else is refused **when the module is built**, naming the node,
instead of computing something slightly different. Shape arithmetic (Shape, Gather, Slice,
Concat of int64 vectors...) runs eagerly on the actual tensors, so dynamic batch and image
sizes work as in onnxruntime.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ModelError

# ONNX TensorProto element types -> torch dtypes (the ones a vision graph's Cast uses).
_DTYPES: dict[int, torch.dtype] = {1: torch.float32, 2: torch.uint8, 3: torch.int8,
                                   5: torch.int16, 6: torch.int32, 7: torch.int64,
                                   9: torch.bool, 10: torch.float16, 11: torch.float64,
                                   16: torch.bfloat16}
_INT64_MAX = 2 ** 63 - 1

Op = Callable[..., Any]


def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _ints(t: torch.Tensor) -> list[int]:
    return [int(v) for v in t.reshape(-1).tolist()]


def _unsupported(node, what: str) -> ModelError:
    return ModelError(f"ONNX node '{node.name or node.output[0]}' ({node.op_type}): {what} is not "
                      "supported by the torch executor (models/onnx_torch.py)")


# -- operators: each builder checks the node's attributes and returns the function to run ----

def _conv(node, a: dict, opset: int) -> Op:
    if _text(a.get("auto_pad", "NOTSET")) != "NOTSET":
        raise _unsupported(node, f"auto_pad={_text(a['auto_pad'])}")
    kernel = a.get("kernel_shape")
    dims = len(kernel) if kernel else 2
    if dims not in (1, 2, 3):
        raise _unsupported(node, f"a {dims}-d convolution")
    strides = a.get("strides", [1] * dims)
    dilations = a.get("dilations", [1] * dims)
    pads = a.get("pads", [0] * 2 * dims)
    group = a.get("group", 1)
    conv = (F.conv1d, F.conv2d, F.conv3d)[dims - 1]
    begin, end = pads[:dims], pads[dims:]
    symmetric = begin == end

    def run(x, w, b=None):
        if not symmetric:  # F.pad takes the last dimension first
            x = F.pad(x, [p for d in reversed(range(dims)) for p in (begin[d], end[d])])
        return conv(x, w, b, stride=strides, padding=begin if symmetric else 0,
                    dilation=dilations, groups=group)
    return run


def _batch_norm(node, a: dict, opset: int) -> Op:
    if a.get("training_mode", 0):
        raise _unsupported(node, "training_mode=1")
    eps = a.get("epsilon", 1e-5)
    return lambda x, scale, bias, mean, var: F.batch_norm(x, mean, var, scale, bias,
                                                          training=False, eps=eps)


def _leaky_relu(node, a: dict, opset: int) -> Op:
    alpha = a.get("alpha", 0.01)
    return lambda x: F.leaky_relu(x, alpha)


def _softmax(node, a: dict, opset: int) -> Op:
    axis = a.get("axis", -1 if opset >= 13 else 1)
    if opset >= 13:
        return lambda x: torch.softmax(x, axis)

    def run(x):  # opset < 13: softmax over the dimensions from `axis` on, flattened
        k = axis % x.dim()
        flat = x.reshape(*x.shape[:k], -1)
        return torch.softmax(flat, -1).reshape(x.shape)
    return run


def _concat(node, a: dict, opset: int) -> Op:
    axis = a["axis"]
    return lambda *xs: torch.cat(xs, axis)


def _transpose(node, a: dict, opset: int) -> Op:
    perm = a.get("perm")
    return lambda x: x.permute(*(perm if perm is not None else reversed(range(x.dim()))))


def _reshape(node, a: dict, opset: int) -> Op:
    if a.get("allowzero", 0):
        raise _unsupported(node, "allowzero=1")

    def run(x, shape):
        dims = _ints(shape)
        dims = [x.shape[i] if d == 0 else d for i, d in enumerate(dims)]  # 0: keep that dim
        return x.reshape(dims)
    return run


def _flatten(node, a: dict, opset: int) -> Op:
    axis = a.get("axis", 1)

    def run(x):
        k = axis + x.dim() if axis < 0 else axis
        return x.reshape(math.prod(x.shape[:k]), -1)
    return run


def _shape(node, a: dict, opset: int) -> Op:
    if "start" in a or "end" in a:
        raise _unsupported(node, "start / end")
    return lambda x: torch.tensor(list(x.shape), dtype=torch.int64)


def _gather(node, a: dict, opset: int) -> Op:
    axis = a.get("axis", 0)

    def run(x, index):
        k = axis % x.dim()
        index = index.to(x.device).long()
        picked = x.index_select(k, (index % x.shape[k]).reshape(-1))
        return picked.reshape((*x.shape[:k], *index.shape, *x.shape[k + 1:]))
    return run


def _unsqueeze(node, a: dict, opset: int) -> Op:
    def run(x, axes=None):
        axes_list = _ints(axes) if axes is not None else list(a["axes"])
        rank = x.dim() + len(axes_list)
        for axis in sorted(v % rank for v in axes_list):
            x = x.unsqueeze(axis)
        return x
    return run


def _squeeze(node, a: dict, opset: int) -> Op:
    def run(x, axes=None):
        axes_list = _ints(axes) if axes is not None else a.get("axes")
        if axes_list is None:
            return x.squeeze()
        for axis in sorted((v % x.dim() for v in axes_list), reverse=True):
            x = x.squeeze(axis)
        return x
    return run


def _slice(node, a: dict, opset: int) -> Op:
    def run(x, starts=None, ends=None, axes=None, steps=None):
        if opset < 10:  # starts / ends / axes were attributes then
            s, e, ax, st = a["starts"], a["ends"], a.get("axes"), None
        else:
            s, e = _ints(starts), _ints(ends)
            ax = _ints(axes) if axes is not None else None
            st = _ints(steps) if steps is not None else None
        ax = ax if ax is not None else list(range(len(s)))
        st = st if st is not None else [1] * len(s)
        index = [slice(None)] * x.dim()
        for begin, end, axis, step in zip(s, e, ax, st):
            if step <= 0:
                raise ModelError(f"ONNX node '{node.name}' (Slice): step {step} is not "
                                 "supported by the torch executor")
            size = x.shape[axis]
            end = size if end >= _INT64_MAX // 2 else end  # INT64_MAX means "to the end"
            index[axis % x.dim()] = slice(*slice(begin, end, step).indices(size))
        return x[tuple(index)]
    return run


def _cast(node, a: dict, opset: int) -> Op:
    to = a["to"]
    if to not in _DTYPES:
        raise _unsupported(node, f"cast to element type {to}")
    return lambda x: x.to(_DTYPES[to])


def _resize(node, a: dict, opset: int) -> Op:
    mode = _text(a.get("mode", "nearest"))
    transform = _text(a.get("coordinate_transformation_mode",
                            "asymmetric" if opset < 11 else "half_pixel"))
    nearest = _text(a.get("nearest_mode", "round_prefer_floor"))
    # What F.interpolate computes exactly: nearest = floor(out_index * in / out), i.e. ONNX's
    # asymmetric + floor; linear with half_pixel (align_corners=False) or align_corners.
    if mode == "nearest" and transform == "asymmetric" and nearest == "floor":
        kwargs: dict[str, Any] = {"mode": "nearest"}
    elif mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel",
                                            "align_corners"):
        kwargs = {"align_corners": transform == "align_corners"}
    else:
        raise _unsupported(node, f"mode={mode}, coordinate_transformation_mode={transform}, "
                                 f"nearest_mode={nearest}")
    if a.get("exclude_outside", 0) or a.get("antialias", 0):
        raise _unsupported(node, "exclude_outside / antialias")
    linear_modes = {3: "linear", 4: "bilinear", 5: "trilinear"}

    def run(x, roi=None, scales=None, sizes=None):
        if opset < 11:  # Upsample-style Resize(X, scales)
            scales, sizes = roi, None
        if mode == "linear":
            kwargs["mode"] = linear_modes[x.dim()]
        if sizes is not None and sizes.numel():
            size = _ints(sizes)
            if size[:2] != list(x.shape[:2]):
                raise ModelError(f"ONNX node '{node.name}' (Resize): resizing the batch or "
                                 "channel dimension is not supported by the torch executor")
            return F.interpolate(x, size=size[2:], **kwargs)
        factors = [float(v) for v in scales.reshape(-1).tolist()]
        if factors[:2] != [1.0, 1.0]:
            raise ModelError(f"ONNX node '{node.name}' (Resize): scaling the batch or channel "
                             "dimension is not supported by the torch executor")
        # scale_factor, not the size it gives: ONNX maps coordinates by the scale itself
        # (1.5, not 7 / 5 for a side of 5), as torch does with recompute_scale_factor=False
        return F.interpolate(x, scale_factor=factors[2:], recompute_scale_factor=False, **kwargs)
    return run


def _constant(node, a: dict, opset: int) -> Op:
    from onnx import numpy_helper

    if "value" in a:
        value = torch.from_numpy(np.array(numpy_helper.to_array(a["value"])))
    elif "value_float" in a or "value_int" in a:
        value = torch.tensor(a.get("value_float", a.get("value_int")))
    elif "value_floats" in a or "value_ints" in a:
        value = torch.tensor(list(a.get("value_floats", a.get("value_ints"))))
    else:
        raise _unsupported(node, f"a constant given as {sorted(a)}")
    return lambda: value


def _elementwise(fn: Callable) -> Callable[..., Op]:
    return lambda node, a, opset: fn


SUPPORTED_OPS: dict[str, Callable[[Any, dict, int], Op]] = {
    "Conv": _conv,
    "BatchNormalization": _batch_norm,
    "Relu": _elementwise(F.relu),
    "LeakyRelu": _leaky_relu,
    "Sigmoid": _elementwise(torch.sigmoid),
    "Add": _elementwise(torch.add),
    "Sub": _elementwise(torch.sub),
    "Mul": _elementwise(torch.mul),
    "Div": _elementwise(torch.div),
    "Identity": _elementwise(lambda x: x),
    "Softmax": _softmax,
    "Concat": _concat,
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Shape": _shape,
    "Gather": _gather,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Slice": _slice,
    "Cast": _cast,
    "Resize": _resize,
    "Upsample": _resize,  # opset < 10: Upsample(X, scales), same attributes as Resize
    "Constant": _constant,
}


class OnnxModule(torch.nn.Module):
    """A frozen ONNX graph as a torch module: ``module(x, ...)`` returns the graph's outputs
    (a tuple, in the graph's order) computed with torch operations.

    ``model``: ONNX bytes, a path, or an ``onnx.ModelProto``. Raises :class:`ModelError` for
    an operator or attribute value it does not implement.
    """

    def __init__(self, model: Any):
        super().__init__()
        import onnx
        from onnx import numpy_helper

        if isinstance(model, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(model))
        elif not isinstance(model, onnx.ModelProto):
            model = onnx.load(str(model))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        graph = model.graph
        unknown = sorted({n.op_type for n in graph.node if n.domain not in ("", "ai.onnx")
                          or n.op_type not in SUPPORTED_OPS})
        if unknown:
            raise ModelError(f"ONNX operator(s) {', '.join(unknown)} not supported by the torch "
                             f"executor (models/onnx_torch.py; it knows "
                             f"{', '.join(sorted(SUPPORTED_OPS))})")
        # Floating-point weights and constants: buffers named by position (ONNX names hold
        # dots and slashes). Integer ones are shape arithmetic (Reshape targets, Slice bounds)
        # and stay host tensors, with Shape's outputs: a CUDA module then never mixes devices
        # in a Concat of shape vectors, nor syncs to read a shape.
        self._slots: dict[str, str] = {}
        self._host: dict[str, torch.Tensor] = {}
        for init in graph.initializer:
            self._constant(init.name, torch.from_numpy(np.array(numpy_helper.to_array(init))))
        self.input_names = [i.name for i in graph.input
                            if i.name not in self._slots and i.name not in self._host]
        self.output_names = [o.name for o in graph.output]
        self._nodes = []
        for node in graph.node:
            run = SUPPORTED_OPS[node.op_type](node, _attrs(node), opset)
            if node.op_type == "Constant":
                self._constant(node.output[0], run())
            else:
                self._nodes.append((run, list(node.input), list(node.output)))
        # After its last use an intermediate is dropped, which halves peak memory.
        last_use: dict[str, int] = {}
        for k, (_, inputs, _) in enumerate(self._nodes):
            for name in inputs:
                last_use[name] = k
        keep = set(self.output_names)
        self._free = [[name for name in inputs if last_use.get(name) == k and name not in keep]
                      for k, (_, inputs, _) in enumerate(self._nodes)]

    def _constant(self, name: str, value: torch.Tensor) -> None:
        if value.is_floating_point():
            self._slots[name] = f"b{len(self._slots)}"
            self.register_buffer(self._slots[name], value, persistent=False)
        else:
            self._host[name] = value

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.input_names):
            raise ModelError(f"the ONNX graph takes {len(self.input_names)} input(s) "
                             f"({', '.join(self.input_names)}), got {len(inputs)}")
        values: dict[str, Any] = {**self._host, **dict(zip(self.input_names, inputs))}
        for (run, names, outputs), free in zip(self._nodes, self._free):
            args = [None if not name else values[name] if name in values
                    else getattr(self, self._slots[name]) for name in names]
            result = run(*args)
            if len(outputs) == 1:
                values[outputs[0]] = result
            else:
                values.update(zip(outputs, result))
            for name in free:
                values.pop(name, None)
        return tuple(values[name] for name in self.output_names)


def supported_ops() -> Sequence[str]:
    """The ONNX operator types :class:`OnnxModule` implements."""
    return tuple(sorted(SUPPORTED_OPS))
