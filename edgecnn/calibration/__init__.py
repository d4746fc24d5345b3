"""Calibration sets: the images every int8 quantizer (TFLite, ONNX Runtime) draws activation ranges from."""

from .calibration import MIN_RECOMMENDED, CalibrationSet, CalibrationWarning, from_dataset, from_path

__all__ = ["MIN_RECOMMENDED", "CalibrationSet", "CalibrationWarning", "from_dataset", "from_path"]
