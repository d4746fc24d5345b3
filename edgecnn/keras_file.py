"""Loading .keras files with one-line errors, and with their edgecnn metadata."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

from .artifact import ArtifactMetadata, read_sidecar
from .errors import ModelFileError, first_line


def load_keras_model(path: str | os.PathLike, custom_objects: Optional[Mapping[str, Any]] = None, trust_model: bool = False):
    """Load a Keras model without its training config; ModelFileError if that fails.

    Unless `trust_model`, the model config is checked before Keras reads it and a model
    that names code (a Lambda, a custom layer, a module or function) is refused, since
    building it would run that code. `trust_model=True` is for files you trust: it loads
    them as Keras would, with ``safe_mode=False``.
    """
    path = Path(path)
    if not (path.is_file() or path.is_dir()):
        raise ModelFileError(f"model file not found: {path}")
    if trust_model:
        return _load(path, path, custom_objects, trust_model)
    with private_copy(path) as copy:
        checked_config(copy, path, custom_objects=tuple(custom_objects or ()))
        return _load(copy, path, custom_objects, trust_model)


@contextlib.contextmanager
def private_copy(path: Path) -> Iterator[Path]:
    """A copy of a model file (or SavedModel folder) in a private folder, to check and load from one
    set of bytes: a file swapped after the check is never built."""
    with tempfile.TemporaryDirectory(prefix="edgecnn-model-") as private:
        copy = Path(private) / path.name
        try:
            shutil.copytree(path, copy) if path.is_dir() else shutil.copyfile(path, copy)
        except (OSError, shutil.Error, RecursionError) as exc:
            raise ModelFileError(f"cannot read {path} ({exc.strerror or exc}); check the path and its permissions") from None
        yield copy


def checked_config(copy: Path, label: Path, custom_objects=()) -> dict:
    """The model config of `copy`, refused with one line (naming `label`) if building it could run code."""
    from .keras_config import TRUST_HINT, read_model_config, refusal

    config = read_model_config(copy, label=label)
    problem = refusal(config, custom_objects=custom_objects)
    if problem:
        raise ModelFileError(f"{label}: {problem}; {TRUST_HINT}")
    return config


def _load(path: Path, label: Path, custom_objects, trust_model: bool):
    from .tf import keras as _keras

    keras = _keras()
    try:
        model = keras.models.load_model(str(path), compile=False, custom_objects=custom_objects, safe_mode=not trust_model)
    except Exception as exc:  # Keras raises many types for a foreign or truncated file
        raise ModelFileError(f"{label} is not a loadable Keras model ({type(exc).__name__}: {first_line(exc)})") from None
    if not isinstance(model, keras.Model):
        raise ModelFileError(f"{label} holds a {type(model).__name__}, not a Keras model")
    return model


def copy_model(model):
    """A new model with `model`'s architecture and a copy of its weights: changing one leaves the other."""
    from .tf import keras

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def save_with_metadata(model, path: str | os.PathLike, meta: ArtifactMetadata) -> Path:
    """A Keras model and its sidecar, written so that both are new or neither is."""
    from .artifact import sidecar_path
    from .fileio import atomic_paths, json_bytes

    path = Path(path)
    # Keras chooses the file format from the suffix: the temporary file keeps .keras (atomic_paths does).
    with atomic_paths(path, sidecar_path(path)) as (tmp, sidecar):
        model.save(tmp)
        sidecar.write_bytes(json_bytes(meta.to_dict()))
    return path


def metadata_for(path: str | os.PathLike) -> ArtifactMetadata:
    """The ``.json`` metadata beside a model written by `edgecnn train` (or fold)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path} does not exist; give the model.keras written by `edgecnn train`")
    if path.suffix not in (".keras", ".h5"):
        raise ModelFileError(f"{path} is not a Keras model file (.keras); give the model.keras written by `edgecnn train`")
    meta = read_sidecar(path)
    if meta is None:
        raise ModelFileError(
            f"{path} has no metadata file {path.with_suffix('.json').name} beside it; train it with `edgecnn train`"
        )
    return meta


def load_with_metadata(path: str | os.PathLike, trust_model: bool = False) -> tuple[Any, ArtifactMetadata]:
    """A model written by `edgecnn train` (or fold) and its metadata; `trust_model` as for load_keras_model."""
    meta = metadata_for(path)
    model = load_keras_model(path, trust_model=trust_model)
    check_outputs(model, meta, path)
    return model, meta


def check_outputs(model, meta: ArtifactMetadata, path) -> None:
    """ModelFileError unless the model has one output per label its metadata names (one for a binary head).

    Otherwise every file exported from it would name the wrong class, or be refused only on the device."""
    units = int(model.output_shape[-1])
    expected = 1 if meta.output.startswith("binary") else len(meta.labels)
    if units != expected:
        raise ModelFileError(
            f"{path} has {units} output(s) but its metadata names {len(meta.labels)} labels ({meta.output}); "
            "give its metadata one label per class (model.keras.json), or retrain it on the data"
        )
