"""Is int8 faster than float? Every registered model, TFLite and ONNX Runtime, one thread.

Each model is built at its recipe's default input (xception-small's is 96x96x3), together
with the ablation recipes in benchmarks/recipes/ (the all-separable designs the fused entry
blocks replaced), folded and exported with edgecnn's default settings, calibrated on the synthetic
shapes data set, then timed float against int8 in the same run. Latency does not
depend on the weights' values, so the models are not trained.

    python benchmarks/int8_speed.py [--out benchmarks/results] [--threads 1] [--min-time 2]

Writes int8_speed.json and int8_speed.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.artifact import ArtifactMetadata, write_sidecar  # noqa: E402
from edgecnn.data import load_dataset  # noqa: E402
from edgecnn.evaluate.bench import BenchOptions, bench_file, host_info, runtime_versions  # noqa: E402
from edgecnn.export import FORMATS, ExportOptions, export_model  # noqa: E402
from edgecnn.nets import create_model, get_recipe, list_models, register_model  # noqa: E402

ABLATIONS = sorted((ROOT / "benchmarks" / "recipes").glob("*.json"))


def cases(models):
    """Each model once, at its recipe's default input."""
    return [(name, tuple(get_recipe(name).default_input_shape)) for name in dict.fromkeys(models)]


def shapes_like(shape):
    """Calibration (and label) data for an untrained model: synthetic shapes of that shape."""
    return load_dataset("shapes", image_size=shape[:2], channels=shape[2], samples_per_class=60)


def export_keras(model, dataset, folder: Path, formats, name: str) -> list[Path]:
    """Fold and export a Keras model with edgecnn's defaults, calibrated on `dataset`."""
    folder.mkdir()
    model.save(folder / "model.keras")
    shape = tuple(model.input_shape[1:])
    meta = ArtifactMetadata(
        format="keras", precision="float32", labels=dataset.labels, input_shape=shape, arch=name, dataset="shapes"
    )
    write_sidecar(folder / "model.keras", meta)
    # Untrained: the int8 file's agreement with float is not what is measured here.
    options = ExportOptions(formats=formats, int8=True, calib_size=300, min_agreement=0.0)
    result = export_model(folder / "model.keras", folder, options)
    return [a.path for a in result.artifacts]


def export_untrained(name, shape, workdir: Path, formats) -> list[Path]:
    dataset = shapes_like(shape)
    model = create_model(name, shape, dataset.num_classes)
    return export_keras(model, dataset, workdir / f"{name}_{'x'.join(map(str, shape))}", formats, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--models", default=",".join(list_models()))
    parser.add_argument("--no-ablations", action="store_true", help="skip the recipes in benchmarks/recipes/")
    args = parser.parse_args()
    models = args.models.split(",")
    if not args.no_ablations:
        models += [register_model(path).name for path in ABLATIONS]
    formats = tuple(FORMATS)
    options = BenchOptions(threads=(args.threads,), runs=200, warmup=20, min_seconds=args.min_time)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in cases(models):
            paths = export_untrained(name, shape, Path(tmp), formats)
            results = {(r["format"], r["precision"]): r for p in paths for r in bench_file(p, options)}
            for fmt in formats:
                fp32, int8 = results[(fmt, "float32")], results[(fmt, "int8")]
                rows.append(
                    {
                        "model": name,
                        "input_shape": list(shape),
                        "format": fmt,
                        "backend": int8["backend"],
                        "macs": fp32["macs"],
                        "params": fp32["params"],
                        "fp32_p50_ms": fp32["latency_ms"]["p50"],
                        "int8_p50_ms": int8["latency_ms"]["p50"],
                        "speedup": fp32["latency_ms"]["p50"] / int8["latency_ms"]["p50"],
                        "fp32_size_bytes": fp32["size_bytes"],
                        "int8_size_bytes": int8["size_bytes"],
                        "int8_peak_memory_bytes": int8["peak_memory_bytes"],
                    }
                )
                print(
                    f"{name:16s} {'x'.join(map(str, shape)):>10s} {fmt:6s} fp32 {rows[-1]['fp32_p50_ms']:.3f} ms  "
                    f"int8 {rows[-1]['int8_p50_ms']:.3f} ms  {rows[-1]['speedup']:.2f}x",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"host": host_info(), "threads": args.threads, "rows": rows}
    (args.out / "int8_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# int8 against float32, one run on one machine",
        "",
        f"{report['host']['cpu']}, {args.threads} thread(s); " + runtime_versions(report["host"]),
        "",
        "| model | input | format | MMACs | fp32 p50 ms | int8 p50 ms | int8 speed-up | int8 size / fp32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {'x'.join(map(str, r['input_shape']))} | {r['format']} | {r['macs'] / 1e6:.1f} | {r['fp32_p50_ms']:.3f} | "
        f"{r['int8_p50_ms']:.3f} | {r['speedup']:.2f}x | {r['int8_size_bytes'] / r['fp32_size_bytes']:.0%} |"
        for r in rows
    ]
    (args.out / "int8_speed.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
