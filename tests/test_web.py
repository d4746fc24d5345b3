"""examples/web in Debian's headless Chromium: the page reads labels, input and normalisation from
the quick-start files themselves and classifies 32 test images as edgecnn.runtime does."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from external_tools import require
from PIL import Image

from edgecnn import runtime
from edgecnn.data import load_dataset

WEB = Path(__file__).resolve().parents[1] / "examples" / "web"
CHROMIUM = Path("/usr/bin/chromium")
IMAGES = 32


@pytest.fixture(scope="module")
def site(default_digits_run, tmp_path_factory):
    """The page and the quick-start files served from one folder, as a user would deploy them."""
    require(CHROMIUM.exists() and shutil.which("node") is not None, "Debian's chromium and Node.js")
    require((WEB / "node_modules" / "playwright-core").is_dir(), "examples/web's npm packages (npm ci in examples/web)")
    out, _ = default_digits_run
    root = tmp_path_factory.mktemp("site")
    (root / "web").symlink_to(WEB)
    models = root / "models"
    models.mkdir()
    for name in ("model_int8.tflite", "model_fp32.tflite", "model_int8.onnx", "model_fp32.onnx"):
        shutil.copy(out / name, models / name)
    images = load_dataset("digits").test.images[:IMAGES]
    paths = []
    for i, image in enumerate(images):
        paths.append(models / f"digit_{i:02d}.png")
        Image.fromarray(image[..., 0]).save(paths[-1])
    sys.path.insert(0, str(WEB))
    try:
        from serve import serve
    finally:
        sys.path.remove(str(WEB))
    url, stop = serve(root)
    yield url, models, paths
    stop()


def _in_browser(url: str, model: str, images) -> dict:
    page = f"{url}web/index.html?model=../models/{model}"
    cmd = ["node", str(WEB / "run_in_browser.mjs"), "--url", page, "--chromium", str(CHROMIUM), "--images", *map(str, images)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["model_int8.tflite", "model_fp32.tflite", "model_int8.onnx", "model_fp32.onnx"])
def test_the_page_classifies_as_the_runtime_does(site, model):
    url, models, images = site
    reference = runtime.load(models / model)
    result = _in_browser(url, model, images)
    assert result["backend"] == ("LiteRT.js wasm" if model.endswith(".tflite") else "onnxruntime-web wasm")
    assert result["labels"] == list(reference.labels)  # read from the file, not from a sidecar
    assert result["input"]["shape"] == [1, *reference.input_shape]
    assert len(result["results"]) == IMAGES
    for item in result["results"]:
        expected = reference.classify(models / item["image"], top_k=3)
        assert item["top"][0]["label"] == expected[0][0], item
        assert item["top"][0]["score"] == pytest.approx(expected[0][1], abs=1e-4)
        scores = [s["score"] for s in item["top"]]
        assert scores == sorted(scores, reverse=True) and 0 <= scores[-1] and sum(scores) <= 1 + 1e-4  # probabilities


@pytest.mark.slow
def test_a_missing_model_is_one_line_and_a_failure(site):
    url, _, images = site
    page = f"{url}web/index.html?model=../models/nope.tflite"
    cmd = ["node", str(WEB / "run_in_browser.mjs"), "--url", page, "--chromium", str(CHROMIUM), "--images", str(images[0])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode != 0 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "404" in proc.stderr
