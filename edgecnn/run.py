"""`edgecnn run`: train -> fold -> export -> validate every artifact -> report."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from . import __version__
from .export.options import ExportOptions
from .fileio import staged_folder, unstaged
from .train.config import TrainConfig

log = logging.getLogger(__name__)

#: Where a run writes when no folder is given: runs/<data set name>.
RUNS_DIR = Path("runs")


def default_out_dir(data: str) -> Path:
    return RUNS_DIR / Path(data).name


@dataclass(frozen=True)
class RunConfig:
    #: The built-in data set a run (and `edgecnn train`) uses when none is given.
    data: str = "digits"
    arch: str = TrainConfig.arch
    img_size: Optional[int] = None
    epochs: int = TrainConfig.epochs
    out: Optional[Path] = None
    #: Where a folder data set's decoded images are kept after the first epoch (None: decoded every epoch).
    cache: Optional[Path] = None
    seed: int = TrainConfig.seed
    formats: tuple[str, ...] = ExportOptions.formats
    io: str = ExportOptions.io
    calib_size: int = ExportOptions.calib_size
    calib_method: str = ExportOptions.calib_method
    onnx_format: str = ExportOptions.onnx_format
    #: A run's files go into apps: MediaPipe and the LiteRT Task Library take RGB input only, so a
    #: grayscale model (the quick start's digits) gets an RGB input with a fixed luminance conversion.
    rgb: bool = True
    #: Largest accuracy drop (points) any artifact may show against the Keras model.
    max_drop: float = 1.0
    #: Time every artifact (one thread) and add latency, MACs and memory to the report.
    bench: bool = True

    def __post_init__(self):
        # Building them runs their checks, before anything starts.
        _ = self.train_config, self.export_options

    @property
    def train_config(self) -> TrainConfig:
        return TrainConfig(arch=self.arch, epochs=self.epochs, seed=self.seed)

    @property
    def export_options(self) -> ExportOptions:
        return ExportOptions(
            formats=self.formats,
            int8=True,
            io=self.io,
            calib_size=self.calib_size,
            calib_method=self.calib_method,
            onnx_format=self.onnx_format,
            rgb=self.rgb,
        )

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else default_out_dir(self.data)


def run(config: RunConfig = RunConfig()) -> dict:
    """Run the whole pipeline and return the report (also written as report.json / report.md)."""
    from .data import load_dataset
    from .evaluate.report import write_report
    from .train.resume import remove_checkpoint

    started = time.perf_counter()
    out = config.out_dir
    dataset = load_dataset(config.data, image_size=config.img_size, seed=config.seed)
    # The run's files land together (see staged_folder): an interrupted run leaves `out` as it was.
    with staged_folder(out) as stage:
        report = _run_into(stage, dataset, config, out)
        report["artifacts"] = [
            {**a, "path": str(unstaged(a["path"], stage, out)), "reference": str(unstaged(a["reference"], stage, out))}
            for a in report["artifacts"]
        ]
        report["out_dir"] = str(out)
        report["seconds"] = round(time.perf_counter() - started, 2)
        write_report(stage, report)
    remove_checkpoint(out)
    return report


def _run_into(out: Path, dataset, config: RunConfig, landing: Path) -> dict:
    from .evaluate import load_predictor, top1, validate
    from .export import export_model
    from .train import fit

    # The checkpoint stays until the whole run has landed: a failed export does not cost the training.
    trained = fit(dataset, config.train_config, out, checkpoint_dir=landing, cache_dir=config.cache, keep_checkpoint=True)
    exported = export_model(trained.model_path, out, config.export_options)

    test = dataset.test.load()
    images, labels = test.images, test.labels
    reference = load_predictor(trained.model_path)
    ref_top1 = top1(reference.predict(images), reference.metadata.output)
    paths = [trained.model_path] + ([exported.folded_path] if exported.folded_path else [])
    paths += [a.path for a in exported.artifacts]
    log.info("validating %d files on %d test images", len(paths), len(images))
    # The trained model is the reference: reuse its loaded predictor instead of loading it again.
    validations = [
        validate(
            reference if path == trained.model_path else path,
            images,
            labels,
            reference=trained.model_path,
            reference_predictions=ref_top1,
            max_drop=config.max_drop,
        )
        for path in paths
    ]
    artifacts = [v.to_dict() for v in validations]
    if config.bench:
        log.info("benchmarking %d files", len(artifacts))
        artifacts = [{**a, **_performance(Path(a["path"]))} for a in artifacts]
    report = {
        "dataset": dataset.name,
        "arch": config.arch,
        "input_shape": list(dataset.input_shape),
        "num_classes": dataset.num_classes,
        "artifacts": artifacts,
        "train": {
            "epochs": config.epochs,
            "seconds": round(trained.seconds, 2),
            "params": trained.params,
            "val_accuracy": trained.val_accuracy,
            "val_accuracy_training_mode": trained.val_accuracy_training_mode,
        },
        "fold": {"layers_folded": exported.folded_layers, "relative_error": exported.fold_relative_error},
        "calibration": {"source": exported.calibration_source, "size": exported.calibration_size},
        "seed": config.seed,
        "edgecnn_version": __version__,
    }
    return report


#: Short timing runs: enough for a report; `edgecnn bench` measures longer.
RUN_BENCH = dict(threads=(1,), runs=50, warmup=5, min_seconds=0.5)


def _performance(path: Path) -> dict:
    from .evaluate.bench import BenchOptions, bench_file

    result = bench_file(path, BenchOptions(**RUN_BENCH))[0]
    keys = ("latency_ms", "throughput_per_s", "threads", "params", "macs", "gmacs_per_s", "peak_memory_bytes")
    return {k: result[k] for k in keys}
