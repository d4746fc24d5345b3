"""Accuracy on the test split, and agreement with a reference model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError
from .predictors import Predictor, load_predictor


@dataclass(frozen=True)
class Validation:
    name: str
    path: str
    format: str
    precision: str
    size_bytes: int
    samples: int
    accuracy: float
    backend: str
    reference: Optional[str] = None
    reference_accuracy: Optional[float] = None
    #: Share of samples whose top-1 equals the reference's.
    agreement: Optional[float] = None
    #: Accuracy lost against the reference, in percentage points.
    accuracy_drop: Optional[float] = None
    max_drop: Optional[float] = None

    @property
    def passed(self) -> bool:
        return self.accuracy_drop is None or self.max_drop is None or self.accuracy_drop <= self.max_drop

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


def top1(outputs: np.ndarray, kind: str = "logits") -> np.ndarray:
    """Predicted classes from model outputs; `kind` is the metadata's ``output`` (a binary head has one unit)."""
    from ..runtime.preprocess import top_class

    return top_class(outputs, kind)


def _check_shape(predictor: Predictor, images: np.ndarray) -> None:
    from ..runtime.preprocess import gray_as_rgb

    expected = tuple(predictor.metadata.input_shape)
    if tuple(gray_as_rgb(images[:1], expected[2]).shape[1:]) != expected:
        raise DataError(
            f"the data's images are {tuple(images.shape[1:])} but {predictor.path.name} expects {expected}; "
            "validate on the data set the model was trained on"
        )


def validate(
    artifact: str | Path | Predictor,
    images: np.ndarray,
    labels: np.ndarray,
    reference: str | Path | Predictor | None = None,
    max_drop: float | None = None,
    reference_predictions: np.ndarray | None = None,
) -> Validation:
    """Top-1 accuracy of `artifact` on (images, labels); with a reference, agreement and drop.

    `reference_predictions` (top-1 indices) saves re-running a reference already evaluated.
    """
    if len(images) == 0 or len(images) != len(labels):
        # An accuracy over no images is NaN, which would read as a result.
        raise DataError(
            f"got {len(images)} images and {len(labels)} labels to validate on; pass a data set whose test split "
            "has images (more images, or a larger test fraction)"
        )
    predictor = artifact if isinstance(artifact, Predictor) else load_predictor(artifact)
    _check_shape(predictor, images)
    predicted = top1(predictor.predict(images), predictor.metadata.output)
    accuracy = float((predicted == labels).mean())
    meta = predictor.metadata
    fields = dict(
        name=predictor.path.name,
        path=str(predictor.path),
        format=meta.format,
        precision=meta.precision,
        size_bytes=predictor.path.stat().st_size,
        samples=int(len(labels)),
        accuracy=accuracy,
        backend=predictor.backend,
        max_drop=max_drop,
    )
    if reference is not None or reference_predictions is not None:
        if reference_predictions is None:
            ref = reference if isinstance(reference, Predictor) else load_predictor(reference)
            _check_shape(ref, images)
            reference_predictions = top1(ref.predict(images), ref.metadata.output)
            fields["reference"] = str(ref.path)
        else:
            fields["reference"] = str(reference) if reference is not None else None
        ref_accuracy = float((reference_predictions == labels).mean())
        fields.update(
            reference_accuracy=ref_accuracy,
            agreement=float((predicted == reference_predictions).mean()),
            accuracy_drop=round((ref_accuracy - accuracy) * 100, 4),
        )
    return Validation(**fields)
