"""Export: folding on the way, calibration, full-integer int8, metadata, atomic output."""

import json
import warnings

import numpy as np
import pytest

from edgecnn.artifact import METADATA_KEY, ArtifactMetadata, sidecar_path
from edgecnn.calibration import CalibrationWarning, from_dataset, from_path
from edgecnn.errors import ConfigError, DataError, ModelFileError
from edgecnn.export import ExportOptions, export_model
from edgecnn.fileio import sha256_file
from edgecnn.runtime import load_tflite


def test_export_writes_float_and_int8_with_embedded_metadata(exported_run):
    out, result = exported_run
    names = sorted(a.name for a in result.artifacts)
    assert names == ["model_fp32.tflite", "model_int8.tflite"]
    for artifact in result.artifacts:
        model = load_tflite(artifact.path)
        embedded = ArtifactMetadata.from_json(model.metadata[METADATA_KEY])
        sidecar = ArtifactMetadata.from_json(sidecar_path(artifact.path).read_text())
        assert embedded == sidecar == artifact.metadata
        assert embedded.labels == tuple(str(i) for i in range(10)) and embedded.input_shape == (16, 16, 1)
        assert embedded.parent_sha256 == sha256_file(out / "folded.keras")
        graph = model.subgraphs[0]
        assert graph.tensors[graph.inputs[0]].shape == (1, 16, 16, 1)  # static batch of one
    summary = json.loads((out / "export.json").read_text())
    assert [a["path"] for a in summary["artifacts"]] == ["model_fp32.tflite", "model_int8.tflite"]
    assert summary["calibration"]["size"] == 120 and "train split" in summary["calibration"]["source"]


def test_int8_is_full_integer_and_takes_raw_pixels(exported_run):
    out, _ = exported_run
    model = load_tflite(out / "model_int8.tflite")
    graph = model.subgraphs[0]
    assert {t.dtype for t in graph.tensors} <= {"uint8", "int8", "int32"}
    ops = {code.name for code, _ in model.operators()}
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD"} <= ops
    meta = ArtifactMetadata.from_json(model.metadata[METADATA_KEY])
    assert meta.precision == "int8" and meta.input_dtype == "uint8" and meta.output_dtype == "uint8"
    # The input quantization absorbs x/255: a uint8 pixel goes in unchanged.
    assert meta.input_quantization.scale == pytest.approx(1 / 255, rel=1e-3)
    assert meta.input_quantization.zero_point == 0
    # Per-channel weights: a conv kernel carries one scale per output channel.
    conv = next(t for t in graph.tensors if t.dtype == "int8" and len(t.shape) == 4 and len(t.quant_scale) > 1)
    assert len(conv.quant_scale) == conv.shape[conv.quantized_dimension]


def test_int8_weights_take_a_quarter_of_the_float_bytes(exported_run):
    # The whole-file ratio depends on model size (per-channel scales are a fixed cost per
    # channel); the default digits model's is checked in test_pipeline.
    out, _ = exported_run

    def weight_bytes(path, dtype):
        model = load_tflite(path)
        return sum(
            model.buffer_sizes[t.buffer] for t in model.subgraphs[0].tensors if t.buffer and t.dtype == dtype and len(t.shape) > 1
        )

    float_bytes, int8_bytes = weight_bytes(out / "model_fp32.tflite", "float32"), weight_bytes(out / "model_int8.tflite", "int8")
    assert int8_bytes == pytest.approx(float_bytes / 4, rel=0.01)


def test_folded_model_has_no_batchnorm_and_matches(exported_run, digits_small):
    from edgecnn.fold import count_batchnorm_after_linear
    from edgecnn.keras_file import load_keras_model

    out, result = exported_run
    original, folded = load_keras_model(out / "model.keras"), load_keras_model(out / "folded.keras")
    assert count_batchnorm_after_linear(original) > 0 and count_batchnorm_after_linear(folded) == 0
    x = digits_small.normalization.apply(digits_small.test.images[:64])
    a, b = original.predict_on_batch(x), folded.predict_on_batch(x)
    assert np.abs(a - b).max() <= 1e-4 * (a.max() - a.min())
    assert result.folded_layers == len([layer for layer in original.layers if type(layer).__name__ == "BatchNormalization"])


@pytest.mark.parametrize("io, dtype", [("int8", "int8"), ("float32", "float32")])
def test_io_types(trained_run, tmp_path, io, dtype):
    import shutil

    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, tmp_path / name)
    result = export_model(tmp_path / "model.keras", tmp_path, ExportOptions(int8=True, io=io, calib_size=100))
    int8 = next(a for a in result.artifacts if a.metadata.precision == "int8")
    assert int8.metadata.input_dtype == dtype and int8.metadata.output_dtype == dtype
    assert (int8.metadata.input_quantization is None) == (io == "float32")


def test_a_failed_conversion_leaves_no_half_written_model(trained_run, tmp_path, monkeypatch):
    import shutil

    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, tmp_path / name)

    def broken(*args, **kwargs):
        raise RuntimeError("converter crashed")

    monkeypatch.setattr("edgecnn.export.tflite.convert_int8", broken)
    with pytest.raises(RuntimeError):
        export_model(tmp_path / "model.keras", tmp_path, ExportOptions(int8=True, calib_size=100))
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert "model_int8.tflite" not in leftovers and "export.json" not in leftovers
    assert not [n for n in leftovers if n.startswith(".")], leftovers  # no temporary files


def test_an_interrupted_export_leaves_the_previous_set_untouched(trained_run, tmp_path, monkeypatch):
    import shutil

    from edgecnn.artifact import read_sidecar

    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, tmp_path / name)
    export_model(tmp_path / "model.keras", tmp_path, ExportOptions(int8=True, calib_size=100))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def interrupted(*args, **kwargs):  # Ctrl-C once the TFLite files of the new set are written
        raise KeyboardInterrupt

    monkeypatch.setattr("edgecnn.export.onnx.export", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export_model(tmp_path / "model.keras", tmp_path, ExportOptions(formats=("tflite", "onnx"), int8=True, calib_size=50))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # no stage, no new file beside an old one
    for model in tmp_path.glob("model_*.tflite"):
        assert read_sidecar(model).format == "tflite"


def test_calibration_is_stratified_from_the_training_split(digits_small):
    calib = from_dataset(digits_small, size=200, seed=0)
    assert len(calib) == 200 and calib.images.dtype == np.uint8
    train = {img.tobytes() for img in digits_small.train.images}
    assert all(img.tobytes() in train for img in calib.images)
    with pytest.warns(CalibrationWarning, match="only 30 calibration samples"):
        from_dataset(digits_small, size=30)


def test_calibration_from_a_folder_and_an_array(tmp_path, digits_small):
    from PIL import Image

    folder = tmp_path / "calib"
    folder.mkdir()
    for i, img in enumerate(digits_small.train.images[:120]):
        Image.fromarray(img[..., 0]).save(folder / f"{i}.png")
    calib = from_path(folder, (16, 16, 1))
    assert len(calib) == 120 and calib.images.shape[1:] == (16, 16, 1)
    np.save(tmp_path / "calib.npy", digits_small.train.images[:110])
    assert len(from_path(tmp_path / "calib.npy", (16, 16, 1))) == 110
    np.save(tmp_path / "float.npy", digits_small.train.images[:110].astype(np.float32))
    with pytest.raises(DataError, match="uint8"):
        from_path(tmp_path / "float.npy", (16, 16, 1))
    with pytest.raises(DataError, match="shape"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from_path(tmp_path / "calib.npy", (32, 32, 1))
    with pytest.raises(DataError, match="does not exist"):
        from_path(tmp_path / "missing", (16, 16, 1))


def test_bad_inputs(tmp_path, trained_run):
    with pytest.raises(ModelFileError, match="does not exist"):
        export_model(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelFileError, match="not a Keras model file"):
        export_model(tmp_path / "notes.txt")
    (tmp_path / "fake.keras").write_text("hello")
    (tmp_path / "fake.keras.json").write_text((trained_run / "model.keras.json").read_text())
    with pytest.raises(ModelFileError, match="not a loadable Keras model"):
        export_model(tmp_path / "fake.keras")
    with pytest.raises(ConfigError, match="--io"):
        ExportOptions(io="int4")
    with pytest.raises(ConfigError, match="unknown export format"):
        export_model(trained_run / "model.keras", tmp_path, ExportOptions(formats=("coreml",)))


def test_the_shipped_calibration_samples_are_stratified_training_images():
    from pathlib import Path

    from edgecnn.data import load_dataset

    folder = Path(__file__).resolve().parents[1] / "calibration"
    calib = from_path(folder / "digits_32x32x1_100.npy", (32, 32, 1))
    assert len(calib) == 100 and calib.images.dtype == np.uint8
    digits = load_dataset("digits", image_size=32, seed=0)
    train = {img.tobytes(): label for img, label in zip(digits.train.images, digits.train.labels)}
    labels = [train[img.tobytes()] for img in calib.images]  # KeyError if an image is not from the training split
    assert np.bincount(labels, minlength=10).tolist() == [10] * 10
    assert len(from_path(folder / "shapes_64x64x3_120.npy", (64, 64, 3))) == 120
