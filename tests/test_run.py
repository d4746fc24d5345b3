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
