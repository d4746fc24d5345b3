"""The scripts under benchmarks/ run end to end and write consistent JSON and markdown.

They time nothing here that a test asserts on: speed claims come from their published runs.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # the scripts' helpers are imported below


def _script(name: str, *args, tmp_path) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / name), "--out", str(tmp_path), *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.mark.slow
def test_int8_speed_writes_one_row_per_model_and_format(tmp_path):
    _script("int8_speed.py", "--models", "xception-pico", "--no-ablations", "--min-time", 0.05, tmp_path=tmp_path)
    report = json.loads((tmp_path / "int8_speed.json").read_text())
    rows = report["rows"]
    assert {(r["model"], r["format"]) for r in rows} == {("xception-pico", "tflite"), ("xception-pico", "onnx")}
    for r in rows:
        assert r["input_shape"] == [32, 32, 1] and r["macs"] > 0
        assert r["speedup"] == pytest.approx(r["fp32_p50_ms"] / r["int8_p50_ms"])
        assert r["int8_size_bytes"] < r["fp32_size_bytes"]
    assert "| xception-pico | 32x32x1 | tflite |" in (tmp_path / "int8_speed.md").read_text()


@pytest.mark.slow
def test_layer_int8_covers_every_layer_kind(tmp_path):
    _script("layer_int8.py", "--channels", 16, "--sizes", 16, "--chain", 2, "--min-time", 0.05, tmp_path=tmp_path)
    rows = json.loads((tmp_path / "layer_int8.json").read_text())["rows"]
    kinds = {"depthwise 3x3", "conv 3x3", "conv 1x1"}
    assert {(r["layer"], r["format"]) for r in rows} == {(k, f) for k in kinds for f in ("tflite", "onnx")}
    assert all(r["channels"] == 16 and r["size"] == 16 for r in rows)


def test_suite_summary_compares_against_the_baseline():
    from suite import markdown, summarise

    def artifact(fmt, precision, accuracy, p50):
        return {
            "format": fmt,
            "precision": precision,
            "accuracy": accuracy,
            "latency_ms": {"p50": p50},
            "name": f"model_{precision}.{fmt}",
            "macs": 1000,
        }

    def entry(name, acc, keras_ms, fp32_ms, int8_ms):
        return {
            "model": name,
            "params": 10,
            "artifacts": [
                artifact("keras", "float32", acc, keras_ms),
                artifact("tflite", "float32", acc, fp32_ms),
                artifact("tflite", "int8", acc - 0.01, int8_ms),
            ],
        }

    results = [
        entry("fast-and-good", 0.90, 5.0, 0.2, 0.1),
        entry("good-but-slow", 0.95, 5.0, 0.8, 0.4),
        entry("mobilenetv2-0.35", 0.50, 4.0, 0.15, 0.12),
    ]
    summary = summarise(results)
    by_model = {r["model"]: r for r in summary["rows"]}
    assert summary["mobilenetv2_accuracy"] == 0.50 and summary["mobilenetv2_best_p50_ms"] == 0.12
    assert by_model["fast-and-good"]["beats_mobilenetv2"] and not by_model["good-but-slow"]["beats_mobilenetv2"]
    assert by_model["fast-and-good"]["int8_over_keras"] == pytest.approx(50.0)
    assert by_model["good-but-slow"]["tflite_int8_speedup"] == pytest.approx(2.0)
    table = markdown(
        {"summary": summary, "host": {"cpu": "test CPU", "runtimes": {}}, "input": "8x8x3", "epochs": 1, "threads": 1}
    )
    assert "| fast-and-good |" in table and "| yes |" in table and "| no |" in table


def test_int8_speed_times_each_model_and_input_once():
    from int8_speed import cases

    assert cases(["xception-small"]) == [("xception-small", (96, 96, 3))]
    assert cases(["xception-pico", "xception-small"])[0] == ("xception-pico", (32, 32, 1))


def test_train_speed_table_compares_each_setting_with_onednn_off_fp32():
    from train_speed import SETTINGS, markdown

    runs = {
        setting: {"images_per_second": 100.0 * (i + 1), "seconds": 10.0, "val_accuracy": 0.99}
        for i, setting in enumerate(SETTINGS)
    }
    runs["oneDNN off, bf16"] = {"error": "--precision bf16 needs a CPU with avx512_bf16 or amx_bf16"}
    table = markdown({"host": {"cpu": "test CPU", "cores": 2}, "models": {"digits": runs}})
    assert "| digits | oneDNN off, fp32 | 100 | 1.00x | 99.0% | 10.0 |" in table
    assert "| digits | oneDNN on, fp32 | 200 | 2.00x |" in table
    assert "| digits | oneDNN off, bf16 | failed: --precision bf16 needs" in table


@pytest.mark.slow
def test_folder_streaming_writes_the_folder_once_and_reports_memory_and_both_epochs(tmp_path):
    folder = tmp_path / "files"
    args = ("--images", 600, "--size", 16, "--file-size", 24, "--format", "jpg", "--folder", folder)
    _script("folder_streaming.py", *args, tmp_path=tmp_path)
    report = json.loads((tmp_path / "folder_streaming_jpg24.json").read_text())
    assert len(list(folder.rglob("*.jpg"))) == report["images"] == 600
    assert report["decoded_bytes"] == 600 * 16 * 16 * 3 and report["peak_rss_bytes"] > 0
    assert len(report["epoch_seconds"]) == 2 and report["cache_bytes"] > 0
    assert report["dataset"]["train"] + report["dataset"]["val"] + report["dataset"]["test"] == 600
    assert report["second_epoch_speedup"] == round(report["epoch_seconds"][0] / report["epoch_seconds"][1], 2)
    again = _script("folder_streaming.py", *args, tmp_path=tmp_path)  # the folder is kept, not written again
    assert json.loads((tmp_path / "folder_streaming_jpg24.json").read_text())["generate_seconds"] == 0, again.stdout
