"""The default int8 .onnx (QDQ) and the .tflite files of the quick start run in OpenVINO and agree
with ONNX Runtime / LiteRT. (OpenVINO refuses QOperator's per-channel QLinearConv: why QDQ is the default.)"""

import numpy as np
import pytest

from edgecnn import runtime
from edgecnn.data import load_dataset
from edgecnn.runtime import prepare_input

ov = pytest.importorskip("openvino")


def _openvino_top1(path, model, images) -> np.ndarray:
    core = ov.Core()
    # OpenVINO's CPU default is bf16 where the CPU has it: compare like with like in f32.
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    meta = model.metadata
    x = prepare_input(
        np.repeat(images, meta.input_shape[2] // images.shape[-1], axis=-1), meta, model.input_dtype, model.input_quantization
    )
    return np.concatenate([compiled(x[i : i + 1])[0] for i in range(len(x))]).argmax(axis=-1)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model_int8.onnx", "model_fp32.onnx", "model_int8.tflite"])
def test_openvino_agrees_with_the_runtime(default_digits_run, name):
    out, _ = default_digits_run
    images = load_dataset("digits").test.images
    model = runtime.load(out / name)
    agreement = (_openvino_top1(out / name, model, images) == model.scores(images).argmax(axis=-1)).mean()
    assert agreement >= 0.99, f"{name}: OpenVINO agrees with {model.backend} on {agreement:.2%}"
