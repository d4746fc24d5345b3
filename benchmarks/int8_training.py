"""What export's training steps (tfmot) give: QAT against PTQ, and pruning and clustering against
the plain int8 file's download size.

Models: the README's default digits model (xception-nano on digits), and xception-micro trained on
the synthetic shapes at 64x64; each trained with `edgecnn run`'s defaults. Each export is TFLite
and ONNX with edgecnn's defaults plus one of ``--qat``, ``--prune 0.5``, ``--cluster 16``,
``--prune 0.5 --cluster 16``. "deflated" is the file compressed with zlib at level 9: what an app
store or an over-the-air update moves.

    python benchmarks/int8_training.py [--out benchmarks/results]

Writes int8_training.json and int8_training.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.evaluate.bench import host_info, runtime_versions  # noqa: E402
from edgecnn.export import ExportOptions, export_model  # noqa: E402
from edgecnn.run import RunConfig, run  # noqa: E402

MODELS = {
    "digits (xception-nano)": RunConfig(bench=False),
    "shapes 64x64 (xception-micro)": RunConfig(data="shapes", arch="xception-micro", img_size=64, bench=False),
}
VARIANTS = {
    "qat": {"qat": True},
    "prune 0.5": {"prune": 0.5},
    "cluster 16": {"cluster": 16},
    "prune 0.5 + cluster 16": {"prune": 0.5, "cluster": 16},
}
#: The variants run on each model (compression only on digits: it is the issue's case).
PLAN = {"digits (xception-nano)": list(VARIANTS), "shapes 64x64 (xception-micro)": ["qat"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    results = {"host": host_info(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="edgecnn-training-") as tmp:
        tmp = Path(tmp)
        for i, (name, config) in enumerate(MODELS.items()):
            folder = tmp / f"model{i}"
            run(RunConfig(**{**config.__dict__, "out": folder}))
            entry = results["models"][name] = {}
            for variant in PLAN[name]:
                started = time.perf_counter()
                options = ExportOptions(formats=("tflite", "onnx"), int8=True, **VARIANTS[variant])
                exported = export_model(folder / "model.keras", tmp / f"{i}-{variant}", options)
                entry[variant] = {
                    "seconds": round(time.perf_counter() - started, 1),
                    "steps": [step.to_dict() for step in exported.int8_steps],
                }
                print(name, variant, "done", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "int8_training.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "int8_training.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def markdown(results: dict) -> str:
    lines = [
        "# QAT, pruning and clustering",
        "",
        f"Host: {results['host']['cpu']}; {runtime_versions(results['host'])}; one thread. Agreement: top-1 of the int8 file against its own",
        "float sibling on the test split; accuracy on the test split; deflated: zlib level 9. One run each.",
        "",
        "| model | export | format | step | agreement | accuracy | latency ms | bytes | deflated | vs PTQ deflated |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model, variants in results["models"].items():
        for variant, entry in variants.items():
            steps = entry["steps"]
            for fmt in ("tflite", "onnx"):
                base = steps[0]["formats"][fmt]["compressed_bytes"]
                for step in steps:
                    if step["step"] == "equalize" and variant != "qat":
                        continue
                    m = step["formats"][fmt]
                    lines.append(
                        f"| {model} | {variant} | {fmt} | {step['step']} | {m['agreement']:.1%} | {m['accuracy']:.1%} | "
                        f"{m['latency_ms']:.3f} | {m['size_bytes']:,} | {m['compressed_bytes']:,} | "
                        f"{m['compressed_bytes'] / base:.0%} |"
                    )
    lines += ["", "Step details (sparsity reached, validation accuracy after each fine-tune, seconds):", ""]
    for model, variants in results["models"].items():
        for variant, entry in variants.items():
            for step in entry["steps"][1:]:
                detail = {k: v for k, v in step.items() if k not in ("step", "formats", "layers")}
                lines.append(f"- {model}, {variant}, {step['step']}: {json.dumps(detail)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
