"""int8 never fails silently: the rescaled-model case of the issue, other rescalings and models,
the per-layer table, and what export does when it cannot repair."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from int8_cases import one_channel_x1000, rescaled

from edgecnn.cli import main


def _export(model, *args):
    result = CliRunner().invoke(main, ["export", str(model), "--int8", "--format", "tflite,onnx", "--json", *args])
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


@pytest.fixture(scope="module")
def rescaled_digits(default_digits_run, tmp_path_factory):
    out, _ = default_digits_run
    return rescaled(out / "folded.keras", tmp_path_factory.mktemp("rescaled") / "model.keras", one_channel_x1000)


@pytest.mark.slow
def test_the_rescaled_model_is_broken_by_plain_int8_and_debug_names_the_layers(rescaled_digits, tmp_path):
    """The float function is unchanged, and int8 without repair is near chance: the case is real."""
    result, report = _export(rescaled_digits, "--min-agreement", "0", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    (ptq,) = report["int8_steps"]
    for fmt in ("tflite", "onnx"):
        assert ptq["formats"][fmt]["agreement"] < 0.5
        debug = CliRunner().invoke(
            main, ["debug", str(tmp_path / f"model_int8.{fmt}"), "--reference", str(tmp_path / f"model_fp32.{fmt}"), "--json"]
        )
        assert json.loads(debug.stdout)["damaged"] == ["block1_sepconv1", "block2_sepconv1"]
    assert report["optimized"] is None and not (tmp_path / "optimized.keras").exists()


@pytest.mark.slow
def test_export_names_the_damaged_layers_and_repairs_them(rescaled_digits, tmp_path):
    result, report = _export(rescaled_digits, "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    for fmt in ("tflite", "onnx"):
        warning = next(line for line in result.stderr.splitlines() if line.startswith(f"Warning: int8 {fmt}"))
        assert "block1_sepconv1" in warning and "block2_sepconv1" in warning
    ptq, equalized = report["int8_steps"]
    assert equalized["step"] == "equalize" and equalized["equalization_relative_error"] < 1e-4
    for fmt in ("tflite", "onnx"):
        assert ptq["formats"][fmt]["agreement"] < 0.5
        assert equalized["formats"][fmt]["agreement"] >= 0.98
        assert equalized["formats"][fmt]["accuracy_drop"] <= 0.5
        assert equalized["formats"][fmt]["latency_ms"] > 0
    exported = json.loads((tmp_path / "export.json").read_text())
    assert exported["optimized"] == "optimized.keras" and exported["layers"]["tflite"]
    # The files written are the repaired ones, and they say so by their parent.
    from edgecnn import runtime
    from edgecnn.fileio import sha256_file

    assert runtime.load(tmp_path / "model_int8.tflite").metadata.parent_sha256 == sha256_file(tmp_path / "optimized.keras")


@pytest.mark.slow
def test_repair_holds_on_another_model_and_scales_on_every_channel(exported_run, tmp_path):
    """The pico model of the shared fixtures, every pair's channels scaled log-uniformly over 3 decades."""
    out, _ = exported_run
    rng = np.random.default_rng(7)
    model = rescaled(
        out / "folded.keras", tmp_path / "model.keras", lambda pair: 10.0 ** rng.uniform(-3, 0, len(pair.output.ranges()))
    )
    result, report = _export(model, "--out", str(tmp_path / "repaired"))
    assert result.exit_code == 0, result.stderr
    plain, final = report["int8_steps"][0]["formats"], report["int8_steps"][-1]["formats"]
    for fmt in ("tflite", "onnx"):
        assert plain[fmt]["agreement"] < 0.98 <= final[fmt]["agreement"]


@pytest.mark.slow
def test_a_healthy_model_is_measured_and_left_alone(exported_run, tmp_path):
    out, _ = exported_run
    result, report = _export(out / "model.keras", "--out", str(tmp_path))
    assert result.exit_code == 0, result.stderr
    (ptq,) = report["int8_steps"]
    assert all(m["agreement"] >= 0.98 for m in ptq["formats"].values())
    assert "Warning" not in result.stderr and not (tmp_path / "optimized.keras").exists()


@pytest.mark.slow
def test_debug_lists_every_quantized_layer_of_the_default_model(default_digits_run, tmp_path):
    out, _ = default_digits_run
    for fmt, ops in (
        ("tflite", {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "FULLY_CONNECTED"}),
        ("onnx", {"Conv", "Add"}),  # QDQ: the ops whose outputs are quantized
    ):
        result = CliRunner().invoke(
            main,
            [
                "debug",
                str(out / f"model_int8.{fmt}"),
                "--reference",
                str(out / f"model_fp32.{fmt}"),
                "--json",
                "--plot",
                str(tmp_path / f"{fmt}.png"),
            ],
        )
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        rows = report["layers"]
        assert ops <= {r["op"] for r in rows}
        assert report["damaged"] == [] and all(10 < r["sqnr_db"] < 120 for r in rows)
        # Worst first.
        assert [r["sqnr_db"] for r in rows] == sorted(r["sqnr_db"] for r in rows)
        assert (tmp_path / f"{fmt}.png").stat().st_size > 1000
    table = CliRunner().invoke(main, ["debug", str(out / "model_int8.tflite"), "--reference", str(out / "model_fp32.tflite")])
    assert table.exit_code == 0 and "| block1_sepconv1 | DEPTHWISE_CONV_2D |" in table.stdout


def test_debug_refuses_files_of_two_formats(tmp_path):
    a, b = tmp_path / "a_int8.tflite", tmp_path / "b.onnx"
    a.write_bytes(b"x"), b.write_bytes(b"x")
    result = CliRunner().invoke(main, ["debug", str(a), "--reference", str(b), "--data", "digits"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "same format" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--min-agreement", "1.5"], "--min-agreement"),
        (["--repair"], "--int8"),
        (["--qat"], "--int8"),
    ],
)
def test_int8_options_are_checked_before_any_work(tmp_path, args, message):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read")
    result = CliRunner().invoke(main, ["export", str(model), *args])
    assert result.exit_code != 0 and message in result.stderr


@pytest.mark.slow
def test_the_per_layer_comparison_runs_without_tensorflow(exported_run):
    """What `edgecnn debug` runs on a .tflite needs the runtime only, as on a board."""
    import subprocess
    import sys

    out, _ = exported_run
    code = (
        "import sys; from edgecnn.data import load_dataset; from edgecnn.quantize.layer_error import layer_errors; "
        f"e = layer_errors({str(out / 'model_int8.tflite')!r}, {str(out / 'model_fp32.tflite')!r}, "
        "load_dataset('digits', image_size=16).test.images, samples=8); "
        "print(len(e), 'tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, imported = result.stdout.split()
    assert int(count) > 5 and imported == "False"
