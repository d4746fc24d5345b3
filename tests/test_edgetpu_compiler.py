"""edgetpu_compiler: parsing its console output and operation log, and driving it (a test double
of it, tests/fake_edgetpu_compiler.py, stands in)."""

from __future__ import annotations

import pytest

from edgecnn.targets.edgetpu import CompilerError, check_model, compile_model, find_compiler, parse_log

COMPILED_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 245 ms.

Input model: model_int8.tflite
Input size: 250.13KiB
Output model: model_int8_edgetpu.tflite
Output size: 421.70KiB
On-chip memory used for caching model parameters: 301.25KiB
On-chip memory remaining for caching model parameters: 7.71MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 21
Operation log: model_int8_edgetpu.log
See the operation log file for individual operation details.
Compilation child process completed within timeout period.
Compilation succeeded!
"""

PARTIAL_LOG = """\
Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 96 ms.

Input model: net.tflite
Input size: 7.02MiB
Output model: net_edgetpu.tflite
Output size: 7.14MiB
On-chip memory used for caching model parameters: 80.00KiB
On-chip memory remaining for caching model parameters: 6.04MiB
Off-chip memory used for streaming uncached model parameters: 1.50MiB
Number of Edge TPU subgraphs: 1
Total number of operations: 9
Operation log: net_edgetpu.log

Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
Number of operations that will run on Edge TPU: 3
Number of operations that will run on CPU: 6

Operator                       Count      Status

QUANTIZE                       1          Mapped to Edge TPU
CONV_2D                        2          Mapped to Edge TPU
TRANSPOSE                      1          Operation not supported
CONV_2D                        3          More than one subgraph is not supported
MEAN                           1          More than one subgraph is not supported
QUANTIZE                       1          More than one subgraph is not supported
Compilation child process completed within timeout period.
Compilation succeeded!
"""

FAILED_LOG = """\
Edge TPU Compiler version 16.0.384591198
ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of this builtin might be supported. Are you using an old TFLite binary with a newer model?

ERROR: Registration failed.

Invalid model: net.tflite
Model could not be parsed
"""


def test_parse_log_fully_mapped():
    report = parse_log(COMPILED_LOG, "model_int8_edgetpu.tflite")
    assert report.compatible and report.ops_total == report.ops_mapped == 21 and report.subgraphs == 1
    assert report.source == "edgetpu_compiler 16.0.384591198"
    assert report.param_bytes == round(301.25 * 1024) and report.off_chip_bytes == 0
    assert report.on_chip_cache_bytes == round(301.25 * 1024) + round(7.71 * 1024 * 1024)
    assert report.to_dict()["first_unmapped"] is None


def test_parse_log_partial_mapping_and_the_operation_log_file():
    report = parse_log(PARTIAL_LOG, "net_edgetpu.tflite")
    assert not report.compatible and report.ops_total == 9 and report.ops_mapped == 3 and report.ops_cpu == 6
    assert report.first_unmapped == {
        "index": None,
        "op": "TRANSPOSE",
        "status": "Operation not supported",
        "reason": "Operation not supported",
    }
    assert report.off_chip_bytes == int(1.5 * 1024 * 1024)
    # The operation log file repeats the table; console output and log together count once.
    log_file = (
        "Edge TPU Compiler version 16.0.384591198\nInput: net.tflite\nOutput: net_edgetpu.tflite\n\n"
        + PARTIAL_LOG[PARTIAL_LOG.index("Operator  ") :]
    )
    assert parse_log(PARTIAL_LOG + "\n" + log_file).ops_total == 9
    assert parse_log(log_file).ops_mapped == 3


def test_parse_log_failed_compile():
    report = parse_log(FAILED_LOG)
    assert not report.compatible and report.ops_total == 0
    assert any("version '6'" in e for e in report.errors)


def test_compile_model_with_the_fake_compiler(converted_nets, tmp_path, fake_edgetpu_compiler, monkeypatch):
    assert find_compiler() == str(fake_edgetpu_compiler)
    model = tmp_path / "net.tflite"
    model.write_bytes(converted_nets["int8"])
    out = tmp_path / "out"
    out.mkdir()
    compiled = compile_model(model, out)
    assert compiled.model == out / "net_edgetpu.tflite" and compiled.model.is_file() and compiled.log.is_file()
    assert compiled.report.compatible and compiled.report.ops_total == check_model(model).ops_total
    monkeypatch.setenv("FAKE_EDGETPU_COMPILER_FAIL", "1")
    with pytest.raises(CompilerError, match="version '6'"):
        compile_model(model, out)


def test_compile_model_without_the_compiler_says_how_to_get_it(converted_nets, tmp_path, no_edgetpu_compiler):
    model = tmp_path / "net.tflite"
    model.write_bytes(converted_nets["int8"])
    with pytest.raises(CompilerError, match="apt-get install edgetpu-compiler"):
        compile_model(model)
