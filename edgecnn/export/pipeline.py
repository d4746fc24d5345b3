"""Export a trained Keras model: fold BatchNorm if needed, calibrate, write each format."""

from __future__ import annotations

import importlib
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

from .. import __version__
from ..artifact import ArtifactMetadata, read_sidecar
from ..data.split_file import SPLIT_FILE, split_beside
from ..errors import ConfigError
from ..fileio import sha256_file, staged_folder, unstaged, write_bytes, write_json
from ..keras_file import check_outputs, load_keras_model, save_with_metadata
from .io_layers import for_apps
from .options import ExportOptions
from .targets import target_exporter

log = logging.getLogger(__name__)

#: The Keras model export's int8 steps (pruning, clustering, repairs) made, saved as the parent of its files.
OPTIMIZED_NAME = "optimized.keras"
#: Format name -> module with ``export(model, meta, calibration, options, out_dir)``.
FORMATS = {"tflite": "edgecnn.export.tflite", "onnx": "edgecnn.export.onnx"}


@dataclass(frozen=True)
class Artifact:
    path: Path
    metadata: ArtifactMetadata

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class ExportResult:
    artifacts: tuple[Artifact, ...]
    folded_path: Path | None
    folded_layers: int
    fold_relative_error: float | None
    calibration_source: str
    calibration_size: int
    #: Where the rebuilt form of a model edgecnn did not train was written, and what the import found.
    imported_path: Path | None = None
    import_report: dict | None = None
    #: What the int8 files went through (quantize.check.Step each), and the Keras model they came from then.
    int8_steps: tuple = ()
    optimized_path: Path | None = None


def calibration_for(meta: ArtifactMetadata, options: ExportOptions):
    from ..calibration import from_dataset, from_path
    from ..data import dataset_for

    if options.calib_path:
        return from_path(options.calib_path, meta.input_shape, size=options.calib_size)
    if not (options.data or meta.dataset):
        raise ConfigError("the model's metadata names no data set; pass --calib PATH or --data NAME for calibration")
    return from_dataset(dataset_for(meta, options.data, options.split), options.calib_size, seed=meta.data_seed or 0)


def _exporter(name: str, target: str | None = None):
    if name not in FORMATS:
        raise ConfigError(f"unknown export format {name!r}; choose from {', '.join(FORMATS)}")
    replacement = target_exporter(name, target) if target else None
    return importlib.import_module(replacement or FORMATS[name])


def export_model(
    model_path: str | Path, out_dir: str | Path | None = None, options: ExportOptions = ExportOptions()
) -> ExportResult:
    from ..fold import VERIFY_SAMPLES, count_batchnorm_after_linear, fold_file
    from ..importer.export_step import import_model
    from ..quantize.check import layers_json
    from ..quantize.steps import improve
    from ..tf import keras

    exporters = [_exporter(name, options.target) for name in options.formats]
    model_path = Path(model_path)
    options = replace(options, split=options.split or split_beside(model_path))
    out = Path(out_dir) if out_dir else model_path.parent
    own = read_sidecar(model_path) if model_path.is_file() else None
    if own is not None:
        model, meta = load_keras_model(model_path, trust_model=options.trust_model), own
        check_outputs(model, meta, model_path)
        calibration = calibration_for(meta, options)
    started = time.perf_counter()

    # Every file is written into a stage and the set moves in at the end: an interrupted or
    # failed export leaves the previous export's files as they were, not a mix of the two.
    with staged_folder(out) as stage:
        if options.split and options.split.parent.resolve() != out.resolve():
            # The files' test images go with them: validate finds the split beside the file it checks.
            write_bytes(stage / SPLIT_FILE, options.split.read_bytes())
        imported = None
        parent = model_path
        if own is None:  # a model edgecnn did not train: rebuilt, checked and given metadata first
            imported = import_model(model_path, stage, options, lambda m: calibration_for(m, options))
            model, meta, calibration, parent = imported.model, imported.metadata, imported.calibration, imported.path
        folded_path, folded, fold_error = None, 0, None
        if count_batchnorm_after_linear(model):
            folded_path = stage / "folded.keras"
            samples = meta.normalization.apply(calibration.images[:VERIFY_SAMPLES])
            fold = fold_file(parent, folded_path, samples, meta, model=model, trust_model=options.trust_model)
            model, folded, fold_error = fold.model, len(fold.folded), fold.relative_error
            parent = folded_path
        keras()  # the exporters below need TensorFlow loaded with Keras 2

        def export_all(source_model, source_path, plan=None):
            source_meta = meta.replace(parent_sha256=sha256_file(source_path), edgecnn_version=__version__)
            files = for_apps(source_model, source_meta, plan, calibration, options.rgb)
            files_model, files_meta, files_plan, files_calibration = files
            written = []
            for name, e in zip(options.formats, exporters):
                log.info("converting to %s%s", name, " (float and int8)" if options.int8 else "")
                written += e.export(files_model, files_meta, files_calibration, options, stage, files_plan)
            return written

        written = export_all(model, parent)
        outcome = None
        if options.int8:
            outcome = improve(
                model,
                meta,
                calibration,
                options,
                written,
                lambda m, plan: export_all(m, save_with_metadata(m, stage / OPTIMIZED_NAME, meta), plan),
            )
            written = outcome.written
        optimized_path = unstaged(stage / OPTIMIZED_NAME, stage, out) if outcome and outcome.changed else None
        folded_path = unstaged(folded_path, stage, out) if folded_path else None
        imported_path = unstaged(imported.path, stage, out) if imported else None
        write_json(
            stage / "export.json",
            {
                "edgecnn_version": __version__,
                # Named within the folder when it is there: a run's model is still in the run's stage.
                "source": model_path.name if model_path.parent == out else str(model_path),
                "imported": {"path": imported_path.name, **imported.report} if imported else None,
                "folded": str(folded_path) if folded_path else None,
                "folded_layers": folded,
                "fold_relative_error": fold_error,
                "optimized": optimized_path.name if optimized_path else None,
                "int8_steps": [step.to_dict() for step in outcome.steps] if outcome else None,
                "layers": layers_json(outcome.layers) if outcome and outcome.layers else None,
                "calibration": {"source": calibration.source, "size": len(calibration)},
                "options": {
                    "formats": list(options.formats),
                    "int8": options.int8,
                    "io": options.io,
                    "calib_method": options.calib_method,
                    "onnx_format": options.onnx_format,
                    "dynamic_batch": options.dynamic_batch,
                    "target": options.target,
                    "min_agreement": options.min_agreement,
                    "repair": options.repair,
                    "qat": options.qat,
                    "qat_epochs": options.qat_epochs if options.qat else None,
                    "prune": options.prune,
                    "cluster": options.cluster,
                    "int16_activations": options.int16_activations,
                    "rgb": options.rgb,
                },
                "seconds": round(time.perf_counter() - started, 2),
                "artifacts": [
                    {"path": path.name, "format": m.format, "precision": m.precision, "size_bytes": path.stat().st_size}
                    for path, m in written
                ],
            },
        )
    artifacts = tuple(Artifact(unstaged(path, stage, out), m) for path, m in written)
    result = ExportResult(
        artifacts,
        folded_path,
        folded,
        fold_error,
        calibration.source,
        len(calibration),
        imported_path,
        imported and imported.report,
        tuple(outcome.steps) if outcome else (),
        optimized_path,
    )
    return result
