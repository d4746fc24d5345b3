"""ONNX: the exporter, the calibration reader, the runtime's ONNX path, bad files and the floors."""

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgecnn import runtime  # noqa: E402
from edgecnn.artifact import METADATA_KEY, ArtifactMetadata, Normalization, read_sidecar  # noqa: E402
from edgecnn.calibration import CalibrationSet  # noqa: E402
from edgecnn.calibration.onnx_reader import CalibrationReader  # noqa: E402
from edgecnn.cli import main  # noqa: E402
from edgecnn.errors import ConfigError, ModelFileError, VerificationError  # noqa: E402
from edgecnn.export import ExportOptions, export_model  # noqa: E402
from edgecnn.export import onnx as onnx_export  # noqa: E402
from edgecnn.fileio import sha256_file  # noqa: E402

CALIB_SIZE = 120


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def op_types(path_or_proto) -> set[str]:
    proto = onnx.load(str(path_or_proto)) if isinstance(path_or_proto, (str, Path)) else path_or_proto
    return {n.op_type for n in proto.graph.node}


def weight_bytes(proto) -> int:
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(t).nbytes for t in proto.graph.initializer)


def ort_logits(path, x: np.ndarray) -> np.ndarray:
    """ONNX Runtime called directly, one image per run."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory, trained_run):
    """trained_run (xception-pico, digits 16x16) exported to float and int8 ONNX with default options."""
    out = tmp_path_factory.mktemp("onnx")
    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, out / name)
    result = export_model(out / "model.keras", out, ExportOptions(formats=("onnx",), int8=True, calib_size=CALIB_SIZE))
    return out, result


@pytest.fixture(scope="module")
def calibration(onnx_run, digits_small):
    from edgecnn.export.pipeline import calibration_for

    out, _ = onnx_run
    return calibration_for(read_sidecar(out / "model.keras"), ExportOptions(calib_size=CALIB_SIZE))


# --- exporter ------------------------------------------------------------------------


def test_export_writes_float_and_int8_onnx(onnx_run):
    out, result = onnx_run
    assert [(a.name, a.metadata.format, a.metadata.precision) for a in result.artifacts] == [
        ("model_fp32.onnx", "onnx", "float32"),
        ("model_int8.onnx", "onnx", "int8"),
    ]
    record = json.loads((out / "export.json").read_text())
    assert record["options"]["formats"] == ["onnx"]
    assert record["options"]["onnx_format"] == ExportOptions().onnx_format
    assert record["options"]["calib_method"] == "percentile" and record["options"]["dynamic_batch"] is False
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_float_model_is_checked_opset_17_batch_1_without_batchnorm(onnx_run):
    out, _ = onnx_run
    for name in ("model_fp32.onnx", "model_int8.onnx"):
        proto = onnx.load(str(out / name))
        onnx.checker.check_model(proto, full_check=True)
        opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
        assert opset >= 17
        assert "BatchNormalization" not in op_types(proto)
        (inp,), (output,) = proto.graph.input, proto.graph.output
        assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in inp.type.tensor_type.shape.dim] == [1, 16, 16, 1]
        assert output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
        assert [d.dim_value for d in output.type.tensor_type.shape.dim] == [1, 10]


def test_metadata_props_round_trip(onnx_run):
    out, result = onnx_run
    for artifact in result.artifacts:
        proto = onnx.load(str(artifact.path))
        props = {p.key: p.value for p in proto.metadata_props}
        embedded = ArtifactMetadata.from_json(props[METADATA_KEY])
        assert embedded == read_sidecar(artifact.path) == artifact.metadata
        assert embedded.format == "onnx" and embedded.input_shape == (16, 16, 1) and len(embedded.labels) == 10
        assert embedded.input_dtype == embedded.output_dtype == "float32"
        assert embedded.input_quantization is None and embedded.output_quantization is None
        assert embedded.parent_sha256 == sha256_file(out / "folded.keras")
        # ONNX Runtime sees the same entry without the onnx package.
        session = ort.InferenceSession(str(artifact.path), providers=["CPUExecutionProvider"])
        assert session.get_modelmeta().custom_metadata_map[METADATA_KEY] == props[METADATA_KEY]
    # Embedding again replaces the entry instead of adding a second one.
    proto = onnx.load(str(out / "model_fp32.onnx"))
    meta = read_sidecar(out / "model_fp32.onnx").replace(labels=tuple("abcdefghij"))
    embedded = onnx_export.embed_metadata(proto, meta)
    keys = [p.key for p in embedded.metadata_props]
    assert keys.count(METADATA_KEY) == 1
    assert ArtifactMetadata.from_json(embedded.metadata_props[keys.index(METADATA_KEY)].value).labels == tuple("abcdefghij")
    original = {p.key: p.value for p in proto.metadata_props}[METADATA_KEY]
    assert ArtifactMetadata.from_json(original) == read_sidecar(out / "model_fp32.onnx")  # embedding made a copy


def test_float_onnx_equals_the_keras_model(onnx_run, digits_small):
    from edgecnn.evaluate import load_predictor

    out, _ = onnx_run
    images = digits_small.test.images
    keras_logits = load_predictor(out / "model.keras").predict(images)
    onnx_model = runtime.load(out / "model_fp32.onnx")
    assert onnx_model.metadata.output == "probabilities"  # every exported file ends in its softmax
    assert np.abs(runtime.softmax(keras_logits) - onnx_model.predict(images)).max() <= 1e-5


def test_int8_is_qdq_with_per_channel_int8_weights(onnx_run, digits_small):
    out, _ = onnx_run
    proto = onnx.load(str(out / "model_int8.onnx"))
    types = op_types(proto)
    assert ExportOptions().onnx_format == "qdq"  # what OpenVINO and onnxruntime-web run too
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= types and "QLinearConv" not in types
    initializers = {t.name: t for t in proto.graph.initializer}
    producers = {o: n for n in proto.graph.node for o in n.output}
    conv = next(n for n in proto.graph.node if n.op_type == "Conv")
    dequantize = producers[conv.input[1]]
    assert dequantize.op_type == "DequantizeLinear"
    weight, weight_scale = initializers[dequantize.input[0]], initializers[dequantize.input[1]]
    assert weight.data_type == onnx.TensorProto.INT8
    assert int(np.prod(weight_scale.dims)) == weight.dims[0] > 1  # one scale per output channel
    assert weight_bytes(proto) < 0.4 * weight_bytes(onnx.load(str(out / "model_fp32.onnx")))
    fp32 = runtime.load(out / "model_fp32.onnx").predict(digits_small.test.images).argmax(-1)
    int8 = runtime.load(out / "model_int8.onnx").predict(digits_small.test.images).argmax(-1)
    assert (fp32 == int8).mean() >= 0.9


@pytest.mark.parametrize(
    "fmt, method, expected, absent",
    [
        ("qdq", "minmax", {"QuantizeLinear", "DequantizeLinear", "Conv"}, "QLinearConv"),
        ("qoperator", "entropy", {"QLinearConv"}, "DequantizeLinear_weights"),
        ("qoperator", "percentile", {"QLinearConv"}, "DequantizeLinear_weights"),
    ],
)
def test_formats_and_calibration_methods(onnx_run, calibration, digits_small, fmt, method, expected, absent):
    out, _ = onnx_run
    float_proto = onnx.load(str(out / "model_fp32.onnx"))
    proto = onnx_export.quantize_int8(float_proto, calibration, Normalization(), fmt, method)
    assert expected <= op_types(proto) and absent not in op_types(proto)
    if fmt == "qdq":  # weights stored as int8 and dequantized per channel
        dequant = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
        initializers = {t.name: t for t in proto.graph.initializer}
        per_channel = [n for n in dequant if n.input[0] in initializers and int(np.prod(initializers[n.input[1]].dims)) > 1]
        types = {initializers[n.input[0]].data_type for n in per_channel}
        assert types == {onnx.TensorProto.INT8, onnx.TensorProto.INT32}  # weights and biases
    path = out / f"{fmt}_{method}.onnx"
    onnx_export.write(proto, path, read_sidecar(out / "model_int8.onnx"))
    x = digits_small.test.images
    agreement = (runtime.load(path).predict(x).argmax(-1) == runtime.load(out / "model_fp32.onnx").predict(x).argmax(-1)).mean()
    assert agreement >= 0.9


def test_dynamic_batch(onnx_run, calibration, digits_small, tmp_path):
    from edgecnn.export.io_layers import with_scores
    from edgecnn.keras_file import load_with_metadata

    out, _ = onnx_run
    model, meta = with_scores(*load_with_metadata(out / "folded.keras"))  # as export_model converts it
    options = ExportOptions(formats=("onnx",), int8=True, dynamic_batch=True)
    written = onnx_export.export(model, meta, calibration, options, tmp_path)
    for path, _ in written:
        dim = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0]
        assert dim.dim_param and not dim.dim_value
        loaded = runtime.load(path)
        assert loaded.batch_size is None
        images = digits_small.test.images[:70]  # more than one session call
        fixed = runtime.load(out / path.name).predict(images)
        np.testing.assert_allclose(loaded.predict(images), fixed, atol=1e-5)
    assert runtime.load(out / "model_fp32.onnx").batch_size == 1


def test_batchnorm_nodes_become_mul_and_add():
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(0)
    c = 3
    params = {
        "gamma": rng.uniform(0.5, 2, c),
        "beta": rng.normal(0, 1, c),
        "mean": rng.normal(0, 1, c),
        "var": rng.uniform(0.1, 2, c),
    }
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", *params], ["y"], name="bn", epsilon=1e-3)],
        "bn",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2, c, 4, 4])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [2, c, 4, 4])],
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    x = rng.normal(0, 2, (2, c, 4, 4)).astype(np.float32)
    before = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    rewritten = onnx_export.batchnorm_to_affine(proto)
    onnx_export.check(rewritten)
    assert op_types(rewritten) == {"Mul", "Add"} and len(rewritten.graph.initializer) == 2
    after = ort.InferenceSession(rewritten.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    with pytest.raises(VerificationError, match="BatchNormalization"):
        onnx_export.check(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_a_batchnorm_that_cannot_be_folded_still_converts():
    from edgecnn.tf import keras

    K = keras()
    K.utils.set_random_seed(0)
    inp = K.Input((8, 8, 3))
    bn = K.layers.BatchNormalization()  # right after the input: nothing to fold it into
    model = K.Model(inp, K.layers.Dense(4)(K.layers.GlobalAveragePooling2D()(K.layers.Conv2D(5, 3)(bn(inp)))))
    rng = np.random.default_rng(1)
    bn.set_weights([rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3), rng.normal(0, 1, 3), rng.uniform(0.1, 2, 3)])
    proto = onnx_export.convert_float(model, (8, 8, 3))
    assert "BatchNormalization" not in op_types(proto)
    x = rng.uniform(0, 1, (5, 8, 8, 3)).astype(np.float32)
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    got = np.concatenate([session.run(None, {"image": x[i : i + 1]})[0] for i in range(len(x))])
    np.testing.assert_allclose(got, model(x, training=False).numpy(), atol=1e-5)


# --- calibration reader --------------------------------------------------------------


def test_calibration_reader_yields_every_sample_once_normalised():
    images = np.arange(7 * 4 * 4 * 1, dtype=np.uint8).reshape(7, 4, 4, 1)
    norm = Normalization(scale=2 / 255, offset=-1.0)
    reader = CalibrationReader(CalibrationSet(images, "test"), "image", norm)
    from onnxruntime.quantization import CalibrationDataReader

    assert isinstance(reader, CalibrationDataReader) and len(reader) == 7
    first = list(reader)
    assert len(first) == 7 and reader.get_next() is None
    for i, item in enumerate(first):
        assert list(item) == ["image"]
        assert item["image"].dtype == np.float32 and item["image"].shape == (1, 4, 4, 1)
        np.testing.assert_array_equal(item["image"], norm.apply(images[i : i + 1]))
    reader.rewind()
    again = [reader.get_next() for _ in range(7)]
    assert all(np.array_equal(a["image"], b["image"]) for a, b in zip(first, again)) and reader.get_next() is None
    reader.set_range(2, 5)
    middle = list(reader)
    assert [float(m["image"][0, 0, 0, 0]) for m in middle] == [float(f["image"][0, 0, 0, 0]) for f in first[2:5]]
    reader.set_range(5, 100)
    assert len(list(reader)) == 2


def test_quantizer_reads_the_whole_calibration_set(onnx_run, calibration, monkeypatch):
    out, _ = onnx_run
    seen = []
    original = CalibrationReader.get_next

    def spy(self):
        item = original(self)
        if item is not None:
            seen.append(item[self.input_name])
        return item

    monkeypatch.setattr(CalibrationReader, "get_next", spy)
    onnx_export.quantize_int8(onnx.load(str(out / "model_fp32.onnx")), calibration, Normalization(), "qoperator", "minmax")
    assert len(seen) == len(calibration) == CALIB_SIZE
    np.testing.assert_array_equal(np.concatenate(seen), Normalization().apply(calibration.images))


# --- runtime -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model_fp32.onnx", "model_int8.onnx"])
def test_runtime_predict_equals_onnxruntime(onnx_run, digits_small, name):
    out, _ = onnx_run
    path = out / name
    model = runtime.load(path, num_threads=1)
    assert model.backend == f"onnxruntime {ort.__version__} CPUExecutionProvider"
    assert model._session.get_session_options().intra_op_num_threads == 1
    assert model.metadata == read_sidecar(path) and model.input_shape == (16, 16, 1)
    images = digits_small.test.images[:40]
    logits = model.predict(images)
    assert logits.dtype == np.float32 and logits.shape == (40, 10)
    np.testing.assert_array_equal(logits, ort_logits(path, Normalization().apply(images)))
    np.testing.assert_array_equal(model.predict(images[3]), logits[3:4])

    run = model.invoker(images[3])  # what `edgecnn bench` times
    np.testing.assert_array_equal(run()[0], logits[3:4])

    top = model.classify(images[3], top_k=3)
    assert [label for label, _ in top][0] == model.labels[int(logits[3].argmax())]
    scores = [s for _, s in top]
    assert len(top) == 3 and scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1 + 1e-6
    assert np.allclose(model.scores(images[:5]).sum(-1), 1, atol=1e-5)


def test_runtime_threads_and_metadata_sources(onnx_run, tmp_path):
    out, _ = onnx_run
    assert runtime.load(out / "model_int8.onnx", num_threads=2)._session.get_session_options().intra_op_num_threads == 2
    with pytest.raises(ConfigError, match="num_threads"):
        runtime.load(out / "model_int8.onnx", num_threads=0)

    # Embedded metadata wins without a sidecar; the sidecar serves a file without it.
    shutil.copy(out / "model_int8.onnx", tmp_path / "embedded.onnx")
    assert runtime.load(tmp_path / "embedded.onnx").metadata == read_sidecar(out / "model_int8.onnx")
    proto = onnx.load(str(out / "model_int8.onnx"))
    del proto.metadata_props[:]
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(proto.SerializeToString())
    # Without metadata it is a file from elsewhere: read from the file, the rest assumed out loud.
    with pytest.warns(runtime.AssumedModelFacts, match="no edgecnn metadata: assuming classes named 0..9"):
        foreign = runtime.load(bare)
    assert foreign.metadata.labels == tuple(map(str, range(10))) and foreign.metadata.precision == "int8"
    pixels = np.random.default_rng(0).integers(0, 256, (3, *foreign.input_shape), dtype=np.uint8)
    np.testing.assert_allclose(foreign.predict(pixels), runtime.load(tmp_path / "embedded.onnx").predict(pixels), atol=1e-6)
    meta = read_sidecar(out / "model_int8.onnx")
    bare.with_suffix(".json").write_text(meta.to_json())
    assert runtime.load(bare).metadata == meta
    bare.with_suffix(".json").write_text(meta.replace(input_shape=(32, 32, 1)).to_json())
    with pytest.raises(ModelFileError, match="takes input"):
        runtime.load(bare)
    bare.with_suffix(".json").write_text(meta.replace(labels=("a", "b")).to_json())
    with pytest.raises(ModelFileError, match="2 labels"):
        runtime.load(bare)


def _bad_files(onnx_run, root: Path) -> dict[str, Path]:
    from PIL import Image

    out, _ = onnx_run
    data = (out / "model_int8.onnx").read_bytes()
    tflite = out.parent / "tflite_for_onnx.tflite"
    if not tflite.exists():
        from edgecnn.export.tflite import convert_float
        from edgecnn.keras_file import load_keras_model

        tflite.write_bytes(convert_float(load_keras_model(out / "folded.keras"), (16, 16, 1)))
    blobs = {
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "tflite": tflite.read_bytes(),
        "half": data[: len(data) // 2],
        "truncated": data[:100],
        "empty": b"",
        "text": b"not a model\n",
    }
    paths = {}
    for name, blob in blobs.items():
        paths[name] = root / f"{name}.onnx"
        paths[name].write_bytes(blob)
    paths["png"] = root / "png.onnx"
    Image.new("L", (8, 8), 3).save(paths["png"], format="PNG")
    return paths


def test_files_that_are_not_onnx_give_one_line_errors(onnx_run, tmp_path, capfd):
    from edgecnn.evaluate import load_predictor

    for name, path in _bad_files(onnx_run, tmp_path).items():
        for call in (runtime.load, load_predictor):
            with pytest.raises(ModelFileError) as err:
                call(path)
            message = str(err.value)
            assert "\n" not in message and str(path) in message, (name, message)
    assert "TFLite" in str(pytest.raises(ModelFileError, runtime.load, tmp_path / "tflite.onnx").value)
    assert "empty" in str(pytest.raises(ModelFileError, runtime.load, tmp_path / "empty.onnx").value)
    assert "PNG" in str(pytest.raises(ModelFileError, runtime.load, tmp_path / "png.onnx").value)
    captured = capfd.readouterr()
    assert "EP Error" not in captured.out + captured.err  # no fallback banner from onnxruntime


def test_cli_predict_with_a_bad_onnx_file_is_one_line_in_a_real_process(onnx_run, tmp_path):
    from PIL import Image

    paths = _bad_files(onnx_run, tmp_path)
    image = tmp_path / "x.png"
    Image.new("L", (16, 16), 100).save(image)
    for name in ("random", "half", "tflite"):
        result = invoke("predict", paths[name], image)
        assert result.exit_code == 1 and result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    proc = subprocess.run(
        [sys.executable, "-m", "edgecnn", "predict", str(paths["half"]), str(image)], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [line for line in proc.stderr.strip().splitlines() if line.startswith("Error: ")]


def test_runtime_runs_onnx_without_tensorflow_or_the_onnx_package(onnx_run, digits_small):
    out, _ = onnx_run
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "tf2onnx", "onnx"):
                    raise ImportError(name + " is not installed on this device")
        sys.meta_path.insert(0, Block())
        import edgecnn.runtime
        assert "onnxruntime" not in sys.modules  # imported when an .onnx file is loaded, not before
        from edgecnn import runtime
        from edgecnn.data import load_dataset
        from edgecnn.evaluate import validate
        data = load_dataset("digits", image_size=16)
        model = runtime.load({str(out / "model_int8.onnx")!r}, num_threads=1)
        label, score = model.classify(data.test.images[0], top_k=1)[0]
        result = validate(model.path, data.test.images, data.test.labels, reference={str(out / "model_fp32.onnx")!r})
        assert not any(m in sys.modules for m in ("tensorflow", "tf_keras", "tf2onnx", "onnx"))
        print(result.accuracy, result.agreement, result.format)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    accuracy, agreement, fmt = proc.stdout.split()
    assert float(accuracy) > 0.5 and float(agreement) >= 0.9 and fmt == "onnx"


# --- options and CLI -----------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("calib_method", "kl"), ("onnx_format", "QDQ"), ("onnx_format", "tflite")])
def test_bad_option_values_quote_the_value(field, value):
    with pytest.raises(ConfigError, match=repr(value)):
        ExportOptions(**{field: value})


@pytest.mark.parametrize("args", [["--onnx-format", "nope"], ["--calib-method", "kl"], ["--format", "onnx,coreml"]])
def test_cli_rejects_bad_onnx_options_in_one_line(onnx_run, args):
    out, _ = onnx_run
    result = invoke("export", out / "model.keras", "--int8", *args)
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    assert args[1] in result.stderr


def test_cli_export_validate_predict_onnx(onnx_run, tmp_path, digits_small):
    from PIL import Image

    out, _ = onnx_run
    dest = tmp_path / "cli"
    result = invoke(
        "export",
        out / "model.keras",
        "--format",
        "onnx",
        "--int8",
        "--onnx-format",
        "qdq",
        "--calib-method",
        "minmax",
        "--dynamic-batch",
        "--calib-size",
        100,
        "-o",
        dest,
        "--json",
    )
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)["artifacts"]
    assert [(Path(a["path"]).name, a["format"], a["precision"]) for a in written] == [
        ("model_fp32.onnx", "onnx", "float32"),
        ("model_int8.onnx", "onnx", "int8"),
    ]
    options = json.loads((dest / "export.json").read_text())["options"]
    assert (options["onnx_format"], options["calib_method"], options["dynamic_batch"]) == ("qdq", "minmax", True)
    assert "DequantizeLinear" in op_types(dest / "model_int8.onnx")

    result = invoke("validate", dest / "model_int8.onnx", "--reference", dest / "model_fp32.onnx", "--threads", 1, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["format"] == "onnx" and report["precision"] == "int8" and report["samples"] == len(digits_small.test)
    assert report["agreement"] >= 0.9 and report["backend"].startswith("onnxruntime ")

    image = tmp_path / "digit.png"
    Image.fromarray(digits_small.test.images[0][..., 0]).save(image)
    result = invoke("predict", dest / "model_int8.onnx", image, "--top-k", 2, "--json")
    assert result.exit_code == 0, result.output
    predictions = json.loads(result.stdout)["predictions"][str(image)]
    assert len(predictions) == 2 and predictions[0]["score"] >= predictions[1]["score"]


# --- floors (slow) -------------------------------------------------------------------


def _check_onnx_floors(report: dict, out: Path, dataset) -> dict:
    """The issue's floors; returns the measured numbers."""
    from edgecnn.evaluate import load_predictor

    by_name = {a["name"]: a for a in report["artifacts"]}
    names = ["model.keras", "folded.keras", "model_fp32.tflite", "model_int8.tflite", "model_fp32.onnx", "model_int8.onnx"]
    assert sorted(by_name) == sorted(names)
    fp32, int8 = by_name["model_fp32.onnx"], by_name["model_int8.onnx"]
    assert fp32["format"] == int8["format"] == "onnx" and (fp32["precision"], int8["precision"]) == ("float32", "int8")
    assert all(a["passed"] for a in report["artifacts"])

    images, labels = dataset.test.images, dataset.test.labels
    keras_logits = load_predictor(out / "model.keras").predict(images)
    float_logits = runtime.load(out / "model_fp32.onnx").predict(images)  # probabilities: the files end in softmax
    int8_logits = runtime.load(out / "model_int8.onnx").predict(images)
    max_diff = float(np.abs(float_logits - runtime.softmax(keras_logits)).max())
    float_top1, int8_top1 = float_logits.argmax(-1), int8_logits.argmax(-1)
    drop = ((float_top1 == labels).mean() - (int8_top1 == labels).mean()) * 100
    agreement = (float_top1 == int8_top1).mean()
    assert max_diff <= 1e-4
    assert drop <= 0.5 and agreement >= 0.98
    assert fp32["accuracy"] == pytest.approx((float_top1 == labels).mean())
    assert int8["accuracy"] == pytest.approx((int8_top1 == labels).mean())
    print(
        f"\n{report['arch']} on {report['dataset']}: max |ONNX - Keras| {max_diff:.2e}, float {fp32['accuracy']:.4f}, "
        f"int8 {int8['accuracy']:.4f}, drop {drop:+.2f} points, agreement {agreement:.4f}"
    )
    return {"max_diff": max_diff, "float": fp32["accuracy"], "int8": int8["accuracy"], "drop": drop, "agreement": agreement}


@pytest.mark.slow
def test_default_digits_run_with_onnx_meets_the_floors(default_digits_run):
    from edgecnn.data import load_dataset

    out, report = default_digits_run
    assert report["arch"] == "xception-nano" and report["input_shape"] == [32, 32, 1]
    measured = _check_onnx_floors(report, out, load_dataset("digits"))
    assert measured["float"] >= 0.98


@pytest.mark.slow
def test_shapes_rgb_run_with_onnx_meets_the_floors(tmp_path):
    from edgecnn.data import load_dataset

    out = tmp_path / "shapes"
    result = invoke(
        "run", "--data", "shapes", "--arch", "xception-micro", "--epochs", 30, "--format", "tflite,onnx", "--out", out, "--json"
    )
    assert result.exit_code == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["input_shape"] == [64, 64, 3]
    measured = _check_onnx_floors(report, out, load_dataset("shapes"))
    assert measured["float"] >= 0.97
