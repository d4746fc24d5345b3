"""Training speed on CPU: TensorFlow's oneDNN kernels off and on, float32 and bfloat16.

Models: the README's default digits model (xception-nano, 20 epochs) and xception-micro on the
synthetic shapes at 64x64 (10 epochs). Each setting is one `edgecnn train` in a process of its
own (TF_ENABLE_ONEDNN_OPTS is read when TensorFlow loads); images/s is train.json's: training
images times epochs over the time model.fit took. One run each.

    python benchmarks/train_speed.py [--out benchmarks/results]

Writes train_speed.json and train_speed.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.evaluate.bench import host_info  # noqa: E402

MODELS = {
    "digits (xception-nano)": ["--data", "digits", "--epochs", "20"],
    "shapes 64x64 (xception-micro)": ["--data", "shapes", "--arch", "xception-micro", "--img-size", "64", "--epochs", "10"],
}
SETTINGS = {  # name -> (TF_ENABLE_ONEDNN_OPTS, --precision)
    "oneDNN off, fp32": ("0", "fp32"),
    "oneDNN on, fp32": ("1", "fp32"),
    "oneDNN off, bf16": ("0", "bf16"),
    "oneDNN on, bf16": ("1", "bf16"),
}


#: Settings not run on a model, and why.
SKIPPED = {
    ("shapes 64x64 (xception-micro)", "oneDNN off, bf16"): "not run: without oneDNN TensorFlow emulates bfloat16 "
    "(on digits 0.14x the speed of fp32, 6 minutes a run)",
}


def train(args: list[str], onednn: str, precision: str, out: Path) -> dict:
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn}
    command = [sys.executable, "-m", "edgecnn", "train", *args, "--precision", precision, "--out", str(out), "--json"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]}
    report = json.loads((out / "train.json").read_text())
    return {
        "images_per_second": report["images_per_second"],
        "seconds": report["seconds"],
        "val_accuracy": report["accuracy"]["val_inference_mode"],
        "subsampled": report["subsampled"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    results = {"host": host_info(), "models": {}}
    with tempfile.TemporaryDirectory(prefix="edgecnn-train-speed-") as tmp:
        for i, (name, model_args) in enumerate(MODELS.items()):
            results["models"][name] = {
                setting: {"skipped": SKIPPED[name, setting]}
                if (name, setting) in SKIPPED
                else train(model_args, onednn, precision, Path(tmp) / f"{i}-{j}")
                for j, (setting, (onednn, precision)) in enumerate(SETTINGS.items())
            }
            print(name, json.dumps(results["models"][name]), file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "train_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "train_speed.md").write_text(markdown(results))
    return 0


def markdown(results: dict) -> str:
    host = results["host"]
    lines = [
        "# Training speed on CPU",
        "",
        f"Host: {host.get('cpu', '?')}, {host.get('cores', '?')} cores; one run each; images/s over model.fit.",
        "",
        "| model | setting | images/s | vs oneDNN off, fp32 | val accuracy | seconds |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, settings in results["models"].items():
        base = settings["oneDNN off, fp32"].get("images_per_second")
        for setting, r in settings.items():
            if "error" in r or "skipped" in r:
                lines.append(f"| {name} | {setting} | {r.get('skipped') or 'failed: ' + r['error']} | | | |")
                continue
            ratio = f"{r['images_per_second'] / base:.2f}x" if base else ""
            lines.append(
                f"| {name} | {setting} | {r['images_per_second']:,.0f} | {ratio} | {r['val_accuracy']:.1%} | {r['seconds']:.1f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
