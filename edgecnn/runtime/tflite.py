"""The TFLite backend: a .tflite classifier on ai-edge-litert or tflite-runtime, optionally on an Edge TPU."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..artifact import METADATA_KEY, Quantization
from ..errors import ConfigError, ModelFileError, first_line
from .devices import EDGETPU_CUSTOM_OP, is_compiled_for_edgetpu, load_edgetpu_delegate, parse_device
from .foreign import ModelFacts, foreign_metadata, tflite_labels, tflite_standard_metadata
from .interpreters import load_interpreter
from .model import QUANTIZED_DTYPES, PathLike, RuntimeModel, TensorSpec, check_io, resolve_metadata
from .preprocess import dequantize, prepare_input
from .tflite_file import load_tflite
from .tflite_verify import verify_tflite


def _quantization(detail: dict, what: str, path: Path) -> Optional[Quantization]:
    dtype = np.dtype(detail["dtype"]).name
    if dtype not in QUANTIZED_DTYPES:
        return None
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        raise ModelFileError(f"{path}: the {dtype} {what} tensor has no quantization parameters; re-export the model")
    return Quantization(dtype, float(scale), int(zero_point))


def _spec(detail: dict, what: str, path: Path) -> TensorSpec:
    shape = tuple(int(x) for x in detail["shape"])
    return TensorSpec(shape, np.dtype(detail["dtype"]).name, _quantization(detail, what, path))


#: Ops that pass a classifier's scores through unchanged in meaning, looked through to the activation.
_PASS_THROUGH = ("QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE")


def _final_activation(parsed) -> Optional[str]:
    """The op that produces the model's output, looking through quantize/reshape ops (SOFTMAX, LOGISTIC, ...)."""
    graph = parsed.subgraphs[0]
    producers = {t: code.name for code, op in parsed.operators(0) for t in op.outputs}
    inputs_of = {t: op.inputs for _, op in parsed.operators(0) for t in op.outputs}
    tensor = graph.outputs[0]
    for _ in range(len(graph.operators)):
        name = producers.get(tensor)
        if name not in _PASS_THROUGH or not inputs_of[tensor]:
            return name
        tensor = inputs_of[tensor][0]
    return None


def _is_quantized(parsed) -> bool:
    """Whether the graph computes in integers (an int8 or uint8 tensor feeds an op with weights)."""
    tensors = parsed.subgraphs[0].tensors
    return any(
        code.name in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
        and any(i >= 0 and tensors[i].dtype in ("int8", "uint8") for i in op.inputs)
        for code, op in parsed.operators(0)
    )


class TFLiteRuntimeModel(RuntimeModel):
    """A .tflite classifier with a batch-1 image input and one (1, num_classes) output."""

    def __init__(
        self, path: PathLike, num_threads: Optional[int] = None, device: Optional[str] = None, facts: Optional[ModelFacts] = None
    ):
        path = Path(path)
        parsed = load_tflite(path)
        verify_tflite(parsed, str(path))  # before the metadata: a broken graph is the first thing to say
        delegates, where = _delegates(path, parsed, device)
        meta = resolve_metadata(path, parsed.metadata.get(METADATA_KEY), facts)
        interpreter, backend = load_interpreter(parsed.data, num_threads=num_threads, delegates=delegates)
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier has one of each"
            )
        if meta is None:  # a .tflite from elsewhere: what the file says, and what the user does
            standard = tflite_standard_metadata(parsed)
            meta = foreign_metadata(
                path,
                "tflite",
                _spec(inputs[0], "input", path),
                _spec(outputs[0], "output", path),
                _final_activation(parsed),
                facts or ModelFacts(),
                tflite_labels(parsed.data, standard),
                quantized=_is_quantized(parsed),
                standard=standard,
            )
        super().__init__(path, meta, backend + where)
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(int(x) for x in self._input["shape"])
        with _runtime_errors(path, "prepare"):
            if len(shape) == 4 and shape[0] != 1 and shape[1:] == tuple(meta.input_shape):
                # Inference runs one image at a time.
                interpreter.resize_tensor_input(self._input["index"], [1, *shape[1:]])
            interpreter.allocate_tensors()
        self._input, self._output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        self._interpreter = interpreter
        self._model_bytes = parsed.data  # the interpreter reads weights from this buffer
        self._check_against_metadata()

    def _check_against_metadata(self) -> None:
        inp, out = _spec(self._input, "input", self.path), _spec(self._output, "output", self.path)
        self.input_quantization, self.output_quantization = check_io(self.path, self.metadata, inp, out)
        self.input_dtype, self.output_dtype = inp.dtype, out.dtype

    def invoker(self, pixels) -> Callable[[], object]:
        """One inference on `pixels` (one image), input already set: what a benchmark times."""
        x = prepare_input(self._batch(pixels)[:1], self.metadata, self.input_dtype, self.input_quantization)
        with _runtime_errors(self.path, "run"):
            self._interpreter.set_tensor(self._input["index"], x)
            self._interpreter.invoke()  # once checked, so the timed calls cannot raise the runtime's errors
        return self._interpreter.invoke

    def predict(self, pixels) -> np.ndarray:
        batch = self._batch(pixels)
        x = prepare_input(batch, self.metadata, self.input_dtype, self.input_quantization)
        out = np.empty((len(batch), self.metadata.output_units), dtype=np.float32)
        interp, in_index, out_index = self._interpreter, self._input["index"], self._output["index"]
        with _runtime_errors(self.path, "run"):
            for i in range(len(batch)):
                interp.set_tensor(in_index, x[i : i + 1])
                interp.invoke()
                y = interp.get_tensor(out_index).reshape(-1)
                out[i] = dequantize(y, self.output_quantization) if self.output_quantization else y
        return out


@contextmanager
def _runtime_errors(path: Path, action: str):
    """The interpreter's own errors (a delegate that cannot prepare a node, a tensor it never
    allocated) as one line: what the verifier let through is still the file's fault."""
    try:
        yield
    except (RuntimeError, ValueError) as exc:
        raise ModelFileError(
            f"{path}: the TFLite interpreter cannot {action} the model ({first_line(exc)}); re-export it"
        ) from None


def _delegates(path: Path, parsed, device: Optional[str]) -> tuple[Optional[list], str]:
    """The delegates for `device` and a suffix for the backend name; refuses mismatched models."""
    device = parse_device(device)
    compiled = is_compiled_for_edgetpu(parsed)
    if not device.is_edgetpu:
        if compiled:
            raise ConfigError(
                f"{path} is compiled for the Edge TPU; run it with --device edgetpu, or run the model it was "
                "compiled from on the CPU"
            )
        return None, ""
    if not compiled:
        raise ConfigError(
            f"{path} is not compiled for the Edge TPU (it has no {EDGETPU_CUSTOM_OP}); pass the *_edgetpu.tflite "
            "file written by `edgecnn export MODEL --int8 --target edgetpu` or by edgetpu_compiler"
        )
    return [load_edgetpu_delegate(device)], f" + Edge TPU ({device})"
