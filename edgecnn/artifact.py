"""Artifact metadata: what a device needs to run a model file correctly.

The same JSON is embedded in the model file where the format allows (a named
metadata buffer in .tflite, ``metadata_props`` in .onnx) and always written beside
it as ``<model file>.json`` (``model_int8.tflite.json``). This module imports neither TensorFlow nor ONNX.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import __version__
from .errors import ModelFileError
from .fileio import json_bytes, write_files, write_json

SCHEMA_VERSION = 1
#: Name of the metadata entry inside model files.
METADATA_KEY = "edgecnn"

FORMATS = ("keras", "tflite", "onnx")
PRECISIONS = ("float32", "int8")


@dataclass(frozen=True)
class Normalization:
    """How raw uint8 pixels become model input: ``x = pixel * scale + offset``."""

    scale: float = 1.0 / 255.0
    offset: float = 0.0

    def apply(self, pixels):
        import numpy as np

        return np.asarray(pixels, dtype=np.float32) * np.float32(self.scale) + np.float32(self.offset)


@dataclass(frozen=True)
class Quantization:
    """Affine quantization of a model input or output: ``real = scale * (q - zero_point)``."""

    dtype: str  # uint8 | int8
    scale: float
    zero_point: int


@dataclass(frozen=True)
class ArtifactMetadata:
    format: str
    precision: str
    labels: tuple[str, ...]
    input_shape: tuple[int, int, int]  # height, width, channels
    normalization: Normalization = field(default_factory=Normalization)
    input_dtype: str = "float32"
    output_dtype: str = "float32"
    input_quantization: Optional[Quantization] = None
    output_quantization: Optional[Quantization] = None
    #: What the output tensor holds: raw logits (the runtime applies softmax for scores).
    output: str = "logits"
    arch: Optional[str] = None
    dataset: Optional[str] = None
    #: Seed of the data set's generation and train/val/test split, so later stages
    #: draw calibration and test images from the same splits as training did.
    data_seed: Optional[int] = None
    parent_sha256: Optional[str] = None
    edgecnn_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def replace(self, **changes) -> "ArtifactMetadata":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ArtifactMetadata":
        try:
            data = dict(data)
            data["labels"] = tuple(str(x) for x in data["labels"])
            data["input_shape"] = tuple(int(x) for x in data["input_shape"])
            data["normalization"] = Normalization(**data.get("normalization") or {})
            for key in ("input_quantization", "output_quantization"):
                if data.get(key) is not None:
                    data[key] = Quantization(**data[key])
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"artifact metadata is malformed ({exc}); re-export the model with edgecnn") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "ArtifactMetadata":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"artifact metadata is not valid JSON ({exc})") from None


def sidecar_path(model_path: str | Path) -> Path:
    """``runs/x/model_int8.tflite`` -> ``runs/x/model_int8.tflite.json``: one per model file, so the
    .tflite and .onnx files of one export do not share (and overwrite) one."""
    path = Path(model_path)
    return path.with_name(path.name + ".json")


#: Model file suffix -> the format its metadata must name.
_SUFFIX_FORMATS = {".keras": "keras", ".h5": "keras", ".tflite": "tflite", ".onnx": "onnx"}


def write_sidecar(model_path: str | Path, meta: ArtifactMetadata) -> Path:
    return write_json(sidecar_path(model_path), meta.to_dict())


def write_model(model_path: str | Path, data: bytes, meta: ArtifactMetadata) -> Path:
    """A model file and its sidecar, written so that both are new or neither is."""
    path = Path(model_path)
    write_files({path: data, sidecar_path(path): json_bytes(meta.to_dict())})
    return path


def read_sidecar(model_path: str | Path) -> Optional[ArtifactMetadata]:
    path = sidecar_path(model_path)
    if path.is_file():
        return ArtifactMetadata.from_json(path.read_text())
    # Files from edgecnn 0.1 have `model_int8.json`; trust one only if it names this file's format.
    legacy = Path(model_path).with_suffix(".json")
    if not legacy.is_file():
        return None
    meta = ArtifactMetadata.from_json(legacy.read_text())
    return meta if meta.format == _SUFFIX_FORMATS.get(Path(model_path).suffix.lower()) else None
