"""Refuse .onnx files that reach outside themselves, before onnxruntime sees them.

A tensor stored as external data names a file to read (``/proc/self/mem``, ``../../x``),
and onnxruntime resolves it against the working directory when it gets model bytes.
edgecnn's exports never use external data, so any is refused. The protobuf wire format is
walked here directly: a device has onnxruntime but maybe not the ``onnx`` package. Where
``onnx`` is installed, its checker runs too.
"""

from __future__ import annotations

from typing import Iterator

from ..errors import ModelFileError, first_line

#: Message kind -> {field number: kind of the embedded message} (onnx.proto3).
_SCHEMA = {
    "model": {7: "graph", 25: "function"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {},
}
_TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 13, 14, 1
#: Subgraphs nest through If/Loop/Scan attributes; deeper than this is not a real model.
MAX_DEPTH = 32


class _Malformed(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise _Malformed("a varint runs past the end")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(field number, wire type, value or start, end) of each field in buf[start:end]."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, wire, value, pos
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise _Malformed("a field runs past its message")
            yield number, wire, pos, pos + size
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            yield number, wire, 0, pos
        else:
            raise _Malformed(f"wire type {wire}")
    if pos != end:
        raise _Malformed("a message runs past its end")


def external_tensors(data: bytes) -> int:
    """How many tensors of a serialized ModelProto keep their data in another file."""
    found, stack = 0, [("model", 0, len(data), 0)]
    while stack:
        kind, start, end, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _Malformed(f"messages nested more than {MAX_DEPTH} deep")
        children = _SCHEMA[kind]
        for number, wire, a, b in _fields(data, start, end):
            if kind == "tensor" and (number == _TENSOR_EXTERNAL_DATA or (number == _TENSOR_DATA_LOCATION and a == _EXTERNAL)):
                found += 1
                break
            if wire == 2 and number in children:
                stack.append((children[number], a, b, depth + 1))
    return found


def verify_onnx(data: bytes, path) -> None:
    """ModelFileError if the model uses external data, is malformed, or fails ``onnx.checker``."""
    try:
        external = external_tensors(data)
    except _Malformed as exc:
        raise ModelFileError(f"{path} is not a valid ONNX model (corrupt protobuf: {exc}); export or copy it again") from None
    if external:
        raise ModelFileError(
            f"{path} keeps {external} tensor(s) in external data files, which edgecnn does not read; "
            "export the model with its weights inside the .onnx file"
        )
    try:
        import onnx
    except ImportError:
        return
    try:
        onnx.checker.check_model(onnx.load_model_from_string(data))
    except Exception as exc:  # DecodeError, ValidationError, ...: the file's fault either way
        raise ModelFileError(f"{path} is not a valid ONNX model ({first_line(exc, 200)}); export or copy it again") from None
