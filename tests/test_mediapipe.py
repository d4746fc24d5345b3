"""MediaPipe Tasks' ImageClassifier (the C++ core Android and iOS run) loads the quick-start
.tflite files unchanged, names the classes from their metadata, presents probabilities, and
agrees with edgecnn.runtime on every test image."""

import json
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from external_tools import require

from edgecnn import runtime
from edgecnn.data import load_dataset

ROOT = Path(__file__).resolve().parents[1]
#: The venv .ci/run makes: `python3 -m venv .venv-mediapipe && .venv-mediapipe/bin/pip install mediapipe==1.2.3`.
PYTHON = ROOT / ".venv-mediapipe" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not (sys.platform == "linux" and platform.machine() == "x86_64"),
    reason="MediaPipe's Python wheels used here are x86-64 Linux",
)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["model_int8.tflite", "model_fp32.tflite"])
def test_mediapipe_image_classifier_runs_the_quick_start_files(default_digits_run, tmp_path, name):
    require(
        PYTHON.exists(),
        f"MediaPipe in {PYTHON.parent.parent} (python3 -m venv .venv-mediapipe && "
        ".venv-mediapipe/bin/pip install mediapipe==1.2.3)",
    )
    out, _ = default_digits_run
    model = runtime.load(out / name)
    images = load_dataset("digits").test.images
    rgb = np.repeat(images, 3, axis=-1)  # MediaPipe takes RGB only; a gray image is R = G = B
    np.save(tmp_path / "images.npy", rgb)
    proc = subprocess.run(
        [str(PYTHON), str(ROOT / "tests" / "mediapipe_classify.py"), str(out / name), str(tmp_path / "images.npy")],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(proc.stdout)
    expected = model.scores(images).argmax(axis=-1)
    assert len(results) == len(images)
    for categories, top in zip(results, expected):
        names = {index: category for index, category, _ in categories}
        assert names == dict(enumerate(model.labels))  # every class, named from the labels file inside
        scores = {index: score for index, _, score in categories}
        # Probabilities: uint8 ones of the int8 file are on a 1/256 grid, so they sum to 1 within that per class.
        assert all(0 <= s <= 1 for s in scores.values()) and sum(scores.values()) == pytest.approx(1, abs=len(scores) / 256)
        assert scores[int(top)] == categories[0][2]  # the runtime's top-1 is MediaPipe's best (ties included)
