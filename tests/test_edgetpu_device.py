"""Running on a Coral: device names, the delegate library and device errors, and models that do
not match the device."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from tflite_builder import T, one_op

from edgecnn.artifact import ArtifactMetadata, Quantization, write_sidecar
from edgecnn.cli import main
from edgecnn.errors import ConfigError, MissingDependencyError
from edgecnn.runtime import devices

SHAPE = (16, 16, 3)
LABELS = ("a", "b", "c", "d")


@pytest.fixture()
def compiled_model(tmp_path):
    """A model shaped like edgetpu_compiler's output (one edgetpu-custom-op), with a sidecar."""
    data = one_op("CUSTOM", [T((1, *SHAPE), "uint8")], [T((1, len(LABELS)), "uint8")], custom=devices.EDGETPU_CUSTOM_OP)
    path = tmp_path / "model_int8_edgetpu.tflite"
    path.write_bytes(data)
    q = Quantization("uint8", 0.1, 0)
    write_sidecar(
        path,
        ArtifactMetadata(
            format="tflite",
            precision="int8",
            labels=LABELS,
            input_shape=SHAPE,
            input_dtype="uint8",
            output_dtype="uint8",
            input_quantization=q,
            output_quantization=q,
        ),
    )
    return path


def test_parse_device():
    assert devices.parse_device(None) == devices.CPU == devices.parse_device("cpu")
    assert devices.parse_device("edgetpu") == devices.Device("edgetpu")
    assert devices.parse_device("edgetpu:usb:0").address == "usb:0"
    assert devices.parse_device("edgetpu:pci").address == "pci"
    assert devices.parse_device("edgetpu:1").address == ":1"
    assert str(devices.parse_device("EdgeTPU:usb:0")) == "edgetpu:usb:0"
    for bad in ("gpu", "edgetpu:wifi", "cpu:0", "edgetpu:usb:x"):
        with pytest.raises(ConfigError, match="unknown device"):
            devices.parse_device(bad)
    assert devices.edgetpu_library("Linux") == "libedgetpu.so.1"
    assert devices.edgetpu_library("Darwin") == "libedgetpu.1.dylib" and devices.edgetpu_library("Windows") == "edgetpu.dll"


def test_missing_delegate_library_says_how_to_install_it():
    with pytest.raises(MissingDependencyError, match="libedgetpu1-std") as info:
        devices.load_edgetpu_delegate(devices.parse_device("edgetpu:usb:0"), library="libedgetpu-not-installed.so.1")
    assert "libedgetpu-not-installed.so.1 could not be loaded" in str(info.value)


def test_missing_device_is_a_clear_error(monkeypatch):
    from edgecnn.runtime import interpreters

    monkeypatch.setattr(devices.ctypes, "CDLL", lambda name: object())

    def no_device(library, options):
        assert options == {"device": "usb:0"}
        raise ValueError(f"Failed to load delegate from {library}\n")

    monkeypatch.setattr(interpreters, "load_delegate", no_device)
    with pytest.raises(devices.DeviceError, match="found no Edge TPU at usb:0") as info:
        devices.load_edgetpu_delegate(devices.parse_device("edgetpu:usb:0"))
    assert "Failed to load delegate" in str(info.value) and "lsusb" in str(info.value)


def test_runtime_refuses_mismatched_models_and_devices(compiled_model, converted_nets, tmp_path):
    from edgecnn import runtime

    with pytest.raises(ConfigError, match="compiled for the Edge TPU; run it with --device edgetpu"):
        runtime.load(compiled_model)
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(converted_nets["int8"])
    with pytest.raises(ConfigError, match="not compiled for the Edge TPU"):
        runtime.load(plain, device="edgetpu")
    with pytest.raises(ConfigError, match="runs .tflite models"):
        runtime.load(tmp_path / "model.onnx", device="edgetpu")


def test_predict_and_validate_with_device_edgetpu_without_the_runtime(compiled_model, tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(devices, "edgetpu_library", lambda system=None: "libedgetpu-not-installed.so.1")
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros(SHAPE, np.uint8)).save(image)
    runner = CliRunner()
    for args in (
        ["predict", str(compiled_model), str(image), "--device", "edgetpu:usb:0"],
        ["validate", str(compiled_model), "--device", "edgetpu"],
    ):
        result = runner.invoke(main, args)
        assert result.exit_code == 1, result.output
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("Error: the Edge TPU runtime library") and "libedgetpu1-std" in last
    bad = runner.invoke(main, ["predict", str(compiled_model), str(image), "--device", "tpu"])
    assert bad.exit_code == 1 and "unknown device 'tpu'" in bad.stderr
