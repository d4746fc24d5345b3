"""Packaging: the Pi install carries no TensorFlow, and every subpackage ships."""

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_runtime_install_pulls_no_training_toolchain():
    deps = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    for heavy in ("tensorflow", "tf-keras", "tf2onnx", "onnx", "scikit-learn", "matplotlib"):
        assert heavy not in deps
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"train", "onnx", "test", "all"} <= set(extras)
    assert any(d.startswith("tensorflow") for d in extras["train"])


def test_every_subpackage_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "edgecnn").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set(), "add these packages to [tool.setuptools] packages in pyproject.toml"
    assert "edgecnn.recipes" in listed


def test_importing_edgecnn_does_not_import_tensorflow():
    import subprocess

    code = "import sys, edgecnn, edgecnn.runtime, edgecnn.evaluate, edgecnn.data, edgecnn.cli; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
