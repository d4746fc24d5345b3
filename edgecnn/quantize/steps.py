"""What export does after writing its int8 files: compress when asked, check, and repair, in order
and only as far as needed. Every step re-exports every format and measures it (see check).

1. ``prune`` / ``cluster`` (``--prune``, ``--cluster``): tfmot, before anything is checked.
2. ``equalize``: cross-layer equalization, verified to leave the float function unchanged, then
   bias correction (:mod:`.equalize`); not after clustering, whose values it would scatter, and
   not for ``--qat`` alone when the floor holds.
3. ``qat``: quantization-aware training (:mod:`.qat`), when asked, or when equalization was not
   enough and the data set has labelled images; kept for each format where it does no worse
   than the files before it.
4. ``float layers``: the worst layers left float, one, two, four... until the floor holds; not
   for the Edge TPU, where a float op and everything after it would leave the accelerator.

Steps 2-4 run when an int8 file agrees with its float sibling on fewer than
``--min-agreement`` of the images (export first warns, naming the damaged layers), or when
asked (``--repair``, ``--qat``). If the floor still does not hold, export fails.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Callable

from ..errors import VerificationError
from .check import CheckSet, Step, check_set, layer_report, measure


@dataclass
class Outcome:
    written: list
    steps: list[Step]
    layers: dict[str, list]
    #: Whether the files come from a changed model (saved by the export callback) rather than the original.
    changed: bool = False


def improve(model, meta, calibration, options, written, export: Callable) -> Outcome:
    """Run the steps on the files in `written` (exported from `model`).

    `export(model, plan)` saves `model` as the parent of the files it then rewrites in every
    format, the int8 ones as `plan` (an export.options.Int8Plan) says; it returns them.
    """
    from ..export.options import Int8Plan

    checks = check_set(meta, options, calibration)
    asked = bool(options.prune or options.cluster or options.repair or options.qat)
    steps = [Step("ptq", measure(written, checks, bench=asked))]
    source, plan, preserve = model, Int8Plan(), None
    if options.prune:
        from .compress import prune

        source, detail = prune(source, meta, options)
        preserve = "sparsity"
        written = export(source, plan)
        steps.append(Step("prune", measure(written, checks), detail))
    if options.cluster:
        from .compress import cluster

        source, detail = cluster(source, meta, options, preserve_sparsity=preserve == "sparsity")
        preserve = "clusters"
        plan = Int8Plan(per_tensor_weights=True)  # per-channel scales would spread each layer's few values
        written = export(source, plan)
        steps.append(Step("cluster", measure(written, checks), detail))

    low = _below(steps[-1], options)
    if not (low or options.repair or options.qat):
        return Outcome(written, steps, {}, changed=len(steps) > 1)
    if not asked:
        steps[0] = Step("ptq", measure(written, checks))  # again with latency: the baseline of the repairs
    layers = layer_report(written, checks)
    _warn(low, layers, checks, options)

    # Only as far as needed: --qat alone on a file that holds the floor goes straight to QAT.
    # Not after clustering either: rescaling channels would scatter a clustered layer's few values.
    if (low or options.repair) and preserve != "clusters":
        source, detail = _equalized(source, meta, calibration)
        written = export(source, plan)
        steps.append(Step("equalize", measure(written, checks), detail))
        layers = layer_report(written, checks)
    ptq_layers = layers
    if options.qat or (_below(steps[-1], options) and checks.labels is not None):
        from .qat import quantization_aware

        qat_model, detail = quantization_aware(source, meta, options, calibration, preserve)
        written, step = _qat_where_better(source, replace(plan, qat_model=qat_model), steps[-1], detail, checks, export)
        steps.append(step)
        layers = layer_report(written, checks)
    if _below(steps[-1], options) and not options.int16_activations:  # 16x8 has no selective mode
        written, step = _keep_float(source, plan, ptq_layers, steps[-1], written, checks, options, export)
        if step is not None:
            steps.append(step)
            layers = layer_report(written, checks)
    failing = _below(steps[-1], options)
    if failing:
        fmt, m = min(failing.items(), key=lambda item: item[1].agreement)
        raise VerificationError(
            f"int8 {fmt} agrees with the float model on {m.agreement:.1%} after {', '.join(s.name for s in steps[1:])} "
            f"(floor {options.min_agreement:.0%}); lower --min-agreement to write it anyway"
        )
    return Outcome(written, steps, layers, changed=True)


def _qat_where_better(source, plan, before: Step, detail: dict, checks: CheckSet, export):
    """The int8 files converted from the QAT model for each format where they do no worse than
    `before` on the check set (agreement, and accuracy where labels exist), the others as before.

    QAT starts from tfmot's ranges, not the converter's calibration, so on a model PTQ already
    suits it can lose an image or two that the fine-tune does not win back; on the default digits
    model 2 epochs lost 1 of 359 test images against PTQ in about half the runs.
    """
    written = export(source, plan)
    trained = measure(written, checks)
    kept = tuple(fmt for fmt, m in trained.items() if not _worse(m, before.measurements[fmt]))
    detail = {**detail, "kept_for": list(kept)}
    if len(kept) == len(trained):
        return written, Step("qat", trained, detail)
    detail["not_kept"] = {fmt: m.to_dict() for fmt, m in trained.items() if fmt not in kept}
    written = export(source, replace(plan, qat_formats=kept))
    return written, Step("qat", measure(written, checks), detail)


def _worse(m, before) -> bool:
    return m.agreement < before.agreement or (m.accuracy is not None and m.accuracy < before.accuracy)


def _tflite_io_bound(written) -> set[str]:
    from ..export.tflite import io_bound_tensors

    float_file = next(path for path, m in written if m.format == "tflite" and m.precision == "float32")
    return io_bound_tensors(float_file.read_bytes())


def _below(step: Step, options) -> dict:
    return {fmt: m for fmt, m in step.measurements.items() if m.agreement < options.min_agreement}


def _warn(low: dict, layers: dict, checks: CheckSet, options) -> None:
    from .layer_error import damaged_layers

    for fmt, m in low.items():
        damaged = damaged_layers(layers.get(fmt, []))
        where = (
            f"damaged layers: {', '.join(damaged)} (one scale per tensor leaves most of their channels a few int8 levels)"
            if damaged
            else "no single layer stands out (see `edgecnn debug`)"
        )
        warnings.warn(
            f"int8 {fmt} agrees with the float model on {m.agreement:.1%} of {len(checks.images)} {checks.source} "
            f"(floor {options.min_agreement:.0%}); {where}; repairing",
            stacklevel=3,
        )


def _equalized(model, meta, calibration):
    """A copy of `model` after cross-layer equalization (verified unchanged) and bias correction."""
    from ..fold import VERIFY_SAMPLES, verify_fold
    from ..keras_file import copy_model
    from .equalize import correct_biases, equalize

    copy = copy_model(model)
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


def _keep_float(source, plan, layers: dict, last: Step, written, checks: CheckSet, options, export):
    """Leave the worst 1, 2, 4, ... layers float in each failing format until its agreement holds.

    Returns the files and the last step tried (None if there was no layer to try).
    """
    if options.target:
        worst = list(
            dict.fromkeys(e.layer for errors in layers.values() for e in sorted(errors, key=lambda e: e.channel_sqnr_db)[:3])
        )
        raise VerificationError(
            f"int8 agreement stays below {options.min_agreement:.0%} after {last.name}; keeping the worst layers float "
            f"({', '.join(worst)}) would run them and everything after them on the CPU, not the {options.target}: "
            "export without --target to get such a file, or retrain (see `edgecnn debug`)"
        )
    # Ranked by what each tensor's own grid does to its channels, not by the error it inherits.
    ranked = {fmt: sorted(errors, key=lambda e: e.channel_sqnr_db) for fmt, errors in layers.items()}
    if "tflite" in ranked and options.io != "float32":
        bound = _tflite_io_bound(written)
        ranked["tflite"] = [e for e in ranked["tflite"] if e.source not in bound]
    failing = set(_below(last, options))
    count, step = 1, None
    most = max((len(errors) for errors in ranked.values()), default=0)
    while failing and count < 2 * most:
        worst = {fmt: ranked[fmt][:count] for fmt in failing if ranked.get(fmt)}
        if not worst:
            break
        keep = {fmt: tuple(dict.fromkeys(e.source for e in errors)) for fmt, errors in worst.items()}
        written = export(source, replace(plan, keep_float={**plan.keep_float, **keep}))
        step = Step(
            "float layers",
            measure(written, checks),
            {"count": count, "layers": {fmt: [f"{e.layer} {e.op}" for e in errors] for fmt, errors in worst.items()}},
        )
        failing = set(_below(step, options))
        count *= 2
    return written, step
