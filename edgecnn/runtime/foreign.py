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
from .model import QUANTIZED_DTYPES, TensorSpec


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
) -> ArtifactMetadata:
    """`final_op`: the activation the graph ends in (SOFTMAX/LOGISTIC, Softmax/Sigmoid), if known;
    `file_labels`: a labels file the model carries (standard TFLite metadata)."""
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
    if normalization is None:
        if inp.dtype in QUANTIZED_DTYPES and inp.quantization is not None:
            q = inp.quantization
            # The 8-bit convention: raw pixels are the quantized input (pixel - 128 for int8).
            shift = 128 if q.dtype == "int8" else 0
            normalization = Normalization(q.scale, -q.scale * (q.zero_point + shift))
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


def tflite_labels(data: bytes) -> Optional[tuple[str, ...]]:
    """The labels a .tflite carries as a standard-metadata associated file (a zip appended to it).

    Read from the zip without the metadata schema: one .txt file in it is the labels file,
    as TFLite Model Maker and MediaPipe write them; several or none, and None is returned.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            texts = [i for i in zf.infolist() if i.filename.lower().endswith(".txt") and i.file_size <= (10 << 20)]
            if len(texts) != 1:
                return None
            text = zf.read(texts[0]).decode("utf-8")
    except Exception:  # BadZipFile, zlib.error, struct.error, ...: a damaged appendix is no labels file, not an error
        return None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    return labels if 0 < len(labels) <= MAX_LABELS else None
