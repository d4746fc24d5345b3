"""The import step of ``edgecnn export`` for a model edgecnn did not train.

It ends with ``imported.keras`` and its sidecar in the export's folder: from there the
export runs as for edgecnn's own models (fold, calibrate, convert), its files pointing
at ``imported.keras`` as their parent.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..artifact import NORMALIZATIONS, ArtifactMetadata, Normalization
from ..errors import ConfigError, DataError
from . import input_shape, max_difference, read_source, rebuild

log = logging.getLogger(__name__)

IMPORTED_NAME = "imported.keras"
#: A BN layer whose input statistics on the user's images are this far from its moving ones
#: (RMS mean shift in moving standard deviations, or variance off by this factor either way)
#: is stale. Measured on digits at 32x32: a tf_keras model after 12 epochs at momentum 0.9
#: showed mean shifts up to 0.24 and variance ratios of 0.99; the textbook Keras 3
#: mini-Xception after 3 epochs at the default 0.99 showed ratios of 0.008 to 0.14 in every
#: layer (moving variances still near their initial 1) with mean shifts up to 0.32.
MAX_MEAN_SHIFT = 1.5
MAX_VARIANCE_RATIO = 4.0


class AssumedNormalization(UserWarning):
    """The model and the user say nothing of its input range; 0..1 is assumed."""


class AssumedLabels(UserWarning):
    """No labels were given; the classes are called 0..N-1."""


@dataclass
class Imported:
    model: object
    metadata: ArtifactMetadata
    path: Path
    report: dict
    calibration: object


def labels_for(classes: int, labels_path: Optional[Path], data: Optional[str]) -> tuple[tuple[str, ...], str]:
    """The class names, and where they came from: --labels, --data's class folders, or 0..N-1."""
    from ..data import class_names
    from ..labels import read_labels

    if labels_path:
        labels, origin = read_labels(labels_path), f"labels file {labels_path}"
    elif data:
        labels, origin = class_names(data), f"data set {data}"
    else:
        warnings.warn(
            AssumedLabels(f"no --labels or --data: the model's {classes} classes are called 0..{classes - 1}"), stacklevel=3
        )
        return tuple(str(i) for i in range(classes)), "0..N-1"
    if len(labels) != classes:
        raise ConfigError(f"{origin} names {len(labels)} classes but the model has {classes}; give one label per class")
    return labels, origin


def import_model(path: Path, out: Path, options, calibration_for) -> Imported:
    """Read, rebuild and check the user's model at `path`; write ``imported.keras`` into `out`.

    `calibration_for(meta)` gives the calibration set for the model's metadata; its images
    also check the rebuilt model against the original and the BatchNorm statistics.
    """
    from ..fold import VERIFY_SAMPLES
    from ..train.bn_stats import reestimate_bn_statistics, statistics_mismatch

    source = read_source(path, trust_model=options.trust_model)
    shape = input_shape(source, options.img_size)
    given = options.normalization
    if given is None and source.normalization is None:
        warnings.warn(
            AssumedNormalization(
                f"{path} has no Rescaling or Normalization layer and no --norm was given: assuming it takes pixels/255 "
                "(0..1); pass --norm -1,1|imagenet or --mean/--std if it was trained otherwise"
            ),
            stacklevel=2,
        )
        given = NORMALIZATIONS["0,1"]
    # What turns raw pixels into the original model's input, then what its own leading layers did.
    before = given or Normalization(1.0, 0.0)
    normalization = before
    if source.normalization is not None:
        normalization = before.then(source.normalization.scale, source.normalization.offset)
    classes = 2 if source.output.startswith("binary") else source.units
    labels, labels_origin = labels_for(classes, options.labels_path, options.data)
    meta = ArtifactMetadata(
        "keras",
        "float32",
        labels,
        shape,
        normalization,
        output=source.output,
        dataset=_dataset_name(options.data),
        source=source.provenance,
    )
    calibration = calibration_for(meta)
    model = rebuild(source, shape)
    samples = calibration.images[:VERIFY_SAMPLES]
    difference = max_difference(source, model, before, normalization, samples)
    log.info(
        "%s (%s) rebuilt in tf_keras: outputs match within %.2g on %d images", path.name, source.format, difference, len(samples)
    )

    inputs = normalization.apply(calibration.images)
    mismatch = statistics_mismatch(model, inputs)
    stale = [m for m in mismatch if _stale(m)]
    bn = {"layers": len(mismatch), "stale": len(stale), "worst": max(mismatch, key=_badness) if mismatch else None}
    if stale and not options.fix_bn:
        worst = bn["worst"]
        raise DataError(
            f"{len(stale)} of {len(mismatch)} BatchNorm layers of {path.name} keep moving statistics far from their inputs' "
            f"on the given images (worst: {worst['layer']!r}, mean off by {worst['mean_shift']:.1f} std, variance "
            f"x{worst['variance_ratio']:.2g}), so the exported model would not classify as it trained; "
            "pass --fix-bn to re-estimate them on these images"
        )
    if stale or (options.fix_bn and mismatch):
        before_top1 = _top1(model, inputs, source.output)
        reestimate_bn_statistics(model, inputs)
        after_top1 = _top1(model, inputs, source.output)
        bn["fixed"] = True
        bn["agreement_before_after"] = round(float((before_top1 == after_top1).mean()), 4)
        labels_known = calibration.labels is not None
        if labels_known:
            bn["accuracy_before"] = round(float((before_top1 == calibration.labels).mean()), 4)
            bn["accuracy_after"] = round(float((after_top1 == calibration.labels).mean()), 4)
        log.info(
            "BatchNorm statistics re-estimated on %d images: %d of %d layers were stale; predictions kept: %.1f%%%s",
            len(inputs),
            len(stale),
            len(mismatch),
            100 * bn["agreement_before_after"],
            f"; accuracy {100 * bn['accuracy_before']:.1f}% -> {100 * bn['accuracy_after']:.1f}%" if labels_known else "",
        )
    from ..keras_file import save_with_metadata

    target = save_with_metadata(model, out / IMPORTED_NAME, meta)
    report = {
        "source": source.provenance,
        "rebuilt_max_abs_difference": difference,
        "dropped_layers": source.dropped,
        "normalization_from": "model" if source.normalization is not None else ("flags" if options.normalization else "assumed"),
        "labels_from": labels_origin,
        "output": source.output,
        "batchnorm": bn,
    }
    return Imported(model, meta, target, report, calibration)


def _dataset_name(data: Optional[str]) -> Optional[str]:
    """A built-in name as it is; a folder by its absolute path, so later commands find it from anywhere."""
    from ..data import list_datasets

    if data is None or str(data) in list_datasets():
        return data
    return str(Path(data).resolve())


def _stale(m: dict) -> bool:
    ratio = m["variance_ratio"]
    return m["mean_shift"] > MAX_MEAN_SHIFT or not (1 / MAX_VARIANCE_RATIO <= ratio <= MAX_VARIANCE_RATIO)


def _badness(m: dict) -> float:
    return max(m["mean_shift"] / MAX_MEAN_SHIFT, abs(np.log(max(m["variance_ratio"], 1e-12))) / np.log(MAX_VARIANCE_RATIO))


def _top1(model, inputs: np.ndarray, kind: str) -> np.ndarray:
    from ..runtime.preprocess import top_class

    outputs = np.concatenate([np.asarray(model(inputs[i : i + 256], training=False)) for i in range(0, len(inputs), 256)])
    return top_class(outputs, kind)
