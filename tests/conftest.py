import os
import stat
import sys
from pathlib import Path

# Keep TensorFlow's C++ logging out of test output; the project sets the rest itself.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def isolated_model_registry(monkeypatch):
    """Models a test registers are gone after it: the registry is global state."""
    from edgecnn.nets import list_models, registry

    list_models()  # load the built-in recipes into the real registry first
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture(scope="session")
def digits_small():
    """Digits at 16x16: big enough to learn, small enough to train in seconds."""
    from edgecnn.data import load_dataset

    return load_dataset("digits", image_size=16)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, digits_small):
    """A folder holding model.keras (+ metadata) of a briefly trained xception-pico."""
    from edgecnn.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("trained")
    fit(digits_small, TrainConfig(arch="xception-pico", epochs=4, verbose=0), out)
    return out


@pytest.fixture(scope="session")
def exported_run(tmp_path_factory, trained_run):
    """trained_run exported to float and int8 TFLite in its own folder."""
    import shutil

    from edgecnn.export import ExportOptions, export_model

    out = tmp_path_factory.mktemp("exported")
    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, out / name)
    result = export_model(out / "model.keras", out, ExportOptions(int8=True, calib_size=120))
    return out, result


# --- Edge TPU: converted models and the compiler --------------------------------------------


class _RandomImages:
    """Eight random uint8 images as a calibration set."""

    def __init__(self, shape):
        self.shape = shape

    def batches(self, normalization):
        rng = np.random.default_rng(0)
        for _ in range(8):
            yield normalization.apply(rng.integers(0, 256, (1, *self.shape)))


@pytest.fixture(scope="session")
def converted_nets():
    """A small untrained conv net (16x16x3 in, 4 classes) converted to TFLite bytes.

    "int8" as ``--target edgetpu`` converts it; "middle" the same with a LEAKY_RELU between
    its convolutions; "float" not quantized; "float_io" int8 kernels behind float input and output.
    """
    from edgecnn.artifact import Normalization
    from edgecnn.export.tflite import convert_float, convert_int8
    from edgecnn.tf import keras

    K = keras()
    K.utils.set_random_seed(0)
    shape = (16, 16, 3)

    def net(middle=None):
        inp = K.Input(shape)
        x = K.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
        if middle is not None:
            x = middle(x)
        x = K.layers.DepthwiseConv2D(3, padding="same")(x)
        x = K.layers.Conv2D(16, 1, activation="relu")(x)
        x = K.layers.GlobalAveragePooling2D()(x)
        return K.Model(inp, K.layers.Dense(4)(x))

    def int8(model, io="uint8"):
        return convert_int8(model, shape, _RandomImages(shape), Normalization(), io, per_tensor_dense=True)

    plain = net()
    return {
        "int8": int8(plain),
        "middle": int8(net(K.layers.LeakyReLU(0.1))),
        "float": convert_float(plain, shape),
        "float_io": int8(plain, io="float32"),
    }


@pytest.fixture()
def fake_edgetpu_compiler(tmp_path, monkeypatch):
    """tests/fake_edgetpu_compiler.py on PATH as edgetpu_compiler."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "edgetpu_compiler"
    exe.write_text(f"#!{sys.executable}\n" + (TESTS / "fake_edgetpu_compiler.py").read_text())
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(TESTS.parent))
    return exe


@pytest.fixture()
def no_edgetpu_compiler(tmp_path, monkeypatch):
    """A PATH on which edgetpu_compiler is not installed."""
    empty = tmp_path / "empty_bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


@pytest.fixture(scope="session")
def default_digits_run(tmp_path_factory):
    """`edgecnn run --format tflite,onnx` with every other setting at its default, made once:
    the README's quick-start model, shared by the floors of the run, ONNX and ARM tests."""
    import json

    from click.testing import CliRunner

    from edgecnn.cli import main

    out = tmp_path_factory.mktemp("default-digits-run") / "digits"
    result = CliRunner().invoke(main, ["run", "--format", "tflite,onnx", "--out", str(out), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr[-2000:]
    return out, json.loads(result.stdout)
