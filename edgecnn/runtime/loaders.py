"""``load(path)``: the loader registry, one backend per file suffix."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ..errors import ConfigError, ModelFileError
from .devices import parse_device
from .foreign import ModelFacts
from .model import PathLike, RuntimeModel
from .tflite import TFLiteRuntimeModel


def _load_onnx(path: PathLike, num_threads: Optional[int] = None, facts=None) -> RuntimeModel:
    # Imported on first use: a TFLite-only device needs no onnxruntime.
    from .onnx import OnnxRuntimeModel

    return OnnxRuntimeModel(path, num_threads=num_threads, facts=facts)


#: File suffix -> loader(path, num_threads). Other formats register themselves here.
LOADERS: dict[str, Callable[..., RuntimeModel]] = {".tflite": TFLiteRuntimeModel, ".onnx": _load_onnx}


def register_loader(suffix: str, loader: Callable[..., RuntimeModel]) -> None:
    LOADERS[suffix.lower()] = loader


def load(
    path: PathLike, num_threads: Optional[int] = None, device: Optional[str] = None, facts: Optional[ModelFacts] = None
) -> RuntimeModel:
    """Load a model file for inference, choosing the runtime by its suffix.

    `device`: None or "cpu", or an Edge TPU ("edgetpu", "edgetpu:usb:0") for a compiled .tflite.
    `facts`: labels and normalisation of a model without edgecnn metadata (see :class:`ModelFacts`).
    """
    path = Path(path)
    if parse_device(device).is_edgetpu:
        if path.suffix.lower() != ".tflite":
            raise ConfigError(
                f"{path}: the Edge TPU runs .tflite models compiled by edgetpu_compiler, not {path.suffix or 'this file'}"
            )
        if not path.is_file():
            raise ModelFileError(f"{path} does not exist; check the model path")
        return TFLiteRuntimeModel(path, num_threads=num_threads, device=device, facts=facts)
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise ModelFileError(
            f"{path} has an unsupported suffix {path.suffix or '(none)'!r}; expected {', '.join(sorted(LOADERS))}"
        )
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist; check the model path")
    return loader(path, num_threads=num_threads, facts=facts) if facts is not None else loader(path, num_threads=num_threads)
