"""Device runtime: TFLite reader, metadata embedding, interpreter loading, preprocessing, classify."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from edgecnn import runtime
from edgecnn.artifact import METADATA_KEY, ArtifactMetadata, Normalization, Quantization, write_sidecar
from edgecnn.errors import DataError, MissingDependencyError, ModelFileError
from edgecnn.export.tflite_metadata import embed_metadata
from edgecnn.runtime import interpreters
from edgecnn.runtime.preprocess import is_identity_quantization
from edgecnn.runtime.tflite_file import BUILTIN_OPERATORS, read_metadata, read_tflite

REPO = Path(__file__).resolve().parents[1]
LABELS = ("a", "b", "c")
SHAPE = (16, 16, 1)


def _images(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 16, 16, 1): a per-image brightness plus noise, so the logits vary between images."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0, 255, (n, 1, 1, 1))
    return np.clip(level + rng.normal(0, 40, (n, *SHAPE)), 0, 255).astype(np.uint8)


def _input_output_quant(tflite: bytes) -> tuple[Quantization, Quantization]:
    model = read_tflite(tflite)
    sg = model.subgraphs[0]
    tin, tout = sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]
    return (
        Quantization(tin.dtype, tin.quant_scale[0], tin.quant_zero_point[0]),
        Quantization(tout.dtype, tout.quant_scale[0], tout.quant_zero_point[0]),
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from edgecnn.calibration import CalibrationSet
    from edgecnn.export.tflite import convert_int8
    from edgecnn.tf import keras, tensorflow

    tf, K = tensorflow(), keras()
    K.utils.set_random_seed(0)
    inp = K.Input(SHAPE)
    conv = K.layers.Conv2D(4, 3, activation="relu")
    dense = K.layers.Dense(3)
    keras_model = K.Model(inp, dense(K.layers.GlobalAveragePooling2D()(conv(inp))))
    # Channel 0 measures brightness f in [0, 1]; the classes are dark / mid / bright, so the
    # argmax really depends on the input.
    rng = np.random.default_rng(0)
    kernel = rng.normal(0, 0.3, (3, 3, 1, 4)).astype(np.float32)
    kernel[..., 0] = 1 / 9
    conv.set_weights([kernel, np.zeros(4, np.float32)])
    weights = rng.normal(0, 0.3, (4, 3)).astype(np.float32)
    weights[0] = [-6.0, 0.0, 6.0]
    dense.set_weights([weights, np.array([2.0, 0.0, -4.0], np.float32)])
    fn = tf.function(lambda t: keras_model(t, training=False)).get_concrete_function(tf.TensorSpec([1, *SHAPE], tf.float32))

    float_bytes = tf.lite.TFLiteConverter.from_concrete_functions([fn], keras_model).convert()

    calibration = _images(64, seed=1)
    calibration[:, 0, 0, 0], calibration[:, 0, 1, 0] = 0, 255  # calibrate the input to exactly [0, 1]
    int8_bytes = convert_int8(keras_model, SHAPE, CalibrationSet(calibration, "test"), Normalization(), "uint8", output_io="int8")

    in_q, out_q = _input_output_quant(int8_bytes)
    base = ArtifactMetadata(format="tflite", precision="float32", labels=LABELS, input_shape=SHAPE)
    meta_int8 = base.replace(
        precision="int8", input_dtype="uint8", output_dtype="int8", input_quantization=in_q, output_quantization=out_q
    )
    root = tmp_path_factory.mktemp("runtime_models")
    paths = {
        "float": root / "model_float.tflite",
        "int8": root / "model_int8.tflite",
        "raw_float": root / "raw_float.tflite",
    }
    paths["float"].write_bytes(embed_metadata(float_bytes, METADATA_KEY, base.to_json().encode()))
    paths["int8"].write_bytes(embed_metadata(int8_bytes, METADATA_KEY, meta_int8.to_json().encode()))
    paths["raw_float"].write_bytes(float_bytes)
    return {
        "keras": keras_model,
        "float_bytes": float_bytes,
        "int8_bytes": int8_bytes,
        "meta_float": base,
        "meta_int8": meta_int8,
        "paths": paths,
        "root": root,
    }


# --- reader -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float_bytes", "int8_bytes"])
def test_reader_matches_interpreter(models, kind):
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.interpreter import Interpreter

    data = models[kind]
    model = read_tflite(data)
    sg = model.subgraphs[0]
    interp = Interpreter(model_content=data)
    ops = interp._get_ops_details()
    assert [code.name for code, _ in model.operators()] == [op["op_name"] for op in ops]
    for (_, op), ref in zip(model.operators(), ops):
        assert op.inputs == tuple(ref["inputs"]) and op.outputs == tuple(ref["outputs"])
    details = interp.get_tensor_details()
    assert len(details) == len(sg.tensors)
    for d in details:
        t = sg.tensors[d["index"]]
        assert t.name == d["name"]
        assert t.shape == tuple(d["shape"]) and t.shape_signature == tuple(d["shape_signature"])
        assert t.dtype == np.dtype(d["dtype"]).name
        q = d["quantization_parameters"]
        np.testing.assert_array_equal(np.float32(t.quant_scale), q["scales"])
        assert t.quant_zero_point == tuple(int(z) for z in q["zero_points"])
        assert t.quantized_dimension == q["quantized_dimension"]
    assert sg.inputs == tuple(d["index"] for d in interp.get_input_details())
    assert sg.outputs == tuple(d["index"] for d in interp.get_output_details())

    # Op versions and buffer sizes against the generated schema's object API.
    ref = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    assert model.version == ref.version == 3
    assert [c.version for c in model.operator_codes] == [c.version for c in ref.operatorCodes]
    assert [c.builtin_code for c in model.operator_codes] == [c.builtinCode for c in ref.operatorCodes]
    assert model.buffer_sizes == tuple(0 if b.data is None else len(b.data) for b in ref.buffers)
    for i, b in enumerate(ref.buffers):
        assert model.buffer_data(i) == (b"" if b.data is None else b.data.tobytes())
    assert model.param_bytes > 0
    conv = next(op for code, op in model.operators() if code.name == "CONV_2D")
    assert conv.fused_activation == "RELU"


def test_reader_operator_codes_over_127():
    from ai_edge_litert import schema_py_generated as schema
    from tflite_builder import pack

    m = schema.ModelT()
    m.version = 3
    gelu, custom = schema.OperatorCodeT(), schema.OperatorCodeT()
    gelu.deprecatedBuiltinCode, gelu.builtinCode, gelu.version = 127, schema.BuiltinOperator.GELU, 2
    custom.deprecatedBuiltinCode, custom.builtinCode, custom.customCode = 32, 32, "MyOp"
    m.operatorCodes, m.subgraphs, m.buffers = [gelu, custom], [schema.SubGraphT()], [schema.BufferT()]
    parsed = read_tflite(pack(m))
    assert parsed.operator_codes[0].name == "GELU" and parsed.operator_codes[0].version == 2
    assert parsed.operator_codes[1].name == "CUSTOM" and parsed.operator_codes[1].custom_code == "MyOp"
    assert len(BUILTIN_OPERATORS) == max(v for k, v in vars(schema.BuiltinOperator).items() if k.isupper()) + 1


def test_embed_metadata_round_trip_and_replace(models):
    data = models["int8_bytes"]
    assert read_metadata(data, METADATA_KEY) is None
    once = embed_metadata(data, METADATA_KEY, b'{"v": 1}' * 100)
    assert read_metadata(once, METADATA_KEY) == b'{"v": 1}' * 100
    twice = embed_metadata(once, METADATA_KEY, b"short")
    parsed = read_tflite(twice)
    assert parsed.metadata[METADATA_KEY] == b"short"
    assert list(parsed.metadata).count(METADATA_KEY) == 1
    assert len(parsed.buffer_sizes) == len(read_tflite(once).buffer_sizes)  # buffer reused, not appended
    assert len(twice) < len(once)
    # The converter's own entries survive, and the model still computes the same thing.
    assert {"min_runtime_version", "CONVERSION_METADATA"} <= set(parsed.metadata)
    other = embed_metadata(twice, "other", b"x")
    assert read_tflite(other).metadata[METADATA_KEY] == b"short" and read_tflite(other).metadata["other"] == b"x"

    from ai_edge_litert.interpreter import Interpreter

    x = _images(1, seed=5)
    outs = []
    for blob in (data, other):
        interp = Interpreter(model_content=blob)
        interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        outs.append(interp.get_tensor(interp.get_output_details()[0]["index"]))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_embed_metadata_with_tensorflow_schema(models, monkeypatch):
    import ai_edge_litert

    from edgecnn.export import tflite_metadata

    monkeypatch.setitem(sys.modules, "ai_edge_litert.schema_py_generated", None)  # import now fails
    monkeypatch.delattr(ai_edge_litert, "schema_py_generated", raising=False)
    assert tflite_metadata._schema().__name__ == "tensorflow.lite.python.schema_py_generated"
    out = embed_metadata(models["float_bytes"], METADATA_KEY, b"tf")
    assert read_metadata(out, METADATA_KEY) == b"tf"


def _foreign_files(models, root: Path) -> dict[str, Path]:
    from PIL import Image

    data = models["int8_bytes"]
    files = {
        "truncated": data[:100],
        "half": data[: len(data) // 2],
        "random": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
        "empty": b"",
        "tiny": b"TFL3",
    }
    paths = {}
    for name, blob in files.items():
        paths[name] = root / f"{name}.tflite"
        paths[name].write_bytes(blob)
    paths["png"] = root / "png.tflite"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(paths["png"], format="PNG")
    return paths


def test_foreign_and_truncated_files_raise_model_file_error(models, tmp_path):
    for name, path in _foreign_files(models, tmp_path).items():
        blob = path.read_bytes()
        for call, *args in (
            (read_tflite, blob, path),
            (runtime.load_tflite, path),
            (runtime.load_interpreter, path),
            (runtime.load_interpreter, blob),
            (runtime.load, path),
            (embed_metadata, blob, METADATA_KEY, b"{}"),
        ):
            with pytest.raises(ModelFileError) as err:
                call(*args)
            message = str(err.value)
            assert "\n" not in message, name
        assert str(path) in str(pytest.raises(ModelFileError, runtime.load, path).value)
    assert "PNG" in str(pytest.raises(ModelFileError, runtime.load_tflite, tmp_path / "png.tflite").value)
    assert "empty" in str(pytest.raises(ModelFileError, runtime.load_tflite, tmp_path / "empty.tflite").value)
    with pytest.raises(ModelFileError, match="does not exist"):
        runtime.load(tmp_path / "missing.tflite")
    with pytest.raises(ModelFileError, match="unsupported suffix"):
        runtime.load(tmp_path / "model.bin")


def test_corrupted_bytes_never_escape_as_other_errors(models):
    data = models["int8_bytes"]
    rng = np.random.default_rng(1)
    parsed = 0
    for i in range(600):
        blob = bytearray(data)
        for pos in rng.integers(8, len(blob), rng.integers(1, 4)):
            blob[pos] = int(rng.integers(0, 256))
        if i % 2:
            blob = blob[: int(rng.integers(8, len(blob) + 1))]
        try:
            read_tflite(bytes(blob))
            parsed += 1
        except ModelFileError:
            pass
    assert parsed > 0  # some mutations hit data bytes and still parse
    for _ in range(200):  # garbage behind a valid-looking header
        blob = bytearray(rng.integers(0, 256, int(rng.integers(16, 300)), dtype=np.uint8).tobytes())
        blob[0:4] = int(rng.integers(8, len(blob) - 3)).to_bytes(4, "little")
        blob[4:8] = b"TFL3"
        try:
            read_tflite(bytes(blob))
        except ModelFileError:
            pass


# --- interpreters -------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_load_interpreter_backend_and_fallbacks(models, monkeypatch):
    interp, backend = runtime.load_interpreter(models["paths"]["float"], num_threads=2)
    assert backend.startswith("ai_edge_litert ") and backend.split()[1][0].isdigit()
    interp.allocate_tensors()
    assert tuple(interp.get_input_details()[0]["shape"]) == (1, *SHAPE)

    monkeypatch.setattr(interpreters, "_BACKENDS", (("edgecnn_no_such_module.interpreter", "x", "edgecnn_no_such_module"),))
    interp, backend = runtime.load_interpreter(models["float_bytes"])
    assert backend.startswith("tensorflow ")
    monkeypatch.setattr(interpreters, "_tensorflow_interpreter", lambda: None)
    with pytest.raises(MissingDependencyError, match="pip install ai-edge-litert"):
        runtime.load_interpreter(models["float_bytes"])


# --- preprocessing ------------------------------------------------------------------


def test_quantize_dequantize_softmax():
    q = Quantization("int8", 0.5, -3)
    x = np.array([-1000.0, -1.26, 0.0, 0.24, 1000.0], dtype=np.float32)
    qx = runtime.quantize(x, q)
    assert qx.dtype == np.int8 and qx.tolist() == [-128, -6, -3, -3, 127]
    np.testing.assert_allclose(runtime.dequantize(qx, q), [-62.5, -1.5, 0.0, 0.0, 65.0])
    probs = runtime.softmax(np.array([[1000.0, 1000.0, -1000.0]]))
    np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0]])


def test_prepare_input_fast_path_equals_slow_path():
    meta = ArtifactMetadata(format="tflite", precision="int8", labels=LABELS, input_shape=SHAPE)
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    q = Quantization("uint8", float(np.float32(1 / 255)), 0)
    assert is_identity_quantization(q, meta)
    fast = runtime.prepare_input(pixels, meta, "uint8", q)
    assert fast.dtype == np.uint8
    np.testing.assert_array_equal(fast, runtime.quantize(meta.normalization.apply(pixels), q))
    # [-1, 1] normalisation quantized to int8: no fast path, but the values must agree.
    meta2 = meta.replace(normalization=Normalization(scale=2 / 255, offset=-1.0))
    q2 = Quantization("int8", 2 / 255, 0)
    assert not is_identity_quantization(q2, meta2)
    out = runtime.prepare_input(pixels, meta2, "int8", q2)
    assert out.dtype == np.int8 and out.min() == -127 and out.max() == 128 - 1
    np.testing.assert_array_equal(runtime.prepare_input(pixels, meta, "float32"), meta.normalization.apply(pixels))


def test_load_image(tmp_path):
    from PIL import Image

    path = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (200, 100, 50)).save(path)
    gray = runtime.load_image(path, (16, 16, 1))
    rgb = runtime.load_image(path, (8, 12, 3))
    assert gray.shape == (16, 16, 1) and gray.dtype == np.uint8
    assert rgb.shape == (8, 12, 3) and rgb[0, 0].tolist() == [200, 100, 50]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DataError, match="bad.png"):
        runtime.load_image(bad, SHAPE)
    with pytest.raises(DataError, match="does not exist"):
        runtime.load_image(tmp_path / "none.png", SHAPE)


# --- the device API -----------------------------------------------------------------


def test_predict_float_matches_keras(models):
    model = runtime.load(models["paths"]["float"])
    assert model.backend.startswith("ai_edge_litert")
    assert model.input_shape == SHAPE and model.labels == LABELS
    pixels = _images(8, seed=2)
    expected = models["keras"](pixels.astype(np.float32) * np.float32(1 / 255), training=False).numpy()
    got = model.predict(pixels)
    assert got.dtype == np.float32 and got.shape == (8, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(model.predict(pixels[0]), expected[:1], atol=1e-5)


def test_predict_int8_close_to_float(models):
    fmodel = runtime.load(models["paths"]["float"])
    qmodel = runtime.load(models["paths"]["int8"], num_threads=1)
    assert qmodel.input_dtype == "uint8" and qmodel.output_dtype == "int8"
    assert is_identity_quantization(qmodel.input_quantization, qmodel.metadata)
    pixels = _images(64, seed=3)
    f, q = fmodel.predict(pixels), qmodel.predict(pixels)
    assert q.dtype == np.float32
    assert np.mean(f.argmax(1) == q.argmax(1)) >= 0.85
    spread = float(f.max() - f.min())
    assert np.max(np.abs(f - q)) <= 0.02 * spread + 2 * qmodel.output_quantization.scale


def test_classify(models, tmp_path):
    from PIL import Image

    model = runtime.load(models["paths"]["int8"])
    pixels = _images(1, seed=4)[0]
    path = tmp_path / "img.png"
    Image.fromarray(pixels[..., 0]).save(path)
    for image in (path, str(path), Image.open(path), pixels, pixels[..., 0]):
        result = model.classify(image, top_k=2)
        assert len(result) == 2 and {label for label, _ in result} <= set(LABELS)
        assert result[0][1] >= result[1][1]
        assert result == model.classify(pixels, top_k=2)
    full = model.classify(path, top_k=10)
    assert [label for label, _ in full] and len(full) == 3
    assert sum(score for _, score in full) <= 1.0 + 1e-6
    assert [s for _, s in full] == sorted((s for _, s in full), reverse=True)
    big = np.zeros((40, 30, 3), dtype=np.uint8)  # any uint8 image is resized and converted
    assert len(model.classify(big)) == 3


def test_pixel_shape_and_dtype_errors(models):
    model = runtime.load(models["paths"]["float"])
    with pytest.raises(DataError, match=r"\(N, 16, 16, 1\)"):
        model.predict(np.zeros((2, 8, 8, 1), np.uint8))
    with pytest.raises(DataError, match="uint8"):
        model.predict(np.zeros((2, 16, 16, 1), np.float32))
    with pytest.raises(DataError):
        model.classify(np.zeros((5,), np.uint8))


def test_missing_metadata_and_sidecar_fallback(models, tmp_path):
    raw = tmp_path / "raw.tflite"
    raw.write_bytes(models["float_bytes"])
    with pytest.warns(runtime.AssumedModelFacts, match="raw.tflite has no edgecnn metadata: assuming classes named"):
        foreign = runtime.load(raw)  # a file from elsewhere: what it says, and the rest assumed out loud
    assert foreign.metadata.labels == tuple(str(i) for i in range(len(LABELS))) and foreign.metadata.format == "tflite"
    facts = runtime.ModelFacts(labels=LABELS, normalization=models["meta_float"].normalization)
    assert runtime.load(raw, facts=facts).metadata.labels == LABELS
    write_sidecar(raw, models["meta_float"].replace(labels=("x", "y", "z")))
    model = runtime.load(raw)
    assert model.labels == ("x", "y", "z")
    np.testing.assert_allclose(model.predict(_images(2, 0)), runtime.load(models["paths"]["float"]).predict(_images(2, 0)))
    # Embedded metadata wins over a sidecar.
    embedded = tmp_path / "emb.tflite"
    embedded.write_bytes(models["paths"]["float"].read_bytes())
    write_sidecar(embedded, models["meta_float"].replace(labels=("x", "y", "z")))
    assert runtime.load(embedded).labels == LABELS


def test_metadata_that_contradicts_the_model(models, tmp_path):
    path = tmp_path / "wrong.tflite"
    wrong = models["meta_int8"].replace(input_shape=(32, 32, 1))
    path.write_bytes(embed_metadata(models["int8_bytes"], METADATA_KEY, wrong.to_json().encode()))
    with pytest.raises(ModelFileError, match="metadata"):
        runtime.load(path)
    q = models["meta_int8"].input_quantization
    wrong = models["meta_int8"].replace(input_quantization=Quantization(q.dtype, q.scale * 2, q.zero_point))
    path.write_bytes(embed_metadata(models["int8_bytes"], METADATA_KEY, wrong.to_json().encode()))
    with pytest.raises(ModelFileError, match="quantization"):
        runtime.load(path)
    path.write_bytes(embed_metadata(models["int8_bytes"], METADATA_KEY, b"{not json"))
    with pytest.raises(ModelFileError, match="wrong.tflite"):
        runtime.load(path)


_NO_TF_PRELUDE = """
import importlib.abc, sys
class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization"):
            raise ImportError(f"{name} is not installed on this device")
        return None
sys.meta_path.insert(0, _NoTensorFlow())
"""


def test_runtime_works_without_tensorflow(models, tmp_path):
    from PIL import Image

    image = tmp_path / "photo.png"
    Image.fromarray(_images(1, seed=6)[0, ..., 0]).convert("RGB").resize((48, 40)).save(image)
    script = _NO_TF_PRELUDE + textwrap.dedent(
        f"""
        try:
            import tensorflow
        except ImportError:
            pass
        else:
            raise SystemExit("the import blocker does not work")
        import edgecnn.runtime as rt
        model = rt.load({str(models["paths"]["int8"])!r})
        result = model.classify({str(image)!r}, top_k=3)
        print("BACKEND", model.backend)
        print("LABELS", ",".join(label for label, _ in result))
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras"))
        assert "tensorflow" not in sys.modules, heavy
        assert not heavy, heavy
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if " " in line)
    assert lines["BACKEND"].startswith("ai_edge_litert")
    assert sorted(lines["LABELS"].split(",")) == sorted(LABELS)


def test_check_io_is_the_one_check_of_a_model_against_its_metadata():
    from edgecnn.runtime.model import TensorSpec, check_io

    q_in, q_out = Quantization("uint8", 1 / 255, 0), Quantization("uint8", 0.1, 128)
    meta = ArtifactMetadata(
        "tflite", "int8", ("a", "b", "c"), (8, 8, 1), input_dtype="uint8", output_dtype="uint8",
        input_quantization=q_in, output_quantization=q_out,
    )  # fmt: skip
    inp, out = TensorSpec((1, 8, 8, 1), "uint8", q_in), TensorSpec((1, 3), "uint8", q_out)
    path = Path("m.tflite")
    assert check_io(path, meta, inp, out) == (q_in, q_out)
    # A format without tensor quantization (ONNX) takes the metadata's; any batch size is fine.
    assert check_io(path, meta, TensorSpec(("N", 8, 8, 1), "uint8"), TensorSpec(("N", 3), "uint8")) == (q_in, q_out)
    bad = {
        "takes input": (TensorSpec((1, 8, 8, 3), "uint8", q_in), out),
        "takes input (2,": (TensorSpec((2, 8, 8, 1), "uint8", q_in), out),
        "outputs (1, 4)": (inp, TensorSpec((1, 4), "uint8", q_out)),
        "outputs (3, 1)": (inp, TensorSpec((3, 1), "uint8", q_out)),
        "has a float32 input": (TensorSpec((1, 8, 8, 1), "float32"), out),
        "output quantization": (inp, TensorSpec((1, 3), "uint8", Quantization("uint8", 0.2, 128))),
    }
    for message, (i, o) in bad.items():
        with pytest.raises(ModelFileError, match=re.escape(message)):
            check_io(path, meta, i, o)
    with pytest.raises(ModelFileError, match="gives no quantization"):
        check_io(path, meta.replace(output_quantization=None), inp, TensorSpec((1, 3), "uint8"))
