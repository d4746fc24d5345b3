"""ONNX Runtime latency and accuracy of float32 vs int8 graph styles, one thread.

For each trained run folder (model.keras + model.keras.json from `edgecnn train`), export the
float ONNX model, quantize it as QDQ (int8 and uint8 activations) and as QOperator
(uint8 activations), then time single-image inference with one intra-op thread and
measure test accuracy and top-1 agreement with the float model. The variants are
timed in interleaved rounds so load from other processes hits them alike.

    python benchmarks/onnx_formats.py runs/digits runs/shapes --out benchmarks/results/onnx_formats

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: name -> (format, activation type); None marks the float model.
VARIANTS = {
    "fp32": None,
    "qdq-s8s8": ("qdq", "int8"),
    "qdq-u8s8": ("qdq", "uint8"),
    "qoperator-u8s8": ("qoperator", "uint8"),
}


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                flags = Path("/proc/cpuinfo").read_text()
                return name + (" (AVX-512 VNNI)" if "avx512_vnni" in flags else "")
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _session(data: bytes, optimize: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    if not optimize:  # what a runtime without ORT's graph fusions (QDQ -> QLinearConv, ...) would run
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _time_round(session, x: np.ndarray, runs: int) -> float:
    feed = {session.get_inputs()[0].name: x}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def _predict(session, x: np.ndarray) -> np.ndarray:
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def measure(run_dir: Path, rounds: int, runs: int, calib_method: str, optimize: bool = True) -> dict:
    from edgecnn.data import dataset_for
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.export import onnx as onnx_export
    from edgecnn.export.pipeline import calibration_for
    from edgecnn.keras_file import metadata_for

    with tempfile.TemporaryDirectory(prefix="edgecnn-bench-") as tmp:
        export_model(run_dir / "model.keras", tmp, ExportOptions(formats=("onnx",)))
        float_bytes = (Path(tmp) / "model_fp32.onnx").read_bytes()
        params = json.loads((run_dir / "train.json").read_text()).get("params") if (run_dir / "train.json").is_file() else None
    meta = metadata_for(run_dir / "model.keras")
    calibration = calibration_for(meta, ExportOptions())
    dataset = dataset_for(meta, None)

    import onnx

    models = {}
    for name, variant in VARIANTS.items():
        if variant is None:
            models[name] = float_bytes
        else:
            fmt, activations = variant
            proto = onnx_export.quantize_int8(
                onnx.load_from_string(float_bytes), calibration, meta.normalization, fmt, calib_method, activations
            )
            models[name] = proto.SerializeToString()
    sessions = {name: _session(data, optimize) for name, data in models.items()}

    x_test = meta.normalization.apply(dataset.test.images)
    labels = dataset.test.labels
    reference = _predict(sessions["fp32"], x_test).argmax(-1)
    x = x_test[:1]
    for session in sessions.values():
        _time_round(session, x, 20)  # warm-up
    latencies = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, session in sessions.items():
            latencies[name].append(_time_round(session, x, runs))

    results = {}
    for name, session in sessions.items():
        top1 = reference if name == "fp32" else _predict(session, x_test).argmax(-1)
        results[name] = {
            "latency_ms": round(statistics.median(latencies[name]), 4),
            "latency_ms_rounds": [round(v, 4) for v in latencies[name]],
            "size_bytes": len(models[name]),
            "accuracy": float((top1 == labels).mean()),
            "agreement_with_fp32": float((top1 == reference).mean()),
        }
    return {
        "run": str(run_dir),
        "arch": meta.arch,
        "dataset": meta.dataset,
        "input_shape": list(meta.input_shape),
        "params": params,
        "test_samples": int(len(labels)),
        "variants": results,
    }


def markdown(report: dict) -> str:
    lines = [
        f"# ONNX Runtime {report['onnxruntime']}, one thread, batch 1: float32 vs int8 graph styles",
        "",
        f"CPU: {report['cpu']}. Median of {report['rounds']} interleaved rounds of {report['runs']} runs each; "
        f"calibration: {report['calib_method']}, per-channel int8 weights; "
        f"graph optimizations {'on (ORT default)' if report['graph_optimizations'] else 'disabled'}.",
        "",
        "| model | input | variant | latency (ms) | vs fp32 | size | accuracy | agreement |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        base = m["variants"]["fp32"]["latency_ms"]
        for name, v in m["variants"].items():
            lines.append(
                f"| {m['arch']} ({m['dataset']}) | {'x'.join(map(str, m['input_shape']))} | {name} | {v['latency_ms']:.3f} | "
                f"{base / v['latency_ms']:.2f}x | {v['size_bytes'] / 1024:.0f} KiB | {v['accuracy'] * 100:.2f}% | "
                f"{v['agreement_with_fp32'] * 100:.2f}% |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders holding model.keras and model.keras.json")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs-per-round", type=int, default=100)
    parser.add_argument("--calib-method", default=None, help="default: the export default")
    parser.add_argument("--no-graph-optimizations", action="store_true", help="time with ORT_DISABLE_ALL")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_formats"))
    args = parser.parse_args(argv)
    if args.calib_method is None:
        from edgecnn.export.options import DEFAULT_CALIB_METHOD

        args.calib_method = DEFAULT_CALIB_METHOD

    import onnxruntime

    report = {
        "onnxruntime": onnxruntime.__version__,
        "cpu": _cpu(),
        "python": sys.version.split()[0],
        "rounds": args.rounds,
        "runs": args.runs_per_round,
        "calib_method": args.calib_method,
        "graph_optimizations": not args.no_graph_optimizations,
        "models": [
            measure(run, args.rounds, args.runs_per_round, args.calib_method, not args.no_graph_optimizations)
            for run in args.runs
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
