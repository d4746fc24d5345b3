"""Run .onnx classifiers with ONNX Runtime: no TensorFlow, no onnx package.

The artifact metadata comes from the model's ``metadata_props`` (read through
``InferenceSession.get_modelmeta()``), else from the ``<model file>.json`` sidecar.
``onnxruntime`` is imported when a model is loaded, not when this module is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..artifact import METADATA_KEY
from ..errors import MissingDependencyError, ModelFileError, first_line
from ..fileio import read_model_bytes
from .filetype import foreign_kind
from .foreign import ModelFacts, foreign_metadata
from .interpreters import check_threads
from .model import RuntimeModel, TensorSpec, check_io, resolve_metadata
from .onnx_verify import verify_onnx
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


def onnxruntime_module():
    try:
        import onnxruntime
    except ImportError as exc:
        raise MissingDependencyError(f"onnxruntime is not installed ({exc}); {INSTALL_HINT}") from None
    return onnxruntime


def read_verified(path: Path) -> bytes:
    """The bytes of an .onnx file, checked by verify_onnx (no external data, sane structure)."""
    data = read_model_bytes(path)
    if not data:
        raise ModelFileError(f"{path} is not an ONNX model (it is empty); export the model again")
    hint = foreign_kind(data, "onnx")
    if hint:
        raise ModelFileError(f"{path} is not an ONNX model ({hint}); pass a .onnx file from `edgecnn export`")
    verify_onnx(data, path)
    return data


def create_session(data: bytes, path: Path, num_threads: Optional[int] = None):
    """An ONNX Runtime CPU session for model bytes; ModelFileError if ORT cannot load them."""
    check_threads(num_threads)
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


def _batch_one(shape) -> tuple:
    """An ONNX shape with a symbolic batch dimension read as one image."""
    shape = tuple(shape)
    return (1, *shape[1:]) if shape and not isinstance(shape[0], int) else shape


_PASS_THROUGH = ("Identity", "Cast", "Reshape", "Flatten", "Squeeze", "DequantizeLinear", "QuantizeLinear")


def _graph_facts(data: bytes) -> tuple[Optional[str], bool]:
    """(the op type producing the output, looking through reshapes and casts; whether the graph is
    quantized), read with the onnx package where it is installed, else (None, False)."""
    try:
        import onnx
    except ImportError:
        return None, False
    graph = onnx.load_model_from_string(data).graph  # already checked by verify_onnx
    quantized = any(
        n.op_type.startswith("QLinear") or n.op_type.endswith("Integer") or n.op_type == "QuantizeLinear" for n in graph.node
    )
    producers = {out: node for node in graph.node for out in node.output}
    name = graph.output[0].name
    for _ in range(len(graph.node)):
        node = producers.get(name)
        if node is None or node.op_type not in _PASS_THROUGH or not node.input:
            return (node.op_type if node is not None else None), quantized
        name = node.input[0]
    return None, quantized


class OnnxRuntimeModel(RuntimeModel):
    """A .onnx classifier with one NHWC image input (batch 1 or any) and one (N, num_classes) output."""

    def __init__(self, path: PathLike, num_threads: Optional[int] = None, facts: Optional[ModelFacts] = None):
        path = Path(path)
        data = read_verified(path)
        session = create_session(data, path, num_threads)
        try:
            embedded = session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        except Exception as exc:
            raise ModelFileError(f"{path}: cannot read the model's metadata ({first_line(exc)})") from None
        meta = resolve_metadata(path, embedded.encode() if embedded is not None else None, facts)
        if meta is None:  # an .onnx from elsewhere
            inputs, outputs = session.get_inputs(), session.get_outputs()
            if len(inputs) != 1 or len(outputs) != 1:
                raise ModelFileError(
                    f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier has one of each"
                )
            spec = [TensorSpec(_batch_one(t.shape), _DTYPES.get(t.type, t.type)) for t in (inputs[0], outputs[0])]
            final, quantized = _graph_facts(data)
            meta = foreign_metadata(path, "onnx", *spec, final, facts or ModelFacts(), quantized=quantized)
        ort = onnxruntime_module()
        super().__init__(path, meta, f"onnxruntime {ort.__version__} {session.get_providers()[0]}")
        self._session = session
        self.num_threads = num_threads
        self._check_against_metadata()

    def _check_against_metadata(self) -> None:
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{self.path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier has one of each"
            )
        self._input, self._output = inputs[0], outputs[0]

        def spec(tensor) -> TensorSpec:
            return TensorSpec(tuple(tensor.shape), _DTYPES.get(tensor.type, tensor.type))

        inp, out = spec(self._input), spec(self._output)
        # ONNX tensors carry no quantization: an 8-bit input or output takes the metadata's.
        self.input_quantization, self.output_quantization = check_io(self.path, self.metadata, inp, out)
        self.input_dtype, self.output_dtype = inp.dtype, out.dtype
        #: None when the model takes any batch size.
        self.batch_size = None if not isinstance(inp.shape[0], int) else 1

    def invoker(self, pixels) -> Callable[[], object]:
        """One inference on `pixels` (one image), input already prepared: what a benchmark times."""
        x = prepare_input(self._batch(pixels)[:1], self.metadata, self.input_dtype, self.input_quantization)
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
        x = prepare_input(batch, self.metadata, self.input_dtype, self.input_quantization)
        step = self.batch_size or MAX_BATCH
        outputs = [self.run(x[i : i + step]).reshape(-1, self.metadata.output_units) for i in range(0, len(x), step)]
        out = np.concatenate(outputs) if outputs else np.empty((0, self.metadata.output_units), np.float32)
        q = self.output_quantization
        return dequantize(out, q) if q is not None and self.output_dtype != "float32" else out.astype(np.float32)
