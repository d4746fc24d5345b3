"""What a Keras model file asks Keras to build, read and checked before Keras builds it.

Deserializing a model config runs code the file chooses: a ``Lambda`` layer carries
Python bytecode (tf_keras's HDF5 loader runs it; it has no safe mode), and a config
entry may name any module to import or function to call (``"module": "this"``,
``{"class_name": "function", "module": "builtins", "config": "print"}``), which even
``safe_mode=True`` lets through. So the config is parsed here as plain JSON, without
Keras, and accepted only if every layer is a built-in one on the list below and every
nested object is a built-in initializer, regularizer, constraint or plain value.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Collection, Iterator, Optional

from .errors import ModelFileError, first_line

#: Model containers whose layers are checked in turn.
MODELS = frozenset({"Functional", "Model", "Sequential"})

#: Built-in layers of edgecnn's nets (edgecnn/nets/blocks.py) and of ordinary image
#: classifiers (tf_keras applications: MobileNetV2/V3, EfficientNet, ResNet, DenseNet,
#: NASNet, Xception). None of them runs code named by the file.
LAYERS = frozenset(
    {
        "Activation",
        "Add",
        "Average",
        "AveragePooling2D",
        "BatchNormalization",
        "Concatenate",
        "Conv2D",
        "Cropping2D",
        "Dense",
        "DepthwiseConv2D",
        "Dropout",
        "ELU",
        "Flatten",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "InputLayer",
        "LayerNormalization",
        "LeakyReLU",
        "MaxPooling2D",
        "Maximum",
        "Minimum",
        "Multiply",
        "Normalization",
        "PReLU",
        "GaussianDropout",
        "GaussianNoise",
        "RandomBrightness",
        "RandomContrast",
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "ReLU",
        "Rescaling",
        "Reshape",
        "SeparableConv2D",
        "Softmax",
        "SpatialDropout2D",
        "Subtract",
        "TFOpLambda",
        "UpSampling2D",
        "ZeroPadding2D",
    }
)

#: What a TFOpLambda layer may call: `x + 3.0` and `x * y` on Keras tensors become one
#: (MobileNetV3's hard-swish). Any other TensorFlow function is refused.
TF_OPS = frozenset(
    {
        "__operators__.add",
        "math.add",
        "math.maximum",
        "math.minimum",
        "math.multiply",
        "math.subtract",
        "math.truediv",
        "nn.relu",
        "nn.relu6",
        "math.sigmoid",
    }
)

#: Activations given by name, as Keras writes its built-in ones.
ACTIVATIONS = frozenset(
    {
        "elu",
        "exponential",
        "gelu",
        "hard_sigmoid",
        "linear",
        "mish",
        "relu",
        "relu6",
        "selu",
        "sigmoid",
        "silu",
        "softmax",
        "softplus",
        "softsign",
        "swish",
        "tanh",
    }
)

#: Objects a layer's config may hold: initializers, regularizers, constraints, the dtype
#: policy, and the encodings of plain values.
OBJECTS = frozenset(
    {
        "Constant",
        "GlorotNormal",
        "GlorotUniform",
        "HeNormal",
        "HeUniform",
        "Identity",
        "LecunNormal",
        "LecunUniform",
        "Ones",
        "Orthogonal",
        "RandomNormal",
        "RandomUniform",
        "TruncatedNormal",
        "VarianceScaling",
        "Zeros",
        "L1",
        "L1L2",
        "L2",
        "OrthogonalRegularizer",
        "MaxNorm",
        "MinMaxNorm",
        "NonNeg",
        "RadialConstraint",
        "UnitNorm",
        "Policy",
        "DTypePolicy",
        "FloatDTypePolicy",
        "TensorShape",
        "__keras_tensor__",
        "__bytes__",
        "__numpy__",
        "__tensor__",
        "__tuple__",
    }
)

#: Modules outside Keras a built-in object may name: EfficientNetV2's classifier bias uses
#: TensorFlow's own constant initializer.
MODULES = frozenset({"tensorflow.python.ops.init_ops_v2"})

#: Largest config.json read from a .keras archive (a 1,000-layer model needs a few MB).
MAX_CONFIG_BYTES = 64 << 20

TRUST_HINT = "load it only if you trust the file: --trust-model (trust_model=True)"


def read_model_config(path: str | os.PathLike, label: str | os.PathLike | None = None) -> dict:
    """The model config of a ``.keras`` archive or an HDF5 model, as plain JSON.

    The format is chosen as ``keras.models.load_model`` chooses it, so the config
    checked is the one Keras would build. Errors name `label` (default: the path).
    """
    path = Path(path)
    label = label or path
    if path.is_dir():
        text = _savedmodel_config(path, label)
    elif str(path).endswith(".keras") and zipfile.is_zipfile(path):
        text = _zip_config(path, label)
    else:
        text = _h5_config(path, label)
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{label}: its model config is not JSON ({first_line(exc)})") from None
    if not isinstance(config, dict):
        raise ModelFileError(f"{label}: its model config is not a JSON object")
    return config


def _zip_config(path: Path, label) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            info = zf.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                raise ModelFileError(f"{label}: its config.json claims {info.file_size:,} bytes; a model config is far smaller")
            with zf.open(info) as f:
                data = f.read(MAX_CONFIG_BYTES + 1)
    except KeyError:
        raise ModelFileError(f"{label} is a zip without config.json, not a Keras model; give a .keras file") from None
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
        raise ModelFileError(f"{label}: cannot read its config.json ({type(exc).__name__}: {first_line(exc)})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ModelFileError(f"{label}: its config.json is larger than {MAX_CONFIG_BYTES:,} bytes")
    return data


def _savedmodel_config(path: Path, label) -> str:
    """The model config tf_keras keeps in a SavedModel's keras_metadata.pb (its root node's metadata)."""
    from tf_keras.protobuf import saved_metadata_pb2

    pb = path / "keras_metadata.pb"
    if not (path / "saved_model.pb").is_file():
        raise ModelFileError(f"{label} is a folder but not a SavedModel (no saved_model.pb); give a model file or a SavedModel")
    if not pb.is_file():
        raise ModelFileError(
            f"{label} is a SavedModel without Keras metadata (not saved by Keras); save the Keras model with model.save()"
        )
    try:
        data = pb.read_bytes()
        if len(data) > MAX_CONFIG_BYTES:
            raise ModelFileError(f"{label}: its keras_metadata.pb is larger than {MAX_CONFIG_BYTES:,} bytes")
        saved = saved_metadata_pb2.SavedMetadata()
        saved.ParseFromString(data)
        root = json.loads(next(n.metadata for n in saved.nodes if n.node_path == "root"))
    except ModelFileError:
        raise
    except Exception as exc:  # DecodeError, StopIteration (no root node), ValueError, OSError
        raise ModelFileError(f"{label}: cannot read its keras_metadata.pb ({type(exc).__name__}: {first_line(exc)})") from None
    config = root.get("model_config") if isinstance(root, dict) else None
    if not isinstance(config, dict):
        config = {"class_name": root.get("class_name"), "config": root.get("config")} if isinstance(root, dict) else None
    return json.dumps(config)


def _h5_config(path: Path, label) -> str | bytes:
    import h5py

    if not h5py.is_hdf5(path):
        raise ModelFileError(
            f"{label} is not a loadable Keras model (neither a .keras zip nor HDF5); give the model.keras written by `edgecnn train`"
        )
    try:
        with h5py.File(path, "r") as f:
            config = f.attrs.get("model_config")
    except Exception as exc:  # h5py raises OSError, KeyError, TypeError ... on a damaged file
        raise ModelFileError(f"{label}: cannot read its HDF5 attributes ({type(exc).__name__}: {first_line(exc)})") from None
    if config is None:
        raise ModelFileError(f"{label} holds no model config (weights only?); give a whole saved model")
    if not isinstance(config, (str, bytes)):
        raise ModelFileError(f"{label}: its model_config attribute is a {type(config).__name__}, not JSON text")
    return config


def refusal(config: dict, custom_objects: Collection[str] = ()) -> Optional[str]:
    """Why building `config` could run code from the file, or None if it cannot.

    `custom_objects`: names of classes the caller supplies; their entries are the
    caller's code, so they are not inspected.
    """
    try:
        return next(_root(config, frozenset(custom_objects)), None)
    except RecursionError:
        return "its model config is nested too deeply"


def _root(entry: Any, custom: frozenset) -> Iterator[str]:
    if not isinstance(entry, dict) or not _one_of(entry.get("class_name"), MODELS | custom):
        cls = entry.get("class_name") if isinstance(entry, dict) else type(entry).__name__
        yield f"it holds a {_quote(cls)}, not a Keras Functional or Sequential model"
        return
    yield from _layer(entry, custom)


def _layer(entry: Any, custom: frozenset) -> Iterator[str]:
    if not isinstance(entry, dict):
        yield f"a layer entry is a {type(entry).__name__}, not a layer"
        return
    cls = entry.get("class_name")
    if not isinstance(cls, str):
        yield f"a layer entry has the class name {_quote(cls)}, not a string"
        return
    config = entry.get("config")
    config = config if isinstance(config, dict) else {}
    label = f"layer {_quote(config.get('name', entry.get('name')))} ({_class(cls)})"
    if cls in custom:
        # Keras looks a class up by its registered name; one the caller did not supply is imported.
        if not _one_of(entry.get("registered_name", cls), custom):
            yield f"{label} is registered as {_quote(entry.get('registered_name'))}, not as a class you supplied"
        return
    if cls == "Lambda":
        yield f"{label} runs Python code stored in the file"
        return
    if cls not in LAYERS | MODELS:
        yield f"{label} is not a built-in Keras layer edgecnn loads"
        return
    yield from _names(entry, label)
    if cls == "TFOpLambda" and not _one_of(config.get("function"), TF_OPS):
        yield f"{label} calls {_quote(config.get('function'))}, not an arithmetic op edgecnn allows"
    if config.get("activation") is not None and not _one_of(config["activation"], ACTIVATIONS):
        yield f"{label} uses activation {_describe(config['activation'])}, not a built-in one"
    layers = config.get("layers", []) if cls in MODELS else []
    if not isinstance(layers, list):
        yield f"{label} has layers that are not a list"
        return
    for layer in layers:
        yield from _layer(layer, custom)
    # compile_config is not read: edgecnn loads with compile=False, which drops it.
    rest = {k: v for k, v in entry.items() if k not in ("class_name", "module", "registered_name", "compile_config")}
    rest["config"] = {k: v for k, v in config.items() if not (k == "layers" and cls in MODELS)}
    yield from _values(rest, label)


def _values(value: Any, label: str) -> Iterator[str]:
    """Serialized objects nested anywhere in a layer's config."""
    if isinstance(value, list):
        for item in value:
            yield from _values(item, label)
    elif isinstance(value, dict):
        if "class_name" in value:
            cls = value["class_name"]
            if cls == "function":
                yield f"{label} names the function {_describe(value)}"
                return
            if cls == "__lambda__":
                yield f"{label} holds Python code"
                return
            if not _one_of(cls, OBJECTS):
                yield f"{label} holds a {_quote(cls)} object, not a built-in initializer, regularizer or constraint"
                return
            yield from _names(value, label)
        for key, item in value.items():
            if key == "module" or str(key).endswith("_module"):
                yield from _module(item, label)
            else:
                yield from _values(item, label)


def _names(entry: dict, label: str) -> Iterator[str]:
    """A built-in's module and registered name, which Keras would otherwise import or look up."""
    yield from _module(entry.get("module"), label)
    registered = entry.get("registered_name")
    if registered is not None and registered != entry.get("class_name"):
        yield f"{label} is registered as {_quote(registered)}, a custom object"


def _module(module: Any, label: str) -> Iterator[str]:
    if module is None:
        return
    if not isinstance(module, str) or not (
        module in ("keras", "tf_keras") or module.startswith(("keras.", "tf_keras.")) or module in MODULES
    ):
        yield f"{label} names the Python module {_quote(module)}"


def _describe(value: Any) -> str:
    if isinstance(value, dict) and value.get("class_name") == "function":
        module, name = value.get("module"), value.get("config")
        return _quote(f"{module}.{name}" if module else name)
    if isinstance(value, dict):
        return f"object {_quote(value.get('class_name'))}"
    return _quote(value)


def _one_of(value: Any, names: frozenset) -> bool:
    """`value` is one of `names` (a hostile config may put a list or dict where a name belongs)."""
    return isinstance(value, str) and value in names


def _class(cls: Any) -> str:
    return cls if isinstance(cls, str) and cls.isidentifier() and len(cls) <= 80 else _quote(cls)


def _quote(value: Any, limit: int = 80) -> str:
    """`value` quoted for a one-line message: repr escapes control characters and newlines."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
