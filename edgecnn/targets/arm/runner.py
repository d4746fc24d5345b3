"""Run an edgecnn model on a device and print one JSON object.

This file is copied, beside a copy of edgecnn's runtime (``edgecnn/__init__.py``,
``errors.py``, ``artifact.py``, ``fileio.py``, ``text.py``, ``runtime/``), to an emulated ARM sysroot
or a board, and run there with the device's Python. It needs numpy, flatbuffers and a
TFLite interpreter (ai-edge-litert or tflite-runtime), never TensorFlow, and imports
nothing of edgecnn but the runtime:

    python runner.py --model model_int8.tflite --images images.npy --out outputs.npy
    python runner.py ... --runs 100 --warmup 10      # and latency of one image

The outputs are the model's float32 logits for every image (``edgecnn.runtime``'s
``predict``); the caller compares them with its own run.
"""

import argparse
import base64
import io
import json
import os
import platform
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))

#: ARM "CPU part" codes of /proc/cpuinfo found on Raspberry Pi class boards.
CPU_PARTS = {
    "0xb76": "ARM1176",
    "0xc07": "Cortex-A7",
    "0xc0f": "Cortex-A15",
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0d": "Cortex-A77",
    "0xd41": "Cortex-A78",
}


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\x00", "").strip()
    except OSError:
        return ""


def device_info():
    """What the device is: CPU, board model, OS, Python and numpy versions."""
    info = {"machine": platform.machine(), "python": platform.python_version(), "cores": os.cpu_count()}
    fields = {}
    for line in _read("/proc/cpuinfo").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    part = fields.get("CPU part", "").lower()
    info["cpu"] = fields.get("model name") or CPU_PARTS.get(part) or fields.get("Processor") or fields.get("cpu model") or ""
    if "Features" in fields or "flags" in fields:
        features = (fields.get("Features") or fields.get("flags") or "").split()
        info["cpu_features"] = [f for f in features if f in ("neon", "asimd", "asimddp", "i8mm", "vfpv4", "avx2", "avx512_vnni")]
    info["model"] = _read("/proc/device-tree/model") or fields.get("Model", "")
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            info["os"] = line.split("=", 1)[1].strip().strip('"')
    info["kernel"] = platform.release()
    return info


def _watch_stdin(cleanup):
    """Exit when stdin closes: the ssh connection that started this process is gone."""

    def watch():
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except (OSError, ValueError):
            pass
        cleanup()
        os._exit(3)

    threading.Thread(target=watch, daemon=True).start()


def measure_latency(model, image, runs, warmup, min_seconds=1.0):
    """Milliseconds per ``invoke()`` on one image, timed like ``edgecnn bench``.

    The same call and the same harness: the model's invoker (input already set, no
    quantizing or dequantizing) under ``edgecnn.runtime.timing.measure``.
    """
    from edgecnn.runtime.timing import measure  # here: main() puts the shipped runtime on sys.path first

    latency = measure(model.invoker(image), runs=runs, warmup=warmup, min_seconds=min_seconds)
    return {**latency.to_dict(), "warmup": warmup, "min_seconds": min_seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--images", required=True, help="uint8 .npy of shape (N, H, W, C)")
    parser.add_argument("--out", help="write the outputs here (.npy)")
    parser.add_argument("--inline", action="store_true", help="put the outputs in the JSON (base64 .npy)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--runs", type=int, default=0, help="timed runs for latency (0: none)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time at least this long for latency")
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    parser.add_argument("--remove-when-done", action="store_true", help="delete this runner's folder on exit")
    args = parser.parse_args(argv)

    def cleanup():
        if args.remove_when_done and os.path.basename(HERE).startswith("edgecnn-"):
            shutil.rmtree(HERE, ignore_errors=True)

    if args.watch_stdin:
        _watch_stdin(cleanup)
    # The runtime shipped beside this file, not whatever edgecnn the device may have installed.
    sys.path.insert(0, HERE)
    try:
        code = _run(args)
    finally:
        cleanup()
    if args.watch_stdin:
        # The watcher thread is blocked reading stdin; leave without waiting for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(args):
    started = time.perf_counter()
    try:
        import numpy as np

        from edgecnn import __version__, runtime
        from edgecnn.errors import EdgecnnError, MissingDependencyError
    except ImportError as exc:
        print(json.dumps({"error": f"cannot import the runtime: {exc}", "kind": "missing-runtime"}))
        return 2
    try:
        model = runtime.load(args.model, num_threads=args.threads)
        images = np.load(args.images)
        outputs = model.predict(images)
        latency = measure_latency(model, images[:1], args.runs, args.warmup, args.min_seconds) if args.runs > 0 else None
    except EdgecnnError as exc:
        kind = "missing-runtime" if isinstance(exc, MissingDependencyError) else "error"
        print(json.dumps({"error": str(exc), "kind": kind}))
        return 2
    report = {
        "backend": model.backend,
        "edgecnn": __version__,
        "numpy": np.__version__,
        "samples": int(len(images)),
        "threads": args.threads,
        "device": device_info(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if latency:
        report["latency_ms"] = latency
    if args.out:
        np.save(args.out, outputs)
    if args.inline:
        buffer = io.BytesIO()
        np.save(buffer, outputs)
        report["outputs_npy"] = base64.b64encode(buffer.getvalue()).decode("ascii")
    print(json.dumps(report))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
