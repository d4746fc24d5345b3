"""Artifact metadata: what a device needs to run a model file correctly.

The same JSON is embedded in the model file where the format allows (a named
metadata buffer in .tflite, ``metadata_props`` in .onnx) and always written beside
it as ``<model file>.json`` (``model_int8.tflite.json``). This module imports neither TensorFlow nor ONNX.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Union

from . import __version__
from .errors import ConfigError, ModelFileError, first_line
from .fileio import json_bytes, write_files, write_json
from .text import control_character, one_line

SCHEMA_VERSION = 1
#: Name of the metadata entry inside model files.
METADATA_KEY = "edgecnn"

FORMATS = ("keras", "tflite", "onnx")
OUTPUTS = ("logits", "probabilities", "binary_logit", "binary_probability")
PRECISIONS = ("float32", "int8")


def _numbers(value):
    """A number, or a tuple of them; a tuple of one number, or of equal ones, becomes that number."""
    if isinstance(value, (list, tuple)):
        values = tuple(float(v) for v in value)
        return values[0] if len(set(values)) == 1 else values
    return float(value)


@dataclass(frozen=True)
class Normalization:
    """How raw uint8 pixels become model input: ``x = pixel * scale + offset``.

    `scale` and `offset` are one number for every channel, or one per channel (ImageNet's
    mean and standard deviation).
    """

    scale: Union[float, tuple[float, ...]] = 1.0 / 255.0
    offset: Union[float, tuple[float, ...]] = 0.0

    def apply(self, pixels):
        import numpy as np

        return np.asarray(pixels, dtype=np.float32) * np.float32(self.scale) + np.float32(self.offset)

    @property
    def per_channel(self) -> bool:
        return isinstance(self.scale, tuple) or isinstance(self.offset, tuple)

    @classmethod
    def from_mean_std(cls, mean, std) -> "Normalization":
        """``(pixel - mean) / std``, with mean and std in pixel units (0..255), one value or one per channel."""
        mean, std = _numbers(mean), _numbers(std)
        if isinstance(mean, tuple) or isinstance(std, tuple):
            n = max(len(v) for v in (mean, std) if isinstance(v, tuple))
            mean, std = (v if isinstance(v, tuple) else (v,) * n for v in (mean, std))
            return cls(tuple(1.0 / s for s in std), tuple(-m / s for m, s in zip(mean, std)))
        return cls(1.0 / std, -mean / std)

    def then(self, scale, offset) -> "Normalization":
        """This normalisation followed by ``x * scale + offset`` (a Rescaling or Normalization layer)."""
        import numpy as np

        s = np.asarray(self.scale, np.float64) * np.asarray(scale, np.float64)
        o = np.asarray(self.offset, np.float64) * np.asarray(scale, np.float64) + np.asarray(offset, np.float64)
        return Normalization(_numbers(s.tolist()), _numbers(o.tolist()))


#: Named normalisations (``--norm``): what a model's training fed it, from uint8 pixels.
NORMALIZATIONS = {
    "0,1": Normalization(1.0 / 255.0, 0.0),
    "-1,1": Normalization(2.0 / 255.0, -1.0),
    # torchvision's and tf_keras applications' ImageNet mean and std, in pixel units.
    "imagenet": Normalization.from_mean_std((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}


def normalization_from(norm: Optional[str] = None, mean=None, std=None) -> Optional[Normalization]:
    """The normalisation `--norm` or `--mean/--std` name; None when neither is given."""
    if norm is not None and (mean is not None or std is not None):
        raise ConfigError("give --norm or --mean/--std, not both")
    if norm is not None:
        if norm not in NORMALIZATIONS:
            raise ConfigError(f"--norm must be one of {', '.join(NORMALIZATIONS)}, got {norm!r}")
        return NORMALIZATIONS[norm]
    if (mean is None) != (std is None):
        raise ConfigError("give --mean and --std together (pixel units, one value or one per channel)")
    if mean is None:
        return None
    values = [tuple(v) if isinstance(v, (list, tuple)) else (v,) for v in (mean, std)]
    if not all(values) or not all(isinstance(x, (int, float)) and math.isfinite(x) for v in values for x in v):
        raise ConfigError(f"--mean and --std need finite numbers, got {mean!r} and {std!r}")
    if not all(x > 0 for x in values[1]):
        raise ConfigError(f"--std needs positive values, got {std!r}")
    if len(values[0]) != len(values[1]) and 1 not in (len(values[0]), len(values[1])):
        raise ConfigError(f"--mean has {len(values[0])} values and --std {len(values[1])}; give one or one per channel")
    return Normalization.from_mean_std(values[0], values[1])


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
    #: What the output tensor holds (one of OUTPUTS): raw logits (the runtime applies softmax for
    #: scores), probabilities, or the one unit of a binary classifier (a logit or a probability).
    output: str = "logits"
    arch: Optional[str] = None
    dataset: Optional[str] = None
    #: Seed of the data set's generation and train/val/test split, so later stages
    #: draw calibration and test images from the same splits as training did.
    data_seed: Optional[int] = None
    parent_sha256: Optional[str] = None
    #: Where an imported model came from: ``{"path", "format", "sha256"}``.
    source: Optional[dict] = None
    edgecnn_version: str = __version__
    schema_version: int = SCHEMA_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    @property
    def output_units(self) -> int:
        """Width of the output tensor: one unit for a binary head, one per class otherwise."""
        return 1 if self.output.startswith("binary") else self.num_classes

    def replace(self, **changes) -> "ArtifactMetadata":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "ArtifactMetadata":
        """Metadata from a file, which may be hostile: every field is checked, ModelFileError otherwise."""
        try:
            fields = _checked_fields(data)
            known = {f.name for f in dataclasses.fields(cls)}
            return cls(**{k: v for k, v in fields.items() if k in known})
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(
                f"artifact metadata is malformed ({first_line(exc, 200)}); re-export the model with edgecnn"
            ) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> "ArtifactMetadata":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, TypeError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else first_line(exc, 200)
            raise ModelFileError(f"artifact metadata is not valid JSON ({reason}); re-export the model with edgecnn") from None
        return cls.from_dict(data)


#: Bounds of a plausible image input: far beyond any classifier edgecnn trains.
MAX_SIDE, MAX_CHANNELS, MAX_LABELS = 8192, 64, 100_000
_ZERO_POINTS = {"uint8": (0, 255), "int8": (-128, 127), "int16": (-32768, 32767)}
_IO_DTYPES = ("float32", "float16", "uint8", "int8", "int16")


def _checked_fields(data) -> dict:
    """The fields of a metadata dict, typed and range-checked; ValueError/TypeError says which is wrong."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    data = dict(data)
    labels = data["labels"]
    if not isinstance(labels, (list, tuple)) or not 1 <= len(labels) <= MAX_LABELS or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"labels must be a list of 1 to {MAX_LABELS} strings")
    odd = next((x for x in labels if control_character(x)), None)
    if odd is not None:
        # labels.txt holds one label per line: a newline in one would shift every class after it.
        raise ValueError(
            f"label '{one_line(odd)}' holds a control character ({control_character(odd)}); labels are one line each"
        )
    data["labels"] = tuple(labels)
    shape = data["input_shape"]
    limits = (MAX_SIDE, MAX_SIDE, MAX_CHANNELS)
    if (
        not isinstance(shape, (list, tuple))
        or len(shape) != 3
        or not all(_is_int(x) and 1 <= x <= m for x, m in zip(shape, limits))
    ):
        raise ValueError(f"input_shape must be [height, width, channels] up to {list(limits)}, got {_short(shape)}")
    data["input_shape"] = tuple(shape)
    norm = data.get("normalization") or {}
    if not isinstance(norm, dict):
        raise TypeError(f"normalization must be an object, got {_short(norm)}")
    data["normalization"] = _normalization(norm, shape[2])
    for key in ("input_dtype", "output_dtype"):
        if key in data and data[key] not in _IO_DTYPES:
            raise ValueError(f"{key} must be one of {', '.join(_IO_DTYPES)}, got {_short(data[key])}")
    for key in ("input_quantization", "output_quantization"):
        if data.get(key) is not None:
            data[key] = _quantization(key, data[key])
    for key in ("format", "precision", "output", "edgecnn_version"):
        if key in data and not isinstance(data[key], str):
            raise TypeError(f"{key} must be a string, got {_short(data[key])}")
    if data.get("output", "logits") not in OUTPUTS:
        raise ValueError(f"output must be one of {', '.join(OUTPUTS)}, got {_short(data['output'])}")
    if data.get("output", "logits").startswith("binary") and len(labels) != 2:
        raise ValueError(f"a binary output needs two labels, got {len(labels)}")
    source = data.get("source")
    if source is not None and not (isinstance(source, dict) and all(isinstance(v, (str, type(None))) for v in source.values())):
        raise TypeError(f"source must be an object of strings, got {_short(source)}")
    return data


def _normalization(norm: dict, channels: int) -> Normalization:
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in norm.items()}
    result = Normalization(**fields)
    for name in ("scale", "offset"):
        value = getattr(result, name)
        values = value if isinstance(value, tuple) else (value,)
        if isinstance(value, tuple) and len(value) != channels:
            raise ValueError(f"normalization {name} has {len(value)} values for {channels} channel(s)")
        if not values or not all(_is_number(v) and (v > 0 or name == "offset") for v in values):
            raise ValueError(f"normalization needs finite positive scales and finite offsets, got {_short(value)}")
    return result


def _quantization(key: str, q) -> Quantization:
    if not isinstance(q, dict):
        raise TypeError(f"{key} must be an object, got {_short(q)}")
    q = Quantization(**q)
    if q.dtype not in _ZERO_POINTS:
        raise ValueError(f"{key} has dtype {_short(q.dtype)}; expected {', '.join(_ZERO_POINTS)}")
    low, high = _ZERO_POINTS[q.dtype]
    if not (_is_number(q.scale) and q.scale > 0) or not (_is_int(q.zero_point) and low <= q.zero_point <= high):
        raise ValueError(f"{key} needs a finite positive scale and a {q.dtype} zero point, got {q.scale!r}, {q.zero_point!r}")
    return q


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
