"""Which layers gain from int8? Per-layer latency of depthwise, full 3x3 and 1x1 convolutions.

For each layer kind, channel count and resolution, two untrained models are exported
with edgecnn's defaults: a stem (3x3 conv from the RGB input to C channels) alone, and
the same stem followed by a chain of identical layers (each with a fused ReLU). The
difference of their p50 latencies over the chain length is the cost of one layer, in
float32 and int8, on TFLite (XNNPACK) and ONNX Runtime, one thread, in one run.

    python benchmarks/layer_int8.py [--out benchmarks/results] [--chain 6]

Writes layer_int8.json and layer_int8.md. This is what recipes' ``fused_entry`` rests on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from int8_speed import export_keras, shapes_like  # noqa: E402

from edgecnn.evaluate.bench import BenchOptions, bench_file, host_info, runtime_versions  # noqa: E402
from edgecnn.export import FORMATS  # noqa: E402

#: Layer kind -> (depthwise?, kernel size).
KINDS = {"depthwise 3x3": (True, 3), "conv 3x3": (False, 3), "conv 1x1": (False, 1)}


def chain_model(kind: str | None, channels: int, size: int, length: int, num_classes: int):
    from edgecnn.tf import keras

    k = keras()
    layers = k.layers
    inputs = k.Input((size, size, 3), name="image")
    x = layers.Conv2D(channels, 3, padding="same", activation="relu", name="stem")(inputs)
    for i in range(length):
        depthwise, kernel = KINDS[kind]
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, padding="same", activation="relu", name=f"layer{i}")(x)
        else:
            x = layers.Conv2D(channels, kernel, padding="same", activation="relu", name=f"layer{i}")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return k.Model(inputs, layers.Dense(num_classes, name="logits")(x))


def p50s(model, dataset, folder: Path, formats, options) -> dict:
    paths = export_keras(model, dataset, folder, formats, "chain")
    return {(r["format"], r["precision"]): r["latency_ms"]["p50"] for p in paths for r in bench_file(p, options)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--chain", type=int, default=6)
    parser.add_argument("--channels", default="16,32,64")
    parser.add_argument("--sizes", default="48,24")
    parser.add_argument("--min-time", type=float, default=1.0)
    args = parser.parse_args()
    formats = tuple(FORMATS)
    options = BenchOptions(threads=(1,), runs=200, warmup=20, min_seconds=args.min_time)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in map(int, args.sizes.split(",")):
            dataset = shapes_like((size, size, 3))
            for channels in map(int, args.channels.split(",")):
                base = p50s(
                    chain_model(None, channels, size, 0, dataset.num_classes),
                    dataset,
                    Path(tmp) / f"stem_{size}_{channels}",
                    formats,
                    options,
                )
                for i, kind in enumerate(KINDS):
                    model = chain_model(kind, channels, size, args.chain, dataset.num_classes)
                    full = p50s(model, dataset, Path(tmp) / f"kind{i}_{size}_{channels}", formats, options)
                    for fmt in formats:
                        fp32 = (full[(fmt, "float32")] - base[(fmt, "float32")]) / args.chain * 1e3
                        int8 = (full[(fmt, "int8")] - base[(fmt, "int8")]) / args.chain * 1e3
                        rows.append(
                            {
                                "layer": kind,
                                "channels": channels,
                                "size": size,
                                "format": fmt,
                                "fp32_us": fp32,
                                "int8_us": int8,
                                "speedup": fp32 / int8 if int8 > 0 else None,
                            }
                        )
                        print(
                            f"{kind:14s} {channels:3d}ch {size:3d}px {fmt:6s} fp32 {fp32:7.2f} us  int8 {int8:7.2f} us",
                            flush=True,
                        )
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"host": host_info(), "threads": 1, "chain": args.chain, "rows": rows}
    (args.out / "layer_int8.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Per-layer cost, float32 against int8, one run on one machine",
        "",
        f"{report['host']['cpu']}, 1 thread; "
        + runtime_versions(report["host"])
        + f". Each figure is (stem + {args.chain} layers - stem) / {args.chain}, p50 latency.",
        "",
        "| layer | channels | input | format | fp32 us | int8 us | int8 speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['layer']} | {r['channels']} | {r['size']}x{r['size']} | {r['format']} | {r['fp32_us']:.2f} | {r['int8_us']:.2f} | "
        + (f"{r['speedup']:.2f}x |" if r["speedup"] else "n/a |")
        for r in rows
    ]
    (args.out / "layer_int8.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
