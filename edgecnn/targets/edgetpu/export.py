"""``edgecnn export MODEL --int8 --target edgetpu``: the TFLite exporter for the Edge TPU.

It replaces the tflite format's exporter when the target is ``edgetpu`` (the package
registers it) and writes the same files, plus:

- ``model_int8.tflite`` from the tflite format's int8 conversion (batch 1, static shapes,
  int8 builtin kernels only) with 8-bit input and output and per-tensor Dense weights:
  compiler 16.0's TFLite 2.5 has no per-channel fully-connected kernel. The registered
  family converts to QUANTIZE, CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, ADD (fused ReLU),
  RELU, MEAN (global average pooling over x and y) and FULLY_CONNECTED, all in versions
  compiler 16.0 reads;
- ``model_int8_edgetpu_check.json``, the pre-flight report; the export fails if the model
  would not map entirely, rather than hand over a model that half runs on the CPU;
- with ``edgetpu_compiler`` on PATH: ``model_int8_edgetpu.tflite``, its sidecar, the
  compiler's ``model_int8_edgetpu.log`` and ``model_int8_edgetpu_compile.json``.
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

from ...artifact import ArtifactMetadata, sidecar_path
from ...errors import VerificationError
from ...fileio import final_path, json_bytes, keep_on_failure, sha256_file, write_files, write_json
from .checker import check_model
from .compiler import INSTALL_HINT, compile_model, find_compiler

CHECK_SUFFIX = "_edgetpu_check.json"
COMPILE_SUFFIX = "_edgetpu_compile.json"

log = logging.getLogger(__name__)


class EdgeTpuCompilerMissing(UserWarning):
    """edgetpu_compiler is not on PATH: the compiled model was not written."""


def export(model, meta: ArtifactMetadata, calibration, options, out_dir: Path, plan=None) -> list[tuple[Path, ArtifactMetadata]]:
    from ...export import tflite
    from ...export.options import Int8Plan

    plan = plan or Int8Plan()  # export's steps never keep layers float for this target

    fp32 = out_dir / f"model_fp32{tflite.SUFFIX}"
    written = [(fp32, tflite.write(tflite.convert_float(model, meta.input_shape), fp32, meta.replace(precision="float32")))]
    int8 = out_dir / f"model_int8{tflite.SUFFIX}"
    # ExportOptions has checked that the input and output are 8-bit for this target.
    data = tflite.convert_int8(
        plan.qat_for("tflite") or model,
        meta.input_shape,
        calibration,
        meta.normalization,
        options.io,
        per_tensor_dense=True,
        per_tensor_weights=plan.per_tensor_weights,
    )
    int8_meta = tflite.write(data, int8, meta.replace(precision="int8"))
    written.append((int8, int8_meta))

    report = check_model(int8)
    check_path = out_dir / f"{int8.stem}{CHECK_SUFFIX}"
    write_json(check_path, report.to_dict())
    log.info("Edge TPU pre-flight check: %s (%s)", report.summary(), check_path.name)
    if not report.compatible:
        # The export's other files are discarded; the report that says why stays.
        shown = keep_on_failure(check_path)
        raise VerificationError(f"{int8.name} would not run entirely on the Edge TPU: {report.summary()}; see {shown}")

    if find_compiler() is None:
        warnings.warn(
            EdgeTpuCompilerMissing(
                f"{INSTALL_HINT.format(model=final_path(int8))}; the pre-flight report is {final_path(check_path)}"
            ),
            stacklevel=2,
        )
        return written
    # Compiled aside, then moved in with its sidecar and log: never a compiled model beside a stale sidecar.
    with tempfile.TemporaryDirectory(prefix=".edgetpu-", dir=out_dir) as tmp:
        compiled = compile_model(int8, tmp)
        model_path = out_dir / compiled.model.name
        compiled_meta = int8_meta.replace(parent_sha256=sha256_file(int8))
        files = {model_path: compiled.model.read_bytes(), sidecar_path(model_path): json_bytes(compiled_meta.to_dict())}
        if compiled.log is not None:
            files[out_dir / compiled.log.name] = compiled.log.read_bytes()
        files[out_dir / f"{int8.stem}{COMPILE_SUFFIX}"] = json_bytes(
            {**compiled.report.to_dict(), "compiler_output": compiled.output}
        )
        write_files(files)
    written.append((model_path, compiled_meta))
    log.info("edgetpu_compiler: %s (%s)", compiled.report.summary(), model_path.name)
    if not compiled.report.compatible:
        warnings.warn(f"edgetpu_compiler did not map every op of {int8.name}: {compiled.report.summary()}", stacklevel=2)
    return written
