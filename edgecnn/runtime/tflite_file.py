"""A small read-only reader for TFLite flatbuffers (schema.fbs, version 3).

Only the ``flatbuffers`` package is needed: this runs on devices that have a TFLite
interpreter but neither TensorFlow nor the generated schema module. Every offset is
bounds-checked, so a truncated or foreign file raises :class:`ModelFileError` instead
of crashing or reading garbage.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from flatbuffers import encode, util
from flatbuffers import number_types as N
from flatbuffers.table import Table

from ..errors import ModelFileError
from ..fileio import read_model_bytes
from .filetype import foreign_kind

FILE_IDENTIFIER = b"TFL3"

#: BuiltinOperator enum of schema.fbs, indexed by builtin code.
BUILTIN_OPERATORS = tuple(
    """
ADD AVERAGE_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D DEPTH_TO_SPACE DEQUANTIZE
EMBEDDING_LOOKUP FLOOR FULLY_CONNECTED HASHTABLE_LOOKUP L2_NORMALIZATION L2_POOL_2D
LOCAL_RESPONSE_NORMALIZATION LOGISTIC LSH_PROJECTION LSTM MAX_POOL_2D MUL RELU RELU_N1_TO_1 RELU6
RESHAPE RESIZE_BILINEAR RNN SOFTMAX SPACE_TO_DEPTH SVDF TANH CONCAT_EMBEDDINGS SKIP_GRAM CALL CUSTOM
EMBEDDING_LOOKUP_SPARSE PAD UNIDIRECTIONAL_SEQUENCE_RNN GATHER BATCH_TO_SPACE_ND SPACE_TO_BATCH_ND
TRANSPOSE MEAN SUB DIV SQUEEZE UNIDIRECTIONAL_SEQUENCE_LSTM STRIDED_SLICE BIDIRECTIONAL_SEQUENCE_RNN
EXP TOPK_V2 SPLIT LOG_SOFTMAX DELEGATE BIDIRECTIONAL_SEQUENCE_LSTM CAST PRELU MAXIMUM ARG_MAX
MINIMUM LESS NEG PADV2 GREATER GREATER_EQUAL LESS_EQUAL SELECT SLICE SIN TRANSPOSE_CONV
SPARSE_TO_DENSE TILE EXPAND_DIMS EQUAL NOT_EQUAL LOG SUM SQRT RSQRT SHAPE POW ARG_MIN FAKE_QUANT
REDUCE_PROD REDUCE_MAX PACK LOGICAL_OR ONE_HOT LOGICAL_AND LOGICAL_NOT UNPACK REDUCE_MIN FLOOR_DIV
REDUCE_ANY SQUARE ZEROS_LIKE FILL FLOOR_MOD RANGE RESIZE_NEAREST_NEIGHBOR LEAKY_RELU
SQUARED_DIFFERENCE MIRROR_PAD ABS SPLIT_V UNIQUE CEIL REVERSE_V2 ADD_N GATHER_ND COS WHERE RANK ELU
REVERSE_SEQUENCE MATRIX_DIAG QUANTIZE MATRIX_SET_DIAG ROUND HARD_SWISH IF WHILE
NON_MAX_SUPPRESSION_V4 NON_MAX_SUPPRESSION_V5 SCATTER_ND SELECT_V2 DENSIFY SEGMENT_SUM BATCH_MATMUL
PLACEHOLDER_FOR_GREATER_OP_CODES CUMSUM CALL_ONCE BROADCAST_TO RFFT2D CONV_3D IMAG REAL COMPLEX_ABS
HASHTABLE HASHTABLE_FIND HASHTABLE_IMPORT HASHTABLE_SIZE REDUCE_ALL CONV_3D_TRANSPOSE VAR_HANDLE
READ_VARIABLE ASSIGN_VARIABLE BROADCAST_ARGS RANDOM_STANDARD_NORMAL BUCKETIZE RANDOM_UNIFORM
MULTINOMIAL GELU DYNAMIC_UPDATE_SLICE RELU_0_TO_1 UNSORTED_SEGMENT_PROD UNSORTED_SEGMENT_MAX
UNSORTED_SEGMENT_SUM ATAN2 UNSORTED_SEGMENT_MIN SIGN BITCAST BITWISE_XOR RIGHT_SHIFT
STABLEHLO_LOGISTIC STABLEHLO_ADD STABLEHLO_DIVIDE STABLEHLO_MULTIPLY STABLEHLO_MAXIMUM
STABLEHLO_RESHAPE STABLEHLO_CLAMP STABLEHLO_CONCATENATE STABLEHLO_BROADCAST_IN_DIM
STABLEHLO_CONVOLUTION STABLEHLO_SLICE STABLEHLO_CUSTOM_CALL STABLEHLO_REDUCE STABLEHLO_ABS
STABLEHLO_AND STABLEHLO_COSINE STABLEHLO_EXPONENTIAL STABLEHLO_FLOOR STABLEHLO_LOG STABLEHLO_MINIMUM
STABLEHLO_NEGATE STABLEHLO_OR STABLEHLO_POWER STABLEHLO_REMAINDER STABLEHLO_RSQRT STABLEHLO_SELECT
STABLEHLO_SUBTRACT STABLEHLO_TANH STABLEHLO_SCATTER STABLEHLO_COMPARE STABLEHLO_CONVERT
STABLEHLO_DYNAMIC_SLICE STABLEHLO_DYNAMIC_UPDATE_SLICE STABLEHLO_PAD STABLEHLO_IOTA
STABLEHLO_DOT_GENERAL STABLEHLO_REDUCE_WINDOW STABLEHLO_SORT STABLEHLO_WHILE STABLEHLO_GATHER
STABLEHLO_TRANSPOSE DILATE STABLEHLO_RNG_BIT_GENERATOR REDUCE_WINDOW STABLEHLO_COMPOSITE
STABLEHLO_SHIFT_LEFT STABLEHLO_CBRT STABLEHLO_CASE
""".split()
)

#: TensorType enum of schema.fbs as numpy-style names, indexed by type code.
TENSOR_TYPES = (
    "float32",
    "float16",
    "int32",
    "uint8",
    "int64",
    "string",
    "bool",
    "int16",
    "complex64",
    "int8",
    "float64",
    "complex128",
    "uint64",
    "resource",
    "variant",
    "uint32",
    "uint16",
    "int4",
    "bfloat16",
    "int2",
    "uint4",
    "float8_e4m3fn",
    "float8_e5m2",
)

#: ActivationFunctionType enum of schema.fbs.
ACTIVATIONS = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")

#: BuiltinOptions union type -> vtable slot of its ``fused_activation_function`` field.
_FUSED_ACTIVATION_SLOT = {
    1: 10,
    2: 12,
    5: 14,
    6: 6,
    7: 4,
    8: 4,
    10: 6,
    11: 4,
    12: 4,
    14: 4,
    21: 4,
    28: 4,
    29: 4,
    31: 6,
    49: 10,
    69: 4,
    70: 6,
    71: 4,
    106: 12,
}


@dataclass(frozen=True)
class OperatorCode:
    builtin_code: int
    name: str  # "CONV_2D", ... or "CUSTOM"
    version: int
    custom_code: Optional[str] = None


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...]  # -1 marks a dynamic dimension; equals shape when absent
    dtype: str
    buffer: int  # 0 = no constant data
    quant_scale: tuple[float, ...] = ()
    quant_zero_point: tuple[int, ...] = ()
    quantized_dimension: int = 0
    is_variable: bool = False


@dataclass(frozen=True)
class Operator:
    opcode_index: int
    inputs: tuple[int, ...]  # tensor indices, -1 for an omitted optional input
    outputs: tuple[int, ...]
    builtin_options_type: int
    fused_activation: Optional[str] = None  # "NONE", "RELU", "RELU6", ... when the options carry one
    #: Position of the builtin options table in the file (0: none); read with TFLiteModel.option().
    options_pos: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class SubGraph:
    name: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass(frozen=True)
class TFLiteModel:
    version: int
    description: str
    operator_codes: tuple[OperatorCode, ...]
    subgraphs: tuple[SubGraph, ...]
    buffer_sizes: tuple[int, ...]
    metadata: dict[str, bytes]
    data: bytes = field(repr=False, compare=False, default=b"")
    buffer_spans: tuple[tuple[int, int], ...] = field(repr=False, compare=False, default=())

    def buffer_data(self, index: int) -> bytes:
        start, size = self.buffer_spans[index]
        return self.data[start : start + size]

    def operators(self, subgraph: int = 0) -> list[tuple[OperatorCode, Operator]]:
        return [(self.operator_codes[op.opcode_index], op) for op in self.subgraphs[subgraph].operators]

    def option(self, op: Operator, index: int, kind: str = "i", default=0):
        """Field `index` (its position in the options table of schema.fbs) of an operator's builtin
        options; `kind` is a struct code: b/B (int8/uint8), ? (bool), i (int32), f (float32)."""
        if not op.options_pos:
            return default
        try:
            return _Tab(self.data, op.options_pos).scalar(4 + 2 * index, _SCALAR_FLAGS[kind], default)
        except (_Corrupt, struct.error) as exc:
            raise ModelFileError(f"operator options are corrupt ({exc}); export or copy the model again") from None

    @property
    def param_bytes(self) -> int:
        """Bytes of constant tensor data (weights, biases) over all subgraphs."""
        used = {t.buffer for sg in self.subgraphs for t in sg.tensors if t.buffer > 0}
        return sum(self.buffer_sizes[i] for i in used)


class _Corrupt(Exception):
    pass


_SCALAR_FLAGS = {"b": N.Int8Flags, "B": N.Uint8Flags, "?": N.BoolFlags, "i": N.Int32Flags, "f": N.Float32Flags}


def _need(buf: bytes, pos: int, size: int) -> None:
    if pos < 0 or size < 0 or pos + size > len(buf):
        raise _Corrupt(f"offset {pos}+{size} outside the {len(buf)}-byte file")


class _Tab(Table):
    """A flatbuffers Table whose vtable and fields are checked against the buffer size."""

    __slots__ = ()

    def __init__(self, buf: bytes, pos: int):
        _need(buf, pos, 4)
        super().__init__(buf, pos)
        vtable = pos - encode.Get(N.SOffsetTFlags.packer_type, buf, pos)
        _need(buf, vtable, 4)
        _need(buf, vtable, encode.Get(N.VOffsetTFlags.packer_type, buf, vtable))

    def field(self, slot: int, size: int) -> int:
        off = self.Offset(slot)
        if off:
            _need(self.Bytes, self.Pos + off, size)
            return self.Pos + off
        return 0

    def scalar(self, slot: int, flags, default):
        pos = self.field(slot, flags.bytewidth)
        return flags.py_type(encode.Get(flags.packer_type, self.Bytes, pos)) if pos else default

    def _target(self, slot: int) -> int:
        pos = self.field(slot, 4)
        if not pos:
            return 0
        target = pos + encode.Get(N.UOffsetTFlags.packer_type, self.Bytes, pos)
        _need(self.Bytes, target, 4)
        return target

    def vector(self, slot: int, elem_size: int) -> tuple[int, int]:
        """(start, length) of a vector field; (0, 0) when absent."""
        pos = self._target(slot)
        if not pos:
            return 0, 0
        n = encode.Get(N.UOffsetTFlags.packer_type, self.Bytes, pos)
        _need(self.Bytes, pos + 4, n * elem_size)
        return pos + 4, n

    def numbers(self, slot: int, code: str, size: int) -> tuple:
        start, n = self.vector(slot, size)
        return struct.unpack_from(f"<{n}{code}", self.Bytes, start) if n else ()

    def string(self, slot: int) -> Optional[str]:
        start, n = self.vector(slot, 1)
        if not start:
            return None
        try:  # strictly: the interpreter decodes names as UTF-8 and raises on anything else
            return bytes(self.Bytes[start : start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise _Corrupt(f"a string at byte {start} is not UTF-8") from None

    def table(self, slot: int) -> Optional["_Tab"]:
        pos = self._target(slot)
        return _Tab(self.Bytes, pos) if pos else None

    def tables(self, slot: int) -> list["_Tab"]:
        start, n = self.vector(slot, 4)
        get = encode.Get
        return [_Tab(self.Bytes, p + get(N.UOffsetTFlags.packer_type, self.Bytes, p)) for p in range(start, start + 4 * n, 4)]


def _name(kind: tuple[str, ...], code: int, prefix: str) -> str:
    return kind[code] if 0 <= code < len(kind) else f"{prefix}{code}"


def _operator_code(t: _Tab) -> OperatorCode:
    # Codes < 127 may live only in the deprecated int8 field; the larger of the two wins.
    code = max(t.scalar(4, N.Int8Flags, 0), t.scalar(10, N.Int32Flags, 0))
    return OperatorCode(code, _name(BUILTIN_OPERATORS, code, "BUILTIN_"), t.scalar(8, N.Int32Flags, 1), t.string(6))


def _tensor(t: _Tab) -> Tensor:
    shape = t.numbers(4, "i", 4)
    scale: tuple = ()
    zero_point: tuple = ()
    qdim = 0
    q = t.table(12)
    if q is not None:
        scale = q.numbers(8, "f", 4)
        zero_point = q.numbers(10, "q", 8)
        qdim = q.scalar(16, N.Int32Flags, 0)
    return Tensor(
        name=t.string(10) or "",
        shape=shape,
        shape_signature=t.numbers(18, "i", 4) or shape,
        dtype=_name(TENSOR_TYPES, t.scalar(6, N.Int8Flags, 0), "tensor_type_"),
        buffer=t.scalar(8, N.Uint32Flags, 0),
        quant_scale=scale,
        quant_zero_point=zero_point,
        quantized_dimension=qdim,
        is_variable=t.scalar(14, N.BoolFlags, False),
    )


def _operator(t: _Tab) -> Operator:
    options_type = t.scalar(10, N.Uint8Flags, 0)
    options = t.table(12) if options_type else None
    activation = None
    slot = _FUSED_ACTIVATION_SLOT.get(options_type)
    if slot is not None:
        code = options.scalar(slot, N.Int8Flags, 0) if options is not None else 0
        activation = _name(ACTIVATIONS, code, "ACTIVATION_")
    return Operator(
        t.scalar(4, N.Uint32Flags, 0),
        t.numbers(6, "i", 4),
        t.numbers(8, "i", 4),
        options_type,
        activation,
        options.Pos if options is not None else 0,
    )


def _subgraph(t: _Tab) -> SubGraph:
    return SubGraph(
        name=t.string(12) or "",
        tensors=tuple(_tensor(x) for x in t.tables(4)),
        operators=tuple(_operator(x) for x in t.tables(10)),
        inputs=t.numbers(6, "i", 4),
        outputs=t.numbers(8, "i", 4),
    )


def _buffer_span(buf: bytes, t: _Tab) -> tuple[int, int]:
    start, n = t.vector(4, 1)
    if start:
        return start, n
    offset, size = t.scalar(6, N.Uint64Flags, 0), t.scalar(8, N.Uint64Flags, 0)
    if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
        _need(buf, offset, size)
        return offset, size
    return 0, 0


def _check_indices(sg: SubGraph, n_codes: int, n_buffers: int) -> None:
    n = len(sg.tensors)
    if any(not 0 <= t.buffer < max(n_buffers, 1) for t in sg.tensors):
        raise _Corrupt(f"subgraph {sg.name!r} has a tensor pointing at a missing buffer")
    for op in sg.operators:
        if not 0 <= op.opcode_index < n_codes or any(not -1 <= i < n for i in op.inputs + op.outputs):
            raise _Corrupt(f"subgraph {sg.name!r} has an operator with an index out of range")
    if any(not 0 <= i < n for i in sg.inputs + sg.outputs):
        raise _Corrupt(f"subgraph {sg.name!r} has an input or output index out of range")


def _label(path) -> str:
    return str(path) if path is not None else "model data"


def check_tflite_bytes(data: bytes, path=None) -> None:
    """Raise ModelFileError unless `data` starts like a TFLite flatbuffer."""
    where = _label(path)
    if not data:
        raise ModelFileError(f"{where} is not a TFLite model (it is empty); export the model again")
    if len(data) < 8:
        raise ModelFileError(f"{where} is not a TFLite model (only {len(data)} bytes); export the model again")
    if not util.BufferHasIdentifier(data, 0, FILE_IDENTIFIER):
        hint = foreign_kind(data, "tflite") or f"found {bytes(data[4:8])!r}"
        raise ModelFileError(
            f"{where} is not a TFLite model (no TFL3 file identifier; {hint}); pass a .tflite file from `edgecnn export`"
        )
    root = encode.Get(N.UOffsetTFlags.packer_type, data, 0)
    if not 8 <= root <= len(data) - 4:
        raise ModelFileError(
            f"{where} is not a TFLite model (root offset {root} is outside the {len(data)}-byte file); "
            "the file is truncated or corrupt, export or copy it again"
        )


def read_tflite(data: bytes, path=None) -> TFLiteModel:
    """Parse a TFLite flatbuffer; ModelFileError if it is not one or is truncated."""
    data = bytes(data)
    check_tflite_bytes(data, path)
    try:
        model = _Tab(data, encode.Get(N.UOffsetTFlags.packer_type, data, 0))
        buffers = [_buffer_span(data, b) for b in model.tables(12)]
        metadata = {}
        for m in model.tables(16):
            index = m.scalar(6, N.Uint32Flags, 0)
            if not 0 <= index < len(buffers):
                raise _Corrupt(f"metadata {m.string(4)!r} points at missing buffer {index}")
            start, size = buffers[index]
            metadata[m.string(4) or ""] = data[start : start + size]
        codes = tuple(_operator_code(x) for x in model.tables(6))
        subgraphs = tuple(_subgraph(x) for x in model.tables(8))
        for sg in subgraphs:
            _check_indices(sg, len(codes), len(buffers))
        return TFLiteModel(
            version=model.scalar(4, N.Uint32Flags, 0),
            description=model.string(10) or "",
            operator_codes=codes,
            subgraphs=subgraphs,
            buffer_sizes=tuple(size for _, size in buffers),
            metadata=metadata,
            data=data,
            buffer_spans=tuple(buffers),
        )
    except (_Corrupt, IndexError, struct.error, TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(
            f"{_label(path)} is not a valid TFLite model (truncated or corrupt flatbuffer: {exc}); export or copy it again"
        ) from None


def load_tflite(path) -> TFLiteModel:
    path = Path(path)
    return read_tflite(read_model_bytes(path), path)


def read_metadata(data: bytes, name: str, path=None) -> Optional[bytes]:
    """The named metadata buffer of a TFLite model, or None if it has none."""
    return read_tflite(data, path).metadata.get(name)
