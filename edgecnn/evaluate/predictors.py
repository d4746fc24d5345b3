"""Turn any artifact into a function from uint8 pixels to logits.

Device formats go through :mod:`edgecnn.runtime` (no TensorFlow); a .keras file needs
the training toolchain, which is imported only when one is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..artifact import ArtifactMetadata
from ..errors import ConfigError, ModelFileError


@dataclass(frozen=True)
class Predictor:
    path: Path
    metadata: ArtifactMetadata
    backend: str
    predict: Callable[[np.ndarray], np.ndarray]  # uint8 (N, H, W, C) -> float32 logits (N, classes)


def _keras_predictor(path: Path, batch_size: int = 256, trust_model: bool = False) -> Predictor:
    from ..keras_file import load_with_metadata
    from ..tf import tensorflow

    model, meta = load_with_metadata(path, trust_model=trust_model)

    def predict(pixels: np.ndarray) -> np.ndarray:
        x = meta.normalization.apply(pixels)
        return np.concatenate([model.predict_on_batch(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    return Predictor(path, meta, f"tensorflow {tensorflow().__version__}", predict)


def _runtime_predictor(path: Path, num_threads: int | None, device: str | None = None, facts=None) -> Predictor:
    from .. import runtime

    model = runtime.load(path, num_threads=num_threads, device=device, facts=facts)
    return Predictor(path, model.metadata, model.backend, model.predict)


def load_predictor(
    path: str | Path, num_threads: int | None = None, device: str | None = None, trust_model: bool = False, facts=None
) -> Predictor:
    """`device`: None/"cpu", or "edgetpu[:usb:0]" for a .tflite compiled by edgetpu_compiler.

    `trust_model`: load a .keras/.h5 whose config names code (see edgecnn.keras_file.load_keras_model).
    `facts`: labels and normalisation of a .tflite/.onnx without edgecnn metadata (runtime.ModelFacts).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist; give a .keras, .tflite or .onnx file written by edgecnn")
    if path.suffix in (".keras", ".h5"):
        if device not in (None, "cpu"):
            raise ConfigError(f"{path} is a Keras model, which runs on the CPU; --device {device} needs a compiled .tflite")
        if facts is not None and facts.given:
            raise ConfigError(f"{path}: --labels, --norm and --mean/--std are for .tflite/.onnx files without metadata")
        return _keras_predictor(path, trust_model=trust_model)
    return _runtime_predictor(path, num_threads, device, facts)
