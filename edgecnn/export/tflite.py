"""TFLite export: float32 and full-integer int8, with metadata embedded in the file."""

from __future__ import annotations

from pathlib import Path

from ..artifact import ArtifactMetadata, Quantization, write_model
from .tflite_metadata import embed_artifact_metadata

SUFFIX = ".tflite"


def _converter(model, input_shape):
    from ..tf import tensorflow

    tf = tensorflow()
    # A static batch of one: what devices run, and what the Edge TPU compiler requires.
    spec = tf.TensorSpec((1, *input_shape), tf.float32, name="image")
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return tf, tf.lite.TFLiteConverter.from_concrete_functions([fn], model)


def convert_float(model, input_shape) -> bytes:
    _, converter = _converter(model, input_shape)
    return converter.convert()


def convert_int8(
    model,
    input_shape,
    calibration,
    normalization,
    io: str = "uint8",
    *,
    output_io: str | None = None,
    per_tensor_dense=False,
    per_tensor_weights=False,
    keep_float: tuple[str, ...] = (),
    int16_activations=False,
) -> bytes:
    """Full-integer quantization: int8 kernels only, per-channel weights, `io`-typed input and output.

    `output_io` types the output differently from the input. `per_tensor_dense` quantizes
    fully-connected weights with one scale per tensor, for runtimes that have no per-channel
    fully-connected kernel (the converter quantizes them per channel by default);
    `per_tensor_weights` does so for every layer. `keep_float` names tensors whose ops stay
    float (the converter's tensor names, as `edgecnn debug` shows them), between a dequantize
    and a quantize op. `int16_activations` is TFLite's 16x8 mode (int16 activations, int8
    weights) with int16 input and output, or float32 with `io` "float32".
    """
    tf, converter = _converter(model, input_shape)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([batch] for batch in calibration.batches(normalization))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # no float fallback
    converter._experimental_disable_per_channel_quantization_for_dense_layers = per_tensor_dense
    converter._experimental_disable_per_channel = per_tensor_weights
    io_types = {"uint8": tf.uint8, "int8": tf.int8, "float32": tf.float32}
    if int16_activations:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        io_types = {"uint8": tf.int16, "int8": tf.int16, "float32": tf.float32}  # 16x8 has no 8-bit I/O
    converter.inference_input_type = io_types[io]
    converter.inference_output_type = io_types[output_io or io]
    if keep_float:
        return _selectively_quantized(tf, converter, keep_float, io_types[io], io_types[output_io or io])
    return converter.convert()


def float_island(float_data: bytes, tensors) -> tuple[str, ...]:
    """`tensors` and the outputs of every op that reads one: the ops to keep float so that the
    tensors themselves stay float (an op kept float still quantizes its output for the next op)."""
    from ..runtime.tflite_file import read_tflite

    graph = read_tflite(float_data).subgraphs[0]
    names = [t.name for t in graph.tensors]
    wanted = set(tensors)
    readers = [names[op.outputs[0]] for op in graph.operators if op.outputs and {names[i] for i in op.inputs if i >= 0} & wanted]
    return tuple(dict.fromkeys([*tensors, *readers]))


def io_bound_tensors(float_data: bytes) -> set[str]:
    """Tensors that cannot stay float in a file with 8-bit I/O: keeping one would leave the op
    that reads the input, or the one that writes the output, float (see float_island), and
    the converter then has no quantize op at that end to turn into the I/O type."""
    from ..runtime.tflite_file import read_tflite

    graph = read_tflite(float_data).subgraphs[0]
    names = [t.name for t in graph.tensors]
    inputs, outputs = set(graph.inputs), set(graph.outputs)
    bound = set()
    for op in graph.operators:
        if inputs & set(op.inputs):
            bound.update(names[i] for i in op.outputs)
        if outputs & set(op.outputs):
            bound.update(names[i] for i in (*op.inputs, *op.outputs) if i >= 0)
    return bound


def _selectively_quantized(tf, converter, keep_float, input_type, output_type) -> bytes:
    """The converter's calibrated model quantized with `keep_float` left float, the I/O types kept.

    This is LiteRT's QuantizationDebugger's selective quantization; its public method fixes
    the I/O to float, so its quantizer is called as it calls it, with the export's I/O types.
    """
    from tensorflow.lite.python import convert
    from tensorflow.lite.python.util import modify_model_io_type

    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter._experimental_calibrate_only = True
    calibrated = converter.convert()
    quantized = convert.mlir_quantize(
        calibrated,
        disable_per_channel=converter._experimental_disable_per_channel,
        fully_quantize=False,  # float I/O with quantize ops at the boundary, for modify_model_io_type
        denylisted_nodes=list(keep_float),
        disable_per_channel_for_dense_layers=converter._experimental_disable_per_channel_quantization_for_dense_layers,
    )
    return modify_model_io_type(quantized, input_type, output_type)


def _io_quantization(data: bytes):
    from ..runtime.tflite_file import read_tflite

    graph = read_tflite(data).subgraphs[0]

    def describe(index):
        tensor = graph.tensors[index]
        if tensor.dtype in ("int8", "uint8", "int16") and tensor.quant_scale:
            return tensor.dtype, Quantization(tensor.dtype, float(tensor.quant_scale[0]), int(tensor.quant_zero_point[0]))
        return tensor.dtype, None

    return describe(graph.inputs[0]), describe(graph.outputs[0])


def write(data: bytes, path: Path, meta: ArtifactMetadata) -> ArtifactMetadata:
    """Embed the metadata (with the file's own I/O quantization) and write model + sidecar atomically."""
    (in_dtype, in_q), (out_dtype, out_q) = _io_quantization(data)
    meta = meta.replace(
        format="tflite",
        input_dtype=in_dtype,
        output_dtype=out_dtype,
        input_quantization=in_q,
        output_quantization=out_q,
    )
    write_model(path, embed_artifact_metadata(data, meta), meta)
    return meta


def export(model, meta: ArtifactMetadata, calibration, options, out_dir: Path, plan=None) -> list[tuple[Path, ArtifactMetadata]]:
    """The float file from `model`; the int8 file as `plan` (an export.options.Int8Plan) says."""
    from .options import Int8Plan

    plan = plan or Int8Plan()
    written = []
    shape = meta.input_shape
    path = out_dir / f"model_fp32{SUFFIX}"
    float_data = convert_float(model, shape)
    written.append((path, write(float_data, path, meta.replace(precision="float32"))))
    if options.int8:
        keep = plan.keep_float.get("tflite", ())
        data = convert_int8(
            plan.qat_for("tflite") or model,
            shape,
            calibration,
            meta.normalization,
            options.io,
            per_tensor_weights=plan.per_tensor_weights,
            keep_float=float_island(float_data, keep) if keep else (),
            int16_activations=options.int16_activations,
        )
        precision = "int16x8" if options.int16_activations else "int8"
        path = out_dir / f"model_{precision}{SUFFIX}"
        written.append((path, write(data, path, meta.replace(precision=precision))))
    return written
