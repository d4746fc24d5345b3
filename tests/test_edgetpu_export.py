"""``edgecnn export --target edgetpu``: options, the pre-flight gate, with and without the compiler,
and every registered architecture mapping entirely."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from tflite_builder import S, mutate

from edgecnn.artifact import ArtifactMetadata, write_sidecar
from edgecnn.cli import main
from edgecnn.errors import ConfigError, VerificationError
from edgecnn.targets.edgetpu import check_model

SHAPE = (16, 16, 3)
LABELS = ("a", "b", "c", "d")


@pytest.fixture(scope="module")
def keras_dir(tmp_path_factory):
    """An untrained xception-pico (model.keras + metadata) and uint8 calibration images."""
    from edgecnn.nets import create_model
    from edgecnn.tf import keras

    keras().utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("edgetpu_export")
    model = create_model("xception-pico", SHAPE, num_classes=len(LABELS))
    model.save(root / "model.keras")
    write_sidecar(
        root / "model.keras",
        ArtifactMetadata(format="keras", precision="float32", labels=LABELS, input_shape=SHAPE, arch="xception-pico"),
    )
    np.save(root / "calib.npy", np.random.default_rng(0).integers(0, 256, (32, *SHAPE), dtype=np.uint8))
    return root


def _export_args(root, out):
    return [
        "export",
        str(root / "model.keras"),
        "--int8",
        "--target",
        "edgetpu",
        "--calib",
        str(root / "calib.npy"),
        "--calib-size",
        "32",
        "-o",
        str(out),
    ]


def test_export_for_edgetpu_with_the_compiler(keras_dir, tmp_path, fake_edgetpu_compiler):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, _export_args(keras_dir, out))
    assert result.exit_code == 0, result.output
    progress = result.stderr.splitlines()
    assert any(line.startswith("Edge TPU pre-flight check: ") and "in 1 subgraph" in line for line in progress)
    assert any(line.startswith("edgetpu_compiler: ") and "model_int8_edgetpu.tflite" in line for line in progress)
    assert "model_int8_edgetpu.tflite" in result.stdout
    check = json.loads((out / "model_int8_edgetpu_check.json").read_text())
    assert check["compatible"] and check["ops_mapped"] == check["ops_total"] and check["subgraphs"] == 1
    compiled = json.loads((out / "model_int8_edgetpu_compile.json").read_text())
    assert compiled["compatible"] and compiled["source"].startswith("edgetpu_compiler 16.0")
    assert compiled["ops_total"] == check["ops_total"]
    assert (out / "model_int8_edgetpu.log").is_file()
    meta = ArtifactMetadata.from_json((out / "model_int8_edgetpu.tflite.json").read_text())
    assert meta.labels == LABELS and meta.precision == "int8" and meta.input_dtype == "uint8"
    assert json.loads((out / "export.json").read_text())["options"]["target"] == "edgetpu"


def test_export_for_edgetpu_without_the_compiler(keras_dir, tmp_path, no_edgetpu_compiler):
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.targets.edgetpu.export import EdgeTpuCompilerMissing

    out = tmp_path / "out"
    options = ExportOptions(int8=True, target="edgetpu", calib_path=keras_dir / "calib.npy", calib_size=32)
    with pytest.warns(EdgeTpuCompilerMissing, match="apt-get install edgetpu-compiler"):
        result = export_model(keras_dir / "model.keras", out, options)
    assert [a.name for a in result.artifacts] == ["model_fp32.tflite", "model_int8.tflite"]
    assert json.loads((out / "model_int8_edgetpu_check.json").read_text())["compatible"]
    assert not (out / "model_int8_edgetpu.tflite").exists()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "needs --int8"),
        ({"int8": True, "io": "float32"}, "--io uint8"),
        ({"int8": True, "formats": ("onnx",)}, "include tflite"),
        ({"int8": True, "target": "jetson"}, "--target must be one of edgetpu"),
    ],
)
def test_export_target_option_errors(kwargs, message):
    from edgecnn.export import ExportOptions

    with pytest.raises(ConfigError, match=message):
        ExportOptions(**{"target": "edgetpu", **kwargs})


def test_the_edgetpu_target_registers_its_exporter():
    from edgecnn.export.targets import export_targets, target_exporter

    assert "edgetpu" in export_targets()
    assert target_exporter("tflite", "edgetpu") == "edgecnn.targets.edgetpu.export"
    assert target_exporter("onnx", "edgetpu") is None


def test_export_refuses_a_model_that_would_not_map(keras_dir, tmp_path, monkeypatch, no_edgetpu_compiler):
    from edgecnn.export import ExportOptions, export_model, tflite

    real = tflite.convert_int8
    monkeypatch.setattr(tflite, "convert_int8", lambda *a, **k: mutate(real(*a, **k), _second_op_to_leaky_relu))
    options_ = ExportOptions(int8=True, target="edgetpu", calib_path=keras_dir / "calib.npy", calib_size=32)
    with pytest.raises(VerificationError, match="would not run entirely on the Edge TPU"):
        export_model(keras_dir / "model.keras", tmp_path, options_)
    assert not json.loads((tmp_path / "model_int8_edgetpu_check.json").read_text())["compatible"]


def _second_op_to_leaky_relu(model):
    """Turn operator #1 into a LEAKY_RELU (the Edge TPU has none), reading only its data input."""
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.LEAKY_RELU
    code.version = 1
    model.operatorCodes.append(code)
    op = model.subgraphs[0].operators[1]
    op.opcodeIndex, op.builtinOptionsType, op.builtinOptions = len(model.operatorCodes) - 1, 0, None
    op.inputs = list(op.inputs[:1])  # an activation has one input: the file stays one a reader can walk


def _architectures():
    from edgecnn.nets import list_models

    return list_models()


@pytest.mark.slow
@pytest.mark.parametrize("arch", _architectures())
def test_every_registered_architecture_maps_entirely(arch, tmp_path, no_edgetpu_compiler):
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.nets import create_model
    from edgecnn.targets.edgetpu.export import EdgeTpuCompilerMissing
    from edgecnn.tf import keras

    keras().utils.set_random_seed(0)
    shape = (32, 32, 3)
    create_model(arch, shape, num_classes=len(LABELS)).save(tmp_path / "model.keras")
    write_sidecar(
        tmp_path / "model.keras",
        ArtifactMetadata(format="keras", precision="float32", labels=LABELS, input_shape=shape, arch=arch),
    )
    np.save(tmp_path / "calib.npy", np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8))
    # An untrained model calibrated on noise: how often its int8 file agrees with float is not the question.
    options = ExportOptions(int8=True, target="edgetpu", calib_path=tmp_path / "calib.npy", calib_size=16, min_agreement=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EdgeTpuCompilerMissing)
        warnings.simplefilter("ignore", UserWarning)
        export_model(tmp_path / "model.keras", tmp_path, options)
    report = check_model(tmp_path / "model_int8.tflite")
    assert report.compatible, report.to_text()
    assert report.ops_mapped == report.ops_total and report.subgraphs == 1 and report.errors == ()
    assert json.loads((tmp_path / "model_int8_edgetpu_check.json").read_text())["compatible"]
