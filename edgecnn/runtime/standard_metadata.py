"""Standard TFLite Model Metadata (``metadata_schema.fbs``): what MediaPipe Tasks, the LiteRT
Task Library and Android Studio's ML Model Binding read from a classifier.

A ``TFLITE_METADATA`` buffer (a flatbuffer with identifier ``M001``) names the model, says
the input is an image with a colour space and ``NormalizationOptions``, and points the
output at an associated labels file, packed into the .tflite as a zip appended to it.

Written and read here with the ``flatbuffers`` package alone, by the schema's field slots:
tflite-support has no Python 3.11 wheels for ARM, the metadata module of current MediaPipe
wheels does not import, and both their writers re-pack the whole model.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from dataclasses import dataclass
from typing import Optional

import flatbuffers
import numpy as np
from flatbuffers import number_types as N

from ..artifact import MAX_LABELS, ArtifactMetadata, Normalization
from .tflite_file import _Corrupt, _Tab

#: Name of the metadata entry in the model (the Task Library's kMetadataBufferName).
METADATA_NAME = "TFLITE_METADATA"
IDENTIFIER = b"M001"
#: The oldest metadata parser that reads every field written here (all date from schema 1.0.0).
MIN_PARSER_VERSION = "1.0.0"
LABELS_FILE = "labels.txt"

# Enum values of metadata_schema.fbs.
_IMAGE_PROPERTIES, _FEATURE_PROPERTIES = 2, 1  # ContentProperties union
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union
_TENSOR_AXIS_LABELS = 2  # AssociatedFileType
COLOR_SPACES = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}
#: Labels files larger than this are not read (MAX_LABELS names of a few dozen bytes each).
_MAX_LABELS_FILE = 10 << 20
#: Zip entries get a fixed time stamp, so the same model gives the same file.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class StandardMetadata:
    """The parts of a classifier's standard metadata edgecnn writes and reads."""

    name: str = ""
    version: str = ""
    description: str = ""
    color_space: str = "UNKNOWN"  # RGB, GRAYSCALE or UNKNOWN
    #: NormalizationOptions: the model takes ``(pixel - mean) / std``, per channel or one for all.
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    #: Name of the output's TENSOR_AXIS_LABELS file, if it has one.
    labels_file: Optional[str] = None
    #: The output's Stats: (min, max) a score can take, when given ((0, 1) for probabilities).
    score_range: Optional[tuple[float, float]] = None

    @property
    def normalization(self) -> Optional[Normalization]:
        if not self.mean or not self.std or len(self.mean) != len(self.std):
            return None
        if not all(math.isfinite(v) for v in self.mean) or not all(math.isfinite(v) and v > 0 for v in self.std):
            # (pixel - mean) / std with a NaN or a std <= 0 is no normalisation: every answer would be wrong.
            raise ValueError(f"NormalizationOptions mean {list(self.mean)} and std {list(self.std)} are not finite and positive")
        mean, std = (v[0] if len(set(v)) == 1 else v for v in (self.mean, self.std))
        return Normalization.from_mean_std(mean, std)


def mean_std(normalization: Normalization, channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """NormalizationOptions for ``x = pixel * scale + offset``: mean = -offset/scale, std = 1/scale."""
    scale, offset = (v if isinstance(v, tuple) else (v,) * channels for v in (normalization.scale, normalization.offset))
    return tuple(0.0 - o / s for s, o in zip(scale, offset)), tuple(1.0 / s for s in scale)


def for_artifact(meta: ArtifactMetadata) -> StandardMetadata:
    """What an edgecnn .tflite says in standard metadata: its name, its input's colour space
    and normalisation, and (for a softmax output over named classes) its labels file."""
    channels = meta.input_shape[2]
    mean, std = mean_std(meta.normalization, channels)
    what = meta.arch or "image classifier"
    name = f"{what} ({meta.dataset})" if meta.dataset else what
    description = (
        f"Classifies {meta.input_shape[0]}x{meta.input_shape[1]} images into {meta.num_classes} classes "
        f"({meta.precision}), exported by edgecnn {meta.edgecnn_version}."
    )
    return StandardMetadata(
        name=name,
        version=(meta.parent_sha256 or "")[:12],
        description=description,
        color_space={1: "GRAYSCALE", 3: "RGB"}.get(channels, "UNKNOWN"),
        mean=mean,
        std=std,
        # A binary head's one unit is the second class's probability: no axis of labels to name.
        labels_file=None if meta.output_units == 1 else LABELS_FILE,
        score_range=(0.0, 1.0) if meta.output in ("probabilities", "binary_probability") else None,
    )


def build(meta: StandardMetadata, image_size: tuple[int, int]) -> bytes:
    """The ``TFLITE_METADATA`` flatbuffer for a one-input, one-output image classifier."""
    b = flatbuffers.Builder(1024)

    def string(text):
        return b.CreateString(text) if text else None

    def table(fields):
        """fields: (slot, kind, value) with kind 'offset', 'byte', 'uint'; None values are left out."""
        present = [f for f in fields if f[2] is not None]
        b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
        for slot, kind, value in present:
            if kind == "offset":
                b.PrependUOffsetTRelativeSlot(slot, value, 0)
            elif kind == "byte":
                b.PrependUint8Slot(slot, value, 0)
            else:
                b.PrependUint32Slot(slot, value, 0)
        return b.EndObject()

    def vector(offsets):
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def floats(values):
        return b.CreateNumpyVector(np.asarray(values, dtype="<f4"))

    # Input: an image tensor with its colour space, size and normalisation.
    width, height = image_size[1], image_size[0]
    size = table([(0, "uint", width), (1, "uint", height)])
    color = {v: k for k, v in COLOR_SPACES.items()}[meta.color_space]
    image = table([(0, "byte", color), (1, "offset", size)])
    in_content = table([(0, "byte", _IMAGE_PROPERTIES), (1, "offset", image)])
    norm = table([(0, "offset", floats(meta.mean)), (1, "offset", floats(meta.std))])
    unit = table([(0, "byte", _NORMALIZATION_OPTIONS), (1, "offset", norm)])
    in_name, in_desc = string("image"), string("Input image to be classified.")
    units = vector([unit])
    inp = table([(0, "offset", in_name), (1, "offset", in_desc), (3, "offset", in_content), (4, "offset", units)])

    # Output: scores over the classes, labelled by the associated labels file.
    out_content = table([(0, "byte", _FEATURE_PROPERTIES), (1, "offset", table([]))])
    stats = None
    if meta.score_range is not None:
        low, high = meta.score_range
        stats = table([(0, "offset", floats([high])), (1, "offset", floats([low]))])
    files = None
    if meta.labels_file:
        label_file = table(
            [
                (0, "offset", string(meta.labels_file)),
                (1, "offset", string("Labels for the classes the model recognises.")),
                (2, "byte", _TENSOR_AXIS_LABELS),
            ]
        )
        files = vector([label_file])
    scores = "Probabilities" if meta.score_range == (0.0, 1.0) else "Scores (logits)"
    out_name, out_desc = string("probability"), string(f"{scores} of the classes.")
    out = table(
        [(0, "offset", out_name), (1, "offset", out_desc), (3, "offset", out_content), (5, "offset", stats), (6, "offset", files)]
    )

    inputs, outputs = vector([inp]), vector([out])
    subgraph = table([(2, "offset", inputs), (3, "offset", outputs)])
    subgraphs = vector([subgraph])
    name, desc, version = string(meta.name), string(meta.description), string(meta.version)
    parser = string(MIN_PARSER_VERSION)
    root = table(
        [(0, "offset", name), (1, "offset", desc), (2, "offset", version), (3, "offset", subgraphs), (7, "offset", parser)]
    )
    b.Finish(root, file_identifier=IDENTIFIER)
    return bytes(b.Output())


def parse(data: bytes) -> StandardMetadata:
    """Read a ``TFLITE_METADATA`` buffer; ValueError if it is not one or is corrupt."""
    data = bytes(data)
    if len(data) < 8 or data[4:8] != IDENTIFIER:
        raise ValueError("not a TFLite metadata buffer (no M001 identifier)")
    try:
        root = _Tab(data, struct.unpack_from("<I", data, 0)[0])
        subgraphs = root.tables(10)
        inp = out = None
        if subgraphs:
            inputs, outputs = subgraphs[0].tables(8), subgraphs[0].tables(10)
            inp, out = (inputs[0] if inputs else None), (outputs[0] if outputs else None)
        color, mean, std = "UNKNOWN", (), ()
        if inp is not None:
            content = inp.table(10)
            if content is not None and content.scalar(4, N.Uint8Flags, 0) == _IMAGE_PROPERTIES:
                image = content.table(6)
                if image is not None:
                    color = COLOR_SPACES.get(image.scalar(4, N.Int8Flags, 0), "UNKNOWN")
            for unit in inp.tables(12):
                if unit.scalar(4, N.Uint8Flags, 0) == _NORMALIZATION_OPTIONS and unit.table(6) is not None:
                    options = unit.table(6)
                    mean, std = options.numbers(4, "f", 4), options.numbers(6, "f", 4)
        labels_file, score_range = None, None
        if out is not None:
            labels_file = next(
                (f.string(4) for f in out.tables(16) if f.scalar(8, N.Int8Flags, 0) == _TENSOR_AXIS_LABELS and f.string(4)),
                None,
            )
            stats = out.table(14)
            if stats is not None:
                high, low = stats.numbers(4, "f", 4), stats.numbers(6, "f", 4)
                if high and low:
                    score_range = (float(low[0]), float(high[0]))
        return StandardMetadata(
            name=root.string(4) or "",
            version=root.string(8) or "",
            description=root.string(6) or "",
            color_space=color,
            mean=tuple(float(x) for x in mean),
            std=tuple(float(x) for x in std),
            labels_file=labels_file,
            score_range=score_range,
        )
    except (_Corrupt, struct.error, IndexError, TypeError) as exc:
        raise ValueError(f"TFLite metadata buffer is corrupt ({exc})") from None


def labels_archive(model: bytes, labels: tuple[str, ...]) -> bytes:
    """`model` with a zip holding ``labels.txt`` appended, as the metadata standard packs
    associated files (uncompressed: the Task Library maps them in place)."""
    buf = io.BytesIO(model)
    buf.seek(0, io.SEEK_END)
    with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_STORED) as zf:
        info = zipfile.ZipInfo(LABELS_FILE, date_time=_ZIP_TIME)
        zf.writestr(info, "".join(f"{label}\n" for label in labels))
    return buf.getvalue()


def read_associated_file(model: bytes, name: str) -> Optional[bytes]:
    """An associated file packed into `model`, or None (no archive, no such file, or damaged)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as zf:
            info = zf.getinfo(name)
            if info.file_size > _MAX_LABELS_FILE:
                return None
            return zf.read(info)
    except Exception:  # BadZipFile, KeyError, zlib.error, ...: a damaged appendix is no file, not an error
        return None


def read_labels(model: bytes, name: str) -> Optional[tuple[str, ...]]:
    """The class names in the labels file `name` packed into `model` (one per line)."""
    data = read_associated_file(model, name)
    if data is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    return labels if 0 < len(labels) <= MAX_LABELS else None
