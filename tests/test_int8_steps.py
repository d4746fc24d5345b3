"""Export's int8 steps beyond equalization: QAT, pruning, clustering, and float layers for what
nothing else repairs, on the README's default digits model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from int8_cases import offset_model_files, one_channel_x1000, rescaled

from edgecnn.cli import main


def _export(model, out, *args):
    result = CliRunner().invoke(
        main, ["export", str(model), "--int8", "--format", "tflite,onnx", "--json", "--out", str(out), *args]
    )
    return result, (json.loads(result.stdout) if result.exit_code == 0 else None)


def _steps(report) -> dict:
    return {step["step"]: step for step in report["int8_steps"]}


@pytest.mark.slow
def test_qat_keeps_accuracy_and_agreement_for_tflite_and_onnx(default_digits_run, tmp_path):
    out, _ = default_digits_run
    result, report = _export(out / "model.keras", tmp_path, "--qat", "--qat-epochs", "2")
    assert result.exit_code == 0, result.stderr
    steps = _steps(report)
    assert set(steps["qat"]["kept_for"]) | set(steps["qat"].get("not_kept", {})) == {"tflite", "onnx"}
    for fmt in ("tflite", "onnx"):
        ptq, qat = steps["ptq"]["formats"][fmt], steps["qat"]["formats"][fmt]
        assert qat["accuracy"] >= ptq["accuracy"] - 0.001
        assert qat["agreement"] >= 0.99
        if fmt not in steps["qat"]["kept_for"]:  # QAT's own file did worse, and the PTQ file is back
            same = ("agreement", "accuracy", "size_bytes")  # its metadata names another parent: a few bytes deflate apart
            assert {k: qat[k] for k in same} == {k: ptq[k] for k in same}
    # The QAT ONNX file holds int8 weights, not the float ones tf2onnx writes.
    assert steps["qat"]["formats"]["onnx"]["size_bytes"] < 0.4 * (tmp_path / "model_fp32.onnx").stat().st_size
    assert report["optimized"] and (tmp_path / "optimized.keras").is_file()


def _measurement(fmt, agreement, accuracy):
    from edgecnn.quantize.check import Measurement

    return Measurement(fmt, f"model_int8.{fmt}", agreement, accuracy, 1.0, 1000, 900)


@pytest.mark.parametrize(
    "qat, kept",
    [
        ({"tflite": (1.0, 0.99), "onnx": (0.995, 0.99)}, ("tflite", "onnx")),  # no worse anywhere
        ({"tflite": (1.0, 0.995), "onnx": (1.0, 0.97)}, ("tflite",)),  # onnx agrees more but is less accurate
        ({"tflite": (0.98, 1.0), "onnx": (0.985, 0.99)}, ()),  # both agree less
    ],
)
def test_qat_files_are_kept_only_for_formats_where_they_do_no_worse(monkeypatch, qat, kept):
    """The selection after QAT, with stand-ins for export (it returns the plan it was given) and
    for measure (the QAT numbers for formats converted from the QAT model, else the PTQ ones)."""
    from edgecnn.export.options import Int8Plan
    from edgecnn.quantize import steps
    from edgecnn.quantize.check import Step

    before = Step("ptq", {"tflite": _measurement("tflite", 1.0, 0.99), "onnx": _measurement("onnx", 0.99, 0.98)})
    trained = {fmt: _measurement(fmt, *numbers) for fmt, numbers in qat.items()}

    def measure(plan, checks):
        return {fmt: trained[fmt] if plan.qat_for(fmt) else before.measurements[fmt] for fmt in ("tflite", "onnx")}

    plans = []

    def export(source, plan):
        plans.append(plan)
        return plan

    monkeypatch.setattr(steps, "measure", measure)
    written, step = steps._qat_where_better("float model", Int8Plan(qat_model="qat model"), before, {}, None, export)
    assert tuple(step.detail["kept_for"]) == kept and written.qat_formats == kept
    assert len(plans) == (1 if len(kept) == 2 else 2)
    for fmt in ("tflite", "onnx"):
        assert step.measurements[fmt] == (trained[fmt] if fmt in kept else before.measurements[fmt])
        assert (fmt in step.detail.get("not_kept", {})) == (fmt not in kept)


@pytest.mark.slow
def test_pruning_then_clustering_compress_and_keep_zeros_and_16_values(default_digits_run, tmp_path):
    from edgecnn.runtime.tflite_file import load_tflite

    out, _ = default_digits_run
    result, report = _export(out / "model.keras", tmp_path, "--prune", "0.5", "--cluster", "16")
    assert result.exit_code == 0, result.stderr
    steps = _steps(report)
    assert list(steps) == ["ptq", "prune", "cluster"]
    assert 0.45 <= steps["prune"]["sparsity"] <= 0.55 and steps["cluster"]["preserve_sparsity"]
    for fmt in ("tflite", "onnx"):
        ptq, pruned, clustered = (steps[s]["formats"][fmt] for s in ("ptq", "prune", "cluster"))
        assert pruned["compressed_bytes"] < 0.8 * ptq["compressed_bytes"]
        assert clustered["compressed_bytes"] < 0.8 * pruned["compressed_bytes"]
        assert clustered["accuracy"] >= ptq["float_accuracy"] - 0.015
    parsed = load_tflite(tmp_path / "model_int8.tflite")
    graph = parsed.subgraphs[0]
    for code, op in parsed.operators(0):
        weights = np.frombuffer(parsed.buffer_data(graph.tensors[op.inputs[1]].buffer), np.int8) if code.name == "CONV_2D" else ()
        if len(weights) >= 4096:  # a pruned and clustered layer: about half zeros, at most 16 values
            assert len(np.unique(weights)) <= 16 and 0.4 <= (weights == 0).mean() <= 0.7


@pytest.fixture(scope="module")
def offset_model(default_digits_run, tmp_path_factory):
    out, _ = default_digits_run
    return offset_model_files(out / "folded.keras", tmp_path_factory.mktemp("offset"))


def _offset_args(folder):
    return [
        str(folder / "offset.keras"),
        "--calib",
        str(folder / "calib.npy"),
        "--labels",
        str(folder / "labels.txt"),
        "--norm",
        "0,1",
    ]


@pytest.mark.slow
def test_what_equalization_cannot_repair_is_left_float(offset_model, tmp_path):
    args = _offset_args(offset_model)
    result, report = _export(args[0], tmp_path, *args[1:])
    assert result.exit_code == 0, result.stderr
    steps = _steps(report)
    assert list(steps) == ["ptq", "equalize", "float layers"]
    assert steps["equalize"]["formats"]["tflite"]["agreement"] < 0.98
    final = steps["float layers"]
    for fmt in final["formats"]:
        assert final["formats"][fmt]["agreement"] >= 0.98
    assert any("block1" in layer for layers in final["layers"].values() for layer in layers)
    from edgecnn.runtime.tflite_file import load_tflite

    ops = [code.name for code, _ in load_tflite(tmp_path / "model_int8.tflite").operators(0)]
    assert "DEQUANTIZE" in ops[1:-1]  # a float island inside the int8 graph
    # The I/O stays what was asked for: uint8 in and out.
    from edgecnn import runtime

    model = runtime.load(tmp_path / "model_int8.tflite")
    assert (model.input_dtype, model.output_dtype) == ("uint8", "uint8")


@pytest.mark.slow
def test_for_the_edge_tpu_float_layers_are_refused_with_what_they_would_cost(offset_model, tmp_path, no_edgetpu_compiler):
    args = _offset_args(offset_model)
    result = CliRunner().invoke(main, ["export", *args, "--int8", "--target", "edgetpu", "--out", str(tmp_path / "tpu")])
    assert result.exit_code == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert "on the CPU" in error and "block1" in error
    assert not (tmp_path / "tpu" / "model_int8.tflite").exists()


def test_fuse_relu_moves_each_lone_relu_into_its_layer_and_keeps_the_function():
    from edgecnn.quantize.qat import fuse_relu
    from edgecnn.tf import keras

    k = keras()
    inputs = k.Input((8, 8, 3))
    x = k.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    x = k.layers.Activation("relu", name="a_act")(x)
    y = k.layers.Conv2D(4, 1, name="b")(x)
    z = k.layers.Activation("relu", name="shared")(k.layers.Add()([x, y]))  # after an Add: stays
    model = k.Model(inputs, k.layers.Dense(2, name="head")(k.layers.GlobalAveragePooling2D()(z)))
    fused = fuse_relu(model)
    names = [layer.name for layer in fused.layers]
    assert "a_act" not in names and "shared" in names and fused.get_layer("a").activation.__name__ == "relu"
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), fused(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_int16_activations_hold_the_range_int8_cannot(default_digits_run, tmp_path):
    """TFLite 16x8 on the rescaled model of the issue: no repair needed, int16 input and output."""
    from edgecnn import runtime

    out, _ = default_digits_run
    model = rescaled(out / "folded.keras", tmp_path / "model.keras", one_channel_x1000)
    result = CliRunner().invoke(
        main,
        [
            "export",
            str(model),
            "--int8",
            "--int16-activations",
            "--min-agreement",
            "0.99",
            "--json",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    (ptq,) = json.loads(result.stdout)["int8_steps"]
    assert ptq["formats"]["tflite"]["agreement"] >= 0.99
    loaded = runtime.load(tmp_path / "out" / "model_int16x8.tflite")
    assert loaded.metadata.precision == "int16x8" and loaded.input_dtype == "int16"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--int8", "--int16-activations", "--format", "tflite,onnx"], "--format tflite"),
        (["--int16-activations"], "--int8"),
        (["--int8", "--prune", "1.5"], "--prune"),
        (["--int8", "--cluster", "1"], "--cluster"),
        (["--prune", "0.5"], "--int8"),
    ],
)
def test_compression_and_int16_options_are_checked_first(tmp_path, args, message):
    model = tmp_path / "model.keras"
    model.write_bytes(b"not read")
    result = CliRunner().invoke(main, ["export", str(model), *args])
    assert result.exit_code != 0 and message in result.stderr
