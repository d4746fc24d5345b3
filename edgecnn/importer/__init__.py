"""Bring your own model: a Keras 3, tf_keras (.keras/.h5) or SavedModel classifier as edgecnn's own.

The model's config is checked before anything is built (see :mod:`edgecnn.keras_config`),
read into a layer graph, and rebuilt in tf_keras (which folding, tfmot and both converters
need) with its weights copied: training-only layers dropped, a leading Rescaling or
Normalization taken out into the metadata (so the int8 model takes raw pixels) and the
final softmax or sigmoid taken off (the runtime applies it). The rebuilt model is then run
beside the original on the user's images and must give the same outputs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..artifact import Normalization
from ..errors import ConfigError, ModelFileError, first_line
from . import graph as graphs
from .prepare import drop_augmentation, take_head, take_normalization

log = logging.getLogger(__name__)

SOURCE_FORMATS = ("keras3", "tf_keras", "h5", "savedmodel")
#: Largest difference allowed between the original model and its rebuilt form, relative to the
#: outputs' scale: float32 rounding differs between the two Keras versions, not more.
MAX_RELATIVE_DIFFERENCE = 1e-3


def source_format(path: str | Path) -> str:
    """keras3 | tf_keras | h5 | savedmodel, from the file itself."""
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path} does not exist; give a .keras or .h5 model file or a SavedModel folder")
    if path.is_dir():
        return "savedmodel"
    if path.suffix in (".tflite", ".onnx"):
        raise ModelFileError(
            f"{path} is already a {path.suffix} model; export converts Keras models (validate, bench and predict take it as it is)"
        )
    if path.suffix == ".h5":
        return "h5"
    if path.suffix == ".keras" and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as zf:
                version = json.loads(zf.read("metadata.json")[:4096]).get("keras_version", "")
        except (KeyError, ValueError, AttributeError, zipfile.BadZipFile, OSError):
            version = ""
        return "keras3" if str(version).startswith("3") else "tf_keras"
    raise ModelFileError(f"{path} is not a Keras model file (.keras, .h5) or a SavedModel folder")


def source_sha256(path: Path) -> str:
    """The file's sha256; a SavedModel folder's over its files' relative paths and bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Source:
    """A user's model read and prepared for rebuilding."""

    path: Path
    format: str
    sha256: str
    graph: graphs.Graph
    #: Normalisation taken out of the graph (None: the model had none).
    normalization: Optional[Normalization]
    #: ArtifactMetadata.output of the rebuilt model, its output units and the activation taken off.
    output: str
    units: int
    activation: Optional[str]
    dropped: list
    #: The original model: float pixels as it takes them -> its outputs.
    reference: Callable[[np.ndarray], np.ndarray]

    @property
    def provenance(self) -> dict:
        return {"path": str(self.path.resolve()), "format": self.format, "sha256": self.sha256}


def read_source(path: str | Path, trust_model: bool = False) -> Source:
    """Check and read a Keras model the user brings; nothing from the file runs unless `trust_model`."""
    from ..tf import keras as tf_keras

    path = Path(path)
    fmt = source_format(path)
    sha = source_sha256(path)
    if fmt == "keras3":
        model, config = _load_keras3(path, trust_model)
    else:
        from ..keras_file import load_keras_model

        model = load_keras_model(path, trust_model=trust_model)
        config = {"class_name": type(model).__name__, "config": model.get_config()}
        if config["class_name"] not in graphs.MODELS:
            config["class_name"] = "Functional"
    keras = tf_keras()

    def weights_of(names: list[str]):
        layer = model
        for name in names:
            layer = layer.get_layer(name)
        return layer.get_weights()

    try:
        graph = graphs.from_config(config, weights_of, str(path))
    except (KeyError, TypeError, IndexError, ValueError) as exc:
        raise ModelFileError(f"{path}: cannot read its layer graph ({type(exc).__name__}: {first_line(exc, 120)})") from None
    _check_layers(graph, path)
    if fmt == "keras3":
        for node in graph.nodes:
            if node.class_name != "InputLayer":
                node.config = graphs.to_tf_keras_config(node, keras)
    dropped = drop_augmentation(graph)
    channels = graph.nodes[0].config["batch_input_shape"][-1]
    normalization = take_normalization(graph, channels)
    output, units, activation = take_head(graph)

    def reference(pixels: np.ndarray) -> np.ndarray:
        return np.asarray(model(pixels, training=False), np.float32)

    return Source(path, fmt, sha, graph, normalization, output, units, activation, dropped, reference)


def _check_layers(graph: graphs.Graph, path: Path) -> None:
    from ..keras_config import LAYERS

    for node in graph.nodes:
        if node.class_name not in LAYERS:
            raise ModelFileError(f"{path}: layer {node.name!r} ({node.class_name}) is not one edgecnn can carry over")


def _load_keras3(path: Path, trust_model: bool):
    """A Keras 3 model, from a private copy whose config passed the check (Keras 3's safe mode is not enough)."""
    from ..keras_config import read_model_config
    from ..keras_file import checked_config, private_copy

    try:
        import keras
    except ImportError:
        raise ConfigError(f"{path} was saved by Keras 3; reading it needs the keras package: pip install keras") from None
    if not str(getattr(keras, "__version__", "")).startswith("3"):
        raise ConfigError(
            f"{path} was saved by Keras 3 but the keras package here is {keras.__version__}; pip install 'keras>=3'"
        )
    with private_copy(path) as copy:
        config = read_model_config(copy, label=path) if trust_model else checked_config(copy, path)
        try:
            model = keras.saving.load_model(str(copy), compile=False, safe_mode=not trust_model)
        except Exception as exc:  # Keras raises many types for a file it cannot build
            raise ModelFileError(f"{path} is not a loadable Keras 3 model ({type(exc).__name__}: {first_line(exc)})") from None
    return model, config


def input_shape(source: Source, img_size: Optional[int] = None) -> tuple[int, int, int]:
    """(height, width, channels) of the model's input; `img_size` where the model leaves the size open."""
    from ..nets import MAX_INPUT_SIZE, MIN_INPUT_SIZE

    shape = list(source.graph.nodes[0].config["batch_input_shape"][1:])
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ModelFileError(f"{source.path} takes input of shape {tuple(shape)}; edgecnn takes images (H, W, 1 or 3)")
    if img_size is not None:
        if any(d is not None and d != img_size for d in shape[:2]):
            raise ConfigError(f"{source.path} takes {shape[0]}x{shape[1]} images; --img-size {img_size} does not match")
        shape[:2] = [img_size, img_size]
    if shape[0] is None or shape[1] is None:
        raise ConfigError(f"{source.path} takes images of any size; give the size to export with --img-size N")
    if not all(MIN_INPUT_SIZE <= d <= MAX_INPUT_SIZE for d in shape[:2]):
        raise ConfigError(
            f"{source.path} takes {shape[0]}x{shape[1]} images; edgecnn exports {MIN_INPUT_SIZE} to {MAX_INPUT_SIZE} px"
        )
    return tuple(int(d) for d in shape)


def rebuild(source: Source, shape: tuple[int, int, int]):
    """The prepared graph as a tf_keras model taking `shape` images."""
    from ..tf import keras

    return graphs.build(source.graph, keras(), shape)


def _activate(outputs: np.ndarray, activation: Optional[str]) -> np.ndarray:
    from ..runtime.preprocess import softmax

    if activation == "softmax":
        return softmax(outputs)
    if activation == "sigmoid":
        return 1.0 / (1.0 + np.exp(-outputs))
    return outputs


def max_difference(source: Source, model, normalization: Normalization, model_normalization, pixels: np.ndarray) -> float:
    """Largest |original - rebuilt| output on `pixels` (uint8), refused above MAX_RELATIVE_DIFFERENCE.

    The original takes pixels as `normalization` leaves them and applies its own leading
    layers; the rebuilt one takes them as `model_normalization` (both) leaves them.
    """
    reference = source.reference(normalization.apply(pixels))
    rebuilt = _activate(np.asarray(model(model_normalization.apply(pixels), training=False), np.float32), source.activation)
    if reference.shape != rebuilt.shape:
        raise ModelFileError(
            f"{source.path}: the rebuilt model's output {rebuilt.shape} differs from the original's {reference.shape}"
        )
    diff = float(np.max(np.abs(reference - rebuilt))) if reference.size else 0.0
    scale = max(1.0, float(np.max(np.abs(reference))) if reference.size else 1.0)
    if not diff <= MAX_RELATIVE_DIFFERENCE * scale:
        raise ModelFileError(
            f"{source.path}: the model rebuilt in tf_keras differs from the original by up to {diff:.3g} on the given "
            "images; it cannot be exported faithfully (please report the model's layers)"
        )
    return diff
