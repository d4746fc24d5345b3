"""The device-side model API every backend shares: ``load(path).classify(image)``.

Backends (:mod:`.tflite`, :mod:`.onnx`) subclass :class:`RuntimeModel`; :mod:`.loaders`
picks one by file suffix. Needs numpy and Pillow; never TensorFlow.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ..artifact import ArtifactMetadata, Quantization, read_sidecar, sidecar_path
from ..errors import ConfigError, DataError, ModelFileError
from .preprocess import class_scores, gray_as_rgb, image_to_pixels, load_image

PathLike = Union[str, os.PathLike]
#: I/O types whose values are affine-quantized integers.
QUANTIZED_DTYPES = ("int8", "uint8", "int16")


def resolve_metadata(path: PathLike, embedded: Optional[bytes], facts=None) -> Optional[ArtifactMetadata]:
    """Metadata embedded in the model file, else the ``<model file>.json`` sidecar; None if neither
    exists (the loader then reads what it can from the file, see :mod:`edgecnn.runtime.foreign`).

    `facts` (:class:`~edgecnn.runtime.foreign.ModelFacts`) are for models without metadata: given
    for a model that has it, they would contradict it, and are refused.
    """
    path = Path(path)
    try:
        if embedded is not None:
            meta = ArtifactMetadata.from_json(embedded)
        else:
            meta = read_sidecar(path)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    if meta is not None and facts is not None and facts.given:
        raise ConfigError(
            f"{path} carries edgecnn metadata (labels, normalisation); --labels, --norm and --mean/--std are for models without it"
        )
    return meta


@dataclass(frozen=True)
class TensorSpec:
    """A model input or output as its backend reports it."""

    #: Batch dimension first; a dimension that is not an int (None, a name) takes any size.
    shape: tuple
    dtype: str
    #: The tensor's own quantization, where the format stores one (TFLite); None otherwise.
    quantization: Optional[Quantization] = None


def _any_size(dim) -> bool:
    return not isinstance(dim, int)


def _same(a: Quantization, b: Quantization) -> bool:
    return a.dtype == b.dtype and a.zero_point == b.zero_point and math.isclose(a.scale, b.scale, rel_tol=1e-6)


def check_io(path: Path, meta: ArtifactMetadata, inp: TensorSpec, out: TensorSpec) -> tuple[Optional[Quantization], ...]:
    """Refuse a model whose input or output disagrees with its metadata; returns the (input, output)
    quantization to use: the tensor's own where the format has one, else the metadata's."""
    fix = f"re-export the model or fix {sidecar_path(path).name}"
    shape = tuple(inp.shape)
    if len(shape) != 4 or shape[1:] != tuple(meta.input_shape) or not (_any_size(shape[0]) or shape[0] == 1):
        raise ModelFileError(f"{path} takes input {shape} but its metadata says {tuple(meta.input_shape)}; {fix}")
    out_shape = tuple(out.shape)
    if not out_shape or out_shape[-1] != meta.output_units or not all(_any_size(d) or d == 1 for d in out_shape[:-1]):
        what = f"a binary ({meta.output}) output" if meta.output_units == 1 else f"{meta.num_classes} labels"
        raise ModelFileError(f"{path} outputs {out_shape} but its metadata has {what}; {fix}")
    quantizations = []
    for what, tensor, declared_dtype, declared in (
        ("input", inp, meta.input_dtype, meta.input_quantization),
        ("output", out, meta.output_dtype, meta.output_quantization),
    ):
        if tensor.dtype != declared_dtype:
            raise ModelFileError(f"{path} has a {tensor.dtype} {what} but its metadata says {declared_dtype}; {fix}")
        actual = tensor.quantization
        if actual is not None and declared is not None and not _same(actual, declared):
            raise ModelFileError(f"{path}: {what} quantization {actual} differs from its metadata {declared}; {fix}")
        if tensor.dtype in QUANTIZED_DTYPES and actual is None and declared is None:
            raise ModelFileError(f"{path} has a {tensor.dtype} {what} but its metadata gives no quantization; {fix}")
        quantizations.append(actual or declared)
    return tuple(quantizations)


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
        """Class probabilities (N, num_classes), whatever the output holds (logits, probabilities, one binary unit)."""
        return class_scores(self.predict(pixels), self.metadata.output)

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
        pixels = gray_as_rgb(pixels, self.input_shape[2])
        if pixels.shape == self.input_shape:
            pixels = pixels[None]
        if pixels.ndim != 4 or pixels.shape[1:] != self.input_shape:
            raise DataError(
                f"pixels have shape {pixels.shape}; the model takes (N, {', '.join(map(str, self.input_shape))}) "
                f"or {self.input_shape}: resize the images with edgecnn.runtime.load_image"
            )
        return self._check_dtype(pixels)
