"""Refuse a .tflite file the interpreter would crash on, before any interpreter sees it.

LiteRT and its XNNPACK delegate trust the flatbuffer: a quantization scale of 0 or NaN, a
zero point outside its type, a tensor type an op does not take, a stride of 0 or a tensor of
terabytes ends in SIGSEGV or SIGABRT, not in an exception. :func:`verify_tflite` checks what
those kernels assume, for the ops edgecnn's classifiers are made of; every problem is named
("tensor 5 'conv/scale' has quantization scale 0"). Pure Python on the parsed model: no
TensorFlow, no schema module.
"""

from __future__ import annotations

import math
from math import prod
from typing import Iterator, Optional

import numpy as np

from ..errors import ModelFileError
from .tflite_file import ACTIVATIONS, Operator, SubGraph, Tensor, TFLiteModel

#: Largest tensor accepted: far above any image classifier, far below what exhausts a device.
MAX_TENSOR_BYTES = 256 * 2**20
MAX_RANK = 6
#: Problems quoted in one error message; the rest are counted.
_QUOTED = 3

ITEM_BYTES = {
    "float32": 4,
    "float16": 2,
    "int32": 4,
    "uint8": 1,
    "int64": 8,
    "bool": 1,
    "int16": 2,
    "int8": 1,
    "float64": 8,
    "uint64": 8,
    "uint32": 4,
    "uint16": 2,
    "bfloat16": 2,
}
#: int16 activations and int32/int64 biases are symmetric: their zero point is 0.
_ZERO_POINT_RANGE = {"uint8": (0, 255), "int8": (-128, 127), "int16": (0, 0), "int32": (0, 0), "int64": (0, 0)}
#: Scales whose ratios and products stay normal float32 numbers in the kernels' requantization
#: (a denormal output scale makes XNNPACK's multiplier infinite); biases carry input x weight scales.
_SCALE_RANGE = {"int8": (1e-12, 1e6), "int32": (1e-24, 1e12), "int64": (1e-24, 1e12)}
QUANTIZED = ("int8", "uint8", "int16")
FLOAT = ("float32",)
ACTIVATION_TYPES = FLOAT + QUANTIZED
INDEX_TYPES = ("int32", "int64")

# BuiltinOptions union codes of schema.fbs that the checked ops carry.
_CONV, _DEPTHWISE, _POOL, _FC, _SOFTMAX, _CONCAT = 1, 2, 5, 8, 9, 10
_PADDINGS = 2  # SAME, VALID


class _Op:
    """What a builtin op takes: its input count range and options type (one output).

    `data` are the input positions whose type must equal the output's (the activations);
    the others are parameters checked by the op's own rule. `optional` inputs may be -1.
    """

    def __init__(self, inputs: tuple[int, int], options: Optional[int] = None, data=(0,), optional=()):
        self.inputs, self.options, self.data, self.optional = inputs, options, data, optional


_ELEMENTWISE = _Op((1, 1))
OPS = {
    # XNNPACK's convolutions assume a bias (LiteRT's exports always have one); dense layers may omit it.
    "CONV_2D": _Op((3, 3), _CONV),
    "DEPTHWISE_CONV_2D": _Op((3, 3), _DEPTHWISE),
    "FULLY_CONNECTED": _Op((2, 3), _FC, optional=(2,)),
    "AVERAGE_POOL_2D": _Op((1, 1), _POOL),
    "MAX_POOL_2D": _Op((1, 1), _POOL),
    "ADD": _Op((2, 2), data=(0, 1)),
    "SUB": _Op((2, 2), data=(0, 1)),
    "MUL": _Op((2, 2), data=(0, 1)),
    "MAXIMUM": _Op((2, 2), data=(0, 1)),
    "MINIMUM": _Op((2, 2), data=(0, 1)),
    "CONCATENATION": _Op((1, 64), _CONCAT, data=range(64)),
    "MEAN": _Op((2, 2)),
    "RESHAPE": _Op((1, 2)),
    "SQUEEZE": _Op((1, 1)),
    "PAD": _Op((2, 2)),
    "SOFTMAX": _Op((1, 1), _SOFTMAX),
    "RELU": _ELEMENTWISE,
    "RELU6": _ELEMENTWISE,
    "RELU_N1_TO_1": _ELEMENTWISE,
    "LOGISTIC": _ELEMENTWISE,
    "TANH": _ELEMENTWISE,
    "HARD_SWISH": _ELEMENTWISE,
    "LEAKY_RELU": _ELEMENTWISE,
    "QUANTIZE": _Op((1, 1), data=()),
    "DEQUANTIZE": _Op((1, 1), data=()),
}


def verify_tflite(model: TFLiteModel, label: str = "model data", ops: bool = True, other_ops: bool = False) -> None:
    """ModelFileError naming the first problems if the model breaks what the interpreter assumes.

    `ops` False checks only the structure (subgraphs, indices, buffers, tensor sizes and
    quantization). `other_ops` True lets ops without a rule here pass unchecked, for readers
    that walk any graph without running it (the Edge TPU checker).
    """
    found = list(problems(model, ops, other_ops))
    if found:
        more = f" (and {len(found) - _QUOTED} more)" if len(found) > _QUOTED else ""
        raise ModelFileError(
            f"{label} is not a model edgecnn can run safely: {'; '.join(found[:_QUOTED])}{more}; export or copy the model again"
        )


def problems(model: TFLiteModel, ops: bool = True, other_ops: bool = False) -> Iterator[str]:
    """Every problem found, one short sentence each."""
    if not model.subgraphs:
        yield "it has no subgraph"
        return
    for s, sg in enumerate(model.subgraphs):
        where = f"subgraph {s} " if s else ""
        broken = [where + p for p in _structure(model, sg)]
        yield from broken
        if broken:  # op rules index tensors and buffers the structure check vouched for
            continue
        yield from (where + p for p in (_operators(model, sg, other_ops) if ops else _arity(model, sg)))


def _name(sg: SubGraph, index: int) -> str:
    name = sg.tensors[index].name  # converters join every fused layer's name: keep the last
    return f"tensor {index} {name if len(name) <= 40 else '...' + name[-37:]!r}"


def _structure(model: TFLiteModel, sg: SubGraph) -> Iterator[str]:
    n = len(sg.tensors)
    if not sg.inputs or not sg.outputs:
        yield "the graph has no input or no output"
    for i in sg.inputs + sg.outputs:
        if not 0 <= i < n:
            yield f"graph input/output {i} is not a tensor (there are {n})"
    for k, op in enumerate(sg.operators):
        if not 0 <= op.opcode_index < len(model.operator_codes):
            yield f"operator {k} has opcode index {op.opcode_index} of {len(model.operator_codes)}"
        if not op.outputs:
            yield f"operator {k} has no output"
        if any(not -1 <= i < n for i in op.inputs) or any(not 0 <= i < n for i in op.outputs):
            yield f"operator {k} names a tensor index out of range (there are {n})"
    for i, t in enumerate(sg.tensors):
        yield from (f"{_name(sg, i)} {p}" for p in _tensor(model, t))
    constants = {i for i, t in enumerate(sg.tensors) if _is_constant(model, t)}
    written = [i for op in sg.operators for i in op.outputs if i in constants] + [i for i in sg.inputs if i in constants]
    for i in sorted(set(written)):
        yield f"{_name(sg, i)} is constant but is a graph input or an operator output"


def _is_constant(model: TFLiteModel, t: Tensor) -> bool:
    return 0 < t.buffer < len(model.buffer_sizes) and model.buffer_sizes[t.buffer] > 0


def _tensor(model: TFLiteModel, t: Tensor) -> Iterator[str]:
    if t.dtype.startswith("tensor_type_"):
        yield f"has unknown type code {t.dtype[12:]}"
    if not 0 <= t.buffer < len(model.buffer_sizes) and not (t.buffer == 0 and not model.buffer_sizes):
        yield f"points at buffer {t.buffer} of {len(model.buffer_sizes)}"
    if len(t.shape) > MAX_RANK:
        yield f"has rank {len(t.shape)} (at most {MAX_RANK})"
    if any(d < 0 for d in t.shape):
        yield f"has a negative dimension in shape {list(t.shape)}"
        return
    if len(t.shape_signature) != len(t.shape) or any(s != d and s != -1 for s, d in zip(t.shape_signature, t.shape)):
        yield f"has shape signature {list(t.shape_signature)} that disagrees with shape {list(t.shape)}"
    size = prod(t.shape) * ITEM_BYTES.get(t.dtype, 1)
    if size > MAX_TENSOR_BYTES:
        yield f"has shape {list(t.shape)}: {size / 2**20:.0f} MiB, over the {MAX_TENSOR_BYTES >> 20} MiB limit"
    if _is_constant(model, t) and t.dtype in ITEM_BYTES and model.buffer_sizes[t.buffer] != size:
        yield f"is a {list(t.shape)} {t.dtype} constant of {size} bytes but its buffer holds {model.buffer_sizes[t.buffer]}"
    yield from _quantization(t)


def _quantization(t: Tensor) -> Iterator[str]:
    scales, zero_points = t.quant_scale, t.quant_zero_point
    if not scales and not zero_points:
        return
    bad = next((s for s in scales if not (math.isfinite(s) and s > 0)), None)
    if bad is not None:
        yield f"has quantization scale {bad:g} (it must be finite and positive)"
    low, high = _SCALE_RANGE.get(t.dtype, _SCALE_RANGE["int8"])
    odd = next((s for s in scales if math.isfinite(s) and s > 0 and not low <= s <= high), None)
    if odd is not None:
        yield f"has quantization scale {odd:g} outside {low:g}..{high:g}"
    if len(zero_points) != len(scales):
        yield f"has {len(scales)} quantization scales but {len(zero_points)} zero points"
    low, high = _ZERO_POINT_RANGE.get(t.dtype, (-(2**31), 2**31 - 1))
    off = next((z for z in zero_points if not low <= z <= high), None)
    if off is not None:
        yield f"has zero point {off} outside {low}..{high} for {t.dtype}"
    if len(scales) > 1:
        axis = t.quantized_dimension
        if not 0 <= axis < len(t.shape) or t.shape[axis] != len(scales):
            yield f"has {len(scales)} per-channel scales that do not match dimension {axis} of shape {list(t.shape)}"


def _dataflow(model: TFLiteModel, sg: SubGraph) -> Iterator[str]:
    """Every tensor an op reads (and every graph output) is constant, a graph input or written earlier:
    the interpreter hands out unallocated memory otherwise."""
    ready = set(sg.inputs) | {i for i, t in enumerate(sg.tensors) if t.is_variable or _is_constant(model, t)}
    for k, op in enumerate(sg.operators):
        missing = next((i for i in op.inputs if i >= 0 and i not in ready), None)
        if missing is not None:
            yield f"operator {k} reads {_name(sg, missing)} before any operator writes it"
            return
        ready.update(op.outputs)
    for i in sg.outputs:
        if i not in ready:
            yield f"graph output {_name(sg, i)} is never written"


def _arity(model: TFLiteModel, sg: SubGraph) -> Iterator[str]:
    """Input and output counts of the ops with a rule: what a reader indexing op.inputs relies on."""
    for k, op in enumerate(sg.operators):
        code = model.operator_codes[op.opcode_index]
        rule = OPS.get(code.name)
        if rule is not None and not (rule.inputs[0] <= len(op.inputs) <= rule.inputs[1] and len(op.outputs) == 1):
            yield f"operator {k} ({code.name}) has {len(op.inputs)} inputs and {len(op.outputs)} outputs"


def _operators(model: TFLiteModel, sg: SubGraph, other_ops: bool) -> Iterator[str]:
    yield from _dataflow(model, sg)
    for k, op in enumerate(sg.operators):
        code = model.operator_codes[op.opcode_index]
        if code.name == "CUSTOM":
            continue  # the Edge TPU's op: its delegate, not the interpreter's kernels, runs it
        rule = OPS.get(code.name)
        what = f"operator {k} ({code.name})"
        if rule is None:
            if not other_ops:
                yield f"{what} is not an op edgecnn's classifiers use, so it is not run"
            continue
        yield from (f"{what} {p}" for p in _operator(model, sg, op, code.name, rule))


def _operator(model: TFLiteModel, sg: SubGraph, op: Operator, name: str, rule: _Op) -> Iterator[str]:
    low, high = rule.inputs
    if not low <= len(op.inputs) <= high or len(op.outputs) != 1:
        yield f"has {len(op.inputs)} inputs and {len(op.outputs)} outputs; it takes {low}..{high} inputs and 1 output"
        return
    if any(i < 0 for position, i in enumerate(op.inputs) if position not in rule.optional):
        yield "omits a required input"
        return
    if rule.options is not None and op.builtin_options_type != rule.options:
        yield f"carries options of type {op.builtin_options_type}, not {rule.options}"
        return
    if op.fused_activation is not None and op.fused_activation not in ACTIVATIONS:
        yield f"has unknown fused activation {op.fused_activation}"
    tensors = sg.tensors
    out = tensors[op.outputs[0]]
    inp = tensors[op.inputs[0]]
    if out.dtype not in ACTIVATION_TYPES:
        yield f"outputs {out.dtype}, which it does not compute"
        return
    for position in rule.data:
        if position < len(op.inputs) and tensors[op.inputs[position]].dtype != out.dtype:
            yield f"mixes a {tensors[op.inputs[position]].dtype} input with a {out.dtype} output"
            return
    for i in [i for i in op.inputs + op.outputs if i >= 0]:
        t = tensors[i]
        if t.dtype in QUANTIZED and not t.quant_scale:
            yield f"uses {t.dtype} {_name(sg, i)} without quantization parameters"
            return
    check = _SPECIFIC.get(name)
    if check is not None:
        yield from check(model, sg, op, inp, out)


def _options(model: TFLiteModel, op: Operator, fields: dict[str, tuple[int, str, int]]) -> dict[str, int]:
    return {key: model.option(op, index, kind, default) for key, (index, kind, default) in fields.items()}


def _window(model: TFLiteModel, op: Operator, fields: dict) -> Iterator[str]:
    opts = _options(model, op, fields)
    if not 0 <= opts.pop("padding") < _PADDINGS:
        yield "has an unknown padding"
    for key, value in opts.items():
        if not 1 <= value <= 4096:
            yield f"has {key} {value} (it must be 1..4096)"


def _bias(sg: SubGraph, op: Operator, inp: Tensor, channels: int) -> Iterator[str]:
    if len(op.inputs) < 3 or op.inputs[2] < 0:
        return
    bias = sg.tensors[op.inputs[2]]
    expected = ("int32", "int64") if inp.dtype in QUANTIZED else ("float32",)
    if bias.dtype not in expected or bias.shape != (channels,):
        yield f"has a {bias.dtype} bias of shape {list(bias.shape)}; it needs {expected[0]} ({channels},)"


def _weights_type(inp: Tensor, weights: Tensor, channel_axis: int) -> Iterator[str]:
    allowed = ("int8", "uint8") if inp.dtype in QUANTIZED else ("float32", "float16", "int8", "uint8")
    if weights.dtype not in allowed or inp.dtype in QUANTIZED and (inp.dtype == "uint8") != (weights.dtype == "uint8"):
        yield f"has {weights.dtype} weights for {inp.dtype} input"
    if len(weights.quant_scale) > 1 and weights.quantized_dimension != channel_axis:
        yield f"has weights quantized along dimension {weights.quantized_dimension}, not {channel_axis}"


def _conv(model, sg, op, inp, out) -> Iterator[str]:
    w = sg.tensors[op.inputs[1]]
    yield from _weights_type(inp, w, 0)
    if not (len(inp.shape) == len(w.shape) == len(out.shape) == 4):
        yield f"needs 4-D input, filter and output, got {list(inp.shape)}, {list(w.shape)}, {list(out.shape)}"
        return
    if min(w.shape) < 1 or w.shape[3] < 1 or inp.shape[3] % w.shape[3] or out.shape[3] != w.shape[0]:
        yield f"has filter {list(w.shape)} that does not fit input {list(inp.shape)} and output {list(out.shape)}"
    fields = {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0)}
    yield from _window(model, op, {**fields, "dilation_w": (4, "i", 1), "dilation_h": (5, "i", 1)})
    yield from _bias(sg, op, inp, out.shape[3])


def _depthwise(model, sg, op, inp, out) -> Iterator[str]:
    w = sg.tensors[op.inputs[1]]
    yield from _weights_type(inp, w, 3)
    if not (len(inp.shape) == len(w.shape) == len(out.shape) == 4):
        yield f"needs 4-D input, filter and output, got {list(inp.shape)}, {list(w.shape)}, {list(out.shape)}"
        return
    multiplier = model.option(op, 3, "i", 0)
    channels = inp.shape[3] * multiplier
    if w.shape[0] != 1 or min(w.shape) < 1 or w.shape[3] != out.shape[3] or channels not in (0, w.shape[3]):
        yield f"has filter {list(w.shape)} that does not fit input {list(inp.shape)} and output {list(out.shape)}"
    fields = {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0)}
    yield from _window(model, op, {**fields, "dilation_w": (5, "i", 1), "dilation_h": (6, "i", 1)})
    yield from _bias(sg, op, inp, out.shape[3])


def _pool(model, sg, op, inp, out) -> Iterator[str]:
    if len(inp.shape) != 4 or len(out.shape) != 4 or inp.shape[3] != out.shape[3]:
        yield f"needs 4-D input and output with the same channels, got {list(inp.shape)} and {list(out.shape)}"
    fields = {"padding": (0, "b", 0), "stride_w": (1, "i", 0), "stride_h": (2, "i", 0)}
    yield from _window(model, op, {**fields, "filter_width": (3, "i", 0), "filter_height": (4, "i", 0)})


def _fully_connected(model, sg, op, inp, out) -> Iterator[str]:
    w = sg.tensors[op.inputs[1]]
    yield from _weights_type(inp, w, 0)
    if len(w.shape) != 2 or min(w.shape) < 1 or prod(inp.shape) % w.shape[1] or not out.shape or out.shape[-1] != w.shape[0]:
        yield f"has weights {list(w.shape)} that do not fit input {list(inp.shape)} and output {list(out.shape)}"
        return
    if model.option(op, 1, "b", 0) != 0:
        yield "uses a shuffled weights format"
    yield from _bias(sg, op, inp, w.shape[0])


def _broadcast(model, sg, op, inp, out) -> Iterator[str]:
    a, b = (sg.tensors[i].shape for i in op.inputs)
    rank = max(len(a), len(b))
    a, b = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    if any(x != y and 1 not in (x, y) for x, y in zip(a, b)) or tuple(max(x, y) for x, y in zip(a, b)) != out.shape:
        yield f"cannot broadcast {list(a)} and {list(b)} to its output {list(out.shape)}"


def _same_shape(model, sg, op, inp, out) -> Iterator[str]:
    if inp.shape != out.shape:
        yield f"changes shape {list(inp.shape)} to {list(out.shape)}"


def _same_size(model, sg, op, inp, out) -> Iterator[str]:
    if prod(inp.shape) != prod(out.shape):
        yield f"reshapes {list(inp.shape)} ({prod(inp.shape)} values) to {list(out.shape)}"
    for i in op.inputs[1:]:
        if i >= 0 and sg.tensors[i].dtype not in INDEX_TYPES:
            yield f"takes a {sg.tensors[i].dtype} shape"


def _index_operand(model, sg, op, inp, out) -> Iterator[str]:
    operand = sg.tensors[op.inputs[1]]
    if operand.dtype not in INDEX_TYPES or not _is_constant(model, operand):
        yield f"needs a constant int32 second input, got a {operand.dtype} {'constant' if _is_constant(model, operand) else 'tensor'}"
    if len(inp.shape) > 4:
        yield f"takes at most 4-D input, got {list(inp.shape)}"


def _concatenation(model, sg, op, inp, out) -> Iterator[str]:
    axis = model.option(op, 0, "i", 0)
    rank = len(out.shape)
    if not -rank <= axis < rank:
        yield f"has axis {axis} for a {rank}-D output"
        return
    axis %= rank
    shapes = [sg.tensors[i].shape for i in op.inputs]
    if (
        any(len(s) != rank or s[:axis] + s[axis + 1 :] != out.shape[:axis] + out.shape[axis + 1 :] for s in shapes)
        or sum(s[axis] for s in shapes) != out.shape[axis]
    ):
        yield f"cannot join {[list(s) for s in shapes]} along axis {axis} into {list(out.shape)}"


def _softmax(model, sg, op, inp, out) -> Iterator[str]:
    beta = model.option(op, 0, "f", 0.0)
    if not math.isfinite(beta) or beta < 0:
        yield f"has beta {beta}"
    yield from _same_shape(model, sg, op, inp, out)


def _quantize(model, sg, op, inp, out) -> Iterator[str]:
    if inp.dtype not in ACTIVATION_TYPES or out.dtype not in QUANTIZED:
        yield f"converts {inp.dtype} to {out.dtype}"
    yield from _same_shape(model, sg, op, inp, out)


def _dequantize(model, sg, op, inp, out) -> Iterator[str]:
    if inp.dtype not in QUANTIZED + ("float16",) or out.dtype != "float32":
        yield f"converts {inp.dtype} to {out.dtype}"
    yield from _same_shape(model, sg, op, inp, out)


def _mean(model, sg, op, inp, out) -> Iterator[str]:
    yield from _index_operand(model, sg, op, inp, out)
    axes = sg.tensors[op.inputs[1]]
    if _is_constant(model, axes) and axes.dtype == "int32":
        values = np.frombuffer(model.buffer_data(axes.buffer), "<i4").tolist()
        if any(not -len(inp.shape) <= a < len(inp.shape) for a in values):
            yield f"reduces over axes {values} of a {len(inp.shape)}-D input"


_SPECIFIC = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "ADD": _broadcast,
    "SUB": _broadcast,
    "MUL": _broadcast,
    "MAXIMUM": _broadcast,
    "MINIMUM": _broadcast,
    "CONCATENATION": _concatenation,
    "MEAN": _mean,
    "PAD": _index_operand,
    "RESHAPE": _same_size,
    "SQUEEZE": _same_size,
    "SOFTMAX": _softmax,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    **{name: _same_shape for name in ("RELU", "RELU6", "RELU_N1_TO_1", "LOGISTIC", "TANH", "HARD_SWISH", "LEAKY_RELU")},
}
