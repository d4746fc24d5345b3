"""Loading a model never runs code from it: each test builds its own hostile .keras or .h5."""

import json
import subprocess
import sys
import textwrap
import zipfile

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.artifact import ArtifactMetadata, write_sidecar
from edgecnn.calibration import from_path
from edgecnn.cli import main
from edgecnn.errors import DataError, ModelFileError
from edgecnn.keras_file import load_keras_model
from edgecnn.tf import keras

SHAPE = (8, 8, 1)

# The legacy format is the point of several tests here.
pytestmark = pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")


def tiny_model(lam=None, nested=False):
    """Conv -> pool -> Dense, with a Lambda applying `lam` (in a nested Sequential with `nested`)."""
    k = keras()
    inputs = k.Input(SHAPE, name="image")
    x = k.layers.Conv2D(2, 3, name="conv")(inputs)
    if lam is not None:
        layer = k.layers.Lambda(lam, name="payload")
        x = k.Sequential([k.Input(x.shape[1:]), layer], name="inner")(x) if nested else layer(x)
    x = k.layers.GlobalAveragePooling2D(name="pool")(x)
    return k.Model(inputs, k.layers.Dense(10, name="logits")(x))


def edited_keras(path, edit, model=None):
    """A .keras file whose config.json has been passed through `edit(config)`."""
    (model or tiny_model()).save(path)
    with zipfile.ZipFile(path) as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    config = json.loads(files["config.json"])
    edit(config)
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def edited_h5(path, edit, model=None):
    (model or tiny_model()).save(path)
    with h5py.File(path, "r+") as f:
        config = json.loads(f.attrs["model_config"])
        edit(config)
        f.attrs["model_config"] = json.dumps(config)
    return path


def layer(config, name):
    """The entry of the layer called `name`, in the model or a model nested in it."""
    for entry in config["config"]["layers"]:
        if entry["config"]["name"] == name:
            return entry
        if entry["class_name"] in ("Functional", "Sequential"):
            found = layer(entry, name)
            if found:
                return found
    return None


def hostile_lambda_bytecode(marker):
    """What Keras stores for a lambda that creates `marker` when it runs."""
    from tf_keras.src.utils.generic_utils import func_dump

    return func_dump(eval(f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]"))


def refused(path, *words, trust_model=False):
    with pytest.raises(ModelFileError) as err:
        load_keras_model(path, trust_model=trust_model)
    message = str(err.value)
    assert "\n" not in message and "--trust-model" in message, message
    for word in words:
        assert word in message, message
    return message


def test_h5_lambda_bytecode_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    code = hostile_lambda_bytecode(marker)

    def edit(config):
        layer(config, "payload")["config"]["function"] = list(code)

    path = edited_h5(tmp_path / "hostile.h5", edit, model=tiny_model(lambda x: x))
    refused(path, "'payload'", "Lambda", "runs Python code")
    assert not marker.exists()


def test_a_lambda_in_a_nested_model_is_found(tmp_path):
    tiny_model(lambda x: x, nested=True).save(tmp_path / "nested.keras")
    refused(tmp_path / "nested.keras", "'payload'", "Lambda")


# A fresh process: whether `this` was imported or `print` called is only visible in one.
_LOAD_EACH = textwrap.dedent(
    """
    import json, sys
    from edgecnn.errors import ModelFileError
    from edgecnn.keras_file import load_keras_model
    errors = {}
    for path in sys.argv[1:]:
        try:
            load_keras_model(path)
        except ModelFileError as exc:
            errors[path] = str(exc)
    print(json.dumps({"errors": errors, "this_imported": "this" in sys.modules}))
    """
)


def _print_function():
    return {"module": "builtins", "class_name": "function", "config": "print", "registered_name": "function"}


def _lambda_module_this(config):
    function = {"module": "this", "class_name": "function", "config": "s", "registered_name": "s"}
    layer(config, "payload")["config"].update(function=function, function_type="function")


def _lambda_calls_print(config):
    layer(config, "payload")["config"].update(function=_print_function(), function_type="function")


def _activation_calls_print(config):
    layer(config, "logits")["config"]["activation"] = _print_function()


def _initializer_from_this(config):
    layer(config, "conv")["config"]["kernel_initializer"]["module"] = "this"


def _custom_class(config):
    layer(config, "conv").update(class_name="MyConv", module="mypkg.layers", registered_name="Custom>MyConv")


def _registered_name(config):
    layer(config, "conv")["registered_name"] = "Custom>Conv2D"


def _tf_op_writes_a_file(config):
    entry = layer(config, "conv")
    entry["class_name"] = "TFOpLambda"
    entry["config"] = {"name": "conv", "function": "io.write_file", "trainable": True, "dtype": "float32"}


HOSTILE_KERAS = {
    "lambda_module_this": (_lambda_module_this, "Lambda"),
    "lambda_calls_print": (_lambda_calls_print, "Lambda"),
    "activation_calls_print": (_activation_calls_print, "'builtins.print'"),
    "initializer_from_this": (_initializer_from_this, "module 'this'"),
    "custom_class": (_custom_class, "MyConv"),
    "registered_name": (_registered_name, "Custom>Conv2D"),
    "tf_op_writes_a_file": (_tf_op_writes_a_file, "'io.write_file'"),
}


def test_hostile_keras_configs_import_and_call_nothing(tmp_path):
    paths = {}
    for name, (edit, _) in HOSTILE_KERAS.items():
        model = tiny_model(lambda x: x) if name.startswith("lambda") else None
        paths[name] = edited_keras(tmp_path / f"{name}.keras", edit, model=model)
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_EACH, *map(str, paths.values())], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # nothing printed but the result: print was never called
    result = json.loads(lines[0])
    assert not result["this_imported"]
    for name, (_, word) in HOSTILE_KERAS.items():
        message = result["errors"].get(str(paths[name]))
        assert message and "\n" not in message and word in message and "--trust-model" in message, (name, message)


def test_hostile_h5_configs_are_refused(tmp_path):
    refused(edited_h5(tmp_path / "act.h5", _activation_calls_print), "'logits'", "'builtins.print'")
    refused(edited_h5(tmp_path / "custom.h5", _custom_class), "MyConv", "not a built-in Keras layer")


def test_benign_models_load(tmp_path):
    k = keras()
    tiny_model().save(tmp_path / "m.keras")
    tiny_model().save(tmp_path / "m.h5")
    # MobileNetV3's hard-swish: x * relu6(x + 3) / 6, written with TFOpLambda and Multiply.
    inputs = k.Input(SHAPE)
    x = k.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = k.layers.BatchNormalization()(x)
    x = k.layers.Multiply()([x, k.layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)])
    x = k.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = k.layers.SeparableConv2D(4, 3, padding="same")(x)
    x = k.layers.GlobalAveragePooling2D()(x)
    k.Model(inputs, k.layers.Dense(3, activation="softmax")(x)).save(tmp_path / "hard_swish.keras")
    for name in ("m.keras", "m.h5", "hard_swish.keras"):
        assert isinstance(load_keras_model(tmp_path / name), k.Model)


def test_trusted_lambda_models_load(tmp_path):
    model = tiny_model(lambda x: x * 2.0)
    model.save(tmp_path / "lambda.keras")
    model.save(tmp_path / "lambda.h5")
    images = np.random.default_rng(0).random((2, *SHAPE), dtype=np.float32)
    for name in ("lambda.keras", "lambda.h5"):
        refused(tmp_path / name, "Lambda")
        loaded = load_keras_model(tmp_path / name, trust_model=True)
        np.testing.assert_allclose(loaded.predict_on_batch(images), model.predict_on_batch(images), rtol=1e-6)


def test_a_file_that_is_neither_archive_nor_hdf5_is_refused(tmp_path):
    (tmp_path / "junk.keras").write_bytes(b"\x89HDF not really" * 10)
    with pytest.raises(ModelFileError, match="not a loadable Keras model .neither a .keras zip nor HDF5"):
        load_keras_model(tmp_path / "junk.keras")


@pytest.mark.parametrize("command", ["export", "fold", "validate"])
def test_the_commands_refuse_a_hostile_h5_and_name_the_flag(tmp_path, command):
    marker = tmp_path / "pwned"
    code = hostile_lambda_bytecode(marker)
    path = edited_h5(
        tmp_path / "model.h5",
        lambda config: layer(config, "payload")["config"].update(function=list(code)),
        model=tiny_model(lambda x: x),
    )
    write_sidecar(path, ArtifactMetadata("keras", "float32", tuple("0123456789"), SHAPE, dataset="digits"))
    result = CliRunner().invoke(main, [command, str(path)])
    assert result.exit_code == 1, result.output
    error = result.stderr.strip().splitlines()[-1]  # fold warns about its small calibration sample first
    assert error.startswith("Error: ") and "'payload' (Lambda)" in error and "Traceback" not in result.output, result.stderr
    assert not marker.exists()
    assert "--trust-model" in CliRunner().invoke(main, [command, "--help"]).stdout


def _save(path, array, **kwargs):
    np.save(path, array, **kwargs)
    return path


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: _save(p / "scalar.npy", np.uint8(3)), "has shape ()"),
        (lambda p: _save(p / "rank1.npy", np.zeros(5, np.uint8)), "has shape (5,)"),
        (lambda p: _save(p / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True), "allow_pickle"),
        (lambda p: (p / "pickle.npy").write_bytes(b"\x80\x04K\x01.") and p / "pickle.npy", "pickled"),
        (lambda p: np.savez(p / "empty.npz") or p / "empty.npz", "holds no arrays"),
        (lambda p: (p / "junk.npy").write_bytes(b"\x93NUMPY\x09\x09") and p / "junk.npy", "cannot read"),
    ],
)
def test_calibration_arrays_are_never_unpickled(tmp_path, write, message):
    with pytest.raises(DataError) as err:
        from_path(write(tmp_path), SHAPE)
    assert "\n" not in str(err.value) and message in str(err.value)


def test_a_file_swapped_after_the_check_is_never_built(tmp_path, monkeypatch):
    import edgecnn.keras_config as keras_config

    marker = tmp_path / "pwned"
    code = hostile_lambda_bytecode(marker)
    hostile = edited_h5(
        tmp_path / "hostile.h5", lambda c: layer(c, "payload")["config"].update(function=list(code)), tiny_model(lambda x: x)
    )
    path = tmp_path / "model.h5"
    tiny_model().save(path)
    check = keras_config.refusal

    def check_then_swap(config, **kwargs):  # the file is replaced between the check and the load
        problem = check(config, **kwargs)
        path.write_bytes(hostile.read_bytes())
        return problem

    monkeypatch.setattr(keras_config, "refusal", check_then_swap)
    model = load_keras_model(path)
    assert [layer.name for layer in model.layers] == ["image", "conv", "pool", "logits"]
    assert not marker.exists()


@pytest.mark.parametrize("archive", [False, True])
def test_an_array_header_promising_more_than_the_file_holds_is_refused_before_reading(tmp_path, archive):
    path = tmp_path / "calib.npy"
    np.save(path, np.zeros((4, *SHAPE), np.uint8))
    # The shape is forged in place, keeping the header's length (numpy pads it with spaces).
    original = path.read_bytes()
    start, end = original.index(b"(4, 8, 8, 1)"), original.index(b"\n")
    forged = original[:start] + b"(999999999999, 8, 8, 1), }".ljust(end - start) + original[end:]
    assert len(forged) == len(original)
    path.write_bytes(forged)
    if archive:
        with zipfile.ZipFile(tmp_path / "calib.npz", "w") as zf:
            zf.writestr("images.npy", forged)
        path = tmp_path / "calib.npz"
    with pytest.raises(DataError) as err:
        from_path(path, SHAPE)
    assert "\n" not in str(err.value) and "declares shape (999999999999, 8, 8, 1)" in str(err.value), str(err.value)
