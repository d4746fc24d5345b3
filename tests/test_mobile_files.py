"""What docs/mobile.md's Android and iOS snippets take for granted, checked on the quick-start files."""

from pathlib import Path

import numpy as np
import pytest

from edgecnn.artifact import read_sidecar
from edgecnn.runtime import standard_metadata as sm
from edgecnn.runtime.tflite_file import load_tflite

DOC = Path(__file__).resolve().parents[1] / "docs" / "mobile.md"


def _io(parsed):
    graph = parsed.subgraphs[0]
    return graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]


@pytest.mark.slow
def test_the_files_hold_what_the_snippets_read(default_digits_run):
    out, _ = default_digits_run
    text = DOC.read_text()
    for name in ("model_int8.tflite", "model_fp32.tflite"):
        assert name in text
        labels = read_sidecar(out / name).labels
        parsed = load_tflite(out / name)
        inp, output = _io(parsed)
        height, width = inp.shape[1:3]
        assert inp.shape == (1, height, width, 3)  # RGB, batch one: what MediaPipe and the camera code feed
        assert output.shape == (1, len(labels))
        standard = sm.parse(parsed.metadata[sm.METADATA_NAME])
        assert standard.color_space == "RGB" and standard.score_range == (0.0, 1.0)
        assert sm.read_labels(parsed.data, standard.labels_file) == labels and standard.labels_file == "labels.txt"
        if name == "model_int8.tflite":  # raw camera bytes in, uint8 probabilities at 1/256 out
            assert inp.dtype == "uint8" and inp.quant_scale[0] == pytest.approx(1 / 255) and inp.quant_zero_point == (0,)
            assert output.dtype == "uint8" and output.quant_scale == (1 / 256,) and output.quant_zero_point == (0,)
        else:  # float in: (pixel - mean) / std from NormalizationOptions is what the model was trained on
            assert inp.dtype == output.dtype == "float32"
            pixels = np.array([0.0, 128.0, 255.0])
            normalized = (pixels[:, None] - np.array(standard.mean)) / np.array(standard.std)
            np.testing.assert_allclose(normalized[:, 0], pixels / 255, rtol=1e-6)
