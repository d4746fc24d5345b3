"""Coral Edge TPU target: op table rules, partitioning, op versions, compiler log, compiler driver,
delegate errors, export with --target edgetpu, and every registered architecture mapping 100%."""

from __future__ import annotations

import json
import os
import stat
import sys
import warnings
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.artifact import ArtifactMetadata, Normalization, write_sidecar
from edgecnn.cli import main
from edgecnn.errors import ConfigError, MissingDependencyError, VerificationError
from edgecnn.runtime import devices
from edgecnn.targets.edgetpu import check_model, max_accepted_version, parse_log, table
from edgecnn.targets.edgetpu.checker import RULE_CHECKS
from edgecnn.targets.edgetpu.latency import LATENCY_REFERENCES, estimate_latency

S = pytest.importorskip("ai_edge_litert.schema_py_generated")

SHAPE = (16, 16, 3)
LABELS = ("a", "b", "c", "d")


# --- building TFLite flatbuffers with the schema's object API ------------------------------

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
    obj = getattr(S, f"{kind}T")()
    for k, v in fields.items():
        setattr(obj, k, v)
    return obj


def mutate(data: bytes, change) -> bytes:
    model = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    change(model)
    return pack(model)


def conv(dilation=(1, 1), weights_constant=True):
    w = T((8, 3, 3, 4), values=np.ones((8, 3, 3, 4)) if weights_constant else None)
    opts = options("Conv2DOptions", strideW=1, strideH=1, dilationWFactor=dilation[0], dilationHFactor=dilation[1])
    return one_op("CONV_2D", [T((1, 8, 8, 4)), w, T((8,), "int32", np.zeros(8))], [T((1, 8, 8, 8))], opts, version=3)


def _per_channel_fc():
    def per_channel(model):
        weights = model.subgraphs[0].tensors[1]
        weights.quantization.scale, weights.quantization.zeroPoint = [0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0]

    fc = one_op("FULLY_CONNECTED", [T((1, 8)), T((4, 8), values=np.ones(32))], [T((1, 4))], options("FullyConnectedOptions"))
    return mutate(fc, per_channel)


# (name, model, maps, text in the status or reason)
RULE_CASES = [
    ("add", lambda: one_op("ADD", [T((1, 4, 4, 8)), T((1, 4, 4, 8))], [T((1, 4, 4, 8))]), True, None),
    (
        "max pool",
        lambda: one_op(
            "MAX_POOL_2D",
            [T((1, 8, 8, 4))],
            [T((1, 4, 4, 4))],
            options("Pool2DOptions", strideW=2, strideH=2, filterWidth=2, filterHeight=2),
        ),
        True,
        None,
    ),
    (
        "max pool + relu",
        lambda: one_op(
            "MAX_POOL_2D",
            [T((1, 8, 8, 4))],
            [T((1, 4, 4, 4))],
            options(
                "Pool2DOptions",
                strideW=2,
                strideH=2,
                filterWidth=2,
                filterHeight=2,
                fusedActivationFunction=S.ActivationFunctionType.RELU,
            ),
        ),
        False,
        "fused RELU",
    ),
    (
        "avg pool + relu6",
        lambda: one_op(
            "AVERAGE_POOL_2D",
            [T((1, 8, 8, 4))],
            [T((1, 4, 4, 4))],
            options("Pool2DOptions", fusedActivationFunction=S.ActivationFunctionType.RELU6),
        ),
        False,
        "fused RELU6",
    ),
    (
        "concat zero pad",
        lambda: one_op(
            "CONCATENATION",
            [T((1, 4, 4, 8)), T((1, 4, 4, 8), values=np.full(128, 3), zero_point=3)],
            [T((1, 4, 4, 16))],
            options("ConcatenationOptions", axis=3),
        ),
        True,
        None,
    ),
    (
        "concat constant",
        lambda: one_op(
            "CONCATENATION",
            [T((1, 4, 4, 8)), T((1, 4, 4, 8), values=np.ones(128))],
            [T((1, 4, 4, 16))],
            options("ConcatenationOptions", axis=3),
        ),
        False,
        "not all zeros",
    ),
    (
        "concat 3 with constant",
        lambda: one_op(
            "CONCATENATION",
            [T((1, 4, 4, 8)), T((1, 4, 4, 8)), T((1, 4, 4, 8), values=np.zeros(128))],
            [T((1, 4, 4, 24))],
            options("ConcatenationOptions", axis=3),
        ),
        False,
        "3 inputs",
    ),
    ("conv", lambda: conv(), True, None),
    ("conv dilation 2x2", lambda: conv((2, 2)), True, None),
    ("conv dilation 2x1", lambda: conv((2, 1)), False, "dilation is 2 in x and 1 in y"),
    ("conv weights at run time", lambda: conv(weights_constant=False), False, table.NOT_CONSTANT),
    (
        "depthwise dilation 1x2",
        lambda: one_op(
            "DEPTHWISE_CONV_2D",
            [T((1, 8, 8, 4)), T((1, 3, 3, 4), values=np.ones(36)), T((4,), "int32", np.zeros(4))],
            [T((1, 8, 8, 4))],
            options("DepthwiseConv2DOptions", depthMultiplier=1, dilationWFactor=1, dilationHFactor=2),
        ),
        False,
        "dilation",
    ),
    (
        "fully connected",
        lambda: one_op(
            "FULLY_CONNECTED",
            [T((1, 8)), T((4, 8), values=np.ones(32)), T((4,), "int32", np.zeros(4))],
            [T((1, 4))],
            options("FullyConnectedOptions"),
        ),
        True,
        None,
    ),
    (
        "fully connected 2-D output",
        lambda: one_op(
            "FULLY_CONNECTED",
            [T((1, 2, 8)), T((4, 8), values=np.ones(32))],
            [T((1, 2, 4))],
            options("FullyConnectedOptions", keepNumDims=True),
        ),
        False,
        "not one-dimensional",
    ),
    ("fully connected per-channel weights", lambda: _per_channel_fc(), False, "per-channel scales"),
    (
        "fully connected shuffled weights",
        lambda: one_op(
            "FULLY_CONNECTED",
            [T((1, 8)), T((4, 8), values=np.ones(32))],
            [T((1, 4))],
            options("FullyConnectedOptions", weightsFormat=1),
        ),
        False,
        "shuffled",
    ),
    (
        "mean over x and y",
        lambda: one_op("MEAN", [T((1, 4, 4, 6)), T((2,), "int32", [1, 2])], [T((1, 6))], options("ReducerOptions")),
        True,
        None,
    ),
    (
        "mean over z of 8",
        lambda: one_op("MEAN", [T((1, 4, 4, 8)), T((1,), "int32", [-1])], [T((1, 4, 4))], options("ReducerOptions")),
        True,
        None,
    ),
    (
        "mean over z of 6",
        lambda: one_op("MEAN", [T((1, 4, 4, 6)), T((1,), "int32", [3])], [T((1, 4, 4))], options("ReducerOptions")),
        False,
        "not a multiple of 4",
    ),
    (
        "mean over batch",
        lambda: one_op(
            "MEAN", [T((1, 4, 4, 8)), T((1,), "int32", [0])], [T((1, 4, 4, 8))], options("ReducerOptions", keepDims=True)
        ),
        False,
        "batch dimension",
    ),
    (
        "reduce max over batch",
        lambda: one_op(
            "REDUCE_MAX", [T((1, 4, 4, 8)), T((1,), "int32", [0])], [T((1, 4, 4, 8))], options("ReducerOptions", keepDims=True)
        ),
        False,
        "batch dimension",
    ),
    (
        "reduce min over y",
        lambda: one_op("REDUCE_MIN", [T((1, 4, 4, 8)), T((1,), "int32", [1])], [T((1, 4, 8))], options("ReducerOptions")),
        True,
        None,
    ),
    (
        "pad x and y",
        lambda: one_op("PAD", [T((1, 4, 4, 8)), T((4, 2), "int32", [0, 0, 1, 1, 1, 1, 0, 0])], [T((1, 6, 6, 8))]),
        True,
        None,
    ),
    (
        "pad batch",
        lambda: one_op("PAD", [T((1, 4, 4, 8)), T((4, 2), "int32", [0, 1, 0, 0, 0, 0, 0, 0])], [T((2, 4, 4, 8))]),
        False,
        "batch",
    ),
    (
        "pack axis 1",
        lambda: one_op("PACK", [T((1, 8)), T((1, 8))], [T((1, 2, 8))], options("PackOptions", valuesCount=2, axis=1)),
        True,
        None,
    ),
    (
        "pack axis 0",
        lambda: one_op("PACK", [T((1, 8)), T((1, 8))], [T((2, 1, 8))], options("PackOptions", valuesCount=2, axis=0)),
        False,
        "batch",
    ),
    (
        "prelu 1-D alpha",
        lambda: one_op("PRELU", [T((1, 4, 4, 8)), T((1, 1, 8), values=np.ones(8))], [T((1, 4, 4, 8))]),
        True,
        None,
    ),
    (
        "prelu 2-D alpha",
        lambda: one_op("PRELU", [T((1, 4, 4, 8)), T((1, 4, 8), values=np.ones(32))], [T((1, 4, 4, 8))]),
        False,
        "alpha",
    ),
    (
        "resize bilinear",
        lambda: one_op(
            "RESIZE_BILINEAR", [T((1, 4, 4, 8)), T((2,), "int32", [8, 8])], [T((1, 8, 8, 8))], options("ResizeBilinearOptions")
        ),
        True,
        None,
    ),
    ("softmax 1-D", lambda: one_op("SOFTMAX", [T((1, 10))], [T((1, 10))], options("SoftmaxOptions", beta=1.0)), True, None),
    (
        "softmax 2-D",
        lambda: one_op("SOFTMAX", [T((1, 4, 10))], [T((1, 4, 10))], options("SoftmaxOptions", beta=1.0)),
        False,
        "not one-dimensional",
    ),
    (
        "softmax 20,000",
        lambda: one_op("SOFTMAX", [T((1, 20000))], [T((1, 20000))], options("SoftmaxOptions", beta=1.0)),
        False,
        "20,000 elements",
    ),
    (
        "squeeze leading",
        lambda: one_op("SQUEEZE", [T((1, 1, 1, 8))], [T((1, 8))], options("SqueezeOptions", squeezeDims=[1, 2])),
        True,
        None,
    ),
    (
        "squeeze inner",
        lambda: one_op("SQUEEZE", [T((1, 4, 1, 8))], [T((1, 4, 8))], options("SqueezeOptions", squeezeDims=[2])),
        False,
        "leading 1s",
    ),
    (
        "strided slice",
        lambda: one_op(
            "STRIDED_SLICE",
            [T((1, 4, 4, 8)), T((4,), "int32", [0, 0, 0, 0]), T((4,), "int32", [1, 2, 4, 8]), T((4,), "int32", [1, 1, 1, 1])],
            [T((1, 2, 4, 8))],
            options("StridedSliceOptions"),
        ),
        True,
        None,
    ),
    (
        "strided slice stride 2",
        lambda: one_op(
            "STRIDED_SLICE",
            [T((1, 4, 4, 8)), T((4,), "int32", [0, 0, 0, 0]), T((4,), "int32", [1, 4, 4, 8]), T((4,), "int32", [1, 2, 1, 1])],
            [T((1, 2, 4, 8))],
            options("StridedSliceOptions"),
        ),
        False,
        "strides",
    ),
    (
        "strided slice ellipsis",
        lambda: one_op(
            "STRIDED_SLICE",
            [T((1, 4, 4, 8)), T((4,), "int32", [0, 0, 0, 0]), T((4,), "int32", [1, 2, 4, 8]), T((4,), "int32", [1, 1, 1, 1])],
            [T((1, 2, 4, 8))],
            options("StridedSliceOptions", ellipsisMask=1),
        ),
        False,
        "ellipsis",
    ),
    (
        "leaky relu",
        lambda: one_op("LEAKY_RELU", [T((1, 4, 4, 8))], [T((1, 4, 4, 8))], options("LeakyReluOptions", alpha=0.1)),
        False,
        table.NOT_SUPPORTED,
    ),
    ("custom op", lambda: one_op("CUSTOM", [T((1, 8))], [T((1, 8))], custom="MyOp"), False, "custom op 'MyOp'"),
    (
        "float add",
        lambda: one_op("ADD", [T((1, 4, 4, 8), "float32"), T((1, 4, 4, 8), "float32")], [T((1, 4, 4, 8), "float32")]),
        False,
        "float32",
    ),
    ("5-D tensor", lambda: one_op("ADD", [T((1, 2, 4, 4, 8)), T((1, 2, 4, 4, 8))], [T((1, 2, 4, 4, 8))]), False, "3 innermost"),
    ("batch of 4", lambda: one_op("ADD", [T((4, 4, 4, 8)), T((4, 4, 4, 8))], [T((4, 4, 4, 8))]), False, "batch of 4"),
]


@pytest.mark.parametrize("name, build, maps, text", RULE_CASES, ids=[c[0] for c in RULE_CASES])
def test_op_table_rules(name, build, maps, text):
    report = check_model(build())
    op = report.ops[0]
    assert op.mapped is maps, (op.status, op.reason)
    assert report.compatible is maps
    if not maps:
        assert text in f"{op.status}: {op.reason}"
        assert report.first_unmapped["index"] == 0


def test_table_is_complete_and_matches_the_documented_list():
    assert set(RULE_CHECKS) == set(table.RULES)
    assert all(set(rules) <= set(table.RULES) for rules, _ in table.SUPPORTED_OPS.values())
    documented = """ADD SUB MUL MAXIMUM MINIMUM LOGISTIC TANH RELU RELU6 RELU_N1_TO_1 L2_NORMALIZATION EXPAND_DIMS
        QUANTIZE SLICE SPACE_TO_DEPTH SPLIT AVERAGE_POOL_2D MAX_POOL_2D CONCATENATION CONV_2D DEPTHWISE_CONV_2D
        FULLY_CONNECTED MEAN PACK PAD PRELU REDUCE_MAX REDUCE_MIN RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR
        SOFTMAX SQUEEZE STRIDED_SLICE TRANSPOSE_CONV LSTM""".split()
    assert set(documented) <= set(table.SUPPORTED_OPS)
    assert "BIDIRECTIONAL_SEQUENCE_LSTM" not in table.SUPPORTED_OPS


def test_op_version_limits_of_compiler_16():
    # Versions users report 16.0 rejecting are one past these.
    assert max_accepted_version("CONV_2D") == 5
    assert max_accepted_version("QUANTIZE") == 2
    assert max_accepted_version("TRANSPOSE_CONV") == 3
    assert max_accepted_version("EXP") == 1
    assert max_accepted_version("DEPTHWISE_CONV_2D") == 6
    assert max_accepted_version("FULLY_CONNECTED") == 9
    assert max_accepted_version("ADD") == 3 and max_accepted_version("MEAN") == 3

    report = check_model(mutate(conv(), lambda m: setattr(m.operatorCodes[0], "version", 6)))
    assert not report.compatible and report.ops_mapped == 0 and report.subgraphs == 0
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in report.errors[0]
    assert report.first_unmapped["index"] == 0 and report.first_unmapped["op"] == "CONV_2D"
    assert report.ops[0].status == table.VERSION_REJECTED
    newer = one_op("GELU", [T((1, 8))], [T((1, 8))])
    assert "does not know the op GELU" in check_model(newer).errors[0]


# --- converted models: partitioning, float, float I/O, dynamic batch -------------------------


class _Calibration:
    def batches(self, normalization):
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield normalization.apply(rng.integers(0, 256, (1, *SHAPE)))


@pytest.fixture(scope="module")
def converted():
    from edgecnn.targets.edgetpu.export import convert_int8
    from edgecnn.tf import keras, tensorflow

    tf, K = tensorflow(), keras()
    K.utils.set_random_seed(0)

    def net(middle=None):
        inp = K.Input(SHAPE)
        x = K.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        if middle is not None:
            x = middle(x)
        x = K.layers.DepthwiseConv2D(3, padding="same")(x)
        x = K.layers.Conv2D(16, 1, activation="relu")(x)
        x = K.layers.GlobalAveragePooling2D()(x)
        return K.Model(inp, K.layers.Dense(len(LABELS))(x))

    def convert(model, quantize=True):
        fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec((1, *SHAPE), tf.float32))
        converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
        if quantize:  # int8 kernels, float input and output (the converter's default I/O)
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = lambda: ([b] for b in _Calibration().batches(Normalization()))
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        return converter.convert()

    plain = net()
    return {
        "int8": convert_int8(plain, SHAPE, _Calibration(), Normalization()),
        "middle": convert_int8(net(K.layers.LeakyReLU(0.1)), SHAPE, _Calibration(), Normalization()),
        "float": convert(plain, quantize=False),
        "float_io": convert(plain),
    }


def test_mappable_model_is_compatible(converted):
    report = check_model(converted["int8"])
    assert report.compatible and report.ops_mapped == report.ops_total > 5 and report.subgraphs == 1
    assert report.first_unmapped is None and report.errors == ()
    d = report.to_dict()
    for key in (
        "target",
        "compatible",
        "ops_total",
        "ops_mapped",
        "subgraphs",
        "first_unmapped",
        "param_bytes",
        "on_chip_cache_bytes",
        "off_chip_bytes",
        "ops",
    ):
        assert key in d
    assert d["target"] == "edgetpu" and d["on_chip_cache_bytes"] == 8 * 1024 * 1024 and d["off_chip_bytes"] == 0
    assert d["param_bytes"] == report.param_bytes > 0
    assert d["estimated_latency"]["estimate"] is True and d["estimated_latency"]["milliseconds"] > 0


def test_unmappable_op_in_the_middle_sends_the_rest_to_the_cpu(converted):
    report = check_model(converted["middle"])
    names = [o.op for o in report.ops]
    k = names.index("LEAKY_RELU")
    assert 0 < k < len(names) - 1
    assert report.first_unmapped["index"] == k and report.first_unmapped["op"] == "LEAKY_RELU"
    assert "supported-op table" in report.first_unmapped["reason"]
    assert all(o.mapped for o in report.ops[:k]) and not any(o.mapped for o in report.ops[k:])
    assert report.ops_mapped == k and report.ops_cpu == len(names) - k
    assert {o.status for o in report.ops[k + 1 :]} == {table.AFTER_CPU_OP}
    assert report.subgraphs == 1 and not report.compatible
    text = report.to_text()
    assert "LEAKY_RELU" in text and "First unmapped: #%d LEAKY_RELU" % k in text


def test_float_model_is_rejected_with_a_clear_reason(converted):
    report = check_model(converted["float"])
    assert not report.compatible and report.ops_mapped == 0 and report.subgraphs == 0
    assert "not quantized" in report.errors[0] and "--int8" in report.errors[0]
    assert "--int8" in report.first_unmapped["reason"]
    assert any("float32" in (o.reason or "") for o in report.ops)


def test_float_io_quantize_runs_on_the_cpu_in_front_of_the_subgraph(converted):
    report = check_model(converted["float_io"])
    ops = report.ops
    assert ops[0].op == "QUANTIZE" and not ops[0].mapped and "--io uint8" in ops[0].reason
    assert ops[-1].op == "DEQUANTIZE" and not ops[-1].mapped
    assert all(o.mapped for o in ops[1:-1])
    assert report.subgraphs == 1 and not report.compatible
    assert report.first_unmapped["index"] == 0


def test_dynamic_batch_model_is_rejected(converted):
    def dynamic(model):
        graph = model.subgraphs[0]
        graph.tensors[graph.inputs[0]].shapeSignature = [-1, *SHAPE]

    report = check_model(mutate(converted["int8"], dynamic))
    assert not report.compatible and report.ops_mapped == 0 and report.subgraphs == 0
    assert "dynamic shape" in report.errors[0] and "[-1, 16, 16, 3]" in report.errors[0]
    assert report.first_unmapped["index"] == 0 and "batch of 1" in report.first_unmapped["reason"]


def test_check_cli(converted, tmp_path):
    good, bad = tmp_path / "good.tflite", tmp_path / "bad.tflite"
    good.write_bytes(converted["int8"])
    bad.write_bytes(converted["middle"])
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "--target", "edgetpu", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "Number of operations that will run on Edge TPU" in ok.stdout and "Mapped to Edge TPU" in ok.stdout
    fail = runner.invoke(main, ["check", "--target", "edgetpu", str(bad), "--json"])
    assert fail.exit_code == 1
    d = json.loads(fail.stdout)
    assert d["compatible"] is False and d["first_unmapped"]["op"] == "LEAKY_RELU"
    text = runner.invoke(main, ["check", "--target", "edgetpu", str(bad)])
    assert text.exit_code == 1 and text.stderr.strip().splitlines()[-1].startswith(
        "Error: bad.tflite is not compatible with the Edge TPU"
    )
    missing = runner.invoke(main, ["check", str(good)])
    assert missing.exit_code == 1 and "--target" in missing.stderr
    junk = tmp_path / "junk.tflite"
    junk.write_text("not a model")
    result = runner.invoke(main, ["check", "--target", "edgetpu", str(junk)])
    assert result.exit_code == 1 and "not a TFLite model" in result.stderr and "Traceback" not in result.output


# --- the compiler's log and a test double of the compiler ------------------------------------

COMPILED_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 245 ms.

Input model: model_int8.tflite
Input size: 250.13KiB
Output model: model_int8_edgetpu.tflite
Output size: 421.70KiB
On-chip memory used for caching model parameters: 301.25KiB
On-chip memory remaining for caching model parameters: 7.71MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 21
Operation log: model_int8_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""

PARTIAL_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 96 ms.

Input model: net.tflite
Input size: 7.02MiB
Output model: net_edgetpu.tflite
Output size: 7.14MiB
On-chip memory used for caching model parameters: 80.00KiB
On-chip memory remaining for caching model parameters: 6.04MiB
Off-chip memory used for streaming uncached model parameters: 1.50MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 9
Operation log: net_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 3
Number of operations that will run on CPU: 6

Operator                       Count      Status

QUANTIZE                       1          Mapped to Edge TPU
CONV_2D                        2          Mapped to Edge TPU
TRANSPOSE                      1          Operation not supported
CONV_2D                        3          More than one subgraph is not supported
MEAN                           1          More than one subgraph is not supported
QUANTIZE                       1          More than one subgraph is not supported
Compilation child process completed within timeout period.
Compilation succeeded!
"""

FAILED_LOG = """\
Edge TPU Compiler version 16.0.384591198
ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of this builtin might be supported. Are you using an old TFLite binary with a newer model?

ERROR: Registration failed.

Invalid model: net.tflite
Model could not be parsed
"""


def test_parse_log_fully_mapped():
    report = parse_log(COMPILED_LOG, "model_int8_edgetpu.tflite")
    assert report.compatible and report.ops_total == report.ops_mapped == 21 and report.subgraphs == 1
    assert report.source == "edgetpu_compiler 16.0.384591198"
    assert report.param_bytes == round(301.25 * 1024) and report.off_chip_bytes == 0
    assert report.on_chip_cache_bytes == round(301.25 * 1024) + round(7.71 * 1024 * 1024)
    assert report.to_dict()["first_unmapped"] is None


def test_parse_log_partial_mapping_and_the_operation_log_file():
    report = parse_log(PARTIAL_LOG, "net_edgetpu.tflite")
    assert not report.compatible and report.ops_total == 9 and report.ops_mapped == 3 and report.ops_cpu == 6
    assert report.first_unmapped == {
        "index": None,
        "op": "TRANSPOSE",
        "status": "Operation not supported",
        "reason": "Operation not supported",
    }
    assert report.off_chip_bytes == int(1.5 * 1024 * 1024)
    # The operation log file repeats the table; console output and log together count once.
    log_file = (
        "Edge TPU Compiler version 16.0.384591198\nInput: net.tflite\nOutput: net_edgetpu.tflite\n\n"
        + PARTIAL_LOG[PARTIAL_LOG.index("Operator  ") :]
    )
    assert parse_log(PARTIAL_LOG + "\n" + log_file).ops_total == 9
    assert parse_log(log_file).ops_mapped == 3


def test_parse_log_failed_compile():
    report = parse_log(FAILED_LOG)
    assert not report.compatible and report.ops_total == 0
    assert any("version '6'" in e for e in report.errors)


FAKE_COMPILER = """\
#!{python}
# Test double of edgetpu_compiler: writes <stem>_edgetpu.tflite and a log in its documented format.
import argparse, os, shutil, sys
from pathlib import Path
from edgecnn.runtime.tflite_file import load_tflite

p = argparse.ArgumentParser()
p.add_argument("-s", "--show_operations", action="store_true")
p.add_argument("-o", "--out_dir", default=".")
p.add_argument("model")
a = p.parse_args()
model, out = Path(a.model), Path(a.out_dir)
if os.environ.get("FAKE_EDGETPU_COMPILER_FAIL"):
    print("Edge TPU Compiler version 16.0.384591198")
    print("ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of this builtin might be supported.")
    print("\\nERROR: Registration failed.\\n\\nInvalid model: " + model.name + "\\nModel could not be parsed")
    sys.exit(1)
ops = [code.name for code, _ in load_tflite(model).operators()]
shutil.copy(model, out / (model.stem + "_edgetpu.tflite"))
table = "Operator                       Count      Status\\n\\n" + "".join(
    f"{{name:<30}} {{ops.count(name):<10}} Mapped to Edge TPU\\n" for name in dict.fromkeys(ops))
(out / (model.stem + "_edgetpu.log")).write_text(
    "Edge TPU Compiler version 16.0.384591198\\nInput: " + model.name + "\\nOutput: " + model.stem + "_edgetpu.tflite\\n\\n" + table)
print("Edge TPU Compiler version 16.0.384591198\\nStarted a compilation timeout timer of 180 seconds.\\n")
print("Model compiled successfully in 12 ms.\\n\\nInput model: " + str(model) + "\\nInput size: 20.00KiB")
print("On-chip memory used for caching model parameters: 10.00KiB")
print("On-chip memory remaining for caching model parameters: 7.90MiB")
print("Off-chip memory used for streaming uncached model parameters: 0.00B")
print("Number of Edge TPU subgraphs: 1\\nTotal number of operations: " + str(len(ops)))
print("Operation log: " + model.stem + "_edgetpu.log\\n")
if a.show_operations:
    print(table)
print("Compilation child process completed within timeout period.\\nCompilation succeeded!")
"""


@pytest.fixture()
def fake_compiler(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(FAKE_COMPILER.format(python=sys.executable))
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    return exe


@pytest.fixture()
def no_compiler(tmp_path, monkeypatch):
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_compile_model_with_the_fake_compiler(converted, tmp_path, fake_compiler, monkeypatch):
    from edgecnn.targets.edgetpu import CompilerError, compile_model, find_compiler

    assert find_compiler() == str(fake_compiler)
    model = tmp_path / "net.tflite"
    model.write_bytes(converted["int8"])
    out = tmp_path / "out"
    out.mkdir()
    compiled = compile_model(model, out)
    assert compiled.model == out / "net_edgetpu.tflite" and compiled.model.is_file() and compiled.log.is_file()
    assert compiled.report.compatible and compiled.report.ops_total == check_model(model).ops_total
    monkeypatch.setenv("FAKE_EDGETPU_COMPILER_FAIL", "1")
    with pytest.raises(CompilerError, match="version '6'"):
        compile_model(model, out)


def test_compile_model_without_the_compiler_says_how_to_get_it(converted, tmp_path, no_compiler):
    from edgecnn.targets.edgetpu import CompilerError, compile_model

    model = tmp_path / "net.tflite"
    model.write_bytes(converted["int8"])
    with pytest.raises(CompilerError, match="apt-get install edgetpu-compiler"):
        compile_model(model)


# --- export --target edgetpu -------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory):
    """An untrained xception-pico (model.keras + metadata) and uint8 calibration images."""
    from edgecnn.nets import create_model
    from edgecnn.tf import keras

    keras().utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("edgetpu_export")
    model = create_model("xception-pico", SHAPE, num_classes=len(LABELS))
    model.save(root / "model.keras")
    write_sidecar(
        root / "model.keras",
        ArtifactMetadata(format="keras", precision="float32", labels=LABELS, input_shape=SHAPE, arch="xception-pico"),
    )
    np.save(root / "calib.npy", np.random.default_rng(0).integers(0, 256, (32, *SHAPE), dtype=np.uint8))
    return root


def _export_args(root, out):
    return [
        "export",
        str(root / "model.keras"),
        "--int8",
        "--target",
        "edgetpu",
        "--calib",
        str(root / "calib.npy"),
        "--calib-size",
        "32",
        "-o",
        str(out),
    ]


def test_export_for_edgetpu_with_the_compiler(keras_dir, tmp_path, fake_compiler):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, _export_args(keras_dir, out))
    assert result.exit_code == 0, result.output
    assert "Edge TPU pre-flight check: " in result.stdout and "in 1 subgraph" in result.stdout
    assert "model_int8_edgetpu.tflite" in result.stdout
    check = json.loads((out / "model_int8_edgetpu_check.json").read_text())
    assert check["compatible"] and check["ops_mapped"] == check["ops_total"] and check["subgraphs"] == 1
    compiled = json.loads((out / "model_int8_edgetpu_compile.json").read_text())
    assert compiled["compatible"] and compiled["source"].startswith("edgetpu_compiler 16.0")
    assert compiled["ops_total"] == check["ops_total"]
    assert (out / "model_int8_edgetpu.log").is_file()
    meta = ArtifactMetadata.from_json((out / "model_int8_edgetpu.json").read_text())
    assert meta.labels == LABELS and meta.precision == "int8" and meta.input_dtype == "uint8"
    assert json.loads((out / "export.json").read_text())["options"]["target"] == "edgetpu"


def test_export_for_edgetpu_without_the_compiler(keras_dir, tmp_path, no_compiler):
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.targets.edgetpu.export import EdgeTpuCompilerMissing

    out = tmp_path / "out"
    options = ExportOptions(int8=True, target="edgetpu", calib_path=keras_dir / "calib.npy", calib_size=32)
    with pytest.warns(EdgeTpuCompilerMissing, match="apt-get install edgetpu-compiler"):
        result = export_model(keras_dir / "model.keras", out, options)
    assert [a.name for a in result.artifacts] == ["model_fp32.tflite", "model_int8.tflite"]
    assert json.loads((out / "model_int8_edgetpu_check.json").read_text())["compatible"]
    assert not (out / "model_int8_edgetpu.tflite").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "needs --int8"),
        ({"int8": True, "io": "float32"}, "--io uint8"),
        ({"int8": True, "formats": ("onnx",)}, "include tflite"),
        ({"int8": True, "target": "jetson"}, "--target must be one of edgetpu"),
    ],
)
def test_export_target_option_errors(kwargs, message):
    from edgecnn.export import ExportOptions

    with pytest.raises(ConfigError, match=message):
        ExportOptions(**{"target": "edgetpu", **kwargs})


def test_export_refuses_a_model_that_would_not_map(keras_dir, tmp_path, monkeypatch, no_compiler):
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.targets.edgetpu import export as edgetpu_export

    real = edgetpu_export.convert_int8
    monkeypatch.setattr(edgetpu_export, "convert_int8", lambda *a, **k: mutate(real(*a, **k), _second_op_to_leaky_relu))
    options_ = ExportOptions(int8=True, target="edgetpu", calib_path=keras_dir / "calib.npy", calib_size=32)
    with pytest.raises(VerificationError, match="would not run entirely on the Edge TPU"):
        export_model(keras_dir / "model.keras", tmp_path, options_)
    assert not json.loads((tmp_path / "model_int8_edgetpu_check.json").read_text())["compatible"]


def _second_op_to_leaky_relu(model):
    """Turn operator #1 into a LEAKY_RELU (the Edge TPU has none); its tensors stay."""
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.LEAKY_RELU
    code.version = 1
    model.operatorCodes.append(code)
    op = model.subgraphs[0].operators[1]
    op.opcodeIndex, op.builtinOptionsType, op.builtinOptions = len(model.operatorCodes) - 1, 0, None


# --- the device: delegate and device errors ------------------------------------------------------


@pytest.fixture()
def compiled_model(tmp_path):
    """A model shaped like edgetpu_compiler's output (one edgetpu-custom-op), with a sidecar."""
    data = one_op("CUSTOM", [T((1, *SHAPE), "uint8")], [T((1, len(LABELS)), "uint8")], custom=devices.EDGETPU_CUSTOM_OP)
    path = tmp_path / "model_int8_edgetpu.tflite"
    path.write_bytes(data)
    from edgecnn.artifact import Quantization

    q = Quantization("uint8", 0.1, 0)
    write_sidecar(
        path,
        ArtifactMetadata(
            format="tflite",
            precision="int8",
            labels=LABELS,
            input_shape=SHAPE,
            input_dtype="uint8",
            output_dtype="uint8",
            input_quantization=q,
            output_quantization=q,
        ),
    )
    return path


def test_parse_device():
    assert devices.parse_device(None) == devices.CPU == devices.parse_device("cpu")
    assert devices.parse_device("edgetpu") == devices.Device("edgetpu")
    assert devices.parse_device("edgetpu:usb:0").address == "usb:0"
    assert devices.parse_device("edgetpu:pci").address == "pci"
    assert devices.parse_device("edgetpu:1").address == ":1"
    assert str(devices.parse_device("EdgeTPU:usb:0")) == "edgetpu:usb:0"
    for bad in ("gpu", "edgetpu:wifi", "cpu:0", "edgetpu:usb:x"):
        with pytest.raises(ConfigError, match="unknown device"):
            devices.parse_device(bad)
    assert devices.edgetpu_library("Linux") == "libedgetpu.so.1"
    assert devices.edgetpu_library("Darwin") == "libedgetpu.1.dylib" and devices.edgetpu_library("Windows") == "edgetpu.dll"


def test_missing_delegate_library_says_how_to_install_it():
    with pytest.raises(MissingDependencyError, match="libedgetpu1-std") as info:
        devices.load_edgetpu_delegate(devices.parse_device("edgetpu:usb:0"), library="libedgetpu-not-installed.so.1")
    assert "libedgetpu-not-installed.so.1 could not be loaded" in str(info.value)


def test_missing_device_is_a_clear_error(monkeypatch):
    from edgecnn.runtime import interpreters

    monkeypatch.setattr(devices.ctypes, "CDLL", lambda name: object())

    def no_device(library, options):
        assert options == {"device": "usb:0"}
        raise ValueError(f"Failed to load delegate from {library}\n")

    monkeypatch.setattr(interpreters, "load_delegate", no_device)
    with pytest.raises(devices.DeviceError, match="found no Edge TPU at usb:0") as info:
        devices.load_edgetpu_delegate(devices.parse_device("edgetpu:usb:0"))
    assert "Failed to load delegate" in str(info.value) and "lsusb" in str(info.value)


def test_check_recognises_a_compiled_model(compiled_model):
    report = check_model(compiled_model)
    assert report.compatible and report.ops[0].op == "CUSTOM" and report.estimate is None
    assert "Already compiled" in report.to_text()


def test_edgetpu_package_and_check_command_import_no_tensorflow():
    import subprocess

    code = "import sys, edgecnn.targets.edgetpu, edgecnn.cli.check, edgecnn.runtime.devices; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_runtime_refuses_mismatched_models_and_devices(compiled_model, converted, tmp_path):
    from edgecnn import runtime

    with pytest.raises(ConfigError, match="compiled for the Edge TPU; run it with --device edgetpu"):
        runtime.load(compiled_model)
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(converted["int8"])
    with pytest.raises(ConfigError, match="not compiled for the Edge TPU"):
        runtime.load(plain, device="edgetpu")
    with pytest.raises(ConfigError, match="runs .tflite models"):
        runtime.load(tmp_path / "model.onnx", device="edgetpu")


def test_predict_and_validate_with_device_edgetpu_without_the_runtime(compiled_model, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(devices, "edgetpu_library", lambda system=None: "libedgetpu-not-installed.so.1")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    runner = CliRunner()
    for args in (
        ["predict", str(compiled_model), str(image), "--device", "edgetpu:usb:0"],
        ["validate", str(compiled_model), "--device", "edgetpu"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: the Edge TPU runtime library") and "libedgetpu1-std" in last
    bad = runner.invoke(main, ["predict", str(compiled_model), str(image), "--device", "tpu"])
    assert bad.exit_code == 1 and "unknown device 'tpu'" in bad.stderr


def test_latency_estimate_is_labelled_and_calibrated():
    for name, gmacs, _, ms in LATENCY_REFERENCES:
        estimate = estimate_latency(int(gmacs * 1e9))
        assert estimate.low_ms <= ms <= estimate.high_ms, name
    streamed = estimate_latency(10**8, off_chip_bytes=4 << 20)
    assert streamed.milliseconds > estimate_latency(10**8).milliseconds + 5
    d = streamed.to_dict()
    assert d["estimate"] is True and "not measured" in d["basis"] and "estimate" in streamed.describe()


# --- every registered architecture ------------------------------------------------------------


def _architectures():
    from edgecnn.nets import list_models

    return list_models()


@pytest.mark.slow
@pytest.mark.parametrize("arch", _architectures())
def test_every_registered_architecture_maps_entirely(arch, tmp_path, no_compiler):
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.nets import create_model
    from edgecnn.targets.edgetpu.export import EdgeTpuCompilerMissing
    from edgecnn.tf import keras

    keras().utils.set_random_seed(0)
    shape = (32, 32, 3)
    create_model(arch, shape, num_classes=len(LABELS)).save(tmp_path / "model.keras")
    write_sidecar(
        tmp_path / "model.keras",
        ArtifactMetadata(format="keras", precision="float32", labels=LABELS, input_shape=shape, arch=arch),
    )
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8))
    options = ExportOptions(int8=True, target="edgetpu", calib_path=tmp_path / "calib.npy", calib_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeTpuCompilerMissing)
        warnings.simplefilter("ignore", UserWarning)
        export_model(tmp_path / "model.keras", tmp_path, options)
    report = check_model(tmp_path / "model_int8.tflite")
    assert report.compatible, report.to_text()
    assert report.ops_mapped == report.ops_total and report.subgraphs == 1 and report.errors == ()
    assert json.loads((tmp_path / "model_int8_edgetpu_check.json").read_text())["compatible"]
