"""Bring your own model: models made with Keras 3, tf_keras, TF's converter and tf2onnx, through
export, validate, bench, predict and check, as a user coming from a tutorial would run them."""

import json

import numpy as np
import pytest
import user_models
from click.testing import CliRunner

from edgecnn.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("Error: ") and "Traceback" not in result.output, result.output
    for word in words:
        assert word in error, error
    return error


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    images, labels = user_models.digits_rgb()
    folder = user_models.write_folder(tmp_path_factory.mktemp("data") / "digits", images, labels, [str(i) for i in range(10)])
    return images, labels, folder


@pytest.fixture(scope="module")
def textbook(tmp_path_factory, digits):
    """The mini-Xception after 3 epochs: BatchNorm's moving statistics lag its weights."""
    images, labels, _ = digits
    path = tmp_path_factory.mktemp("keras3") / "seed.keras"
    user_models.train_keras3(user_models.keras3_mini_xception(), images, labels).save(path)
    return path


def validated(path, *args):
    # The floors are asserted on the report: agreement and accuracy, not validate's default --max-drop 1.
    result = invoke("validate", path, "--json", "--max-drop", 5, *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_keras3_model_with_stale_batchnorm_is_refused_then_repaired_with_fix_bn(textbook, digits, tmp_path):
    _, _, folder = digits
    one_line_error(invoke("export", textbook, "--int8", "--data", folder, "-o", tmp_path), "BatchNorm", "--fix-bn")
    assert not list(tmp_path.iterdir())  # nothing half-written

    result = invoke(
        "export", textbook, "--int8", "--format", "tflite,onnx", "--data", folder, "--fix-bn", "-o", tmp_path, "--json"
    )
    assert result.exit_code == 0, result.output
    imported = json.loads(result.stdout)["imported"]
    assert imported["source"]["format"] == "keras3" and len(imported["source"]["sha256"]) == 64
    assert imported["rebuilt_max_abs_difference"] < 1e-4 and imported["normalization_from"] == "model"
    bn = imported["batchnorm"]
    assert bn["stale"] > 0 and bn["fixed"] and bn["accuracy_after"] > bn["accuracy_before"] + 0.3, bn

    meta = json.loads((tmp_path / "model_int8.tflite.json").read_text())
    assert meta["input_dtype"] == "uint8" and meta["labels"] == [str(i) for i in range(10)]
    assert meta["source"]["path"] == str(textbook) and meta["normalization"]["scale"] == pytest.approx(1 / 255)
    assert json.loads((tmp_path / "export.json").read_text())["imported"]["source"] == imported["source"]
    for name in ("model_int8.tflite", "model_int8.onnx"):
        report = validated(tmp_path / name, "--reference", tmp_path / "folded.keras")
        assert report["accuracy"] >= 0.75 and report["agreement"] >= 0.97, report


@pytest.fixture(scope="module")
def tf_keras_model(digits):
    images, labels, _ = digits
    return user_models.train_tf_keras(user_models.tf_keras_classifier(), images, labels)


@pytest.mark.parametrize("saved_as", ["model.h5", "savedmodel"])
def test_a_tf_keras_model_saved_as_h5_or_savedmodel_exports_and_validates(tf_keras_model, digits, tmp_path, saved_as):
    _, _, folder = digits
    source = tmp_path / saved_as
    tf_keras_model.save(source, **({"save_format": "tf"} if saved_as == "savedmodel" else {}))
    out = tmp_path / "out"
    result = invoke("export", source, "--int8", "--format", "tflite,onnx", "--data", folder, "-o", out, "--json")
    assert result.exit_code == 0, result.output
    imported = json.loads(result.stdout)["imported"]
    assert imported["source"]["format"] == ("h5" if saved_as == "model.h5" else "savedmodel")
    assert imported["dropped_layers"] == ["noise"] and imported["batchnorm"]["stale"] == 0
    meta = json.loads((out / "model_int8.tflite.json").read_text())
    assert meta["normalization"] == {"scale": pytest.approx(1 / 127.5), "offset": pytest.approx(-1.0)}
    for name in ("model_int8.tflite", "model_int8.onnx"):
        report = validated(out / name, "--reference", out / "folded.keras")
        assert report["agreement"] >= 0.97 and report["accuracy"] >= 0.7, report
    result = invoke("fold", source, "-o", tmp_path / "fold" / "folded.keras", "--data", folder)
    assert result.exit_code == 0 and "3 BatchNorm layers folded" in result.stdout, result.output
    assert (tmp_path / "fold" / "imported.keras.json").is_file()


def test_a_keras3_model_with_one_sigmoid_unit_is_a_binary_classifier(digits, tmp_path):
    images, labels, _ = digits
    odd = labels % 2
    folder = user_models.write_folder(tmp_path / "parity", images, odd, ["even", "odd"])
    path = tmp_path / "parity.keras"
    user_models.train_keras3(user_models.keras3_mini_xception("sigmoid"), images, odd, binary=True).save(path)
    out = tmp_path / "out"
    result = invoke("export", path, "--int8", "--format", "tflite,onnx", "--data", folder, "--fix-bn", "-o", out)
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "model_int8.tflite.json").read_text())
    assert meta["output"] == "binary_probability" and meta["labels"] == ["even", "odd"]  # the file ends in its sigmoid
    for name in ("model_int8.tflite", "model_int8.onnx"):
        report = validated(out / name, "--reference", out / "folded.keras")
        assert report["agreement"] >= 0.97 and report["accuracy"] >= 0.75, report
    result = invoke("predict", out / "model_int8.tflite", next((folder / "odd").iterdir()), "--json")
    top = json.loads(result.stdout)["predictions"]
    (scores,) = top.values()
    assert {s["label"] for s in scores} == {"even", "odd"} and sum(s["score"] for s in scores) == pytest.approx(1, abs=1e-5)


def test_train_init_goes_on_training_an_imported_model_with_a_new_head(textbook, digits, tmp_path):
    images, labels, _ = digits
    folder = user_models.write_folder(tmp_path / "parity", images, labels % 2, ["even", "odd"])
    one_line_error(invoke("train", "--init", textbook, "--data", folder, "--epochs", 1), "10 classes", "--new-head")
    out = tmp_path / "tuned"
    result = invoke("train", "--init", textbook, "--new-head", "--data", folder, "--epochs", 2, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["val_accuracy"] >= 0.9  # BatchNorm re-estimated after training, as for edgecnn's nets
    meta = json.loads((out / "model.keras.json").read_text())
    assert meta["labels"] == ["even", "odd"] and meta["source"]["format"] == "keras3" and meta["input_shape"] == [32, 32, 3]
    assert meta["normalization"]["scale"] == pytest.approx(1 / 255)  # the model's own Rescaling, now outside it


def test_a_new_head_is_the_same_for_the_same_seed_so_a_killed_run_resumes(textbook):
    from edgecnn.importer.fine_tune import initial_model, with_head

    def head(seed):
        return with_head(initial_model(textbook), ("even", "odd"), True, seed=seed).get_layer("new_logits").get_weights()[0]

    first = head(0)
    assert np.array_equal(first, head(0)) and not np.array_equal(first, head(1))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory, tf_keras_model, digits):
    """Files made without edgecnn: TF's converter (float, full int8 with uint8 I/O) and tf2onnx."""
    images, _, _ = digits
    folder = tmp_path_factory.mktemp("foreign")
    (folder / "fp32.tflite").write_bytes(user_models.converted_tflite(tf_keras_model))
    (folder / "int8.tflite").write_bytes(user_models.converted_tflite(tf_keras_model, images[:200]))
    user_models.converted_onnx(tf_keras_model, folder / "model.onnx")
    (folder / "labels.txt").write_text("".join(f"{i}\n" for i in range(10)))
    return folder


@pytest.mark.parametrize("name", ["fp32.tflite", "int8.tflite", "model.onnx"])
def test_files_from_elsewhere_bench_validate_and_predict(foreign, digits, name):
    _, _, folder = digits
    path = foreign / name
    result = invoke("bench", path, "--runs", 5, "--warmup", 1, "--min-time", 0, "--json")
    assert result.exit_code == 0, result.output
    # The model has its Normalization layer inside: as a float file it takes raw pixels as floats.
    norm = [] if name == "int8.tflite" else ["--mean", "0", "--std", "1"]
    report = validated(path, "--data", folder, "--labels", foreign / "labels.txt", *norm)
    keras_float = validated(foreign / "fp32.tflite", "--data", folder, "--mean", "0", "--std", "1")
    assert report["samples"] == keras_float["samples"] > 300 and keras_float["accuracy"] >= 0.7
    assert abs(report["accuracy"] - keras_float["accuracy"]) <= 0.03, (report, keras_float)

    image = next((folder / "3").iterdir())
    result = invoke("predict", path, image, "--labels", foreign / "labels.txt", *norm, "--json")
    assert result.exit_code == 0, result.output
    if norm:  # everything said: nothing assumed
        assert "no edgecnn metadata" not in result.stderr, result.stderr
    else:
        assert "assuming it takes raw pixels as its uint8 input" in result.stderr, result.stderr
    (top,) = json.loads(result.stdout)["predictions"].values()
    assert {p["label"] for p in top} <= {str(i) for i in range(10)}


def test_a_converter_int8_file_is_checked_for_the_edge_tpu(foreign):
    # TF's converter quantizes Dense weights per channel, which compiler 16.0 cannot map: the check says so.
    result = invoke("check", foreign / "int8.tflite", "--target", "edgetpu", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert not report["compatible"] and report["first_unmapped"]["op"] == "FULLY_CONNECTED"
    assert "per-channel" in report["first_unmapped"]["reason"]
