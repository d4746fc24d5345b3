"""`edgecnn run` on digits with default settings meets the project's floors."""

import json

import pytest


@pytest.mark.slow
def test_default_digits_run_meets_the_floors(default_digits_run):
    out, report = default_digits_run
    assert report["arch"] == "xception-nano" and report["input_shape"] == [32, 32, 1]
    by_name = {a["name"]: a for a in report["artifacts"]}
    keras, fp32, int8 = by_name["model.keras"], by_name["model_fp32.tflite"], by_name["model_int8.tflite"]
    assert keras["accuracy"] >= 0.98 and fp32["accuracy"] >= 0.98
    assert by_name["folded.keras"]["agreement"] == 1.0 and fp32["agreement"] >= 0.995
    assert int8["accuracy"] >= 0.975
    assert int8["accuracy_drop"] <= 0.5 and int8["agreement"] >= 0.98
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    assert report["fold"]["layers_folded"] > 0 and report["fold"]["relative_error"] <= 1e-4
    assert json.loads((out / "report.json").read_text()) == report


@pytest.mark.slow
def test_every_model_file_of_a_tflite_and_onnx_run_has_a_sidecar_that_describes_it(default_digits_run):
    from edgecnn import runtime
    from edgecnn.artifact import read_sidecar

    out, _ = default_digits_run
    models = sorted(p for p in out.iterdir() if p.suffix in (".tflite", ".onnx"))
    assert [p.name for p in models] == ["model_fp32.onnx", "model_fp32.tflite", "model_int8.onnx", "model_int8.tflite"]
    for path in models:
        sidecar = read_sidecar(path)
        assert sidecar == runtime.load(path).metadata, path.name  # embedded and beside it: the same
        assert sidecar.format == path.suffix[1:]
