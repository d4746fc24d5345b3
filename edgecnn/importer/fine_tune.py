"""``edgecnn train --init MODEL``: go on training an earlier or an imported model on new data."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..artifact import NORMALIZATIONS, Normalization, read_sidecar
from ..errors import ConfigError
from .export_step import AssumedNormalization


@dataclass
class Initial:
    """A model to fine-tune, and what training it needs to know about its input."""

    model: object
    input_shape: tuple[int, int, int]
    normalization: Normalization
    labels: Optional[tuple[str, ...]]
    #: The metadata's ``source``: where an imported model came from.
    source: Optional[dict]
    arch: Optional[str]
    #: ArtifactMetadata.output of the model as it is.
    output: str = "logits"


def initial_model(path: str | Path, img_size: Optional[int] = None, trust_model: bool = False) -> Initial:
    """An edgecnn model (with its metadata), or any Keras classifier rebuilt as for export."""
    from . import input_shape, read_source, rebuild

    path = Path(path)
    meta = read_sidecar(path) if path.is_file() else None
    if meta is not None:
        from ..keras_file import load_keras_model

        if img_size is not None and img_size != meta.input_shape[0]:
            raise ConfigError(f"{path} takes {meta.input_shape[0]}x{meta.input_shape[1]} images; drop --img-size")
        model = load_keras_model(path, trust_model=trust_model)
        return Initial(model, tuple(meta.input_shape), meta.normalization, meta.labels, meta.source, meta.arch, meta.output)
    source = read_source(path, trust_model=trust_model)
    shape = input_shape(source, img_size)
    normalization = source.normalization
    if normalization is None:
        warnings.warn(
            AssumedNormalization(f"{path} has no Rescaling or Normalization layer: training feeds it pixels/255 (0..1)"),
            stacklevel=2,
        )
        normalization = NORMALIZATIONS["0,1"]
    return Initial(rebuild(source, shape), shape, normalization, None, source.provenance, None, source.output)


def with_head(initial: Initial, labels: tuple[str, ...], new_head: bool, seed: int = 0):
    """The model with a classifier for `labels`: its own when the classes match, a new one with `new_head`.

    The new head's weights come from `seed`: the same command builds the same model, so a killed
    run's checkpoint is of the same training and goes on."""
    from ..tf import keras

    model = initial.model
    units = model.output_shape[-1]
    if new_head:
        k = keras()
        features = model.layers[-1].input
        init = k.initializers.GlorotUniform(seed=seed)
        logits = k.layers.Dense(len(labels), name="new_logits", kernel_initializer=init)(features)
        return k.Model(model.input, logits, name=model.name)
    if initial.output != "logits":
        raise ConfigError("the model has a one-unit (binary) head; edgecnn trains softmax classifiers: pass --new-head")
    if units != len(labels):
        raise ConfigError(
            f"the model has {units} classes but the data has {len(labels)}; pass --new-head to replace its classifier"
        )
    if initial.labels is not None and tuple(initial.labels) != tuple(labels):
        raise ConfigError(
            f"the model's classes {list(initial.labels)[:5]} differ from the data's {list(labels)[:5]}; "
            "pass --new-head to train a new classifier for them"
        )
    return model
