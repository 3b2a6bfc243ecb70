"""The few facts about an ONNX graph that onnxruntime does not expose: the class labels of a
classifier and the name of its main operator.

Read straight from the protobuf wire format, because the ``onnx`` package is not a dependency of
onnxruntime, and importing it (with protobuf) would cost a serverless cold start more than this
whole model load. Only what is needed is decoded: the graph's nodes, the ``op_type`` and
``domain`` of each, and the ``classlabels_*`` attributes of the ``ai.onnx.ml`` classifier and
ZipMap nodes; everything else (tree arrays, weights) is skipped by its length without being read.

Field numbers from onnx/onnx.proto: ModelProto.graph = 7; GraphProto.node = 1;
NodeProto.op_type = 4, .attribute = 5, .domain = 7; AttributeProto.name = 1, .ints = 8, .strings = 9.
The labels attribute is ``classlabels_int64s`` (TreeEnsembleClassifier, ZipMap) or
``classlabels_ints`` (LinearClassifier, SVMClassifier), or ``classlabels_strings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

_ML_DOMAIN = "ai.onnx.ml"
_LABELLED_OPS = {"ZipMap", "TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier"}
_LABEL_ATTRIBUTES = {b"classlabels_strings", b"classlabels_int64s", b"classlabels_ints"}
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class GraphFacts(NamedTuple):
    classes: list[str | int] | None  # from the last labelled ai.onnx.ml node (ZipMap last)
    main_op: str | None  # the last ai.onnx.ml *Classifier or *Regressor, e.g. TreeEnsembleClassifier


def graph_facts(model: bytes) -> GraphFacts:
    """Facts of a serialised ModelProto; empty facts if the bytes cannot be walked."""
    buf = memoryview(model)
    try:
        classes, main_op = None, None
        for field, wire, value in _fields(buf, 0, len(buf)):
            if field != 7 or wire != _LEN:
                continue
            for node_field, node_wire, node in _fields(buf, *value):
                if node_field != 1 or node_wire != _LEN:
                    continue
                op_type, domain, labels = _node(buf, *node)
                if domain == _ML_DOMAIN and op_type.endswith(("Classifier", "Regressor")):
                    main_op = op_type
                if labels is not None and domain == _ML_DOMAIN:
                    classes = labels
        return GraphFacts(classes, main_op)
    except (IndexError, ValueError, UnicodeDecodeError):
        return GraphFacts(None, None)


def _node(buf: memoryview, start: int, end: int) -> tuple[str, str, list | None]:
    op_type, domain, labels, attributes = "", "", None, []
    for field, wire, value in _fields(buf, start, end):
        if wire != _LEN:
            continue
        if field == 4:
            op_type = bytes(buf[value[0]:value[1]]).decode()
        elif field == 7:
            domain = bytes(buf[value[0]:value[1]]).decode()
        elif field == 5:
            attributes.append(value)
    if op_type in _LABELLED_OPS:
        for span in attributes:
            found = _labels(buf, *span)
            if found is not None:
                labels = found
    return op_type, domain, labels


def _labels(buf: memoryview, start: int, end: int) -> list | None:
    fields = _fields(buf, start, end)
    first = next(fields, None)
    # name is field 1 and serialised first; any other attribute is skipped without reading it
    if first is None or first[0] != 1 or first[1] != _LEN:
        return None
    name = bytes(buf[first[2][0]:first[2][1]])
    if name not in _LABEL_ATTRIBUTES:
        return None
    values: list = []
    for field, wire, value in fields:
        if field == 9 and wire == _LEN and name == b"classlabels_strings":
            values.append(bytes(buf[value[0]:value[1]]).decode())
        elif field == 8 and name != b"classlabels_strings":
            if wire == _VARINT:
                values.append(_signed(value))
            elif wire == _LEN:  # packed
                pos, stop = value
                while pos < stop:
                    number, pos = _varint(buf, pos)
                    values.append(_signed(number))
    return values


def _fields(buf: memoryview, pos: int, end: int) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value): an int, or for a LEN field its (start, end) span."""
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
            yield field, wire, value
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield field, wire, (pos, pos + length)
            pos += length
        elif wire == _I64:
            pos += 8
        elif wire == _I32:
            pos += 4
        else:
            raise ValueError(f"wire type {wire}")
    if pos != end:
        raise ValueError("field overruns its message")


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _signed(number: int) -> int:
    return number - (1 << 64) if number >= 1 << 63 else number
