"""Quantization inputs shared by every export format."""

from .calibration import MIN_RECOMMENDED, CalibrationSet, CalibrationWarning, from_dataset, from_path

__all__ = ["MIN_RECOMMENDED", "CalibrationSet", "CalibrationWarning", "from_dataset", "from_path"]
