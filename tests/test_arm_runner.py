"""What runs on the device: the payload and the runner, on this machine's Python."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgecnn.errors import MissingDependencyError
from edgecnn.targets.arm import DeviceRunError, runner
from edgecnn.targets.arm.payload import runtime_files, write_payload
from edgecnn.targets.arm.protocol import parse_report, runner_args

#: Packages a device does not have.
NOT_ON_DEVICES = ("tensorflow", "tf_keras", "keras", "sklearn")


def test_payload_is_the_runner_and_the_tensorflow_free_runtime():
    names = set(runtime_files())
    assert {
        "runner.py",
        "edgecnn/__init__.py",
        "edgecnn/errors.py",
        "edgecnn/artifact.py",
        "edgecnn/runtime/model.py",
        "edgecnn/runtime/interpreters.py",
    } <= names
    assert not any(n.startswith(("edgecnn/train", "edgecnn/export", "edgecnn/cli", "edgecnn/targets")) for n in names)


def _run_runner(payload, args, missing=NOT_ON_DEVICES) -> subprocess.CompletedProcess:
    """The runner copied to `payload`, run by this machine's Python as if `missing` were not installed.

    stderr's last line is the file edgecnn was imported from.
    """
    path = write_payload(payload)
    script = textwrap.dedent(
        f"""
        import runpy, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {tuple(missing)!r}:
                    raise ImportError(name + " is not on this device")
        sys.meta_path.insert(0, Block())
        sys.argv = ["runner.py", *{[str(a) for a in args]!r}]
        try:
            runpy.run_path({str(path)!r}, run_name="__main__")
        finally:
            print(sys.modules["edgecnn"].__file__, file=sys.stderr)
        """
    )
    return subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)


def test_runner_runs_from_its_own_copy_without_tensorflow(exported_run, digits_small, tmp_path):
    out, _ = exported_run
    np.save(tmp_path / "images.npy", digits_small.test.images[:20])
    timing = ["--runs", "5", "--warmup", "1", "--min-seconds", "0"]
    args = runner_args(out / "model_int8.tflite", tmp_path / "images.npy", tmp_path / "out.npy", 1, timing)
    proc = _run_runner(tmp_path / "payload", args)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["samples"] == 20 and report["latency_ms"]["runs"] >= 5 and report["device"]["machine"]
    assert str(tmp_path / "payload") in proc.stderr.strip().splitlines()[-1]  # its own copy of edgecnn
    from edgecnn import runtime

    expected = runtime.load(out / "model_int8.tflite", num_threads=1).predict(digits_small.test.images[:20])
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)


class _CountingModel:
    """A model whose invoker counts its calls and whose predict must not be timed."""

    def __init__(self):
        self.invokes = 0

    def invoker(self, pixels):
        def invoke():
            self.invokes += 1

        return invoke

    def predict(self, pixels):
        raise AssertionError("the runner timed predict (quantize, invoke, dequantize), not one invoke()")


def test_runner_times_one_invoke_like_edgecnn_bench():
    model = _CountingModel()
    latency = runner.measure_latency(model, np.zeros((1, 8, 8, 1), np.uint8), runs=7, warmup=3, min_seconds=0)
    assert model.invokes == 3 + 7
    assert (latency["warmup"], latency["runs"]) == (3, 7)
    assert 0 <= latency["p50"] <= latency["p90"]


def test_a_device_without_a_tflite_runtime_is_a_missing_dependency(exported_run, digits_small, tmp_path):
    """The runner reports a missing interpreter as such, and the host raises MissingDependencyError for it."""
    out, _ = exported_run
    np.save(tmp_path / "images.npy", digits_small.test.images[:2])
    args = runner_args(out / "model_int8.tflite", tmp_path / "images.npy", None, 1)
    proc = _run_runner(tmp_path / "payload", args, missing=(*NOT_ON_DEVICES, "ai_edge_litert", "tflite_runtime"))
    assert proc.returncode == 2, proc.stderr
    with pytest.raises(MissingDependencyError, match="^on the board: no TFLite interpreter"):
        parse_report(proc.stdout, "the board")
    # Any other failure on the device is the run's, not a missing package.
    with pytest.raises(DeviceRunError, match="^on the board: the model is broken$"):
        parse_report('{"error": "the model is broken", "kind": "error"}', "the board")
