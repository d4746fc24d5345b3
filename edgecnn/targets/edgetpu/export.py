"""``edgecnn export MODEL --int8 --target edgetpu``: the TFLite exporter for the Edge TPU.

It replaces the tflite format's exporter when the target is ``edgetpu``
(``edgecnn.export.pipeline.TARGET_EXPORTERS``) and writes the same files, plus:

- ``model_int8.tflite`` converted with settings pinned here, independent of the default
  int8 conversion: batch 1, static shapes, int8 builtin kernels only, 8-bit input and
  output, per-channel convolution weights but per-tensor Dense weights (compiler 16.0's
  TFLite 2.5 has no per-channel fully-connected kernel; the default conversion of TF 2.21
  quantizes them per channel). The registered family converts to QUANTIZE, CONV_2D,
  DEPTHWISE_CONV_2D, MAX_POOL_2D, ADD (fused ReLU), RELU, MEAN (global average pooling
  over x and y) and FULLY_CONNECTED, all in versions compiler 16.0 reads;
- ``model_int8_edgetpu_check.json``, the pre-flight report; the export fails if the model
  would not map entirely, rather than hand over a model that half runs on the CPU;
- with ``edgetpu_compiler`` on PATH: ``model_int8_edgetpu.tflite``, its sidecar, the
  compiler's ``model_int8_edgetpu.log`` and ``model_int8_edgetpu_compile.json``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ...artifact import ArtifactMetadata, write_sidecar
from ...errors import VerificationError
from ...fileio import sha256_file, write_json
from .checker import check_model
from .compiler import INSTALL_HINT, compile_model, find_compiler

CHECK_SUFFIX = "_edgetpu_check.json"
COMPILE_SUFFIX = "_edgetpu_compile.json"


class EdgeTpuCompilerMissing(UserWarning):
    """edgetpu_compiler is not on PATH: the compiled model was not written."""


def convert_int8(model, input_shape, calibration, normalization, io: str = "uint8") -> bytes:
    """Full-integer conversion with the settings the Edge TPU compiler needs."""
    from ...tf import tensorflow

    tf = tensorflow()
    spec = tf.TensorSpec((1, *input_shape), tf.float32, name="image")  # batch 1, static
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([batch] for batch in calibration.batches(normalization))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]  # no float fallback
    if hasattr(converter, "_experimental_disable_per_channel_quantization_for_dense_layers"):
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    converter.inference_input_type = {"uint8": tf.uint8, "int8": tf.int8}[io]
    converter.inference_output_type = converter.inference_input_type
    return converter.convert()


def export(model, meta: ArtifactMetadata, calibration, options, out_dir: Path) -> list[tuple[Path, ArtifactMetadata]]:
    from ...export import tflite

    fp32 = out_dir / f"model_fp32{tflite.SUFFIX}"
    written = [(fp32, tflite.write(tflite.convert_float(model, meta.input_shape), fp32, meta.replace(precision="float32")))]
    int8 = out_dir / f"model_int8{tflite.SUFFIX}"
    data = convert_int8(model, meta.input_shape, calibration, meta.normalization, options.io)
    int8_meta = tflite.write(data, int8, meta.replace(precision="int8"))
    written.append((int8, int8_meta))

    report = check_model(int8)
    check_path = out_dir / f"{int8.stem}{CHECK_SUFFIX}"
    write_json(check_path, report.to_dict())
    print(f"Edge TPU pre-flight check: {report.summary()} ({check_path.name})")
    if not report.compatible:
        raise VerificationError(f"{int8.name} would not run entirely on the Edge TPU: {report.summary()}; see {check_path}")

    if find_compiler() is None:
        warnings.warn(
            EdgeTpuCompilerMissing(f"{INSTALL_HINT.format(model=int8)}; the pre-flight report is {check_path}"), stacklevel=2
        )
        return written
    compiled = compile_model(int8, out_dir)
    write_json(out_dir / f"{int8.stem}{COMPILE_SUFFIX}", {**compiled.report.to_dict(), "compiler_output": compiled.output})
    compiled_meta = int8_meta.replace(parent_sha256=sha256_file(int8))
    write_sidecar(compiled.model, compiled_meta)
    written.append((compiled.model, compiled_meta))
    print(f"edgetpu_compiler: {compiled.report.summary()} ({compiled.model.name})")
    if not compiled.report.compatible:
        warnings.warn(f"edgetpu_compiler did not map every op of {int8.name}: {compiled.report.summary()}", stacklevel=2)
    return written
