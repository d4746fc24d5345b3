"""Small TFLite models built by hand with the schema's object API, for tests of file readers and checkers."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

S = pytest.importorskip("ai_edge_litert.schema_py_generated")

_TYPES = {"float32": S.TensorType.FLOAT32, "int8": S.TensorType.INT8, "uint8": S.TensorType.UINT8, "int32": S.TensorType.INT32}


def T(shape, dtype="int8", values=None, zero_point=0):
    """A tensor spec: constant when `values` is given."""
    return {"shape": list(shape), "dtype": dtype, "values": values, "zero_point": zero_point}


def pack(model) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def one_op(op, inputs, outputs, options=None, version=1, custom=None) -> bytes:
    """A model holding a single operator; non-constant inputs are the graph inputs."""
    m, sg = S.ModelT(), S.SubGraphT()
    m.version, m.buffers, sg.tensors = 3, [S.BufferT()], []

    def add(spec):
        t = S.TensorT()
        t.shape, t.type, t.name = spec["shape"], _TYPES[spec["dtype"]], f"t{len(sg.tensors)}"
        if spec["dtype"] in ("int8", "uint8"):
            t.quantization = S.QuantizationParametersT()
            t.quantization.scale, t.quantization.zeroPoint = [0.1], [spec["zero_point"]]
        buffer = S.BufferT()
        if spec["values"] is not None:
            raw = np.asarray(spec["values"], dtype=spec["dtype"]).reshape(spec["shape"]).tobytes()
            buffer.data = np.frombuffer(raw, np.uint8)
        m.buffers.append(buffer)
        t.buffer = len(m.buffers) - 1
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    ins, outs = [add(s) for s in inputs], [add(s) for s in outputs]
    sg.inputs, sg.outputs = [i for i, s in zip(ins, inputs) if s["values"] is None], outs
    code = S.OperatorCodeT()
    code.builtinCode = getattr(S.BuiltinOperator, op)
    code.deprecatedBuiltinCode, code.version, code.customCode = min(code.builtinCode, 127), version, custom
    o = S.OperatorT()
    o.opcodeIndex, o.inputs, o.outputs = 0, ins, outs
    if options is not None:
        o.builtinOptionsType, o.builtinOptions = getattr(S.BuiltinOptions, type(options).__name__[:-1]), options
    sg.operators, m.subgraphs, m.operatorCodes = [o], [sg], [code]
    return pack(m)


def options(kind, **fields):
    """Builtin options of an operator, e.g. ``options("Conv2DOptions", strideW=1)``."""
    obj = getattr(S, f"{kind}T")()
    for k, v in fields.items():
        setattr(obj, k, v)
    return obj


def mutate(data: bytes, change) -> bytes:
    """The model with `change(model)` applied to its object-API form."""
    model = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    change(model)
    return pack(model)


def conv2d(dilation=(1, 1), weights_constant=True) -> bytes:
    """A 3x3 convolution, 4 -> 8 channels on 8x8, stride 1, 'same' padding: 8*8*8*3*3*4 MACs."""
    w = T((8, 3, 3, 4), values=np.ones((8, 3, 3, 4)) if weights_constant else None)
    opts = options("Conv2DOptions", strideW=1, strideH=1, dilationWFactor=dilation[0], dilationHFactor=dilation[1])
    return one_op("CONV_2D", [T((1, 8, 8, 4)), w, T((8,), "int32", np.zeros(8))], [T((1, 8, 8, 8))], opts, version=3)
