"""Accuracy, agreement and reports, built on :mod:`edgecnn.runtime` (no TensorFlow)."""

from .accuracy import Validation, top1, validate
from .predictors import Predictor, load_predictor

__all__ = ["Predictor", "Validation", "load_predictor", "top1", "validate"]
