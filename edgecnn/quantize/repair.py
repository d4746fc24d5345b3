"""int8 that does not fail silently: measure every int8 file against its float sibling, name the
layers int8 damages, and repair, in order and only as far as needed.

1. ``equalize``: cross-layer equalization and bias correction (:mod:`.equalize`); the float
   function is verified unchanged by equalization, and the bias shift is reported.
2. ``qat``: quantization-aware training with tfmot (:mod:`.qat`), when asked (``--qat``) or
   when equalization was not enough and the data set has labelled training images.

Each step re-exports every format from the repaired Keras model and measures it again.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import VerificationError

#: Top-1 agreement an int8 file must reach with its float sibling before export writes it.
DEFAULT_MIN_AGREEMENT = 0.98
#: Images agreement is measured on (the test split, else the calibration images).
CHECK_IMAGES = 1000
#: Rows of the per-layer table kept in export.json for each format.
LAYER_ROWS = 12
#: Short timing runs, as `edgecnn run` reports: enough to show what a repair costs.
STEP_BENCH = dict(threads=(1,), runs=30, warmup=3, min_seconds=0.3)


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
        return text + f", {self.size_bytes:,} bytes"


@dataclass
class Step:
    name: str
    measurements: dict[str, Measurement]
    detail: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"step": self.name, **self.detail, "formats": {k: m.to_dict() for k, m in self.measurements.items()}}

    def worst_agreement(self) -> float:
        return min(m.agreement for m in self.measurements.values())


def check_set(meta, options, calibration) -> CheckSet:
    """The test split of the model's data set (or --data) when there is one, else the calibration images."""
    from ..data import dataset_for

    if options.data or meta.dataset:
        test = dataset_for(meta, options.data).test
        if len(test):
            return CheckSet(test.images[:CHECK_IMAGES], test.labels[:CHECK_IMAGES], "test images")
    return CheckSet(calibration.images[:CHECK_IMAGES], None, "calibration images")


def _pairs(written) -> dict[str, tuple[Path, Path]]:
    """format -> (float file, int8 file) among an export's files."""
    by = {(m.format, m.precision): path for path, m in written}
    return {fmt: (by[(fmt, "float32")], by[(fmt, "int8")]) for fmt, precision in by if precision == "int8"}


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
            _latency(int8_path) if bench else None,
        )
    return found


def _latency(path: Path) -> float:
    from ..evaluate.bench import BenchOptions, bench_file

    return bench_file(path, BenchOptions(**STEP_BENCH))[0]["latency_ms"]["p50"]


def layer_report(written, checks: CheckSet) -> dict[str, list]:
    """format -> the worst per-layer errors of its int8 file (see layer_error)."""
    from .layer_error import layer_errors

    return {fmt: layer_errors(int8_path, float_path, checks.images) for fmt, (float_path, int8_path) in _pairs(written).items()}


@dataclass
class Outcome:
    model: object
    written: list
    steps: list[Step]
    layers: dict[str, list]
    #: Whether the files come from a repaired model (saved by `export`) rather than the original.
    repaired: bool = False


def check_and_repair(
    model,
    meta,
    calibration,
    options,
    written,
    export: Callable[[object], list],
) -> Outcome:
    """Measure the int8 files in `written`; repair when one is below ``options.min_agreement``.

    `export(model)` saves a repaired Keras model, rewrites every format from it and returns the files.
    """
    from .layer_error import damaged_layers

    checks = check_set(meta, options, calibration)
    first = measure(written, checks, bench=False)
    low = {fmt: m for fmt, m in first.items() if m.agreement < options.min_agreement}
    if not (low or options.repair or options.qat):
        return Outcome(model, written, [Step("ptq", first)], {})
    steps = [Step("ptq", measure(written, checks))]  # again, with latency: the baseline of the repairs
    layers = layer_report(written, checks)
    for fmt, m in low.items():
        damaged = damaged_layers(layers[fmt])
        where = (
            f"damaged layers: {', '.join(damaged)} (one scale per tensor leaves most of their channels a few int8 levels)"
            if damaged
            else "no single layer stands out (see `edgecnn debug`)"
        )
        warnings.warn(
            f"int8 {fmt} agrees with the float model on {m.agreement:.1%} of {len(checks.images)} {checks.source} "
            f"(floor {options.min_agreement:.0%}); {where}; repairing",
            stacklevel=2,
        )

    repaired, detail = _equalized(model, meta, calibration)
    written = export(repaired)
    steps.append(Step("equalize", measure(written, checks), detail))
    if options.qat or (steps[-1].worst_agreement() < options.min_agreement and checks.labels is not None):
        from .qat import quantization_aware

        qat_model, qat_detail = quantization_aware(repaired, meta, options)
        written = export(qat_model)
        steps.append(Step("qat", measure(written, checks), qat_detail))
        repaired = qat_model
    layers = layer_report(written, checks)
    final = steps[-1]
    if final.worst_agreement() < options.min_agreement:
        fmt, m = min(final.measurements.items(), key=lambda item: item[1].agreement)
        raise VerificationError(
            f"int8 {fmt} agrees with the float model on {m.agreement:.1%} after {', '.join(s.name for s in steps[1:])} "
            f"(floor {options.min_agreement:.0%}); try --qat with --data, or lower --min-agreement to write it anyway"
        )
    return Outcome(repaired, written, steps, layers, repaired=True)


def _equalized(model, meta, calibration):
    """A copy of `model` after cross-layer equalization (verified unchanged) and bias correction."""
    from ..fold import VERIFY_SAMPLES, verify_fold
    from ..tf import keras
    from .equalize import correct_biases, equalize

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    pixels = meta.normalization.apply(calibration.images)
    samples = pixels[:VERIFY_SAMPLES]
    pairs = equalize(copy)
    equalization_error = verify_fold(model, copy, samples, what="equalized")
    corrected = correct_biases(copy, pixels)
    bias_shift = verify_fold(model, copy, samples, rtol=1.0, what="bias-corrected")
    return copy, {
        "pairs": pairs,
        "equalization_relative_error": equalization_error,
        "bias_corrected_layers": corrected,
        "bias_correction_relative_change": bias_shift,
    }


def layers_json(layers: dict[str, list]) -> dict[str, list]:
    return {fmt: [e.to_dict() for e in errors[:LAYER_ROWS]] for fmt, errors in layers.items()}
