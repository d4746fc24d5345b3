"""What runs on the device: the payload and the runner, on this machine's Python."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgecnn.errors import MissingDependencyError
from edgecnn.targets.arm import runner
from edgecnn.targets.arm.payload import runtime_files, write_payload


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


def test_runner_runs_from_its_own_copy_without_tensorflow(exported_run, digits_small, tmp_path):
    out, _ = exported_run
    runner = write_payload(tmp_path / "payload")
    np.save(tmp_path / "images.npy", digits_small.test.images[:20])
    script = textwrap.dedent(
        f"""
        import runpy, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "sklearn"):
                    raise ImportError(name + " is not on this device")
        sys.meta_path.insert(0, Block())
        sys.argv = ["runner.py", "--model", {str(out / "model_int8.tflite")!r}, "--images", {str(tmp_path / "images.npy")!r},
                    "--out", {str(tmp_path / "out.npy")!r}, "--threads", "1", "--runs", "5", "--warmup", "1", "--min-seconds", "0"]
        try:
            runpy.run_path({str(runner)!r}, run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(sys.modules["edgecnn"].__file__, file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
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


def test_missing_runtime_on_the_board_is_a_missing_dependency():
    assert issubclass(MissingDependencyError, Exception)  # the runner's "missing-runtime" maps onto it
    from edgecnn.targets.arm.protocol import parse_report

    with pytest.raises(MissingDependencyError, match="no TFLite interpreter"):
        parse_report('{"error": "no TFLite interpreter found", "kind": "missing-runtime"}', "board")
