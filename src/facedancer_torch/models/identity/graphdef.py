"""Read a frozen TensorFlow ``GraphDef`` (``.pb``) without TensorFlow.

A frozen graph is a plain protobuf message; we only need node names, ops, inputs, a few
attributes and the constant tensors, so a small wire-format decoder is enough and avoids
shipping ``.proto`` files. Field numbers follow tensorflow/core/framework/{graph,node_def,
attr_value,tensor,tensor_shape,types}.proto, which are stable across TF 1.x and 2.x.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError

# tensorflow/core/framework/types.proto DataType -> numpy dtype (the ones frozen graphs use)
_DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"),  # DT_FLOAT
    2: np.dtype("<f8"),  # DT_DOUBLE
    3: np.dtype("<i4"),  # DT_INT32
    4: np.dtype("u1"),  # DT_UINT8
    9: np.dtype("<i8"),  # DT_INT64
    10: np.dtype("?"),  # DT_BOOL
    19: np.dtype("<f2"),  # DT_HALF
}


@dataclass
class GraphNode:
    """One ``NodeDef``: name, op, inputs (``^ctrl`` inputs dropped) and decoded attributes.

    Attribute values are decoded to Python: ints, floats, bools, bytes, lists, numpy arrays
    (``tensor`` attributes, e.g. the ``value`` of a ``Const``) and shape lists.
    """

    name: str
    op: str
    inputs: list[str] = field(default_factory=list)
    attrs: dict[str, Any] = field(default_factory=dict)


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview):
    """Yield ``(field_number, wire_type, value)``; length-delimited values are memoryviews."""
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = _varint(buf, pos)
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, wire, value


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _packed_varints(buf: memoryview) -> list[int]:
    out = []
    pos = 0
    while pos < len(buf):
        value, pos = _varint(buf, pos)
        out.append(_signed64(value))
    return out


def _shape(buf: memoryview) -> list[int] | None:
    dims: list[int] = []
    for number, _, value in _fields(buf):
        if number == 2:  # Dim
            size = 0
            for dn, _, dv in _fields(value):
                if dn == 1:
                    size = _signed64(dv)
            dims.append(size)
        elif number == 3 and value:  # unknown_rank
            return None
    return dims


def _tensor(buf: memoryview) -> np.ndarray:
    dtype_code = 0
    shape: list[int] = []
    content: bytes | None = None
    floats: list[float] = []
    ints: list[int] = []
    for number, wire, value in _fields(buf):
        if number == 1:
            dtype_code = value
        elif number == 2:
            shape = _shape(value) or []
        elif number == 4:
            content = bytes(value)
        elif number == 5:  # float_val, packed or not
            if wire == 2:
                floats.extend(np.frombuffer(value, "<f4").tolist())
            else:
                floats.append(struct.unpack("<f", value)[0])
        elif number == 6:  # double_val
            if wire == 2:
                floats.extend(np.frombuffer(value, "<f8").tolist())
            else:
                floats.append(struct.unpack("<d", value)[0])
        elif number in (7, 10, 11):  # int_val, int64_val, bool_val
            if wire == 2:
                ints.extend(_packed_varints(value))
            else:
                ints.append(_signed64(value))
    dtype = _DTYPES.get(dtype_code)
    if dtype is None:
        raise ValueError(f"unsupported tensor dtype code {dtype_code}")
    count = int(np.prod(shape)) if shape else 1
    if content is not None:
        array = np.frombuffer(content, dtype).copy()
    else:
        values = floats if dtype.kind == "f" else ints
        array = np.asarray(values, dtype)
        if array.size == 0:
            array = np.zeros(count, dtype)
        elif array.size < count:  # TF repeats the last value to fill the shape
            array = np.concatenate([array, np.full(count - array.size, array[-1], dtype)])
    return array.reshape(shape)


def _attr_value(buf: memoryview) -> Any:
    for number, wire, value in _fields(buf):
        if number == 1:  # ListValue
            items: list[Any] = []
            for ln, lw, lv in _fields(value):
                if ln == 2:
                    items.append(bytes(lv))
                elif ln in (3, 6):  # i, type
                    items.extend(_packed_varints(lv) if lw == 2 else [_signed64(lv)])
                elif ln == 4:
                    items.extend(np.frombuffer(lv, "<f4").tolist() if lw == 2
                                 else [struct.unpack("<f", lv)[0]])
                elif ln == 5:
                    items.extend([bool(v) for v in _packed_varints(lv)] if lw == 2 else [bool(lv)])
                elif ln == 7:
                    items.append(_shape(lv))
                elif ln == 8:
                    items.append(_tensor(lv))
            return items
        if number == 2:
            return bytes(value)
        if number == 3:
            return _signed64(value)
        if number == 4:
            return struct.unpack("<f", value)[0]
        if number == 5:
            return bool(value)
        if number == 6:
            return value
        if number == 7:
            return _shape(value)
        if number == 8:
            return _tensor(value)
    return None


def _node(buf: memoryview) -> GraphNode:
    node = GraphNode(name="", op="")
    for number, _, value in _fields(buf):
        if number == 1:
            node.name = bytes(value).decode("utf-8")
        elif number == 2:
            node.op = bytes(value).decode("utf-8")
        elif number == 3:
            name = bytes(value).decode("utf-8")
            if not name.startswith("^"):  # control dependencies carry no data
                node.inputs.append(name)
        elif number == 5:  # map<string, AttrValue> entry
            key, attr = "", None
            for en, _, ev in _fields(value):
                if en == 1:
                    key = bytes(ev).decode("utf-8")
                elif en == 2:
                    attr = _attr_value(ev)
            node.attrs[key] = attr
    return node


def read_graphdef(path: str | Path) -> dict[str, GraphNode]:
    """Parse a frozen ``GraphDef`` file into ``{node name: GraphNode}`` (graph order kept).

    Raises :class:`ModelError` naming the file when it is missing or not a GraphDef.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError("frozen graph not found", path)
    data = memoryview(path.read_bytes())
    nodes: dict[str, GraphNode] = {}
    try:
        for number, wire, value in _fields(data):
            if number == 1 and wire == 2:
                node = _node(value)
                nodes[node.name] = node
    except (ValueError, IndexError, UnicodeDecodeError, struct.error) as exc:
        raise ModelError(f"not a TensorFlow GraphDef ({exc})", path) from exc
    if not nodes:
        raise ModelError("not a TensorFlow GraphDef (no nodes)", path)
    return nodes


def const_value(nodes: dict[str, GraphNode], name: str) -> np.ndarray:
    """The array held by ``Const`` node ``name``, following ``Identity`` nodes."""
    name = name.split(":")[0]
    node = nodes[name]
    while node.op == "Identity":
        node = nodes[node.inputs[0].split(":")[0]]
    if node.op != "Const":
        raise KeyError(f"node '{name}' is a {node.op}, not a constant")
    return node.attrs["value"]
