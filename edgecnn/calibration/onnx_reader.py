"""Feed a :class:`CalibrationSet` to ONNX Runtime's static quantizer.

``onnxruntime.quantization.quantize_static`` pulls calibration inputs from an object
with ``get_next()``: one ``{input_name: batch}`` dict per call, ``None`` when done.
The reader yields the very images the TFLite converter sees, normalised the same way,
so both formats are calibrated on identical data. It needs numpy only; ONNX Runtime
recognises it by its ``get_next`` method.
"""

from __future__ import annotations

from typing import Iterator, Optional

import numpy as np

from ..artifact import Normalization
from .calibration import CalibrationSet


class CalibrationReader:
    """``get_next()`` -> ``{input_name: float32 (1, H, W, C)}`` for each calibration image, then None."""

    def __init__(self, calibration: CalibrationSet, input_name: str, normalization: Normalization):
        self.calibration = calibration
        self.input_name = input_name
        self.normalization = normalization
        self._start, self._end = 0, len(calibration)
        self.rewind()

    def __len__(self) -> int:
        return len(self.calibration)

    def get_next(self) -> Optional[dict[str, np.ndarray]]:
        if self._next >= self._end:
            return None
        image = self.calibration.images[self._next]
        self._next += 1
        return {self.input_name: np.ascontiguousarray(self.normalization.apply(image[None]), dtype=np.float32)}

    def rewind(self) -> None:
        """Start again from the first sample (of the current range)."""
        self._next = self._start

    def set_range(self, start_index: int, end_index: int) -> None:
        """Restrict to samples ``[start_index, end_index)``; ONNX Runtime uses it to calibrate in strides."""
        n = len(self.calibration)
        self._start, self._end = max(0, min(start_index, n)), max(0, min(end_index, n))
        self.rewind()

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item
