"""Parameters, MACs per layer and peak activation memory, counted from the model file.

TFLite files are read with :mod:`edgecnn.runtime.tflite_file` (no TensorFlow); ONNX files
with the ``onnx`` package and its shape inference, when it is installed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod
from pathlib import Path

from ..errors import MissingDependencyError, ModelFileError, first_line
from .arena import lifetimes_from_graph, plan

_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_DTYPE_BYTES = {"float32": 4, "float16": 2, "int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "bool": 1}


@dataclass(frozen=True)
class LayerStats:
    index: int
    op: str
    name: str
    macs: int
    params: int


@dataclass(frozen=True)
class GraphStats:
    params: int
    macs: int
    peak_memory_bytes: int
    live_memory_lower_bound: int
    layers: tuple[LayerStats, ...]

    def to_dict(self, layers: bool = False) -> dict:
        out = asdict(self)
        if not layers:
            out.pop("layers")
        return out


def tflite_op_macs(op: str, inputs, outputs, tensors) -> int:
    """Multiply-accumulates of one TFLite operator: convolutions and fully-connected layers, else 0."""
    if op not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV") or not outputs:
        return 0

    def shape(position):  # an absent optional input is index -1
        return tensors[inputs[position]].shape if len(inputs) > position and inputs[position] >= 0 else ()

    out, weights = tensors[outputs[0]].shape, shape(1)
    if op == "CONV_2D" and len(weights) == 4:  # filter (O, H, W, I)
        return prod(out) * prod(weights[1:])
    if op == "DEPTHWISE_CONV_2D" and len(weights) == 4:  # filter (1, H, W, C*M): one HxW window per output element
        return prod(out) * weights[1] * weights[2]
    if op == "FULLY_CONNECTED" and len(weights) == 2:  # filter (O, I)
        return prod(out) * weights[1]
    if op == "TRANSPOSE_CONV" and len(weights) == 4:
        # Inputs (output_shape, filter (O, H, W, I), input): every input pixel spreads H*W*O.
        return prod(shape(2)) * weights[0] * weights[1] * weights[2]
    return 0


def tflite_stats(path_or_model) -> GraphStats:
    from ..runtime.tflite_file import TFLiteModel, load_tflite
    from ..runtime.tflite_verify import verify_tflite

    parsed = isinstance(path_or_model, TFLiteModel)
    model = path_or_model if parsed else load_tflite(path_or_model)
    verify_tflite(model, "model" if parsed else str(path_or_model), ops=False)
    graph = model.subgraphs[0]
    tensors = graph.tensors
    constant = {i for i, t in enumerate(tensors) if t.buffer and model.buffer_sizes[t.buffer]}
    layers, counted = [], set()
    for index, (code, op) in enumerate(model.operators()):
        # Constant inputs are parameters, except int32 shape/axis operands; a conv's int32 bias counts.
        weights = [
            i
            for position, i in enumerate(op.inputs)
            if i in constant and i not in counted and (tensors[i].dtype != "int32" or (code.name in _WEIGHTED and position == 2))
        ]
        counted.update(weights)
        params = sum(prod(tensors[i].shape) for i in weights)
        name = tensors[op.outputs[0]].name if op.outputs else ""
        layers.append(LayerStats(index, code.name, name, tflite_op_macs(code.name, op.inputs, op.outputs, tensors), params))
    sizes = {
        i: prod(t.shape) * _DTYPE_BYTES.get(t.dtype, 4) for i, t in enumerate(tensors) if i not in constant and not t.is_variable
    }
    ops = [([i for i in op.inputs if i >= 0], list(op.outputs)) for op in graph.operators]
    return _summary(layers, ops, graph.inputs, graph.outputs, sizes)


def _summary(layers: list[LayerStats], ops, inputs, outputs, sizes: dict[int, int]) -> GraphStats:
    arena = plan(lifetimes_from_graph(ops, inputs, outputs, sizes))
    return GraphStats(
        params=sum(layer.params for layer in layers),
        macs=sum(layer.macs for layer in layers),
        peak_memory_bytes=arena.peak_bytes,
        live_memory_lower_bound=arena.live_lower_bound,
        layers=tuple(layers),
    )


#: com.microsoft quantized ops that onnx's shape inference does not know: output shape from input 0.
_SAME_SHAPE_OPS = ("QLinearAdd", "QLinearMul", "QLinearLeakyRelu", "QLinearSigmoid")


def _infer_shapes(onnx, shape_inference, model):
    """onnx shape inference, continued through the com.microsoft ops ONNX Runtime quantization emits."""
    for _ in range(len(model.graph.node) + 1):
        model = shape_inference.infer_shapes(model)
        known = {vi.name: vi for vi in list(model.graph.value_info) + list(model.graph.input)}
        added = 0
        for node in model.graph.node:
            if node.output[0] in known or node.input[0] not in known:
                continue
            source = known[node.input[0]].type.tensor_type
            dims = [d.dim_value for d in source.shape.dim]
            if node.op_type == "QGemm":  # inputs: A, a_scale, a_zp, B, ...
                weights = next((i for i in model.graph.initializer if i.name == node.input[3]), None)
                if weights is None:
                    continue
                transposed = any(a.name == "transB" and a.i for a in node.attribute)
                dims = [dims[0], weights.dims[0] if transposed else weights.dims[1]]
            elif node.op_type == "QLinearGlobalAveragePool":
                channels_last = any(a.name == "channels_last" and a.i for a in node.attribute)
                dims = [dims[0], 1, 1, dims[3]] if channels_last else [dims[0], dims[1], 1, 1]
            elif node.op_type not in _SAME_SHAPE_OPS:
                continue
            model.graph.value_info.append(onnx.helper.make_tensor_value_info(node.output[0], source.elem_type, dims))
            added += 1
        if not added:
            return model
    return model


def onnx_stats(path: str | Path) -> GraphStats:
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        raise MissingDependencyError('counting ONNX MACs needs the onnx package: pip install "edgecnn[onnx]"') from None
    from ..fileio import read_model_bytes
    from ..runtime.onnx_verify import verify_onnx

    # The runtime's checks first: onnx.load would follow external-data paths named inside the file.
    data = read_model_bytes(path)
    verify_onnx(data, path)
    try:
        return _onnx_graph_stats(onnx, numpy_helper, _infer_shapes(onnx, shape_inference, onnx.load_model_from_string(data)))
    except Exception as exc:  # DecodeError, InferenceError, or an index a checked but odd graph leaves out
        raise ModelFileError(
            f"{path}: cannot count the ONNX graph's MACs ({type(exc).__name__}: {first_line(exc, 120)})"
        ) from None


def _onnx_graph_stats(onnx, numpy_helper, model) -> GraphStats:
    graph = model.graph
    initializers = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    # QDQ graphs feed weights through DequantizeLinear: look through it to the constant.
    weight_of = dict(initializers)
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in initializers:
            weight_of[node.output[0]] = initializers[node.input[0]]

    def dims(value_info):
        return tuple(d.dim_value if d.HasField("dim_value") else 1 for d in value_info.type.tensor_type.shape.dim)

    def elem_bytes(value_info):
        return onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).itemsize

    infos = {vi.name: vi for vi in list(graph.value_info) + list(graph.input) + list(graph.output)}
    shapes = {name: dims(vi) for name, vi in infos.items()}
    layers, counted = [], set()
    for index, node in enumerate(graph.node):
        macs = 0
        op = node.op_type
        if op in ("Conv", "ConvInteger", "QLinearConv") and node.output[0] in shapes:
            w = weight_of.get(node.input[3 if op == "QLinearConv" else 1])
            if w is not None:  # (O, I/groups, kH, kW)
                macs = prod(shapes[node.output[0]]) * prod(w.shape[1:])
        elif op in ("MatMul", "Gemm", "MatMulInteger", "QLinearMatMul", "QGemm") and node.output[0] in shapes:
            b = next((weight_of[i] for i in node.input if i in weight_of and weight_of[i].ndim == 2), None)
            if b is not None:
                transposed = op in ("Gemm", "QGemm") and any(a.name == "transB" and a.i for a in node.attribute)
                macs = prod(shapes[node.output[0]]) * (b.shape[1] if transposed else b.shape[0])
        weights = [
            i
            for i in node.input
            if i in initializers and i not in counted and initializers[i].ndim >= 1 and initializers[i].size > 1
        ]
        counted.update(weights)
        layers.append(LayerStats(index, op, node.name, macs, sum(initializers[i].size for i in weights)))
    sizes = {}
    for name, vi in infos.items():
        if name not in initializers and name in shapes:
            sizes[name] = prod(shapes[name]) * elem_bytes(vi)
    ids = {name: i for i, name in enumerate(sizes)}
    ops = [([ids[n] for n in node.input if n in ids], [ids[n] for n in node.output if n in ids]) for node in graph.node]
    inputs = [ids[v.name] for v in graph.input if v.name in ids]
    outputs = [ids[v.name] for v in graph.output if v.name in ids]
    return _summary(layers, ops, inputs, outputs, {ids[n]: s for n, s in sizes.items()})


def graph_stats(path: str | Path) -> GraphStats:
    suffix = Path(path).suffix
    if suffix == ".tflite":
        return tflite_stats(path)
    if suffix == ".onnx":
        return onnx_stats(path)
    raise ModelFileError(f"{path}: graph statistics need a .tflite or .onnx file")
