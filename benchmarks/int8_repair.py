"""Does export catch and repair int8 that fails? Rescaled digits models, plain PTQ against export's repair.

The README's default digits model is trained once and folded; then each case rescales it in a way
that leaves the float function unchanged (ReLU is positively homogeneous):

- ``issue``: one output channel of the pointwise half of block1_sepconv1 and of block2_sepconv1
  x1000, the matching depthwise channel of the next separable conv /1000;
- ``every-channel``: every channel pair scaled by a log-uniform factor over three decades;
- ``offset``: one channel of block1's separable branch +1000 and of its residual branch -1000
  (the Add's sum unchanged), which no rescaling of weights undoes.

Each is exported twice, with ``--min-agreement 0`` (what export wrote before it checked) and with the
defaults (check, warn, repair), TFLite and ONNX, and both are measured on the test split.

    python benchmarks/int8_repair.py [--out benchmarks/results]

Writes int8_repair.json and int8_repair.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.evaluate.bench import host_info, runtime_versions  # noqa: E402
from edgecnn.export import ExportOptions, export_model  # noqa: E402
from edgecnn.keras_file import load_with_metadata, save_with_metadata  # noqa: E402
from edgecnn.quantize.equalize import channel_pairs  # noqa: E402
from edgecnn.run import RunConfig, run  # noqa: E402

ISSUE_PAIRS = (("block1_sepconv1", "block1_sepconv2"), ("block2_sepconv1", "block2_sepconv2"))


def issue_case(model):
    for pair in channel_pairs(model):
        if (pair.producer, pair.consumer) in ISSUE_PAIRS:
            s = np.ones(len(pair.output.ranges()))
            s[0] = 1e-3
            pair.scale(s)


def every_channel(model):
    rng = np.random.default_rng(7)
    for pair in channel_pairs(model):
        pair.scale(10.0 ** rng.uniform(-3, 0, len(pair.output.ranges())))


def offset(model):
    for name, shift in (("block1_sepconv2", 1000.0), ("block1_residual", -1000.0)):
        bias = model.get_layer(name).weights[-1]
        values = bias.numpy()
        values[0] += shift
        bias.assign(values)


CASES = {"issue": issue_case, "every-channel": every_channel, "offset": offset}


def export(model_path: Path, out: Path, **options) -> dict:
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = export_model(model_path, out, ExportOptions(formats=("tflite", "onnx"), int8=True, **options))
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "warnings": [str(w.message) for w in caught if str(w.message).startswith("int8")],
        "steps": [step.to_dict() for step in result.int8_steps],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    results = {"host": host_info(), "cases": {}}
    with tempfile.TemporaryDirectory(prefix="edgecnn-repair-") as tmp:
        tmp = Path(tmp)
        run(RunConfig(out=tmp / "digits", bench=False, formats=("tflite",)))
        for name, rescale in CASES.items():
            model, meta = load_with_metadata(tmp / "digits" / "folded.keras")
            rescale(model)
            path = save_with_metadata(model, tmp / name / "model.keras", meta)
            results["cases"][name] = {
                "plain": export(path, tmp / name / "plain", min_agreement=0.0),
                "export": export(path, tmp / name / "export"),
            }
            print(name, "done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8_repair.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "int8_repair.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    lines = [
        "# int8 repair on rescaled digits models",
        "",
        f"Host: {results['host']['cpu']}; {runtime_versions(results['host'])}; one thread. Agreement: top-1 of the int8 file against its float",
        "sibling on the 359 test images; drop in points against the float model. One run.",
        "",
        "| case | format | step | agreement | accuracy | drop | latency ms | bytes | deflated |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, case in results["cases"].items():
        plain = case["plain"]["steps"][0]
        rows = [("plain PTQ", plain)] + [(s["step"], s) for s in case["export"]["steps"][1:]]
        for fmt in ("tflite", "onnx"):
            for label, step in rows:
                m = step["formats"][fmt]
                latency = f"{m['latency_ms']:.3f}" if m.get("latency_ms") else "-"
                lines.append(
                    f"| {name} | {fmt} | {label} | {m['agreement']:.1%} | {m['accuracy']:.1%} | {m['accuracy_drop']:+.2f} | "
                    f"{latency} | {m['size_bytes']:,} | {m['compressed_bytes']:,} |"
                )
    lines += ["", "Warnings export printed:", ""]
    for name, case in results["cases"].items():
        for warning in case["export"]["warnings"]:
            lines.append(f"- {name}: {warning}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
