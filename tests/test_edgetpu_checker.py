"""Edge TPU pre-flight check of converted models: partitioning at the first unmapped op, float
models and float I/O, dynamic batch, compiled models, and ``edgecnn check --target edgetpu``."""

from __future__ import annotations

import json
import subprocess
import sys

from click.testing import CliRunner
from tflite_builder import T, mutate, one_op

from edgecnn.cli import main
from edgecnn.runtime import devices
from edgecnn.targets.edgetpu import check_model, table


def test_mappable_model_is_compatible(converted_nets):
    report = check_model(converted_nets["int8"])
    assert report.compatible and report.ops_mapped == report.ops_total > 5 and report.subgraphs == 1
    assert report.first_unmapped is None and report.errors == ()
    d = report.to_dict()
    for key in (
        "target",
        "compatible",
        "ops_total",
        "ops_mapped",
        "subgraphs",
        "first_unmapped",
        "param_bytes",
        "on_chip_cache_bytes",
        "off_chip_bytes",
        "ops",
    ):
        assert key in d
    assert d["target"] == "edgetpu" and d["on_chip_cache_bytes"] == 8 * 1024 * 1024 and d["off_chip_bytes"] == 0
    assert d["param_bytes"] == report.param_bytes > 0
    assert d["estimated_latency"]["estimate"] is True and d["estimated_latency"]["milliseconds"] > 0


def test_unmappable_op_in_the_middle_sends_the_rest_to_the_cpu(converted_nets):
    report = check_model(converted_nets["middle"])
    names = [o.op for o in report.ops]
    k = names.index("LEAKY_RELU")
    assert 0 < k < len(names) - 1
    assert report.first_unmapped["index"] == k and report.first_unmapped["op"] == "LEAKY_RELU"
    assert "supported-op table" in report.first_unmapped["reason"]
    assert all(o.mapped for o in report.ops[:k]) and not any(o.mapped for o in report.ops[k:])
    assert report.ops_mapped == k and report.ops_cpu == len(names) - k
    assert {o.status for o in report.ops[k + 1 :]} == {table.AFTER_CPU_OP}
    assert report.subgraphs == 1 and not report.compatible
    text = report.to_text()
    assert "LEAKY_RELU" in text and "First unmapped: #%d LEAKY_RELU" % k in text


def test_float_model_is_rejected_with_a_clear_reason(converted_nets):
    report = check_model(converted_nets["float"])
    assert not report.compatible and report.ops_mapped == 0 and report.subgraphs == 0
    assert "not quantized" in report.errors[0] and "--int8" in report.errors[0]
    assert "--int8" in report.first_unmapped["reason"]
    assert any("float32" in (o.reason or "") for o in report.ops)


def test_float_io_quantize_runs_on_the_cpu_in_front_of_the_subgraph(converted_nets):
    report = check_model(converted_nets["float_io"])
    ops = report.ops
    assert ops[0].op == "QUANTIZE" and not ops[0].mapped and "--io uint8" in ops[0].reason
    assert ops[-1].op == "DEQUANTIZE" and not ops[-1].mapped
    assert all(o.mapped for o in ops[1:-1])
    assert report.subgraphs == 1 and not report.compatible
    assert report.first_unmapped["index"] == 0


def test_dynamic_batch_model_is_rejected(converted_nets):
    def dynamic(model):
        graph = model.subgraphs[0]
        image = graph.tensors[graph.inputs[0]]
        image.shapeSignature = [-1, *image.shape[1:]]

    report = check_model(mutate(converted_nets["int8"], dynamic))
    assert not report.compatible and report.ops_mapped == 0 and report.subgraphs == 0
    assert "dynamic shape" in report.errors[0] and "[-1, 16, 16, 3]" in report.errors[0]
    assert report.first_unmapped["index"] == 0 and "batch of 1" in report.first_unmapped["reason"]


def test_check_cli(converted_nets, tmp_path):
    good, bad = tmp_path / "good.tflite", tmp_path / "bad.tflite"
    good.write_bytes(converted_nets["int8"])
    bad.write_bytes(converted_nets["middle"])
    runner = CliRunner()
    ok = runner.invoke(main, ["check", "--target", "edgetpu", str(good)])
    assert ok.exit_code == 0, ok.output
    assert "Number of operations that will run on Edge TPU" in ok.stdout and "Mapped to Edge TPU" in ok.stdout
    fail = runner.invoke(main, ["check", "--target", "edgetpu", str(bad), "--json"])
    assert fail.exit_code == 1
    d = json.loads(fail.stdout)
    assert d["compatible"] is False and d["first_unmapped"]["op"] == "LEAKY_RELU"
    text = runner.invoke(main, ["check", "--target", "edgetpu", str(bad)])
    assert text.exit_code == 1 and text.stderr.strip().splitlines()[-1].startswith(
        "Error: bad.tflite is not compatible with the Edge TPU"
    )
    missing = runner.invoke(main, ["check", str(good)])
    assert missing.exit_code == 1 and "--target" in missing.stderr
    junk = tmp_path / "junk.tflite"
    junk.write_text("not a model")
    result = runner.invoke(main, ["check", "--target", "edgetpu", str(junk)])
    assert result.exit_code == 1 and "not a TFLite model" in result.stderr and "Traceback" not in result.output


def test_check_recognises_a_compiled_model():
    # edgetpu_compiler's output: the Edge TPU's part of the graph inside one custom op.
    compiled = one_op("CUSTOM", [T((1, 16, 16, 3), "uint8")], [T((1, 4), "uint8")], custom=devices.EDGETPU_CUSTOM_OP)
    report = check_model(compiled)
    assert report.compatible and report.ops[0].op == "CUSTOM" and report.estimate is None
    assert "Already compiled" in report.to_text()


def test_edgetpu_package_and_check_command_import_no_tensorflow():
    code = "import sys, edgecnn.targets.edgetpu, edgecnn.cli.check, edgecnn.runtime.devices; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
