"""`edgecnn bench`: latency, size, parameters, MACs and peak memory of model files."""

from __future__ import annotations

import os
import platform
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, MissingDependencyError
from ..runtime.interpreters import MAX_THREADS
from ..runtime.timing import Latency, measure

#: Upper bounds, so a typo (--runs 10**30, --min-time inf) is an error rather than a run that never ends.
MAX_RUNS = 1_000_000
MAX_WARMUP = 100_000
MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class BenchOptions:
    threads: tuple[int, ...] = (1,)
    runs: int = 100
    warmup: int = 10
    min_seconds: float = 1.0
    #: "cpu", or an Edge TPU ("edgetpu", "edgetpu:usb:0") for a compiled model.
    device: Optional[str] = None

    def __post_init__(self):
        if not self.threads or min(self.threads) < 1 or max(self.threads) > MAX_THREADS:
            raise ConfigError(f"--threads must be integers from 1 to {MAX_THREADS}, got {self.threads}")
        if not 1 <= self.runs <= MAX_RUNS or not 0 <= self.warmup <= MAX_WARMUP:
            raise ConfigError(f"--runs must be 1..{MAX_RUNS} and --warmup 0..{MAX_WARMUP}, got {self.runs} and {self.warmup}")
        if not 0 <= self.min_seconds <= MAX_SECONDS:  # also refuses NaN
            raise ConfigError(f"--min-time must be 0..{MAX_SECONDS:.0f} seconds, got {self.min_seconds}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> Optional[str]:
    from importlib import metadata

    for dist in (module, module.replace("_", "-")):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def host_info() -> dict:
    from .. import __version__

    return {
        "cpu": _cpu_name(),
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "edgecnn": __version__,
        "runtimes": {m: v for m in ("ai_edge_litert", "tflite_runtime", "onnxruntime", "tensorflow") if (v := _version(m))},
    }


def runtime_versions(host: dict) -> str:
    """``host_info()``'s runtimes as one line: "ai_edge_litert 2.3.0, onnxruntime 1.32.0"."""
    return ", ".join(f"{name} {version}" for name, version in host["runtimes"].items())


def _stats(path: Path) -> dict:
    from .graph_stats import graph_stats

    try:
        return graph_stats(path).to_dict()
    except MissingDependencyError:
        return {"params": None, "macs": None, "peak_memory_bytes": None, "live_memory_lower_bound": None}


def bench_file(path: str | Path, options: BenchOptions = BenchOptions()) -> list[dict]:
    """One result per thread count for a .tflite or .onnx artifact (.keras: predict_on_batch)."""
    from .. import runtime

    path = Path(path)
    if path.suffix in (".keras", ".h5"):
        return [bench_keras(path, replace(options, threads=(t,))) for t in options.threads]
    stats = _stats(path)
    results = []
    for threads in options.threads:
        with warnings.catch_warnings():  # timing needs no labels or normalisation: nothing assumed matters
            warnings.simplefilter("ignore", runtime.AssumedModelFacts)
            model = runtime.load(path, num_threads=threads, device=options.device)
        pixels = np.random.default_rng(0).integers(0, 256, size=model.input_shape, dtype=np.uint8)
        latency = measure(model.invoker(pixels), options.runs, options.warmup, options.min_seconds)
        results.append(result_entry(path, model.metadata, model.backend, threads, latency, stats, options.device))
    return results


def result_entry(
    path: Path, meta, backend: str, threads: int, latency: Latency, stats: dict, device: Optional[str] = None
) -> dict:
    gmacs = stats["macs"] / (latency.p50 * 1e6) if stats.get("macs") else None
    return {
        "path": str(path),
        "format": meta.format,
        "precision": meta.precision,
        "backend": backend,
        "threads": threads,
        "device": device or "cpu",
        "latency_ms": {"p50": latency.p50, "p90": latency.p90, "mean": latency.mean},
        "runs": latency.runs,
        "throughput_per_s": latency.throughput,
        "size_bytes": path.stat().st_size,
        "params": stats["params"],
        "macs": stats["macs"],
        "gmacs_per_s": gmacs,
        "peak_memory_bytes": stats["peak_memory_bytes"],
    }


def bench_keras(path: str | Path, options: BenchOptions = BenchOptions()) -> dict:
    """Keras ``predict_on_batch`` on one image: the baseline device formats should beat."""
    from ..keras_file import load_with_metadata
    from ..tf import tensorflow

    path = Path(path)
    tf = tensorflow()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(options.threads[0])
    except RuntimeError:
        pass  # fixed once TensorFlow has run anything: then Keras keeps its own (more) threads
    threads = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    model, meta = load_with_metadata(path)
    x = meta.normalization.apply(np.random.default_rng(0).integers(0, 256, size=(1, *meta.input_shape)))
    latency = measure(lambda: model.predict_on_batch(x), options.runs, options.warmup, options.min_seconds)
    stats = {"params": int(model.count_params()), "macs": None, "peak_memory_bytes": None}
    return result_entry(path, meta, f"tensorflow {tf.__version__} predict_on_batch", threads, latency, stats)


def bench(paths, options: BenchOptions = BenchOptions()) -> dict:
    """``{"host": {...}, "results": [...]}`` for every file and thread count."""
    from ..errors import ModelFileError

    results = []
    for path in paths:
        if not Path(path).is_file():
            raise ModelFileError(f"{path} does not exist; give .tflite, .onnx or .keras files written by edgecnn")
        results += bench_file(path, options)
    return {"host": host_info(), "results": results}


def text_table(results: list[dict]) -> str:
    from .report import format_table, human_size

    header = ["artifact", "precision", "threads", "p50 ms", "p90 ms", "size", "params", "MMACs", "GMAC/s", "peak mem"]
    rows = [
        [
            Path(r["path"]).name,
            r["precision"],
            str(r["threads"]),
            f"{r['latency_ms']['p50']:.3f}",
            f"{r['latency_ms']['p90']:.3f}",
            human_size(r["size_bytes"]),
            f"{r['params']:,}" if r["params"] is not None else "-",
            f"{r['macs'] / 1e6:.1f}" if r["macs"] else "-",
            f"{r['gmacs_per_s']:.1f}" if r["gmacs_per_s"] else "-",
            human_size(r["peak_memory_bytes"]) if r["peak_memory_bytes"] is not None else "-",
        ]
        for r in results
    ]
    return format_table(header, rows)
