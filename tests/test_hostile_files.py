"""Hostile model files: refused with one line, never a crash, a hang or a foreign exception.

Every case runs in a worker process (benchmarks/fuzz_models.py), so a crash inside the
interpreter is counted and reported instead of killing the test run.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite_builder import S, conv2d, mutate

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import fuzz_models  # noqa: E402

pytestmark = pytest.mark.hostile


@pytest.fixture(scope="module")
def harness():
    h = fuzz_models.Harness(timeout=60)
    yield h
    h.close()


@pytest.fixture(scope="module")
def int8_tflite(exported_run):
    out, _ = exported_run
    return (out / "model_int8.tflite").read_bytes()


@pytest.fixture(scope="module")
def onnx_models(tmp_path_factory, trained_run):
    pytest.importorskip("onnx")
    import shutil

    from edgecnn.export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("hostile-onnx")
    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, out / name)
    export_model(out / "model.keras", out, ExportOptions(formats=("onnx",), int8=True, calib_size=60))
    return sorted(out.glob("model_*.onnx"))


def _refused(harness, tmp_path, data: bytes, *phrases, suffix=".tflite") -> str:
    path = tmp_path / f"case{suffix}"
    path.write_bytes(data)
    result = harness.run(path)
    assert result["outcome"] == "refused", result
    for phrase in phrases:
        assert phrase in result["error"], result
    return result["error"]


def _io(model, which: str):
    sg = model.subgraphs[0]
    return sg.tensors[(sg.inputs if which == "input" else sg.outputs)[0]]


def _first(model, op: str):
    code = next(i for i, c in enumerate(model.operatorCodes) if c.builtinCode == getattr(S.BuiltinOperator, op))
    return next(o for o in model.subgraphs[0].operators if o.opcodeIndex == code)


@pytest.mark.parametrize("scale", [0.0, -1.0, math.inf, math.nan])
def test_an_input_scale_that_is_not_finite_and_positive_is_refused(harness, tmp_path, int8_tflite, scale):
    data = mutate(int8_tflite, lambda m: setattr(_io(m, "input").quantization, "scale", [scale]))
    _refused(harness, tmp_path, data, "quantization scale", "finite and positive")


def test_a_uint8_zero_point_of_300_and_a_nan_output_scale_are_refused(harness, tmp_path, int8_tflite):
    data = mutate(int8_tflite, lambda m: setattr(_io(m, "input").quantization, "zeroPoint", [300]))
    _refused(harness, tmp_path, data, "zero point 300 outside 0..255 for uint8")
    data = mutate(int8_tflite, lambda m: setattr(_io(m, "output").quantization, "scale", [math.nan]))
    _refused(harness, tmp_path, data, "quantization scale nan")


def test_an_absurd_shape_is_refused_before_anything_is_allocated(harness, tmp_path, int8_tflite):
    def huge(m):
        m.subgraphs[0].tensors[_first(m, "CONV_2D").outputs[0]].shape = [1, 65536, 65536, 256]

    _refused(harness, tmp_path, mutate(int8_tflite, huge), "over the 256 MiB limit")


def test_a_tensor_type_the_op_does_not_take_is_refused(harness, tmp_path, int8_tflite):
    def retype(m):
        m.subgraphs[0].tensors[_first(m, "CONV_2D").outputs[0]].type = S.TensorType.FLOAT32

    _refused(harness, tmp_path, mutate(int8_tflite, retype), "CONV_2D", "mixes a int8 input with a float32 output")


def test_a_convolution_with_one_input_or_a_zero_stride_is_refused(harness, tmp_path, int8_tflite):
    def one_input(m):
        op = _first(m, "CONV_2D")
        op.inputs = op.inputs[:1]

    _refused(harness, tmp_path, mutate(int8_tflite, one_input), "CONV_2D) has 1 inputs")
    _refused(
        harness, tmp_path, mutate(int8_tflite, lambda m: setattr(_first(m, "CONV_2D").builtinOptions, "strideW", 0)), "stride_w 0"
    )
    _refused(harness, tmp_path, conv2d(dilation=(0, 1)), "dilation_w 0")


def test_a_file_with_no_subgraph_or_only_the_identifier_is_refused(harness, tmp_path, int8_tflite):
    _refused(harness, tmp_path, mutate(int8_tflite, lambda m: setattr(m, "subgraphs", [])), "no subgraph")
    _refused(harness, tmp_path, b"\x08\x00\x00\x00TFL3", "is not a TFLite model")
    _refused(harness, tmp_path, b"\x00\x00\x00\x00TFL3\x00\x00\x00\x00", "is not a TFLite model")


def test_out_of_range_indices_are_refused_by_the_checker_and_graph_stats(tmp_path, int8_tflite):
    from edgecnn.errors import ModelFileError
    from edgecnn.evaluate.graph_stats import tflite_stats
    from edgecnn.runtime.tflite_file import read_tflite
    from edgecnn.targets.edgetpu.checker import check_model

    no_output = mutate(int8_tflite, lambda m: setattr(m.subgraphs[0].operators[1], "outputs", []))
    bad_buffer = mutate(int8_tflite, lambda m: setattr(m.subgraphs[0].tensors[3], "buffer", 10**6))
    for data in (no_output, bad_buffer):
        with pytest.raises(ModelFileError):
            check_model(data)
        with pytest.raises(ModelFileError):
            tflite_stats(read_tflite(data)) if data is no_output else read_tflite(data)


def _with_metadata(data: bytes, text: bytes) -> bytes:
    def change(m):
        index = next(x.buffer for x in m.metadata if x.name in (b"edgecnn", "edgecnn"))
        m.buffers[index].data = np.frombuffer(text, np.uint8)

    return mutate(data, change)


def _meta(data: bytes) -> dict:
    from edgecnn.runtime.tflite_file import read_tflite

    return json.loads(read_tflite(data).metadata["edgecnn"])


@pytest.mark.parametrize(
    "change, phrase",
    [
        (lambda d: b"not json", "not valid JSON"),
        (lambda d: b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (lambda d: b'"a string"', "expected a JSON object"),
        (lambda d: {**d, "normalization": "x"}, "normalization must be an object"),
        (lambda d: {**d, "normalization": {"scale": math.nan}}, "finite positive scale"),
        (lambda d: {**d, "normalization": {"scale": 0}}, "finite positive scale"),
        (lambda d: {**d, "input_quantization": {**d["input_quantization"], "scale": math.inf}}, "input_quantization needs"),
        (lambda d: {**d, "output_quantization": {**d["output_quantization"], "zero_point": 300}}, "output_quantization needs"),
        (lambda d: {**d, "labels": "0123456789"}, "labels must be a list"),
        (lambda d: {**d, "labels": list(range(10))}, "labels must be a list"),
        (lambda d: {**d, "input_shape": [16, 16]}, "input_shape must be"),
        (lambda d: {**d, "input_shape": [10**9, 16, 1]}, "input_shape must be"),
        (lambda d: {**d, "input_shape": [16, 16, True]}, "input_shape must be"),
    ],
)
def test_hostile_metadata_is_one_line(harness, tmp_path, int8_tflite, change, phrase):
    text = change(_meta(int8_tflite))
    text = text if isinstance(text, bytes) else json.dumps(text).encode()
    _refused(harness, tmp_path, _with_metadata(int8_tflite, text), "metadata", phrase)


def _external_data_onnx(path) -> bytes:
    """The model at `path` with its first weights moved to an "external data file": /etc/passwd."""
    import onnx

    model = onnx.load(str(path))
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    tensor.ClearField("raw_data")
    return model.SerializeToString()


def test_onnx_external_data_and_invalid_graphs_are_refused(harness, tmp_path, onnx_models):
    import onnx

    _refused(harness, tmp_path, _external_data_onnx(onnx_models[0]), "external data", suffix=".onnx")
    model = onnx.load(str(onnx_models[0]))
    model.graph.node[0].input[0] = "nowhere"
    _refused(harness, tmp_path, model.SerializeToString(), "not a valid ONNX model", suffix=".onnx")


def test_graph_statistics_never_follow_external_data(tmp_path, onnx_models):
    from edgecnn.errors import ModelFileError
    from edgecnn.evaluate.graph_stats import graph_stats

    path = tmp_path / "model.onnx"
    path.write_bytes(_external_data_onnx(onnx_models[0]))
    with pytest.raises(ModelFileError, match="external data"):
        graph_stats(path)
    assert graph_stats(onnx_models[0]).macs > 0


def test_the_export_itself_loads_in_the_worker(harness, tmp_path, int8_tflite):
    path = tmp_path / "model.tflite"
    path.write_bytes(int8_tflite)
    assert harness.run(path)["outcome"] == "ok"


def test_mutation_fuzz_has_no_deaths_hangs_or_foreign_exceptions(tmp_path, exported_run, onnx_models):
    out, _ = exported_run
    tflite = [out / "model_int8.tflite", out / "model_fp32.tflite"]
    for path in tflite + onnx_models:  # the metadata the mutations break comes from the sidecars
        assert path.with_name(path.name + ".json").is_file()
    results = fuzz_models.fuzz(tflite, 300, seed=1, workdir=tmp_path, timeout=60)
    results += fuzz_models.fuzz(onnx_models, 100, seed=1, workdir=tmp_path, timeout=60)
    failures = [r for r in results if r["outcome"] in fuzz_models.FAILURES]
    assert not failures, failures[:5]
    outcomes = fuzz_models.summarize(results)
    assert outcomes[".tflite"].get("refused", 0) > 100 and outcomes[".onnx"].get("refused", 0) > 30, outcomes


def test_fuzz_script_writes_json_and_markdown(tmp_path, exported_run):
    out, _ = exported_run
    models = tmp_path / "models"
    models.mkdir()
    for name in ("model_int8.tflite", "model_int8.tflite.json"):
        (models / name).write_bytes((out / name).read_bytes())
    fuzz_models.main(["--cases", "20", "--models", str(models), "--out", str(tmp_path / "results")])
    report = json.loads((tmp_path / "results" / "fuzz_models.json").read_text())
    assert report["summary"][".tflite"]["cases"] == 20
    assert "| .tflite | 20 | " in (tmp_path / "results" / "fuzz_models.md").read_text()
    assert 0 < report["summary"][".tflite"]["without_metadata"] < 20  # both loading paths are fuzzed
