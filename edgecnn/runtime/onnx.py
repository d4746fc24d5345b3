"""Run .onnx classifiers with ONNX Runtime: no TensorFlow, no onnx package.

The artifact metadata comes from the model's ``metadata_props`` (read through
``InferenceSession.get_modelmeta()``), else from the ``<model>.json`` sidecar.
``onnxruntime`` is imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..artifact import METADATA_KEY, sidecar_path
from ..errors import ConfigError, MissingDependencyError, ModelFileError, first_line
from ..fileio import read_model_bytes
from .model import RuntimeModel, resolve_metadata
from .preprocess import dequantize, prepare_input

PathLike = Union[str, os.PathLike]

INSTALL_HINT = "pip install onnxruntime"
PROVIDER = "CPUExecutionProvider"
#: Images per call when the model takes any batch size.
MAX_BATCH = 64

_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int16)": "int16",
}

_FOREIGN = (
    (lambda d: d[4:8] == b"TFL3", "it is a TFLite model; load it as .tflite"),
    (lambda d: d.startswith(b"\x89PNG"), "it is a PNG image"),
    (lambda d: d.startswith(b"\xff\xd8\xff"), "it is a JPEG image"),
    (lambda d: d.startswith(b"PK\x03\x04"), "it is a zip archive, e.g. a .keras model"),
    (lambda d: d.startswith(b"\x89HDF"), "it is an HDF5 file, e.g. a .h5 Keras model"),
)


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(f"onnxruntime is not installed ({exc}); {INSTALL_HINT}") from None
    return onnxruntime


def _read(path: Path) -> bytes:
    data = read_model_bytes(path)
    if not data:
        raise ModelFileError(f"{path} is not an ONNX model (it is empty); export the model again")
    hint = next((text for matches, text in _FOREIGN if matches(data)), None)
    if hint:
        raise ModelFileError(f"{path} is not an ONNX model ({hint}); pass a .onnx file from `edgecnn export`")
    return data


def create_session(data: bytes, path: Path, num_threads: Optional[int] = None):
    """An ONNX Runtime CPU session for model bytes; ModelFileError if ORT cannot load them."""
    if num_threads is not None and (not isinstance(num_threads, int) or isinstance(num_threads, bool) or num_threads < 1):
        raise ConfigError(f"num_threads must be a positive integer, got {num_threads!r}")
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT logs graph rewrites as warnings
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    try:
        # enable_fallback=0: no retry with the same provider and no banner printed on stdout.
        return ort.InferenceSession(data, options, providers=[PROVIDER], enable_fallback=0)
    except Exception as exc:  # ORT raises its own pybind types (InvalidProtobuf, Fail, InvalidGraph, ...)
        raise ModelFileError(
            f"{path} is not a valid ONNX model that onnxruntime {ort.__version__} can load ({first_line(exc)}); "
            "export or copy it again"
        ) from None


class OnnxRuntimeModel(RuntimeModel):
    """A .onnx classifier with one NHWC image input (batch 1 or any) and one (N, num_classes) output."""

    def __init__(self, path: PathLike, num_threads: Optional[int] = None):
        path = Path(path)
        session = create_session(_read(path), path, num_threads)
        try:
            embedded = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        except Exception as exc:
            raise ModelFileError(f"{path}: cannot read the model's metadata ({first_line(exc)})") from None
        meta = resolve_metadata(path, embedded.encode() if embedded is not None else None)
        ort = onnxruntime_module()
        super().__init__(path, meta, f"onnxruntime {ort.__version__} {session.get_providers()[0]}")
        self._session = session
        self.num_threads = num_threads
        self._check_against_metadata()

    def _check_against_metadata(self) -> None:
        meta, path, session = self.metadata, self.path, self._session
        fix = f"re-export the model or fix {sidecar_path(path).name}"
        inputs, outputs = session.get_inputs(), session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier has one of each"
            )
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(self._input.shape)
        batch = shape[0] if shape else None
        any_batch = not isinstance(batch, int)  # a named (str) or unknown (None) dimension
        if len(shape) != 4 or tuple(shape[1:]) != tuple(meta.input_shape) or not (any_batch or batch == 1):
            raise ModelFileError(f"{path} takes input {shape} but its metadata says {tuple(meta.input_shape)}; {fix}")
        #: None when the model takes any batch size.
        self.batch_size = None if any_batch else 1
        out_shape = tuple(self._output.shape)
        if not out_shape or out_shape[-1] != meta.num_classes:
            raise ModelFileError(f"{path} outputs {out_shape} but its metadata has {meta.num_classes} labels; {fix}")
        for what, tensor, declared in (("input", self._input, meta.input_dtype), ("output", self._output, meta.output_dtype)):
            actual = _DTYPES.get(tensor.type, tensor.type)
            if actual != declared:
                raise ModelFileError(f"{path} has a {actual} {what} but its metadata says {declared}; {fix}")
        self.input_dtype, self.output_dtype = meta.input_dtype, meta.output_dtype
        for what, dtype, q in (
            ("input", meta.input_dtype, meta.input_quantization),
            ("output", meta.output_dtype, meta.output_quantization),
        ):
            if dtype in ("uint8", "int8", "int16") and q is None:
                raise ModelFileError(f"{path} has a {dtype} {what} but its metadata gives no quantization; {fix}")

    def invoker(self, pixels) -> Callable[[], object]:
        """One inference on `pixels` (one image), input already prepared: what a benchmark times."""
        x = prepare_input(self._batch(pixels)[:1], self.metadata, self.input_dtype, self.metadata.input_quantization)
        run, names, feed = self._session.run, [self._output.name], {self._input.name: x}
        return lambda: run(names, feed)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One session call on a prepared input batch; returns the raw output."""
        try:
            return self._session.run([self._output.name], {self._input.name: x})[0]
        except Exception as exc:  # a file whose graph loads but cannot execute (corrupt shapes, ...)
            raise ModelFileError(f"{self.path}: onnxruntime failed to run the model ({first_line(exc)}); re-export it") from None

    def predict(self, pixels) -> np.ndarray:
        batch = self._batch(pixels)
        x = prepare_input(batch, self.metadata, self.input_dtype, self.metadata.input_quantization)
        step = self.batch_size or MAX_BATCH
        outputs = [self.run(x[i : i + step]).reshape(-1, self.metadata.num_classes) for i in range(0, len(x), step)]
        out = np.concatenate(outputs) if outputs else np.empty((0, self.metadata.num_classes), np.float32)
        q = self.metadata.output_quantization
        return dequantize(out, q) if q is not None and self.output_dtype != "float32" else out.astype(np.float32)
