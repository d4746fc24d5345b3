"""ONNX export: float32 through tf2onnx, int8 through ONNX Runtime's static quantizer.

The float model is converted from the folded Keras model with an explicit input
signature (batch 1 unless ``dynamic_batch``), checked with ``onnx.checker``, freed of
any BatchNormalization node and verified against Keras on calibration images. The
int8 model is ``quant_pre_process`` + ``quantize_static`` over the same calibration
set the TFLite export uses, with per-channel weights. Both take float32 input (the
int8 model quantizes it in its first node) and return float32 logits. The artifact
metadata JSON is stored in ``metadata_props`` under ``edgecnn`` and beside the file.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from ..artifact import METADATA_KEY, ArtifactMetadata, write_model
from ..errors import MissingDependencyError, VerificationError, first_line
from .options import DEFAULT_CALIB_METHOD, DEFAULT_ONNX_FORMAT

SUFFIX = ".onnx"
#: ONNX opset of the exported float model (the int8 model keeps it); 17 or newer is required.
OPSET = 17
INPUT_NAME = "image"
#: Calibration images used to prove the float ONNX model equal to Keras.
CHECK_SAMPLES = 64
#: Allowed max |ONNX - Keras| on logits, relative to max(1, max |logit|).
CHECK_TOLERANCE = 1e-4

#: Activation type per format. On x86 (AVX-512 VNNI, one thread) int8 activations made QDQ
#: models 0.55-1.0x the speed of float, uint8 activations 1.3-2.25x (benchmarks/onnx_formats.py).
ACTIVATION_TYPES = {"qdq": "uint8", "qoperator": "uint8"}

_INSTALL_HINT = 'install the ONNX toolchain: pip install "edgecnn[onnx]"'


def _require(module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(f"{module.split('.')[0]} is not installed ({exc}); {_INSTALL_HINT}") from None


def _tf2onnx():
    from ..tf import tensorflow

    tensorflow()  # tf2onnx imports TensorFlow: configure it (Keras 2) first
    return _require("tf2onnx")


def convert_float(model, input_shape, dynamic_batch: bool = False, opset: int = OPSET):
    """The folded Keras model as an ONNX ModelProto with one float32 NHWC input named ``image``."""
    from ..tf import tensorflow

    tf, tf2onnx = tensorflow(), _tf2onnx()
    batch = None if dynamic_batch else 1
    spec = (tf.TensorSpec((batch, *input_shape), tf.float32, name=INPUT_NAME),)
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
    proto = batchnorm_to_affine(proto)
    check(proto)
    return proto


def check(proto) -> None:
    """onnx.checker, one input and one output, and no BatchNormalization node."""
    onnx = _require("onnx")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = first_line(exc)
        raise VerificationError(f"the converted ONNX model is invalid ({first})") from None
    bn = [n.name for n in proto.graph.node if n.op_type == "BatchNormalization"]
    if bn:
        raise VerificationError(f"the ONNX model still has BatchNormalization nodes: {', '.join(bn)}")
    if len(proto.graph.input) != 1 or len(proto.graph.output) != 1:
        raise VerificationError(
            f"the ONNX model has {len(proto.graph.input)} inputs and {len(proto.graph.output)} outputs; "
            "an image classifier has one of each"
        )


def batchnorm_to_affine(proto):
    """Replace inference-mode BatchNormalization nodes with Mul + Add on constant tensors.

    Folding merges every BN that follows a linear layer; tf2onnx may still emit one
    for a BN it keeps (after an Add, say). ``y = x * s + t`` with
    ``s = gamma / sqrt(var + eps)`` and ``t = beta - mean * s`` is the same function.
    """
    onnx = _require("onnx")
    from onnx import helper, numpy_helper

    graph = proto.graph
    if not any(n.op_type == "BatchNormalization" for n in graph.node):
        return proto
    inferred = onnx.shape_inference.infer_shapes(proto)
    ranks = {
        v.name: len(v.type.tensor_type.shape.dim)
        for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
        if v.type.tensor_type.HasField("shape")
    }
    constants = {t.name: t for t in graph.initializer}
    nodes = []
    for node in graph.node:
        if node.op_type != "BatchNormalization" or len(node.output) != 1 or not all(i in constants for i in node.input[1:5]):
            nodes.append(node)
            continue
        gamma, beta, mean, var = (numpy_helper.to_array(constants[i]).astype(np.float64) for i in node.input[1:5])
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        scale = gamma / np.sqrt(var + eps)
        shift = beta - mean * scale
        shape = (-1,) + (1,) * max(ranks.get(node.input[0], 4) - 2, 0)  # channels are axis 1
        s_name, t_name, mid = f"{node.name}_scale", f"{node.name}_shift", f"{node.name}_scaled"
        graph.initializer.extend(
            [
                numpy_helper.from_array(scale.astype(np.float32).reshape(shape), s_name),
                numpy_helper.from_array(shift.astype(np.float32).reshape(shape), t_name),
            ]
        )
        nodes += [
            helper.make_node("Mul", [node.input[0], s_name], [mid], name=f"{node.name}_mul"),
            helper.make_node("Add", [mid, t_name], [node.output[0]], name=f"{node.name}_add"),
        ]
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return proto


def _session(data: bytes):
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _run(session, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def verify_float(data: bytes, model, calibration, normalization) -> float:
    """Max |ONNX - Keras| over calibration images; VerificationError beyond the tolerance."""
    x = normalization.apply(calibration.images[:CHECK_SAMPLES])
    expected = np.asarray(model(x, training=False))
    actual = _run(_session(data), x)
    diff = float(np.abs(actual - expected).max())
    if diff > CHECK_TOLERANCE * max(1.0, float(np.abs(expected).max())):
        raise VerificationError(
            f"the float ONNX model differs from the Keras model by up to {diff:.2e} on calibration images; "
            "report this with the model file"
        )
    return diff


#: The activations io_layers.with_scores ends a model in.
_SCORE_OPS = ("Softmax", "Sigmoid")

#: 7-bit weights. ONNX Runtime's uint8 x int8 kernels on x86 CPUs without VNNI (AVX2 only)
#: multiply pairs into saturating int16 (vpmaddubsw): with full 8-bit weights the default
#: digits model lost 3-9 points there, with 7-bit weights none; ONNX Runtime recommends this.
REDUCE_RANGE = True


def quantize_int8(
    float_proto,
    calibration,
    normalization,
    quant_format: str = DEFAULT_ONNX_FORMAT,
    method: str = DEFAULT_CALIB_METHOD,
    activation_type: str | None = None,
    per_channel: bool = True,
    keep_float: tuple[str, ...] = (),
):
    """Static int8 quantization (per-channel int8 weights) calibrated on `calibration`.

    `activation_type` ("uint8" or "int8") defaults to :data:`ACTIVATION_TYPES` of the format.
    `keep_float` names tensors of the float model whose producing nodes stay float.
    """
    onnx = _require("onnx")
    _require("sympy")  # quant_pre_process's symbolic shape inference needs it
    q = _require("onnxruntime.quantization")
    from ..calibration.onnx_reader import CalibrationReader

    formats = {"qdq": q.QuantFormat.QDQ, "qoperator": q.QuantFormat.QOperator}
    methods = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }
    types = {"uint8": q.QuantType.QUInt8, "int8": q.QuantType.QInt8}
    input_name = float_proto.graph.input[0].name
    with tempfile.TemporaryDirectory(prefix="edgecnn-onnx-") as tmp:
        prepared, quantized = Path(tmp) / "prepared.onnx", Path(tmp) / "quantized.onnx"
        q.quant_pre_process(float_proto, str(prepared))
        graph = onnx.load(str(prepared)).graph
        outputs = {o.name for o in graph.output}
        # A tensor stays float only if the node writing it and every node reading it do. The final
        # softmax stays float too: probabilities from the dequantized logits, not on a 1/256 grid.
        excluded = [
            n.name
            for n in graph.node
            if set(n.output) & set(keep_float)
            or set(n.input) & set(keep_float)
            or (n.op_type in _SCORE_OPS and set(n.output) & outputs)
        ]
        with contextlib.redirect_stdout(io.StringIO()):  # the histogram calibrators print progress
            q.quantize_static(
                str(prepared),
                str(quantized),
                CalibrationReader(calibration, input_name, normalization),
                quant_format=formats[quant_format],
                nodes_to_exclude=excluded,
                per_channel=per_channel,
                reduce_range=REDUCE_RANGE,
                activation_type=types[activation_type or ACTIVATION_TYPES[quant_format]],
                weight_type=q.QuantType.QInt8,
                calibrate_method=methods[method],
            )
        proto = onnx.load(str(quantized))
    check(proto)
    return proto


def convert_quantization_aware(qat_model, input_shape, dynamic_batch: bool = False):
    """A tfmot quantization-aware model as QDQ ONNX with int8 weights.

    tf2onnx writes each activation fake-quant op as a QuantizeLinear/DequantizeLinear pair with
    the ranges the training learned; the weights' fake-quant TensorFlow has already folded, so
    they arrive as float32 values on an int8 grid (a file the size of the float one).
    """
    proto = int8_weights(convert_float(qat_model, input_shape, dynamic_batch=dynamic_batch))
    check(proto)
    return proto


def _grid(w: np.ndarray, axis: int):
    """(scale, axis or None, ``w / scale``) with integers in [-127, 127], per tensor else per `axis`; None if neither."""
    for per_axis in (None, axis):
        reduce = None if per_axis is None else tuple(i for i in range(w.ndim) if i != per_axis)
        peak = np.abs(w).max(axis=reduce)
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        q = w / (scale if per_axis is None else scale.reshape([-1 if i == per_axis else 1 for i in range(w.ndim)]))
        if np.allclose(q, np.round(q), atol=1e-2):
            return scale, per_axis, q
    return None


def int8_weights(proto):
    """Store each Conv/Gemm weight that lies on an int8 grid as int8 + DequantizeLinear (its bias as
    int32 at the input scale times the weight scale, as ONNX Runtime's quantizer does): the same
    values, a quarter of the bytes, and integer kernels once ONNX Runtime fuses the QDQ pairs."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    constants = {t.name: t for t in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    added = []

    def replace(name, values, scale, zero_point, axis):
        graph.initializer.remove(constants[name])
        graph.initializer.extend(
            [
                numpy_helper.from_array(values, f"{name}_quantized"),
                numpy_helper.from_array(scale, f"{name}_scale"),
                numpy_helper.from_array(zero_point, f"{name}_zero_point"),
            ]
        )
        attrs = {} if axis is None else {"axis": axis}
        added.append(
            helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scale", f"{name}_zero_point"], [name], **attrs)
        )

    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm") or len(node.input) < 2 or node.input[1] not in constants:
            continue
        w = numpy_helper.to_array(constants[node.input[1]])
        transposed = next((a.i for a in node.attribute if a.name == "transB"), 0)
        found = _grid(w, 0 if node.op_type == "Conv" or transposed else 1)
        if found is None:
            continue  # a layer the training left float stays float
        scale, axis, q = found
        replace(node.input[1], np.clip(np.round(q), -127, 127).astype(np.int8), scale, np.zeros_like(scale, np.int8), axis)
        source = producers.get(node.input[0])
        if (
            len(node.input) > 2
            and node.input[2] in constants
            and source is not None
            and source.op_type == "DequantizeLinear"
            and source.input[1] in constants
        ):
            b = numpy_helper.to_array(constants[node.input[2]])
            input_scale = numpy_helper.to_array(constants[source.input[1]]).astype(np.float32)
            bias_scale = (input_scale * scale).astype(np.float32) * np.ones(b.shape, np.float32)
            replace(node.input[2], np.round(b / bias_scale).astype(np.int32), bias_scale, np.zeros(b.shape, np.int32), 0)
    for node in reversed(added):
        graph.node.insert(0, node)
    return proto


def embed_metadata(proto, meta: ArtifactMetadata):
    """A copy of `proto` with the metadata JSON in ``metadata_props[METADATA_KEY]`` (replacing an older entry)."""
    proto = type(proto).FromString(proto.SerializeToString())
    entries = {p.key: p.value for p in proto.metadata_props}
    entries[METADATA_KEY] = meta.to_json()
    del proto.metadata_props[:]
    for key, value in entries.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto


def _io_dtype(value_info) -> str:
    from onnx import helper

    return helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name


def write(proto, path: Path, meta: ArtifactMetadata) -> ArtifactMetadata:
    """Embed the metadata and write model + sidecar atomically."""
    dtypes = (_io_dtype(proto.graph.input[0]), _io_dtype(proto.graph.output[0]))
    if dtypes != ("float32", "float32"):
        # Integer I/O would need its scale and zero point in the metadata; the exporter writes float I/O.
        raise VerificationError(f"the ONNX model has {dtypes[0]} input and {dtypes[1]} output; expected float32 for both")
    meta = meta.replace(
        format="onnx", input_dtype="float32", output_dtype="float32", input_quantization=None, output_quantization=None
    )
    write_model(path, embed_metadata(proto, meta).SerializeToString(), meta)
    return meta


def export(model, meta: ArtifactMetadata, calibration, options, out_dir: Path, plan=None) -> list[tuple[Path, ArtifactMetadata]]:
    """The float file from `model`; the int8 file as `plan` (an export.options.Int8Plan) says."""
    from .options import Int8Plan

    plan = plan or Int8Plan()
    written = []
    float_proto = convert_float(model, meta.input_shape, dynamic_batch=options.dynamic_batch)
    verify_float(float_proto.SerializeToString(), model, calibration, meta.normalization)
    path = out_dir / f"model_fp32{SUFFIX}"
    written.append((path, write(float_proto, path, meta.replace(precision="float32"))))
    if not options.int8:
        return written
    if plan.qat_for("onnx") is not None:
        proto = convert_quantization_aware(plan.qat_for("onnx"), meta.input_shape, options.dynamic_batch)
    else:
        proto = quantize_int8(
            float_proto,
            calibration,
            meta.normalization,
            options.onnx_format,
            options.calib_method,
            per_channel=not plan.per_tensor_weights,
            keep_float=plan.keep_float.get("onnx", ()),
        )
    path = out_dir / f"model_int8{SUFFIX}"
    written.append((path, write(proto, path, meta.replace(precision="int8"))))
    return written
