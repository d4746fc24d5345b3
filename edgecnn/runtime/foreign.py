"""Metadata for a .tflite or .onnx classifier edgecnn did not export.

Shape, dtype and quantization come from the file; what it cannot say comes from the user
(:class:`ModelFacts`: ``--labels``, ``--norm``, ``--mean/--std``) or, failing that, from
conventions said out loud in one warning: an 8-bit input takes raw pixels (its quantization
is the normalisation), a float input takes pixels/255, classes are called 0..N-1.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..artifact import MAX_LABELS, MAX_SIDE, ArtifactMetadata, Normalization
from ..errors import ModelFileError
from . import standard_metadata
from .model import QUANTIZED_DTYPES, TensorSpec
from .standard_metadata import StandardMetadata


class AssumedModelFacts(UserWarning):
    """A model without edgecnn metadata: what was assumed about its input or its labels."""


@dataclass(frozen=True)
class ModelFacts:
    """What the user says about a model from elsewhere (None: not said)."""

    labels: Optional[tuple[str, ...]] = None
    normalization: Optional[Normalization] = None
    #: Class names of the data the model is evaluated on (--data's folders): used only when
    #: neither --labels nor the file names the classes.
    data_labels: Optional[tuple[str, ...]] = None

    @property
    def given(self) -> bool:
        return self.labels is not None or self.normalization is not None


def foreign_metadata(
    path: Path,
    fmt: str,
    inp: TensorSpec,
    out: TensorSpec,
    final_op: Optional[str],
    facts: ModelFacts,
    file_labels: Optional[tuple[str, ...]] = None,
    quantized: bool = False,
    standard: Optional[StandardMetadata] = None,
) -> ArtifactMetadata:
    """`final_op`: the activation the graph ends in (SOFTMAX/LOGISTIC, Softmax/Sigmoid), if known;
    `file_labels`: a labels file the model carries; `standard`: its standard TFLite metadata."""
    shape = tuple(inp.shape)
    if len(shape) != 4 or not all(isinstance(d, int) and d > 0 for d in shape[1:]):
        raise ModelFileError(f"{path} takes input of shape {shape}; edgecnn runs image classifiers taking (1, H, W, C)")
    if max(shape[1:3]) > MAX_SIDE:
        raise ModelFileError(f"{path} takes {shape[1]}x{shape[2]} images; edgecnn runs classifiers up to {MAX_SIDE} px a side")
    if shape[3] not in (1, 3):
        hint = " (channels first, NCHW: convert it to NHWC)" if shape[1] in (1, 3) else ""
        raise ModelFileError(f"{path} takes input {shape}{hint}; edgecnn takes (1, height, width, 1 or 3) images")
    out_shape = tuple(out.shape)
    units = out_shape[-1] if out_shape and isinstance(out_shape[-1], int) else None
    if units is None or units < 1 or units > MAX_LABELS:
        raise ModelFileError(f"{path} outputs {out_shape}; an image classifier outputs (1, classes)")
    assumed = []
    binary = units == 1
    if binary:
        output = "binary_probability" if final_op in ("LOGISTIC", "Sigmoid") else "binary_logit"
    else:
        output = "probabilities" if final_op in ("SOFTMAX", "Softmax") else "logits"
    classes = 2 if binary else units
    labels = facts.labels or file_labels or facts.data_labels
    if labels is None:
        labels = tuple(str(i) for i in range(classes))
        assumed.append(f"classes named 0..{classes - 1} (pass --labels)")
    elif len(labels) != classes:
        origin = "--labels" if facts.labels else ("the labels file inside it" if file_labels else "--data's class folders")
        raise ModelFileError(f"{path} has {classes} classes but {origin} names {len(labels)}; give one label per class")
    normalization = facts.normalization
    if normalization is None and standard is not None and inp.dtype not in QUANTIZED_DTYPES:
        # Only float inputs: MediaPipe and the Task Library feed 8-bit inputs raw pixels, whatever it says.
        try:
            normalization = standard.normalization
        except ValueError as exc:
            raise ModelFileError(
                f"{path}'s metadata is wrong: {exc}; pass --norm or --mean/--std to say how it takes pixels"
            ) from None
    if normalization is None:
        if inp.dtype in QUANTIZED_DTYPES and inp.quantization is not None:
            q = inp.quantization
            # The 8-bit convention: raw pixels are the quantized input (pixel - 128 for int8). Standard
            # metadata makes it the file's word: MediaPipe and the Task Library feed such inputs so.
            shift = 128 if q.dtype == "int8" else 0
            normalization = Normalization(q.scale, -q.scale * (q.zero_point + shift))
            if standard is None:
                assumed.append(f"it takes raw pixels as its {q.dtype} input")
        else:
            normalization = Normalization()
            assumed.append("it takes pixels/255 (0..1; pass --norm or --mean/--std if not)")
    if assumed:
        warnings.warn(AssumedModelFacts(f"{path.name} has no edgecnn metadata: assuming {'; '.join(assumed)}"), stacklevel=4)
    quant = inp.quantization if inp.dtype in QUANTIZED_DTYPES else None
    out_quant = out.quantization if out.dtype in QUANTIZED_DTYPES else None
    return ArtifactMetadata(
        fmt,
        "int8" if quantized else "float32",
        tuple(labels),
        shape[1:],
        normalization,
        input_dtype=inp.dtype,
        output_dtype=out.dtype,
        input_quantization=quant,
        output_quantization=out_quant,
        output=output,
    )


def tflite_standard_metadata(parsed) -> Optional[StandardMetadata]:
    """The standard metadata of a parsed .tflite, None if it has none; a corrupt buffer is
    said in a warning and ignored, as MediaPipe Model Maker's files are run without it too."""
    data = parsed.metadata.get(standard_metadata.METADATA_NAME)
    if data is None:
        return None
    try:
        return standard_metadata.parse(data)
    except ValueError as exc:
        warnings.warn(AssumedModelFacts(f"ignoring the model's {standard_metadata.METADATA_NAME}: {exc}"), stacklevel=3)
        return None


def tflite_labels(data: bytes, standard: Optional[StandardMetadata] = None) -> Optional[tuple[str, ...]]:
    """The labels a .tflite carries as an associated file (a zip appended to it): the one its
    standard metadata names, else the only .txt file in the zip, as older writers left them."""
    if standard is not None and standard.labels_file:
        return standard_metadata.read_labels(data, standard.labels_file)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            texts = [i.filename for i in zf.infolist() if i.filename.lower().endswith(".txt")]
    except Exception:  # BadZipFile, struct.error, ...: a damaged appendix is no labels file, not an error
        return None
    return standard_metadata.read_labels(data, texts[0]) if len(texts) == 1 else None
