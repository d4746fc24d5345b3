"""The Edge TPU's requirements as data: supported ops and their limits, accepted op versions.

Sources:

- Supported operations and their known limitations: Coral, "TensorFlow models on the Edge
  TPU" (https://coral.ai/docs/edgetpu/models-intro/#supported-operations), runtime 13+.
- Op versions: ``edgetpu_compiler`` 16.0.384591198 (July 2021, the last release) parses a
  model with the TensorFlow Lite op resolver it was built with. Coral built the matching
  runtime (libedgetpu "grouper") on TensorFlow 2.5.0 (libedgetpu ``workspace.bzl``), and
  every "Didn't find op for builtin opcode" failure reported against 16.0 names a version
  first released after 2.5: CONV_2D 6 (TF 2.9), QUANTIZE 3 (2.7), EXP 2, TRANSPOSE_CONV 4.
  So an op version is accepted when TensorFlow released it in 2.5.0 or earlier, per the
  op-version -> first-release table of ``tensorflow/lite/tools/versioning/runtime_version.cc``
  transcribed in :data:`OP_RELEASES`.
"""

from __future__ import annotations

COMPILER = "edgetpu_compiler"
COMPILER_VERSION = "16.0.384591198"
#: TensorFlow release whose TFLite op resolver the 16.0 compiler parses models with.
COMPILER_TFLITE_RELEASE = "2.5.0"
#: The last builtin op (in schema.fbs order) that TFLite 2.5 knows; later ops cannot be parsed.
LAST_OP_IN_COMPILER = "HASHTABLE_SIZE"

#: The Edge TPU's on-chip memory for caching parameters is "roughly 8 MB" (Coral, "Parameter
#: data caching"); what does not fit is streamed from the host on every inference.
ON_CHIP_CACHE_BYTES = 8 * 1024 * 1024

# Status texts, in the compiler's own words where it has them (its operation log).
MAPPED = "Mapped to Edge TPU"
NOT_SUPPORTED = "Operation not supported"
UNSUPPORTED_TYPE = "Operation is working on an unsupported data type"
LIMITATION = "Operation is otherwise supported, but not mapped due to some unspecified limitation"
UNSUPPORTED_RANK = "Tensor has unsupported rank (up to 3 innermost dimensions mapped)"
NOT_CONSTANT = "Filter, bias, or other param is not constant at compile-time"
AFTER_CPU_OP = "More than one subgraph is not supported"
VERSION_REJECTED = "Operation version not supported"
NOT_COMPILED = "Not compiled: the compiler rejects the whole model"

#: Limitations as named rules; the checker implements each name.
RULES = {
    "no_fused_activation": "No fused activation function.",
    "zero_constant_concat": "If any input is a compile-time constant tensor, there must be only 2 inputs, "
    "and this constant tensor must be all zeroes (effectively, a zero-padding op).",
    "same_dilation": "Dilation must be the same in x and y.",
    "fc_default_weights": "Only the default format is supported for fully-connected weights.",
    "fc_1d_output": "Output tensor is one-dimensional.",
    # Not in Coral's table: compiler 16.0 is built on TFLite 2.5, whose fully-connected kernels
    # read a single weight scale. TFLite converters since 2024 quantize Dense weights per
    # channel by default, without a new op version, so an old runtime silently uses wrong scales.
    "fc_per_tensor_weights": "Weights quantized per tensor (compiler 16.0's TFLite 2.5 has no per-channel "
    "fully-connected kernel).",
    "mean_axes": "No reduction in the batch dimension; a reduction in z needs z to be a multiple of 4.",
    "no_batch_axis": "Not in the batch dimension.",
    "pad_not_batch": "No padding in the batch dimension.",
    "prelu_1d_alpha": "Alpha must be one-dimensional.",
    "resize_3d": "Input and output are 3-dimensional tensors.",
    "softmax_1d": "Supports only 1-D input tensors with a max of 16,000 elements.",
    "squeeze_leading_ones": "Supported only to remove leading 1s.",
    "strided_slice_simple": "All strides must be 1; no ellipsis mask and no new-axis mask.",
}

#: Builtin op -> (limitation rules, input indices that must be compile-time constants).
SUPPORTED_OPS: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {
    "ADD": ((), ()),
    "SUB": ((), ()),
    "MUL": ((), ()),
    "MAXIMUM": ((), ()),
    "MINIMUM": ((), ()),
    "LOGISTIC": ((), ()),
    "TANH": ((), ()),
    "RELU": ((), ()),
    "RELU6": ((), ()),
    "RELU_N1_TO_1": ((), ()),
    "L2_NORMALIZATION": ((), ()),
    "EXPAND_DIMS": ((), (1,)),
    "QUANTIZE": ((), ()),
    "SLICE": ((), (1, 2)),
    "SPACE_TO_DEPTH": ((), ()),
    "SPLIT": ((), (0,)),
    "AVERAGE_POOL_2D": (("no_fused_activation",), ()),
    "MAX_POOL_2D": (("no_fused_activation",), ()),
    "CONCATENATION": (("no_fused_activation", "zero_constant_concat"), ()),
    "CONV_2D": (("same_dilation",), (1, 2)),
    "DEPTHWISE_CONV_2D": (("same_dilation",), (1, 2)),
    "FULLY_CONNECTED": (("fc_default_weights", "fc_1d_output", "fc_per_tensor_weights"), (1, 2)),
    "MEAN": (("mean_axes",), (1,)),
    "PACK": (("no_batch_axis",), ()),
    "PAD": (("pad_not_batch",), (1,)),
    "PRELU": (("prelu_1d_alpha",), (1,)),
    "REDUCE_MAX": (("no_batch_axis",), (1,)),
    "REDUCE_MIN": (("no_batch_axis",), (1,)),
    "RESHAPE": ((), ()),
    "RESIZE_BILINEAR": (("resize_3d",), (1,)),
    "RESIZE_NEAREST_NEIGHBOR": (("resize_3d",), (1,)),
    "SOFTMAX": (("softmax_1d",), ()),
    "SQUEEZE": (("squeeze_leading_ones",), ()),
    "STRIDED_SLICE": (("strided_slice_simple",), (1, 2, 3)),
    "TRANSPOSE_CONV": ((), (0, 1, 3)),
    # "LSTM: unidirectional only": both TFLite forms of a unidirectional LSTM.
    "LSTM": ((), ()),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ((), ()),
}

#: Softmax's largest input on the Edge TPU.
SOFTMAX_MAX_ELEMENTS = 16_000

#: What to do about ops a classifier export commonly ends up with.
HINTS = {
    "DEQUANTIZE": "a float output: export with --io uint8 or --io int8",
    "QUANTIZE": "a float input: export with --io uint8 or --io int8",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "only unidirectional LSTMs run on the Edge TPU",
}

#: Builtin op -> the TensorFlow release that introduced each op version (index 0 = version 1;
#: None: that version was never released). From TFLite's runtime_version.cc.
OP_RELEASES: dict[str, tuple] = {
    "ABS": ("1.13.0", "2.4.0", "2.5.0", "2.6.0"),
    "ADD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "ADD_N": ("1.14.0",),
    "ARG_MAX": ("1.9.0", "1.14.0", "2.9.0"),
    "ARG_MIN": ("1.9.0", "1.14.0", "2.9.0"),
    "ASSIGN_VARIABLE": ("2.6.0",),
    "AVERAGE_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "BATCH_MATMUL": ("2.3.0", "2.3.0", "2.4.0", "2.5.0"),
    "BATCH_TO_SPACE_ND": ("1.6.0", "1.14.0", "2.3.0"),
    "BIDIRECTIONAL_SEQUENCE_LSTM": ("1.14.0", "1.14.0", "1.14.0"),
    "BIDIRECTIONAL_SEQUENCE_RNN": ("1.14.0", "1.14.0", "2.3.0"),
    "BROADCAST_ARGS": ("2.6.0",),
    "BROADCAST_TO": (None, "2.5.0", "2.5.0"),
    "CALL_ONCE": ("2.5.0",),
    "CAST": ("1.5.0", "2.7.0", "2.8.0", "2.9.0"),
    "CEIL": ("1.14.0",),
    "COMPLEX_ABS": ("2.5.0",),
    "CONCATENATION": ("1.5.0", "1.14.0", "2.3.0"),
    "CONV_2D": ("1.5.0", "1.14.0", "1.14.0", "2.3.0", "2.4.0", "2.9.0"),
    "CONV_3D": ("2.5.0",),
    "CONV_3D_TRANSPOSE": ("2.6.0",),
    "COS": ("1.14.0",),
    "CUMSUM": ("2.4.0",),
    "DENSIFY": ("2.2.0",),
    "DEPTH_TO_SPACE": ("2.1.0", "2.5.0"),
    "DEPTHWISE_CONV_2D": ("1.5.0", "1.12.0", "1.14.0", "2.2.0", "2.3.0", "2.3.0"),
    "DEQUANTIZE": ("1.13.1", "1.14.0", "1.15.0", "2.2.0", "2.7.0"),
    "DIV": ("1.6.0", "2.3.0"),
    "ELU": ("1.14.0",),
    "EMBEDDING_LOOKUP": ("1.13.0", "1.14.0", "1.14.0"),
    "EMBEDDING_LOOKUP_SPARSE": ("1.5.0",),
    "EQUAL": ("1.14.0", "1.14.0", "2.3.0"),
    "EXP": ("1.7.0",),
    "EXPAND_DIMS": ("1.10.0",),
    "FAKE_QUANT": ("1.5.0", "1.10.0"),
    "FILL": ("1.13.0", "2.3.0", "2.5.0"),
    "FLOOR": ("1.9.0",),
    "FLOOR_DIV": ("1.14.0", "1.14.0"),
    "FLOOR_MOD": ("1.13.0",),
    "FULLY_CONNECTED": ("1.5.0", "1.10.0", "1.14.0", "1.14.0", "2.0.0", "2.1.0", "2.3.0", "2.3.0", "2.3.0"),
    "GATHER": ("1.6.0", "1.14.0", "1.15.0", "2.4.0", "2.5.0"),
    "GATHER_ND": ("1.14.0", "2.3.0", "2.5.0"),
    "GREATER": ("1.14.0", "1.14.0"),
    "GREATER_EQUAL": ("1.14.0", "1.14.0"),
    "HARD_SWISH": ("1.15.0",),
    "HASHTABLE": ("2.5.0",),
    "HASHTABLE_FIND": ("2.5.0",),
    "HASHTABLE_IMPORT": ("2.5.0",),
    "HASHTABLE_LOOKUP": ("1.5.0",),
    "HASHTABLE_SIZE": ("2.5.0",),
    "IF": ("1.15.0",),
    "IMAG": ("2.5.0",),
    "L2_NORMALIZATION": ("1.5.0", "1.14.0"),
    "L2_POOL_2D": ("1.5.0",),
    "LEAKY_RELU": ("1.13.1", "2.3.0"),
    "LESS": ("1.14.0", "1.14.0"),
    "LESS_EQUAL": ("1.14.0", "1.14.0"),
    "LOCAL_RESPONSE_NORMALIZATION": ("1.5.0",),
    "LOG": ("1.14.0",),
    "LOG_SOFTMAX": ("1.14.0", "1.14.0"),
    "LOGICAL_AND": ("1.11.0",),
    "LOGICAL_NOT": ("1.11.0",),
    "LOGICAL_OR": ("1.11.0",),
    "LOGISTIC": ("1.14.0", "1.14.0", "2.3.0"),
    "LSH_PROJECTION": ("1.5.0",),
    "LSTM": ("1.7.0", "1.10.0", "1.14.0", "2.3.0"),
    "MATRIX_DIAG": ("1.14.0",),
    "MATRIX_SET_DIAG": ("1.14.0",),
    "MAX_POOL_2D": ("1.5.0", "1.14.0", "2.3.0"),
    "MAXIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MEAN": ("1.6.0", "1.14.0", "2.4.0"),
    "MINIMUM": ("1.14.0", "1.14.0", "2.3.0", "2.3.0"),
    "MIRROR_PAD": ("1.13.1", "2.3.0"),
    "MUL": ("1.5.0", "1.14.0", "1.15.0", "2.3.0", "2.6.0"),
    "NEG": ("1.9.0",),
    "NON_MAX_SUPPRESSION_V4": ("2.1.0",),
    "NON_MAX_SUPPRESSION_V5": ("2.1.0",),
    "NOT_EQUAL": ("1.14.0", "1.14.0", "2.3.0"),
    "ONE_HOT": ("1.11.0",),
    "PACK": ("1.11.0", "1.14.0", "2.3.0"),
    "PAD": ("1.5.0", "1.14.0", "2.4.0", "2.6.0"),
    "PADV2": ("1.9.0", "1.14.0", "2.4.0", "2.6.0"),
    "POW": ("1.10.0",),
    "PRELU": ("1.8.0",),
    "QUANTIZE": ("1.14.0", "1.15.0", "2.7.0"),
    "RANGE": ("1.13.0",),
    "RANK": ("1.14.0",),
    "READ_VARIABLE": ("2.6.0",),
    "REAL": ("2.5.0",),
    "REDUCE_ALL": ("2.6.0",),
    "REDUCE_ANY": ("1.11.0",),
    "REDUCE_MAX": ("1.11.0", "1.14.0", "2.5.0"),
    "REDUCE_MIN": ("1.11.0", "1.14.0", "2.5.0"),
    "REDUCE_PROD": ("1.11.0", "2.6.0"),
    "RELU": ("1.5.0", "2.1.0", "2.5.0"),
    "RELU6": ("1.5.0", "1.14.0", "2.5.0"),
    "RELU_0_TO_1": ("2.10.0",),
    "RELU_N1_TO_1": ("1.5.0",),
    "RESHAPE": ("1.5.0",),
    "RESIZE_BILINEAR": ("1.7.0", "1.14.0", "2.2.0", "2.5.0"),
    "RESIZE_NEAREST_NEIGHBOR": ("1.13.1", "1.14.0", "2.3.0", "2.4.0"),
    "REVERSE_SEQUENCE": ("1.14.0",),
    "REVERSE_V2": ("1.14.0", "2.2.0", "2.5.0"),
    "RFFT2D": ("2.5.0",),
    "RNN": ("1.5.0", "1.14.0", "2.3.0"),
    "ROUND": ("1.14.0",),
    "RSQRT": ("1.10.0", "2.5.0"),
    "SCATTER_ND": ("2.1.0",),
    "SEGMENT_SUM": ("2.2.0",),
    "SELECT": ("1.14.0", "1.14.0"),
    "SELECT_V2": ("2.2.0",),
    "SHAPE": ("1.10.0",),
    "SIN": ("1.9.0",),
    "SKIP_GRAM": ("1.5.0",),
    "SLICE": ("1.14.0", "1.14.0", "1.14.0", "2.4.0", "2.5.0"),
    "SOFTMAX": ("1.5.0", "1.14.0", "2.3.0"),
    "SPACE_TO_BATCH_ND": ("1.6.0", "1.14.0", "2.3.0"),
    "SPACE_TO_DEPTH": ("1.5.0", "1.14.0"),
    "SPARSE_TO_DENSE": ("1.9.0", "1.14.0", "1.15.0"),
    "SPLIT": ("1.5.0", "1.14.0", "1.14.0", "2.3.0"),
    "SPLIT_V": ("1.13.1", "2.3.0"),
    "SQRT": ("1.10.0",),
    "SQUARE": ("1.12.0",),
    "SQUARED_DIFFERENCE": ("1.13.1", "2.5.0"),
    "SQUEEZE": ("1.6.0", "2.5.0"),
    "STRIDED_SLICE": ("1.6.0", "1.14.0", "2.1.0", "2.2.0", "2.5.0", "2.6.0"),
    "SUB": ("1.6.0", "1.14.0", "2.3.0", "2.4.0", "2.4.0"),
    "SUM": ("1.10.0", "1.15.0"),
    "SVDF": ("1.5.0", "1.14.0", "2.2.0", "2.3.0"),
    "TANH": ("1.14.0", "1.14.0", "2.3.0"),
    "TILE": ("1.10.1", "2.2.0", "2.8.0"),
    "TOPK_V2": ("1.7.0", "1.14.0"),
    "TRANSPOSE": ("1.6.0", "1.14.0", "1.15.0", "2.3.0", "2.4.0"),
    "TRANSPOSE_CONV": ("1.9.0", "2.2.0", "2.3.0"),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("1.13.1", "1.14.0", "2.3.0"),
    "UNIDIRECTIONAL_SEQUENCE_RNN": ("1.14.0", "1.14.0", "2.3.0"),
    "UNIQUE": ("1.14.0",),
    "UNPACK": ("1.11.0", "1.14.0", "2.2.0", "2.3.0"),
    "VAR_HANDLE": ("2.6.0",),
    "WHERE": ("1.14.0", "2.8.0"),
    "WHILE": ("1.15.0",),
    "ZEROS_LIKE": ("1.12.0",),
}

#: Coral's published latencies on the USB Accelerator (USB 3.0, coral.ai/docs/edgetpu/benchmarks
#: and coral.ai/models) with multiply-accumulates per image (224x224 unless noted) and
#: parameter count. The first three fit the on-chip cache and calibrate the compute term; the
#: Inception models (299x299) stream most parameters and calibrate the off-chip term.
LATENCY_REFERENCES = (
    # name, GMACs, parameters (millions), milliseconds
    ("MobileNet v1", 0.569, 4.2, 2.4),
    ("MobileNet v2", 0.300, 3.5, 2.6),
    ("EfficientNet-EdgeTPU-S", 1.8, 5.4, 5.1),
)
STREAMING_REFERENCES = (
    ("Inception v3 (299)", 5.7, 23.8, 42.8),
    ("Inception v4 (299)", 12.3, 42.7, 84.7),
)
