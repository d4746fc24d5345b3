"""Edge TPU supported-op table: each rule on a one-op model, the table's completeness, and the
op versions compiler 16.0 reads."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import S, T, conv2d, mutate, one_op, options

from edgecnn.targets.edgetpu import check_model, max_accepted_version, table
from edgecnn.targets.edgetpu.checker import RULE_CHECKS


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
    ("conv", lambda: conv2d(), True, None),
    ("conv dilation 2x2", lambda: conv2d((2, 2)), True, None),
    ("conv dilation 2x1", lambda: conv2d((2, 1)), False, "dilation is 2 in x and 1 in y"),
    ("conv weights at run time", lambda: conv2d(weights_constant=False), False, table.NOT_CONSTANT),
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

    report = check_model(mutate(conv2d(), lambda m: setattr(m.operatorCodes[0], "version", 6)))
    assert not report.compatible and report.ops_mapped == 0 and report.subgraphs == 0
    assert "Didn't find op for builtin opcode 'CONV_2D' version '6'" in report.errors[0]
    assert report.first_unmapped["index"] == 0 and report.first_unmapped["op"] == "CONV_2D"
    assert report.ops[0].status == table.VERSION_REJECTED
    newer = one_op("GELU", [T((1, 8))], [T((1, 8))])
    assert "does not know the op GELU" in check_model(newer).errors[0]
