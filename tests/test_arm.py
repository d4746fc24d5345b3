"""ARM targets: comparing device and host outputs, targets by name, emulated validation, the CLI."""

import json

import numpy as np
import pytest
from arm_environment import environment
from click.testing import CliRunner

from edgecnn.artifact import Quantization
from edgecnn.cli import main
from edgecnn.errors import ConfigError
from edgecnn.targets.arm import DeviceRunError, EmulatedTarget, compare, lsb_diff, parse_target

# --- output differences ------------------------------------------------------------------------------

Q = Quantization("int8", 0.0625, -12)


def _dequantized(q):
    return ((np.asarray(q, np.float32) - np.float32(Q.zero_point)) * np.float32(Q.scale)).astype(np.float32)


def test_lsb_diff_counts_quantization_steps():
    a = _dequantized([[-128, 0, 5, 127]])
    b = _dequantized([[-127, 0, 3, 127]])
    assert lsb_diff(a, b, Q).tolist() == [[1, 0, 2, 0]]
    assert lsb_diff(b, a, Q).tolist() == [[1, 0, 2, 0]]
    assert lsb_diff(a, b, None) is None  # a float output has no LSB


def test_lsb_diff_is_exact_over_the_whole_int8_range():
    q = np.arange(-128, 128)
    for step in (1, 2, 255):
        other = np.clip(q + step, -128, 127)
        assert (lsb_diff(_dequantized(q), _dequantized(other), Q) == np.abs(other - q)).all()


def test_compare_accuracy_agreement_and_differences():
    host = _dequantized([[10, 0, 0], [0, 10, 0], [0, 0, 10], [10, 9, 0]])
    device = _dequantized([[10, 0, 0], [0, 10, 1], [0, 0, 10], [9, 10, 0]])
    labels = np.array([0, 1, 1, 0])
    result = compare(device, host, labels, Q)
    assert result.samples == 4
    assert result.host_accuracy == 0.75 and result.accuracy == 0.5
    assert result.agreement == 0.75
    assert result.max_abs_diff_lsb == 1
    assert result.max_abs_diff == pytest.approx(Q.scale)
    assert result.differing_outputs == pytest.approx(3 / 12)
    with pytest.raises(DeviceRunError, match="shape"):
        compare(device[:3], host, labels, Q)


# --- targets -----------------------------------------------------------------------------------------


def test_target_names():
    pi5 = parse_target("arm64-pi5")
    assert isinstance(pi5, EmulatedTarget) and (pi5.arch, pi5.cpu) == ("arm64", "cortex-a76")
    assert parse_target("ARM64-PI4").cpu == "cortex-a72"
    assert parse_target("armv7-pi").arch == "armhf"
    with pytest.raises(ConfigError, match="unknown target 'pi9'.*arm64-pi4, arm64-pi5, armv7-pi"):
        parse_target("pi9")


# --- emulated validation ----------------------------------------------------------------------------------


def _validate_json(artifact, target):
    result = CliRunner().invoke(main, ["validate", str(artifact), "--data", "digits", "--target", target, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    keys = ("accuracy", "host_accuracy", "agreement", "max_abs_diff_lsb", "differing_outputs", "runtime", "seconds")
    print(f"\n{target}: {json.dumps({k: report[k] for k in keys})}")
    return report


def test_emulated_validation_runs_the_same_runtime_on_both_sides(exported_run):
    """A Pi 4 (no dot product) on the small test model: ai-edge-litert's XNNPACK int8 path is bit-exact
    with x86; the final int8 softmax, LiteRT's own kernel, rounds 1 LSB (1/256) apart in a few outputs."""
    env = environment("arm64")
    out, _ = exported_run
    report = _validate_json(out / "model_int8.tflite", "arm64-pi4")
    assert report["target"] == "arm64-pi4" and report["emulated"] is True and report["samples"] > 100
    assert report["runtime"] == report["host_runtime"] == env.runtime.replace("-", "_")  # like with like
    assert report["device"]["machine"] == "aarch64" and report["device"]["cpu"] == "cortex-a72"
    assert report["agreement"] == 1.0 and report["max_abs_diff_lsb"] <= 1 and report["differing_outputs"] < 0.01
    assert "latency_ms" not in report  # emulated timings are not latency


@pytest.fixture(scope="module")
def digits_model(default_digits_run):
    """The digits int8 model as `edgecnn run` makes it: xception-nano at 32x32x1, 20 epochs."""
    out, _ = default_digits_run
    return out / "model_int8.tflite"


def _softmax_input_scale(path) -> float:
    from edgecnn.runtime.tflite_file import load_tflite

    parsed = load_tflite(path)
    graph = parsed.subgraphs[0]
    (scale,) = [graph.tensors[op.inputs[0]].quant_scale[0] for code, op in parsed.operators(0) if code.name == "SOFTMAX"]
    return scale


@pytest.mark.slow
@pytest.mark.parametrize("target", ["arm64-pi5", "armv7-pi"])
def test_digits_model_on_arm_meets_the_floors(digits_model, target):
    """The digits int8 model on ARM kernels: top-1 agrees with the host on >= 99%, and the probabilities
    differ by what 2 LSB of the logits can move them, plus rounding. Before the model ended in a softmax,
    ARM and host logits measured up to 2 LSB apart; a change of d in the logits moves a softmax output
    by at most d/2, so 2 logit LSB are scale * 128 output LSB of 1/256 (armv7 measured 6 to 12)."""
    env = environment(parse_target(target).arch)
    report = _validate_json(digits_model, target)
    assert report["target"] == target and report["emulated"] is True and report["samples"] > 300
    assert report["agreement"] >= 0.99
    assert report["max_abs_diff_lsb"] <= np.ceil(2 * _softmax_input_scale(digits_model) / 2 * 256) + 1
    assert report["accuracy"] >= 0.97 and report["host_accuracy"] >= 0.97
    assert report["runtime"] == report["host_runtime"] and report["same_runtime"]  # like with like
    assert report["runtime"].split()[-1] == env.runtime.split()[-1]
    assert report["device"]["machine"] == env.recipe.machine
    assert "latency_ms" not in report


# --- the command line ---------------------------------------------------------------------------------------


def test_validate_target_usage_errors(exported_run):
    out, _ = exported_run
    artifact = str(out / "model_int8.tflite")
    result = CliRunner().invoke(main, ["validate", artifact, "--target", "pi9"])
    assert result.exit_code == 1 and result.output.startswith("Error: unknown target 'pi9'")
    result = CliRunner().invoke(main, ["validate", artifact, "--target", "arm64-pi5", "--reference", artifact])
    assert result.exit_code == 1 and "cannot be combined" in result.output
    result = CliRunner().invoke(main, ["validate", str(out / "model.keras"), "--target", "arm64-pi5"])
    assert result.exit_code == 1 and "not a .tflite file" in result.output


def test_targets_list_json():
    result = CliRunner().invoke(main, ["targets", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [t["target"] for t in listed["targets"]] == ["arm64-pi4", "arm64-pi5", "armv7-pi"]
    assert {t["cpu"] for t in listed["targets"]} == {"cortex-a72", "cortex-a76", "cortex-a7"}
