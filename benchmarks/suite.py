"""edgecnn's family against Keras' MobileNetV2-0.35, same data, same training budget.

On the synthetic shapes data set at 96x96x3 (or --img-size), each model is trained with
the same schedule, folded, exported (float32 and int8; TFLite and ONNX), validated on
the test split and timed with one thread, all in one run on one machine.

    python benchmarks/suite.py [--epochs 15] [--out benchmarks/results]

Writes suite.json, suite.md and suite.png (accuracy against int8 latency).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.data import load_dataset  # noqa: E402
from edgecnn.evaluate import load_predictor, top1, validate  # noqa: E402
from edgecnn.evaluate.bench import BenchOptions, bench_file, host_info, runtime_versions  # noqa: E402
from edgecnn.evaluate.plot import accuracy_latency_plot  # noqa: E402
from edgecnn.export import FORMATS, ExportOptions, export_model  # noqa: E402
from edgecnn.train import TrainConfig, fit  # noqa: E402

MODELS = ("xception-nano", "xception-micro", "xception-small", "mini-xception", "mobilenetv2-0.35")


def mobilenet_v2(shape, classes, alpha=0.35):
    """Keras' MobileNetV2, random init, logits out (the baseline)."""
    from edgecnn.tf import keras

    return keras().applications.MobileNetV2(
        input_shape=shape, alpha=alpha, weights=None, classes=classes, classifier_activation=None
    )


def run_model(name, dataset, epochs, out: Path, bench: BenchOptions) -> dict:
    model = mobilenet_v2(dataset.input_shape, dataset.num_classes) if name.startswith("mobilenetv2") else None
    config = TrainConfig(arch=name, epochs=epochs, verbose=2)
    trained = fit(dataset, config, out / name, model=model)
    formats = tuple(FORMATS)
    exported = export_model(trained.model_path, out / name, ExportOptions(formats=formats, int8=True))
    images, labels = dataset.test.images, dataset.test.labels
    ref = top1(load_predictor(trained.model_path).predict(images))
    artifacts = []
    for path in [trained.model_path] + [a.path for a in exported.artifacts]:
        v = validate(path, images, labels, reference=trained.model_path, reference_predictions=ref).to_dict()
        perf = bench_file(path, bench)[0]
        artifacts.append(
            {**v, **{k: perf[k] for k in ("latency_ms", "params", "macs", "peak_memory_bytes", "backend", "threads")}}
        )
        print(f"  {path.name:18s} acc {v['accuracy']:.4f}  p50 {perf['latency_ms']['p50']:.3f} ms", flush=True)
    return {"model": name, "params": trained.params, "train_seconds": trained.seconds, "artifacts": artifacts}


def best(entry, precision=None, fmt=None):
    items = [
        a
        for a in entry["artifacts"]
        if a["format"] != "keras" and (precision is None or a["precision"] == precision) and (fmt is None or a["format"] == fmt)
    ]
    return min(items, key=lambda a: a["latency_ms"]["p50"])


def summarise(results: list[dict]) -> dict:
    baseline = next(r for r in results if r["model"].startswith("mobilenetv2"))
    base_acc = next(a["accuracy"] for a in baseline["artifacts"] if a["format"] == "keras")
    base_best = best(baseline)["latency_ms"]["p50"]
    rows = []
    for r in results:
        keras_entry = next(a for a in r["artifacts"] if a["format"] == "keras")
        int8 = best(r, "int8")
        row = {
            "model": r["model"],
            "params": r["params"],
            "macs": int8["macs"],
            "keras_accuracy": keras_entry["accuracy"],
            "int8_accuracy": int8["accuracy"],
            "int8_artifact": int8["name"],
            "int8_p50_ms": int8["latency_ms"]["p50"],
            "keras_p50_ms": keras_entry["latency_ms"]["p50"],
            "int8_over_keras": keras_entry["latency_ms"]["p50"] / int8["latency_ms"]["p50"],
        }
        for fmt in ("tflite", "onnx"):
            if any(a["format"] == fmt for a in r["artifacts"]):
                fp32, q = best(r, "float32", fmt), best(r, "int8", fmt)
                row[f"{fmt}_fp32_p50_ms"], row[f"{fmt}_int8_p50_ms"] = fp32["latency_ms"]["p50"], q["latency_ms"]["p50"]
                row[f"{fmt}_int8_speedup"] = fp32["latency_ms"]["p50"] / q["latency_ms"]["p50"]
        row["beats_mobilenetv2"] = row["int8_accuracy"] >= base_acc and row["int8_p50_ms"] <= base_best
        rows.append(row)
    return {"mobilenetv2_accuracy": base_acc, "mobilenetv2_best_p50_ms": base_best, "rows": rows}


def markdown(report) -> str:
    s, host = report["summary"], report["host"]
    lines = [
        f"# Benchmark suite: shapes {report['input']}, {report['epochs']} epochs each",
        "",
        f"One run on one machine: {host['cpu']}, {report['threads']} thread, " + runtime_versions(host) + ".",
        f"MobileNetV2-0.35 (Keras, weights=None) reaches {s['mobilenetv2_accuracy']:.2%} test accuracy; "
        f"its fastest file runs in {s['mobilenetv2_best_p50_ms']:.3f} ms.",
        "",
        "| model | params | MMACs | Keras acc | best int8 acc | best int8 p50 ms | TFLite int8 speed-up | ORT int8 speed-up | int8 vs Keras predict | matches MNv2 acc at <= its latency |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in s["rows"]:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['macs'] / 1e6:.1f} | {r['keras_accuracy']:.2%} | {r['int8_accuracy']:.2%} "
            f"({r['int8_artifact']}) | {r['int8_p50_ms']:.3f} | {r.get('tflite_int8_speedup', 0):.2f}x | "
            f"{r.get('onnx_int8_speedup', 0):.2f}x | {r['int8_over_keras']:.0f}x | "
            f"{'baseline' if r['model'].startswith('mobilenetv2') else 'yes' if r['beats_mobilenetv2'] else 'no'} |"
        )
    lines += ["", "![accuracy against latency](suite.png)", ""]
    return "\n".join(lines)


def plot(report, out: Path) -> None:
    # One label per model, on its int8 TFLite point; the other artifacts sit beside it.
    points = [
        {**a, "name": r["model"] if (a["format"], a["precision"]) == ("tflite", "int8") else ""}
        for r in report["results"]
        for a in r["artifacts"]
        if a["format"] != "keras"
    ]
    accuracy_latency_plot(points, out / "suite.png", f"shapes {report['input']}, {report['epochs']} epochs, one thread")


def rewrite_markdown(out: Path) -> None:
    """Re-render suite.md and suite.png from suite.json (after a change to their layout)."""
    report = json.loads((out / "suite.json").read_text())
    (out / "suite.md").write_text(markdown(report))
    plot(report, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--img-size", type=int, default=96)
    parser.add_argument("--samples-per-class", type=int, default=400)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "suite")
    parser.add_argument("--min-time", type=float, default=1.0)
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = load_dataset("shapes", image_size=args.img_size, samples_per_class=args.samples_per_class)
    bench = BenchOptions(threads=(1,), runs=100, warmup=10, min_seconds=args.min_time)
    results = []
    for name in args.models.split(","):
        print(f"== {name}", flush=True)
        results.append(run_model(name, dataset, args.epochs, args.work, bench))
    report = {
        "host": host_info(),
        "dataset": "shapes",
        "input": f"{args.img_size}x{args.img_size}x3",
        "epochs": args.epochs,
        "threads": 1,
        "seconds": round(time.perf_counter() - started),
        "results": results,
        "summary": summarise(results),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "suite.json").write_text(json.dumps(report, indent=2) + "\n")
    (args.out / "suite.md").write_text(markdown(report))
    plot(report, args.out)
    print(markdown(report))


if __name__ == "__main__":
    main()
