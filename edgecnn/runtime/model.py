"""Device-side model API: ``load(path).classify(image)``.

Needs numpy, Pillow, flatbuffers and a TFLite interpreter; never TensorFlow.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..artifact import METADATA_KEY, ArtifactMetadata, Quantization, read_sidecar, sidecar_path
from ..errors import ConfigError, DataError, ModelFileError
from .devices import EDGETPU_CUSTOM_OP, is_compiled_for_edgetpu, load_edgetpu_delegate, parse_device
from .interpreters import load_interpreter
from .preprocess import dequantize, image_to_pixels, load_image, prepare_input, softmax
from .tflite_file import load_tflite

PathLike = Union[str, os.PathLike]


def resolve_metadata(path: PathLike, embedded: Optional[bytes]) -> ArtifactMetadata:
    """Metadata embedded in the model file, else the ``<model>.json`` sidecar."""
    path = Path(path)
    try:
        if embedded is not None:
            return ArtifactMetadata.from_json(embedded)
        meta = read_sidecar(path)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if meta is None:
        raise ModelFileError(
            f"{path} has no edgecnn metadata; export it with `edgecnn export` or put {sidecar_path(path).name} beside it"
        )
    return meta


class RuntimeModel:
    """A loaded classifier. Subclasses implement :meth:`predict` for one file format."""

    def __init__(self, path: PathLike, metadata: ArtifactMetadata, backend: str):
        self.path = Path(path)
        self.metadata = metadata
        self.backend = backend

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image."""
        return tuple(self.metadata.input_shape)

    @property
    def labels(self) -> tuple[str, ...]:
        return self.metadata.labels

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, backend={self.backend!r}, input_shape={self.input_shape})"

    def predict(self, pixels) -> np.ndarray:
        """uint8 pixels (N, H, W, C) or (H, W, C) -> float32 outputs (N, num_classes)."""
        raise NotImplementedError

    def invoker(self, pixels) -> Callable[[], object]:
        """A call that runs one inference on one prepared image, for benchmarks to time."""
        raise NotImplementedError

    def scores(self, pixels) -> np.ndarray:
        """Class probabilities (N, num_classes): softmax of the logits."""
        outputs = self.predict(pixels)
        return softmax(outputs) if self.metadata.output == "logits" else outputs

    def classify(self, image, top_k: int = 5) -> list[tuple[str, float]]:
        """Top-k ``(label, score)`` for one image (path, PIL image or uint8 array), best first."""
        if not isinstance(top_k, int) or top_k < 1:
            raise ConfigError(f"top_k must be a positive integer, got {top_k!r}")
        probs = self.scores(self.to_pixels(image)[None])[0]
        order = np.argsort(-probs, kind="stable")[:top_k]
        return [(self.labels[i], float(probs[i])) for i in order]

    def to_pixels(self, image) -> np.ndarray:
        """A path, PIL image or uint8 array -> uint8 (H, W, C) matching :attr:`input_shape`."""
        if isinstance(image, (str, os.PathLike)):
            return load_image(image, self.input_shape)
        if isinstance(image, np.ndarray):
            if image.shape == self.input_shape:
                return self._check_dtype(image)
            if image.ndim in (2, 3) and image.dtype == np.uint8:
                from PIL import Image

                squeezed = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
                try:
                    return image_to_pixels(Image.fromarray(squeezed), self.input_shape)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"cannot use an array of shape {image.shape} as an image ({exc})") from None
            raise DataError(
                f"image array has shape {image.shape} and dtype {image.dtype}; "
                f"pass uint8 pixels shaped (H, W) or (H, W, C), e.g. {self.input_shape}"
            )
        if hasattr(image, "convert") and hasattr(image, "size"):
            return image_to_pixels(image, self.input_shape)
        raise DataError(f"cannot classify a {type(image).__name__}; pass an image path, a PIL image or a uint8 array")

    def _check_dtype(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.dtype != np.uint8:
            raise DataError(
                f"pixels must be uint8 in 0..255, got {pixels.dtype}; use edgecnn.runtime.load_image or .astype(np.uint8)"
            )
        return pixels

    def _batch(self, pixels) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.shape == self.input_shape:
            pixels = pixels[None]
        if pixels.ndim != 4 or pixels.shape[1:] != self.input_shape:
            raise DataError(
                f"pixels have shape {pixels.shape}; the model takes (N, {', '.join(map(str, self.input_shape))}) "
                f"or {self.input_shape}: resize the images with edgecnn.runtime.load_image"
            )
        return self._check_dtype(pixels)


def _quantization(detail: dict, what: str, path: Path) -> Optional[Quantization]:
    dtype = np.dtype(detail["dtype"]).name
    if dtype not in ("int8", "uint8", "int16"):
        return None
    scale, zero_point = detail.get("quantization", (0.0, 0))
    if not scale:
        raise ModelFileError(f"{path}: the {dtype} {what} tensor has no quantization parameters; re-export the model")
    return Quantization(dtype, float(scale), int(zero_point))


def _same(a: Optional[Quantization], b: Optional[Quantization]) -> bool:
    if a is None or b is None:
        return True
    return a.dtype == b.dtype and a.zero_point == b.zero_point and math.isclose(a.scale, b.scale, rel_tol=1e-6)


class TFLiteRuntimeModel(RuntimeModel):
    """A .tflite classifier with a batch-1 image input and one (1, num_classes) output."""

    def __init__(self, path: PathLike, num_threads: Optional[int] = None, device: Optional[str] = None):
        path = Path(path)
        parsed = load_tflite(path)
        delegates, where = _delegates(path, parsed, device)
        meta = resolve_metadata(path, parsed.metadata.get(METADATA_KEY))
        interpreter, backend = load_interpreter(parsed.data, num_threads=num_threads, delegates=delegates)
        super().__init__(path, meta, backend + where)
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelFileError(
                f"{path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier has one of each"
            )
        self._input, self._output = inputs[0], outputs[0]
        shape = tuple(int(x) for x in self._input["shape"])
        if len(shape) == 4 and shape[0] != 1 and shape[1:] == tuple(meta.input_shape):
            # Inference runs one image at a time.
            interpreter.resize_tensor_input(self._input["index"], [1, *shape[1:]])
        interpreter.allocate_tensors()
        self._input, self._output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        self._interpreter = interpreter
        self._model_bytes = parsed.data  # the interpreter reads weights from this buffer
        self._check_against_metadata()

    def _check_against_metadata(self) -> None:
        meta, path = self.metadata, self.path
        fix = f"re-export the model or fix {sidecar_path(path).name}"
        in_shape, out_shape = tuple(int(x) for x in self._input["shape"]), tuple(int(x) for x in self._output["shape"])
        if in_shape != (1, *meta.input_shape):
            raise ModelFileError(f"{path} takes input {in_shape} but its metadata says {meta.input_shape}; {fix}")
        if int(np.prod(out_shape)) != meta.num_classes:
            raise ModelFileError(f"{path} outputs {out_shape} but its metadata has {meta.num_classes} labels; {fix}")
        self.input_dtype = np.dtype(self._input["dtype"]).name
        self.output_dtype = np.dtype(self._output["dtype"]).name
        for what, actual, declared in (
            ("input", self.input_dtype, meta.input_dtype),
            ("output", self.output_dtype, meta.output_dtype),
        ):
            if actual != declared:
                raise ModelFileError(f"{path} has a {actual} {what} but its metadata says {declared}; {fix}")
        self.input_quantization = _quantization(self._input, "input", path)
        self.output_quantization = _quantization(self._output, "output", path)
        for what, actual, declared in (
            ("input", self.input_quantization, meta.input_quantization),
            ("output", self.output_quantization, meta.output_quantization),
        ):
            if not _same(actual, declared):
                raise ModelFileError(f"{path}: {what} quantization {actual} differs from its metadata {declared}; {fix}")

    def invoker(self, pixels) -> Callable[[], object]:
        """One inference on `pixels` (one image), input already set: what a benchmark times."""
        x = prepare_input(self._batch(pixels)[:1], self.metadata, self.input_dtype, self.input_quantization)
        self._interpreter.set_tensor(self._input["index"], x)
        return self._interpreter.invoke

    def predict(self, pixels) -> np.ndarray:
        batch = self._batch(pixels)
        x = prepare_input(batch, self.metadata, self.input_dtype, self.input_quantization)
        out = np.empty((len(batch), self.metadata.num_classes), dtype=np.float32)
        interp, in_index, out_index = self._interpreter, self._input["index"], self._output["index"]
        for i in range(len(batch)):
            interp.set_tensor(in_index, x[i : i + 1])
            interp.invoke()
            y = interp.get_tensor(out_index).reshape(-1)
            out[i] = dequantize(y, self.output_quantization) if self.output_quantization else y
        return out


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


def _load_onnx(path: PathLike, num_threads: Optional[int] = None) -> RuntimeModel:
    # Imported on first use: a TFLite-only device needs no onnxruntime.
    from .onnx import OnnxRuntimeModel

    return OnnxRuntimeModel(path, num_threads=num_threads)


#: File suffix -> loader(path, num_threads). Other formats register themselves here.
LOADERS: dict[str, Callable[..., RuntimeModel]] = {".tflite": TFLiteRuntimeModel, ".onnx": _load_onnx}


def register_loader(suffix: str, loader: Callable[..., RuntimeModel]) -> None:
    LOADERS[suffix.lower()] = loader


def load(path: PathLike, num_threads: Optional[int] = None, device: Optional[str] = None) -> RuntimeModel:
    """Load a model file for inference, choosing the runtime by its suffix.

    `device`: None or "cpu", or an Edge TPU ("edgetpu", "edgetpu:usb:0") for a compiled .tflite.
    """
    path = Path(path)
    if parse_device(device).is_edgetpu:
        if path.suffix.lower() != ".tflite":
            raise ConfigError(
                f"{path}: the Edge TPU runs .tflite models compiled by edgetpu_compiler, not {path.suffix or 'this file'}"
            )
        if not path.is_file():
            raise ModelFileError(f"{path} does not exist; check the model path")
        return TFLiteRuntimeModel(path, num_threads=num_threads, device=device)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise ModelFileError(
            f"{path} has an unsupported suffix {path.suffix or '(none)'!r}; expected {', '.join(sorted(LOADERS))}"
        )
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist; check the model path")
    return loader(path, num_threads=num_threads)
