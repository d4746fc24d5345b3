"""Pre-flight check: what ``edgetpu_compiler`` 16.0 would do with a TFLite model, without it.

Reads the flatbuffer with :mod:`edgecnn.runtime.tflite_file` (no TensorFlow), then:

1. model-level failures, where the compiler rejects the whole file: op versions newer than
   its TFLite (2.5), dynamic shapes, a model that is not quantized at all;
2. each operator against the supported-op table (:mod:`.table`): 8-bit tensors, constant
   parameters, batch 1 and at most 3 innermost dimensions larger than 1, the op's limits;
3. partitioning as the compiler does it: one Edge TPU subgraph from the start of the graph
   up to the first op it cannot map; that op and everything after it run on the CPU. A
   leading QUANTIZE of a float input is the exception the compiler makes: it runs on the
   CPU in front of the subgraph.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ...errors import ModelFileError
from ...runtime.devices import EDGETPU_CUSTOM_OP, is_compiled_for_edgetpu
from ...runtime.tflite_file import BUILTIN_OPERATORS, Operator, OperatorCode, TFLiteModel, load_tflite, read_tflite
from ...runtime.tflite_verify import verify_tflite
from . import table
from .latency import count_macs, estimate_latency
from .report import EdgeTpuReport, OpStatus

EIGHT_BIT = ("int8", "uint8")
#: Constant parameter types besides 8-bit: int32 biases, int32/int64 shapes, axes and paddings.
PARAM_TYPES = EIGHT_BIT + ("int32", "int64")

ModelLike = Union[str, os.PathLike, bytes, bytearray, TFLiteModel]


def check_model(model: ModelLike, name: Optional[str] = None) -> EdgeTpuReport:
    """Check a .tflite file, its bytes or a parsed model against the Edge TPU's requirements."""
    parsed, label = _parse(model, name)
    if not parsed.subgraphs:
        raise ModelFileError(f"{label} has no subgraph; export the model again")
    verify_tflite(parsed, label, ops=False)  # indices, buffers and op arity sound before the graph is walked
    return _Check(parsed, label).run()


def _parse(model: ModelLike, name: Optional[str]) -> tuple[TFLiteModel, str]:
    if isinstance(model, TFLiteModel):
        return model, name or "model"
    if isinstance(model, (bytes, bytearray, memoryview)):
        return read_tflite(bytes(model)), name or "model data"
    return load_tflite(model), name or Path(model).name


def version_problem(code: OperatorCode) -> Optional[str]:
    """Why the 16.0 compiler cannot read this op version, or None."""
    if code.name == "CUSTOM":
        return None
    release_of = table.OP_RELEASES.get(code.name)
    if release_of is None:
        known = code.name in BUILTIN_OPERATORS and BUILTIN_OPERATORS.index(code.name) <= BUILTIN_OPERATORS.index(
            table.LAST_OP_IN_COMPILER
        )
        if not known:
            return f"the compiler's TFLite {table.COMPILER_TFLITE_RELEASE} does not know the op {code.name}"
        return None if code.version == 1 else _version_text(code, None, 1)
    release = release_of[code.version - 1] if 1 <= code.version <= len(release_of) else None
    if release is not None and _release(release) <= _release(table.COMPILER_TFLITE_RELEASE):
        return None
    accepted = [v for v, r in enumerate(release_of, 1) if r and _release(r) <= _release(table.COMPILER_TFLITE_RELEASE)]
    return _version_text(code, release, max(accepted) if accepted else None)


def max_accepted_version(op: str) -> Optional[int]:
    """The highest version of builtin `op` the 16.0 compiler reads (None: it reads none)."""
    releases = table.OP_RELEASES.get(op, ())
    accepted = [v for v, r in enumerate(releases, 1) if r and _release(r) <= _release(table.COMPILER_TFLITE_RELEASE)]
    return max(accepted) if accepted else None


def _version_text(code: OperatorCode, release: Optional[str], accepted: Optional[int]) -> str:
    since = f"first released in TensorFlow {release}" if release else "newer than any release the table lists"
    reads = f"reads up to version {accepted}" if accepted else "cannot read it"
    return (
        f"Didn't find op for builtin opcode '{code.name}' version '{code.version}': that version is {since}, and "
        f"edgetpu_compiler {table.COMPILER_VERSION.split('.')[0]}.0 (TFLite {table.COMPILER_TFLITE_RELEASE}) {reads}"
    )


def _release(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split("."))


class _Check:
    def __init__(self, model: TFLiteModel, label: str):
        self.m = model
        self.label = label
        self.graph = model.subgraphs[0]
        self.ops = model.operators()
        self.io = set(self.graph.inputs) | set(self.graph.outputs)

    # --- tensors ------------------------------------------------------------------------

    def tensor(self, index: int):
        return self.graph.tensors[index]

    def constant(self, index: int) -> bool:
        buffer = self.graph.tensors[index].buffer
        return buffer > 0 and self.m.buffer_sizes[buffer] > 0

    def values(self, index: int) -> Optional[np.ndarray]:
        """A constant tensor's values (integers only), or None if it is not constant."""
        t = self.tensor(index)
        if not self.constant(index) or t.dtype not in ("int8", "uint8", "int32", "int64"):
            return None
        return np.frombuffer(self.m.buffer_data(t.buffer), dtype=np.dtype(t.dtype).newbyteorder("<")).reshape(t.shape or (-1,))

    def activations(self, op: Operator) -> list[int]:
        return [i for i in op.inputs + op.outputs if i >= 0 and not self.constant(i)]

    # --- the check ----------------------------------------------------------------------

    def run(self) -> EdgeTpuReport:
        results = [self.evaluate(code, op) for code, op in self.ops]
        problems = self.model_errors()
        errors = [text for _, text in problems]
        statuses, first = self.partition(results, min(problems) if problems else None)
        mapped = {s.index for s in statuses if s.mapped}
        param_bytes = self.m.param_bytes
        off_chip = max(0, param_bytes - table.ON_CHIP_CACHE_BYTES)
        notes = []
        compiled = is_compiled_for_edgetpu(self.m)
        if compiled:
            notes.append(f"Already compiled by edgetpu_compiler: the Edge TPU's ops are inside {EDGETPU_CUSTOM_OP}.")
        if len(self.m.subgraphs) > 1:
            notes.append(f"The file has {len(self.m.subgraphs)} subgraphs (control flow); only the main one was checked.")
        return EdgeTpuReport(
            model=self.label,
            source=f"pre-flight check (rules of edgetpu_compiler {table.COMPILER_VERSION})",
            ops=tuple(statuses),
            subgraphs=1 if mapped else 0,
            param_bytes=param_bytes,
            off_chip_bytes=off_chip,
            errors=tuple(errors),
            first_unmapped=first,
            estimate=estimate_latency(count_macs(self.m, mapped), off_chip) if mapped and not compiled else None,
            notes=tuple(notes),
        )

    def model_errors(self) -> list[tuple[int, str]]:
        """Failures that make the compiler reject the model: (index of the first op involved, text)."""
        errors = []
        for i, (code, _) in enumerate(self.ops):
            problem = version_problem(code)
            if problem:
                errors.append((i, f"#{i} {problem}"))
        dynamic = [i for i, t in enumerate(self.graph.tensors) if any(d < 0 for d in t.shape_signature)]
        if dynamic:
            t = self.tensor(dynamic[0])
            touching = [i for i, (_, op) in enumerate(self.ops) if set(op.inputs + op.outputs) & set(dynamic)]
            errors.append(
                (
                    touching[0] if touching else 0,
                    (
                        f"tensor {t.name!r} has the dynamic shape {list(t.shape_signature)}; edgetpu_compiler needs static shapes "
                        '("Attempting to use a delegate that only supports static-sized tensors"): export with a fixed batch of 1'
                    ),
                )
            )
        quantized = [
            i for i, t in enumerate(self.graph.tensors) if t.dtype in EIGHT_BIT and t.quant_scale and not self.constant(i)
        ]
        if self.ops and not quantized:
            floats = sorted({self.tensor(i).dtype for _, op in self.ops for i in self.activations(op)})
            errors.append(
                (
                    0,
                    (
                        f"the model is not quantized (its activations are {', '.join(floats) or 'not 8-bit'}; the compiler says "
                        '"Model not quantized"): the Edge TPU runs only full-integer models, export with --int8'
                    ),
                )
            )
        return errors

    def partition(self, results, rejected: Optional[tuple[int, str]]):
        """Each op's status and the first unmapped op. `rejected`: (op index, why) if the compiler
        rejects the whole model, which then maps nothing."""
        statuses: list[OpStatus] = []
        first = None
        ended = False
        for i, ((code, op), problem) in enumerate(zip(self.ops, results)):
            if rejected:
                version_issue = version_problem(code)
                status, reason = (
                    (table.VERSION_REJECTED, version_issue) if version_issue else problem or (table.NOT_COMPILED, None)
                )
                statuses.append(OpStatus(code.name, False, status, reason, i, code.version))
                continue
            if problem is None and not ended:
                statuses.append(OpStatus(code.name, True, table.MAPPED, None, i, code.version))
                continue
            status, reason = problem or (
                table.AFTER_CPU_OP,
                "an earlier op runs on the CPU, and the compiler makes only one Edge TPU subgraph",
            )
            statuses.append(OpStatus(code.name, False, status, reason, i, code.version))
            if first is None:
                first = {"index": i, "op": code.name, "status": status, "reason": reason}
            # A float input's QUANTIZE runs on the CPU in front of the subgraph; anything else ends it.
            if not (self.is_input_quantize(op, code) and not any(s.mapped for s in statuses)):
                ended = True
        if rejected:
            i, reason = rejected
            op_name = self.ops[i][0].name if i < len(self.ops) else "(none)"
            first = {"index": i if i < len(self.ops) else None, "op": op_name, "status": "Model rejected", "reason": reason}
        return statuses, first

    def is_input_quantize(self, op: Operator, code: OperatorCode) -> bool:
        return (
            code.name == "QUANTIZE"
            and bool(op.inputs)
            and op.inputs[0] in self.graph.inputs
            and self.tensor(op.inputs[0]).dtype.startswith("float")
        )

    def evaluate(self, code: OperatorCode, op: Operator) -> Optional[tuple[str, str]]:
        """None if the op maps to the Edge TPU, else (status, reason)."""
        name = code.name
        if name == "CUSTOM":
            if code.custom_code == EDGETPU_CUSTOM_OP:
                return None
            return table.NOT_SUPPORTED, f"custom op {code.custom_code!r} has no Edge TPU kernel"
        if name not in table.SUPPORTED_OPS:
            hint = table.HINTS.get(name)
            return table.NOT_SUPPORTED, f"{name} is not in the Edge TPU's supported-op table" + (f" ({hint})" if hint else "")
        rules, params = table.SUPPORTED_OPS[name]
        for reason in (self.types(code, op), self.params(op, params), self.shapes(op)):
            if reason:
                return reason
        for rule in rules:
            problem = RULE_CHECKS[rule](self, op)
            if problem:
                return table.LIMITATION, f"{problem}; the Edge TPU's limit: {table.RULES[rule].rstrip('.')}"
        return None

    def types(self, code: OperatorCode, op: Operator) -> Optional[tuple[str, str]]:
        for i in self.activations(op):
            t = self.tensor(i)
            if t.dtype not in EIGHT_BIT:
                if code.name == "QUANTIZE" and i in op.inputs:
                    return (
                        table.UNSUPPORTED_TYPE,
                        f"quantizes the {t.dtype} tensor {t.name!r} on the CPU ({table.HINTS['QUANTIZE']})",
                    )
                return (
                    table.UNSUPPORTED_TYPE,
                    f"tensor {t.name!r} is {t.dtype}; the Edge TPU computes only on 8-bit quantized tensors",
                )
            if not t.quant_scale:
                return table.UNSUPPORTED_TYPE, f"tensor {t.name!r} is {t.dtype} without quantization parameters"
        for i in op.inputs:
            if i >= 0 and self.constant(i) and self.tensor(i).dtype not in PARAM_TYPES:
                t = self.tensor(i)
                return table.UNSUPPORTED_TYPE, f"the constant {t.name!r} is {t.dtype}; weights must be 8-bit (export with --int8)"
        return None

    def params(self, op: Operator, params: tuple[int, ...]) -> Optional[tuple[str, str]]:
        for k in params:
            if k < len(op.inputs) and op.inputs[k] >= 0 and not self.constant(op.inputs[k]):
                return table.NOT_CONSTANT, f"input {k} ({self.tensor(op.inputs[k]).name!r}) is computed at run time"
        return None

    def shapes(self, op: Operator) -> Optional[tuple[str, str]]:
        for i in self.activations(op):
            t = self.tensor(i)
            shape = t.shape
            if shape and shape[0] > 1 and (len(shape) >= 3 or i in self.io):
                return table.UNSUPPORTED_RANK, (
                    f"tensor {t.name!r} {list(shape)} has a batch of {shape[0]}; the Edge TPU runs one image at a time: "
                    "export with batch 1"
                )
            if any(d != 1 for d in shape[:-3]):
                return (
                    table.UNSUPPORTED_RANK,
                    f"tensor {t.name!r} {list(shape)}: only the 3 innermost dimensions may be larger than 1",
                )
        return None

    # --- helpers for the rules ------------------------------------------------------------

    def in_shape(self, op: Operator, k: int = 0) -> tuple[int, ...]:
        return self.tensor(op.inputs[k]).shape

    def out_shape(self, op: Operator) -> tuple[int, ...]:
        return self.tensor(op.outputs[0]).shape

    def axes(self, op: Operator, rank: int) -> Optional[set[int]]:
        """The constant axes (input 1) of a reduction, made non-negative; None if not constant."""
        values = self.values(op.inputs[1]) if len(op.inputs) > 1 and op.inputs[1] >= 0 else None
        if values is None:
            return None
        return {int(a) % rank for a in np.ravel(values)} if rank else set()


def _dims_over_1(shape) -> int:
    return sum(1 for d in shape if d > 1)


def _no_fused_activation(c: _Check, op: Operator) -> Optional[str]:
    if op.fused_activation not in (None, "NONE"):
        return f"it has a fused {op.fused_activation}"
    return None


def _zero_constant_concat(c: _Check, op: Operator) -> Optional[str]:
    constants = [i for i in op.inputs if i >= 0 and c.constant(i)]
    if not constants:
        return None
    if len(op.inputs) != 2:
        return f"a constant input with {len(op.inputs)} inputs"
    for i in constants:
        t, values = c.tensor(i), c.values(i)
        zero = t.quant_zero_point[0] if t.quant_zero_point else 0
        if values is None or np.any(values != zero):
            return f"the constant input {t.name!r} is not all zeros"
    return None


def _same_dilation(c: _Check, op: Operator) -> Optional[str]:
    # Conv2DOptions: dilation_w_factor 4, dilation_h_factor 5; DepthwiseConv2DOptions: 5, 6.
    base = 4 if c.m.operator_codes[op.opcode_index].name == "CONV_2D" else 5
    w, h = c.m.option(op, base, default=1), c.m.option(op, base + 1, default=1)
    return None if w == h else f"its dilation is {w} in x and {h} in y"


def _fc_default_weights(c: _Check, op: Operator) -> Optional[str]:
    fmt = c.m.option(op, 1, "b", 0)  # FullyConnectedOptions.weights_format
    return None if fmt == 0 else "its weights use the shuffled 4x16 int8 format"


def _fc_1d_output(c: _Check, op: Operator) -> Optional[str]:
    shape = c.out_shape(op)
    return None if _dims_over_1(shape) <= 1 else f"its output {list(shape)} is not one-dimensional"


def _fc_per_tensor_weights(c: _Check, op: Operator) -> Optional[str]:
    scales = len(c.tensor(op.inputs[1]).quant_scale)
    return None if scales <= 1 else f"its weights carry {scales} per-channel scales"


def _mean_axes(c: _Check, op: Operator) -> Optional[str]:
    shape = c.in_shape(op)
    axes = c.axes(op, len(shape))
    if axes is None:
        return "its axes are not constant"
    if len(shape) >= 2 and 0 in axes:
        return f"it reduces the batch dimension of {list(shape)}"
    z = len(shape) - 1
    if len(shape) >= 2 and z in axes and shape[z] % 4:
        return f"it reduces z of {list(shape)} and {shape[z]} is not a multiple of 4"
    return None


def _no_batch_axis(c: _Check, op: Operator) -> Optional[str]:
    name = c.m.operator_codes[op.opcode_index].name
    if name == "PACK":
        rank = len(c.out_shape(op))
        axis = c.m.option(op, 1, default=0) % max(rank, 1)  # PackOptions.axis
        return f"it packs along axis {axis}, the batch dimension" if rank >= 2 and axis == 0 else None
    shape = c.in_shape(op)
    axes = c.axes(op, len(shape))
    if axes is None:
        return "its axes are not constant"
    return f"it reduces the batch dimension of {list(shape)}" if len(shape) >= 2 and 0 in axes else None


def _pad_not_batch(c: _Check, op: Operator) -> Optional[str]:
    paddings = c.values(op.inputs[1])
    if paddings is None:
        return "its paddings are not constant"
    paddings = paddings.reshape(-1, 2)
    if len(paddings) >= 2 and np.any(paddings[0] != 0):
        return f"it pads the batch dimension by {paddings[0].tolist()}"
    return None


def _prelu_1d_alpha(c: _Check, op: Operator) -> Optional[str]:
    shape = c.in_shape(op, 1)
    return None if _dims_over_1(shape) <= 1 else f"its alpha {list(shape)} is not one-dimensional"


def _resize_3d(c: _Check, op: Operator) -> Optional[str]:
    for shape in (c.in_shape(op), c.out_shape(op)):
        if _dims_over_1(shape) > 3 or (len(shape) == 4 and shape[0] != 1):
            return f"{list(shape)} is not a 3-dimensional tensor"
    return None


def _softmax_1d(c: _Check, op: Operator) -> Optional[str]:
    shape = c.in_shape(op)
    if _dims_over_1(shape) > 1:
        return f"its input {list(shape)} is not one-dimensional"
    size = int(np.prod(shape)) if shape else 1
    return None if size <= table.SOFTMAX_MAX_ELEMENTS else f"its input has {size:,} elements"


def _squeeze_leading_ones(c: _Check, op: Operator) -> Optional[str]:
    shape, out = c.in_shape(op), c.out_shape(op)
    k = len(shape) - len(out)
    if k >= 0 and all(d == 1 for d in shape[:k]) and tuple(shape[k:]) == tuple(out):
        return None
    return f"it squeezes {list(shape)} to {list(out)}, not only leading 1s"


def _strided_slice_simple(c: _Check, op: Operator) -> Optional[str]:
    strides = c.values(op.inputs[3]) if len(op.inputs) > 3 else None
    if strides is None:
        return "its strides are not constant"
    if np.any(strides != 1):
        return f"its strides are {strides.tolist()}"
    # StridedSliceOptions: ellipsis_mask 2, new_axis_mask 3.
    if c.m.option(op, 2, default=0) or c.m.option(op, 3, default=0):
        return "it uses an ellipsis or new-axis mask"
    return None


RULE_CHECKS: dict[str, Callable[[_Check, Operator], Optional[str]]] = {
    "no_fused_activation": _no_fused_activation,
    "zero_constant_concat": _zero_constant_concat,
    "same_dilation": _same_dilation,
    "fc_default_weights": _fc_default_weights,
    "fc_1d_output": _fc_1d_output,
    "fc_per_tensor_weights": _fc_per_tensor_weights,
    "mean_axes": _mean_axes,
    "no_batch_axis": _no_batch_axis,
    "pad_not_batch": _pad_not_batch,
    "prelu_1d_alpha": _prelu_1d_alpha,
    "resize_3d": _resize_3d,
    "softmax_1d": _softmax_1d,
    "squeeze_leading_ones": _squeeze_leading_ones,
    "strided_slice_simple": _strided_slice_simple,
}
