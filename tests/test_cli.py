"""The command line, through click's CliRunner, and its one-line errors."""

import json
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgecnn.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_help_lists_commands_without_importing_tensorflow():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "fold", "export", "validate", "predict", "run", "models"):
        assert command in result.output
    code = "import sys; from edgecnn.cli import main\ntry:\n main(['--help'])\nexcept SystemExit: pass\nprint('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_models_lists_the_registry():
    from edgecnn.nets import list_models

    result = invoke("models")
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list_models()


def test_train_export_validate_predict(tmp_path, digits_small):
    from PIL import Image

    out = tmp_path / "run"
    result = invoke(
        "train", "--data", "digits", "--img-size", 16, "--arch", "xception-pico", "--epochs", 2, "--out", out, "--json"
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["model"] == str(out / "model.keras") and 0 <= summary["val_accuracy"] <= 1

    result = invoke("fold", out / "model.keras", "-o", out / "folded.keras")
    assert result.exit_code == 0, result.output
    assert "BatchNorm layers folded" in result.output and (out / "folded.keras.json").is_file()

    result = invoke("export", out / "model.keras", "--int8", "--calib-size", 100, "--json")
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["artifacts"]
    assert [(a["format"], a["precision"]) for a in written] == [("tflite", "float32"), ("tflite", "int8")]

    # Two epochs at 16 px leave a weak model whose int8 drop swings by a point between runs: the
    # plumbing is tested here; the accuracy floors are the run tests', on a model trained to converge.
    result = invoke("validate", out / "model_int8.tflite", "--reference", out / "model.keras", "--max-drop", 3, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["samples"] == len(digits_small.test) and report["format"] == "tflite" and report["passed"]
    assert report["max_drop"] == 3
    assert 0.9 <= report["agreement"] <= 1.0

    image = tmp_path / "digit.png"
    Image.fromarray(digits_small.test.images[0][..., 0]).save(image)
    result = invoke("predict", out / "model_int8.tflite", image, "--top-k", 3, "--json")
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["predictions"][str(image)]
    assert len(top) == 3 and {p["label"] for p in top} <= set("0123456789")
    assert top[0]["score"] >= top[1]["score"] >= top[2]["score"]


def test_validate_fails_when_the_drop_exceeds_the_limit(tmp_path, trained_run, digits_small):
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.train import TrainConfig, fit

    weak = tmp_path / "weak"
    fit(digits_small, TrainConfig(arch="xception-pico", epochs=1, learning_rate=1e-4, verbose=0), weak)
    export_model(weak / "model.keras", weak, ExportOptions())
    result = invoke(
        "validate", weak / "model_fp32.tflite", "--reference", trained_run / "model.keras", "--max-drop", 1.0, "--json"
    )
    report = json.loads(result.stdout)
    assert report["accuracy_drop"] > 1.0 and not report["passed"]
    assert result.exit_code == 1 and "more than --max-drop" in result.stderr


def test_run_json_is_one_object(tmp_path):
    out = tmp_path / "run"
    result = invoke("run", "--img-size", 16, "--arch", "xception-pico", "--epochs", 2, "--out", out, "--json", "--max-drop", 100)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # progress went to stderr
    assert set(report) >= {"dataset", "arch", "input_shape", "num_classes", "artifacts"}
    assert report["dataset"] == "digits" and report["input_shape"] == [16, 16, 1] and report["num_classes"] == 10
    names = [a["name"] for a in report["artifacts"]]
    assert names == ["model.keras", "folded.keras", "model_fp32.tflite", "model_int8.tflite"]
    for artifact in report["artifacts"]:
        assert set(artifact) >= {"name", "path", "format", "precision", "size_bytes", "accuracy", "agreement"}
        assert artifact["format"] in ("keras", "tflite") and artifact["precision"] in ("float32", "int8")
    for artifact in report["artifacts"]:
        assert artifact["latency_ms"]["p50"] > 0 and artifact["params"] > 0
        assert bool(artifact["macs"] and artifact["peak_memory_bytes"]) == (artifact["format"] != "keras")
    assert (out / "report.json").is_file() and "| artifact |" in (out / "report.md").read_text()
    assert (out / "report.png").read_bytes().startswith(b"\x89PNG")


@pytest.fixture()
def folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "one_class" / "cat").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "notes.tflite").write_text("not a model")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return tmp_path


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "{t}/missing.keras"], "does not exist"),
        (["export", "{t}/notes.txt"], "not a Keras model file"),
        (["validate", "{t}/notes.tflite"], "not a TFLite model"),
        (["predict", "{t}/notes.tflite", "{t}/image.png"], "not a TFLite model"),
        (["train", "--data", "{t}/empty"], "at least two class subfolders"),
        (["train", "--data", "{t}/one_class"], "at least two class subfolders"),
        (["train", "--data", "mnist-please"], "mnist-please"),
        (["train", "--arch", "resnet-50", "--data", "digits"], "unknown model 'resnet-50'"),
        (["export", "{t}/notes.txt", "--io", "int4"], "--io"),
        (["run", "--format", "coreml"], "coreml"),
        (["run", "--epochs", "0"], "--epochs"),
        (["frobnicate"], "No such command"),
        (["--nope"], "No such option '--nope'. (see `edgecnn --help`)"),
        (["train", "--width", "inf"], "invalid training option width=inf; use a multiplier in (0, 8]"),
        (["train", "--width", "1000"], "invalid training option width=1000"),
        (["train", "--seed", str(2**64)], "invalid training option seed="),
        (["train", "--epochs", str(10**20)], "invalid training option epochs="),
        (["train", "--img-size", "20000"], "--img-size"),
        (["run", "--seed", str(2**64)], "invalid training option seed="),
        (["bench", "{t}/notes.tflite", "--min-time", "inf"], "--min-time"),
        (["validate", "{t}/notes.tflite", "--target", "ssh://[::1"], "is not a valid ssh:// address"),
        (["validate", "{t}/notes.tflite", "--target", "ssh://pi\x00@host"], "contains a control character"),
        (["targets", "setup"], "(see `edgecnn targets setup --help`)"),
        (["models", "--x"], "(see `edgecnn models --help`)"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(folders, args, message):
    result = CliRunner().invoke(main, [a.format(t=folders) for a in args])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and message in lines[-1]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("args", [[], ["targets"]])
def test_a_bare_group_shows_its_help(args):
    result = invoke(*args)
    assert result.exit_code == 0 and result.stdout.startswith("Usage: edgecnn") and not result.stderr


def test_errors_in_a_real_process_have_no_traceback(folders):
    proc = subprocess.run(
        [shutil.which("edgecnn") or "edgecnn", "validate", str(folders / "notes.tflite")],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith("Error: ") and "Traceback" not in proc.stderr


def test_a_full_disk_is_a_one_line_error(folders, monkeypatch):
    import errno

    import edgecnn.export

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(folders / "model_int8.tflite"))

    monkeypatch.setattr(edgecnn.export, "export_model", full)
    result = CliRunner().invoke(main, ["export", str(folders / "notes.txt")])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == (
        f"Error: No space left on device ({folders / 'model_int8.tflite'}); check the path, its permissions and free space"
    )


def test_text_from_files_cannot_drive_the_terminal(tmp_path):
    from edgecnn.text import terminal_safe

    assert terminal_safe("cat\x1b]0;owned\x07 \x9b2J\tdog\n") == "cat\\x1b]0;owned\\x07 \\x9b2J\tdog\n"
    hostile = tmp_path / "notes\x1b[2J.tflite"  # a path that would clear the screen
    hostile.write_text("not a model")
    result = CliRunner().invoke(main, ["validate", str(hostile)])
    assert result.exit_code == 1 and "\x1b" not in result.stderr and "notes\\x1b[2J.tflite" in result.stderr
