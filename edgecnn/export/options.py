"""Export options, shared by every format."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..errors import ConfigError

IO_TYPES = ("uint8", "int8", "float32")


@dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = ("tflite",)
    int8: bool = False
    #: Input/output type of int8 models: uint8 lets an app feed camera bytes directly.
    io: str = "uint8"
    calib_size: int = 300
    calib_path: Optional[Path] = None
    #: Data set to draw calibration images from; defaults to the one the model was trained on.
    data: Optional[str] = None

    def __post_init__(self):
        if self.io not in IO_TYPES:
            raise ConfigError(f"--io must be one of {', '.join(IO_TYPES)}, got {self.io!r}")
        if self.calib_size < 1:
            raise ConfigError(f"--calib-size must be at least 1, got {self.calib_size}")
        if not self.formats:
            raise ConfigError("give at least one export format")
