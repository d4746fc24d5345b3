"""The short fine-tunes that quantization-aware training, pruning and clustering run: the model's
own data set (or --data), its normalisation, a low constant learning rate, the trainer's augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

BATCH_SIZE = 64


@dataclass(frozen=True)
class TrainingData:
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    name: str


def training_data(meta, options, what: str) -> TrainingData:
    """The labelled training and validation images of the model's data set, normalised for it."""
    from ..data import dataset_for

    if not (options.data or meta.dataset):
        raise ConfigError(f"{what} trains on labelled images: pass --data NAME or a folder of class folders")
    dataset = dataset_for(meta, options.data, options.split)
    if len(dataset.train) == 0:
        raise ConfigError(f"{what} needs training images; {dataset.name!r} has none")
    norm = meta.normalization
    train, val = dataset.train.load(), dataset.val.load()
    return TrainingData(norm.apply(train.images), train.labels, norm.apply(val.images), val.labels, dataset.name)


def _loss(k, output: str):
    if output == "logits":
        return k.losses.SparseCategoricalCrossentropy(from_logits=True)
    if output == "binary_logit":
        return k.losses.BinaryCrossentropy(from_logits=True)
    raise ConfigError(f"fine-tuning needs a model that outputs logits; this one outputs {output}")


def fine_tune(model, data: TrainingData, output: str, epochs: int, learning_rate: float, callbacks=(), teacher=None):
    """Train `model` in place for `epochs`; returns the validation accuracy in inference mode.

    With `teacher` (the float model), `model` learns the teacher's logits on the same augmented
    images instead of the labels: what it is asked to be is the float model in int8.
    """
    from ..tf import deterministic, keras, tensorflow
    from ..train.augment import augmenter

    tf, k = tensorflow(), keras()
    k.utils.set_random_seed(0)
    loss = k.losses.MeanSquaredError() if teacher is not None else _loss(k, output)
    model.compile(optimizer=k.optimizers.Adam(learning_rate), loss=loss)
    shape = tuple(data.x.shape[1:])
    y = data.y.astype(np.float32)[:, None] if output == "binary_logit" else data.y
    batches = tf.data.Dataset.from_tensor_slices((data.x, y)).shuffle(len(data.x), seed=0).batch(BATCH_SIZE)
    batches = batches.map(augmenter(tf, shape, "light", 0))  # translations only: never a flip the data may forbid
    if teacher is not None:
        batches = batches.map(lambda x, _: (x, teacher(x, training=False)))
    with deterministic():
        model.fit(batches.prefetch(tf.data.AUTOTUNE), epochs=epochs, callbacks=list(callbacks), verbose=0)
    return validation_accuracy(model, data, output)


def validation_accuracy(model, data: TrainingData, output: str) -> float | None:
    from ..runtime.preprocess import top_class

    if len(data.x_val) == 0:
        return None
    scores = np.concatenate([np.asarray(model(data.x_val[i : i + 256], training=False)) for i in range(0, len(data.x_val), 256)])
    return float((top_class(scores, output) == data.y_val).mean())
