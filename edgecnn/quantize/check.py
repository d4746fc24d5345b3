"""How an int8 file holds up against its float sibling: top-1 agreement and accuracy on the test
split (else the calibration images), latency, size as stored and as downloaded (deflate)."""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

#: Top-1 agreement an int8 file must reach with its float sibling before export writes it.
DEFAULT_MIN_AGREEMENT = 0.98
#: Images agreement is measured on (the test split, else the calibration images).
CHECK_IMAGES = 1000
#: Short timing runs, as `edgecnn run` reports: enough to show what a step costs.
STEP_BENCH = dict(threads=(1,), runs=30, warmup=3, min_seconds=0.3)
#: Precisions of the files checked against their float siblings.
QUANTIZED = ("int8", "int16x8")
#: Rows of the per-layer table kept in export.json for each format.
LAYER_ROWS = 12


@dataclass(frozen=True)
class CheckSet:
    """Images the int8 files are checked on; labels when the data set has them."""

    images: np.ndarray
    labels: Optional[np.ndarray]
    source: str


@dataclass(frozen=True)
class Measurement:
    format: str
    path: str
    agreement: float
    accuracy: Optional[float]
    float_accuracy: Optional[float]
    size_bytes: int
    #: What an app store or an over-the-air update moves: the file deflated (zlib, level 9).
    compressed_bytes: int
    latency_ms: Optional[float] = None

    @property
    def accuracy_drop(self) -> Optional[float]:
        if self.accuracy is None:
            return None
        return round((self.float_accuracy - self.accuracy) * 100, 4)

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy_drop": self.accuracy_drop}

    def summary(self) -> str:
        text = f"agreement {self.agreement:.1%}"
        if self.accuracy is not None:
            text += f", accuracy {self.accuracy:.1%} (float {self.float_accuracy:.1%})"
        if self.latency_ms is not None:
            text += f", {self.latency_ms:.3f} ms"
        return text + f", {self.size_bytes:,} bytes ({self.compressed_bytes:,} deflated)"


@dataclass
class Step:
    name: str
    measurements: dict[str, Measurement]
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"step": self.name, **self.detail, "formats": {k: m.to_dict() for k, m in self.measurements.items()}}


def check_set(meta, options, calibration) -> CheckSet:
    """The test split of the model's data set (or --data) when there is one, else the calibration images."""
    from ..data import dataset_for
    from .layer_error import spread

    if options.data or meta.dataset:
        test = dataset_for(meta, options.data, options.split).test
        if len(test):
            picked = test.take(spread(len(test), CHECK_IMAGES))
            return CheckSet(picked.images, picked.labels, "test images")
    return CheckSet(calibration.images[spread(len(calibration), CHECK_IMAGES)], None, "calibration images")


def _pairs(written) -> dict[str, tuple[Path, Path]]:
    """format -> (float file, int8 file) among an export's files."""
    by = {}
    for path, m in written:  # the first of each: a file compiled for a device (Edge TPU) comes after its source
        by.setdefault((m.format, m.precision), path)
    return {fmt: (by[(fmt, "float32")], by[(fmt, precision)]) for fmt, precision in by if precision in QUANTIZED}


def measure(written, checks: CheckSet, bench: bool = True) -> dict[str, Measurement]:
    from .. import runtime
    from ..evaluate.accuracy import top1

    found = {}
    for fmt, (float_path, int8_path) in _pairs(written).items():
        predictions = []
        for path in (float_path, int8_path):
            model = runtime.load(path)
            predictions.append(top1(model.predict(checks.images), model.metadata.output))
        ref, got = predictions
        accuracy = float_accuracy = None
        if checks.labels is not None:
            accuracy, float_accuracy = float((got == checks.labels).mean()), float((ref == checks.labels).mean())
        found[fmt] = Measurement(
            fmt,
            int8_path.name,
            float((got == ref).mean()),
            accuracy,
            float_accuracy,
            int8_path.stat().st_size,
            compressed_size(int8_path),
            _latency(int8_path) if bench else None,
        )
    return found


def _latency(path: Path) -> float:
    from ..evaluate.bench import BenchOptions, bench_file

    return bench_file(path, BenchOptions(**STEP_BENCH))[0]["latency_ms"]["p50"]


def layer_report(written, checks: CheckSet) -> dict[str, list]:
    """format -> the per-layer errors of its int8 file, worst first (see layer_error).

    A format whose int8 file shares no tensor names with the float one (tf2onnx's QAT graph) has none.
    """
    from ..errors import ConfigError
    from .layer_error import layer_errors

    found = {}
    for fmt, (float_path, int8_path) in _pairs(written).items():
        try:
            found[fmt] = layer_errors(int8_path, float_path, checks.images)
        except ConfigError:
            found[fmt] = []
    return found


def compressed_size(path: Path) -> int:
    return len(zlib.compress(Path(path).read_bytes(), 9))


def layers_json(layers: dict[str, list]) -> dict[str, list]:
    return {fmt: [e.to_dict() for e in errors[:LAYER_ROWS]] for fmt, errors in layers.items()}
