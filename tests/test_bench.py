"""Benchmarks: latency harness, MAC counts, arena memory, the bench command."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.evaluate.arena import ALIGNMENT, Lifetime, lifetimes_from_graph, plan
from edgecnn.evaluate.graph_stats import tflite_stats
from edgecnn.runtime.timing import measure


def test_measure_honours_runs_warmup_and_min_time():
    calls = []
    latency = measure(lambda: calls.append(1), runs=20, warmup=5, min_seconds=0.0)
    assert latency.runs == 20 and len(calls) == 25
    assert 0 <= latency.p50 <= latency.p90 and latency.mean > 0
    assert measure(lambda: None, runs=1, warmup=0, min_seconds=0.05).runs > 1


def test_arena_reuses_memory_of_dead_tensors():
    # a -> op0 -> b -> op1 -> c -> op2 -> d: at most two tensors are alive at once.
    ops = [([0], [1]), ([1], [2]), ([2], [3])]
    sizes = {0: 1000, 1: 2000, 2: 1000, 3: 500}
    lifetimes = lifetimes_from_graph(ops, inputs=[0], outputs=[3], sizes=sizes)
    result = plan(lifetimes)
    assert result.live_lower_bound == 3000
    assert result.peak_bytes == 1024 + 2048  # 1000 and 2000 rounded up to 64-byte alignment, side by side
    # A residual keeps its input alive across the branch.
    ops = [([0], [1]), ([1], [2]), ([2, 0], [3])]
    assert plan(lifetimes_from_graph(ops, [0], [3], {0: 640, 1: 640, 2: 640, 3: 640})).peak_bytes == 3 * 640


def test_arena_peak_is_never_below_the_live_lower_bound():
    rng = np.random.default_rng(0)
    for _ in range(50):
        lifetimes = []
        for _ in range(12):
            first = int(rng.integers(-1, 10))
            lifetimes.append(Lifetime(int(rng.integers(1, 5000)), first, first + int(rng.integers(0, 5))))
        result = plan(lifetimes)
        assert result.peak_bytes >= result.live_lower_bound
        assert result.peak_bytes <= sum(-(-t.size // ALIGNMENT) * ALIGNMENT for t in lifetimes)


def _hand_count_macs(model) -> int:
    """MACs from the Keras layer shapes, the way one counts them on paper."""
    from edgecnn.tf import keras

    layers = keras().layers
    total = 0
    for layer in model.layers:
        out, inp = layer.output_shape, layer.input_shape
        if isinstance(layer, layers.SeparableConv2D):
            kh, kw = layer.kernel_size
            total += out[1] * out[2] * inp[3] * kh * kw + out[1] * out[2] * inp[3] * out[3]
        elif isinstance(layer, layers.DepthwiseConv2D):
            total += out[1] * out[2] * out[3] * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            total += out[1] * out[2] * out[3] * inp[3] * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Dense):
            total += inp[-1] * layer.units
    return total


def test_xception_small_macs_match_a_hand_count():
    from edgecnn.export.tflite import convert_float
    from edgecnn.fold import fold_batchnorm
    from edgecnn.nets import create_model
    from edgecnn.runtime import read_tflite

    model = create_model("xception-small", (96, 96, 3), num_classes=6)
    stats = tflite_stats(read_tflite(convert_float(fold_batchnorm(model).model, (96, 96, 3))))
    hand = _hand_count_macs(model)
    assert abs(stats.macs - hand) <= 0.01 * hand
    assert 80e6 < stats.macs < 95e6
    assert abs(stats.params - fold_batchnorm(model).params_after) <= 0.01 * stats.params
    by_op = {}
    for layer in stats.layers:
        by_op[layer.op] = by_op.get(layer.op, 0) + layer.macs
    assert by_op["ADD"] == 0 and by_op["DEPTHWISE_CONV_2D"] > 0 and by_op["CONV_2D"] > by_op["DEPTHWISE_CONV_2D"]
    # The largest activation (48x48x32 float) must fit, twice for a residual; the arena is far below the sum.
    assert 2 * 48 * 48 * 32 * 4 <= stats.peak_memory_bytes < sum(1 for _ in stats.layers) * 48 * 48 * 32 * 4


def test_int8_arena_is_a_quarter_of_float(exported_run):
    out, _ = exported_run
    fp32, int8 = tflite_stats(out / "model_fp32.tflite"), tflite_stats(out / "model_int8.tflite")
    assert fp32.macs == int8.macs > 0
    assert int8.peak_memory_bytes == pytest.approx(fp32.peak_memory_bytes / 4, rel=0.1)


def test_bench_command_json(exported_run):
    out, _ = exported_run
    args = [
        "bench",
        str(out / "model_fp32.tflite"),
        str(out / "model_int8.tflite"),
        "--threads",
        "1,2",
        "--runs",
        "5",
        "--warmup",
        "1",
        "--min-time",
        "0",
        "--json",
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"cpu", "cores", "runtimes"} <= set(report["host"]) and "ai_edge_litert" in report["host"]["runtimes"]
    assert [(r["precision"], r["threads"]) for r in report["results"]] == [
        ("float32", 1),
        ("float32", 2),
        ("int8", 1),
        ("int8", 2),
    ]
    for r in report["results"]:
        assert set(r) >= {
            "path",
            "format",
            "precision",
            "threads",
            "latency_ms",
            "size_bytes",
            "params",
            "macs",
            "peak_memory_bytes",
        }
        assert 0 < r["latency_ms"]["p50"] <= r["latency_ms"]["p90"] and r["runs"] >= 5
        assert r["macs"] > 0 and r["peak_memory_bytes"] > 0


def test_bench_errors_are_one_line(tmp_path):
    result = CliRunner().invoke(main, ["bench", str(tmp_path / "missing.tflite")])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "does not exist" in result.stderr
    result = CliRunner().invoke(main, ["bench", str(tmp_path / "x.tflite"), "--threads", "0"])
    assert result.exit_code == 1 and "--threads" in result.stderr


@pytest.mark.parametrize("onnx_format", ["qoperator", "qdq"])
def test_onnx_macs_match_tflite_in_every_format(trained_run, tmp_path, onnx_format):
    import shutil

    from edgecnn.evaluate.graph_stats import onnx_stats
    from edgecnn.export import ExportOptions, export_model

    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, tmp_path / name)
    options = ExportOptions(formats=("tflite", "onnx"), int8=True, calib_size=100, onnx_format=onnx_format)
    export_model(tmp_path / "model.keras", tmp_path, options)
    reference = tflite_stats(tmp_path / "model_fp32.tflite").macs
    for name in ("model_fp32.onnx", "model_int8.onnx"):
        stats = onnx_stats(tmp_path / name)
        assert stats.macs == reference, name
        assert stats.params > 0 and stats.peak_memory_bytes > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-time", "inf"], "--min-time must be 0..3600"),
        (["--min-time", "nan"], "--min-time must be 0..3600"),
        (["--runs", str(10**30)], "--runs must be 1..1000000"),
        (["--warmup", str(10**9)], "--warmup 0..100000"),
        (["--threads", str(2**31)], "--threads must be integers from 1 to 256"),
    ],
)
def test_unbounded_benchmark_settings_are_one_line_errors(tmp_path, args, message):
    from click.testing import CliRunner

    from edgecnn.cli import main

    model = tmp_path / "m.tflite"
    model.write_bytes(b"unused: the settings are refused first")
    result = CliRunner().invoke(main, ["bench", str(model), *args])
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and message in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("threads", [0, -1, True, 2**40, 1.5])
def test_runtime_thread_counts_are_checked(threads):
    from edgecnn import runtime
    from edgecnn.errors import ConfigError

    with pytest.raises(ConfigError, match="num_threads must be an integer from 1 to 256"):
        runtime.load_interpreter(b"", num_threads=threads)
