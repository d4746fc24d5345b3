"""The short fine-tunes that quantization-aware training, pruning and clustering run: the model's
own data set (or --data), its normalisation, a low constant learning rate, the trainer's augmentation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

BATCH_SIZE = 64


@dataclass(frozen=True)
class TrainingData:
    """The model's training and validation splits (in memory, or files streamed as training does)."""

    train: object  # edgecnn.data Split or FileSplit
    val: object
    normalization: object  # edgecnn.artifact.Normalization
    name: str

    def batches(self, tf, part: str, **kw):
        from ..train.stream import batches

        return batches(tf, getattr(self, part), self.normalization, BATCH_SIZE, **kw)


def training_data(meta, options, what: str) -> TrainingData:
    """The labelled training and validation images of the model's data set, normalised for it."""
    from ..data import dataset_for

    if not (options.data or meta.dataset):
        raise ConfigError(f"{what} trains on labelled images: pass --data NAME or a folder of class folders")
    dataset = dataset_for(meta, options.data, options.split)
    if len(dataset.train) == 0:
        raise ConfigError(f"{what} needs training images; {dataset.name!r} has none")
    return TrainingData(dataset.train, dataset.val, meta.normalization, dataset.name)


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
    # Translations only: never a flip the data may forbid.
    batches = data.batches(tf, "train", seed=0, augment=augmenter(tf, data.train.image_shape, "light", 0))
    if output == "binary_logit":
        batches = batches.map(lambda x, y: (x, tf.cast(y, tf.float32)[:, None]))
    if teacher is not None:
        batches = batches.map(lambda x, _: (x, teacher(x, training=False)))
    with deterministic():
        model.fit(batches.prefetch(tf.data.AUTOTUNE), epochs=epochs, callbacks=list(callbacks), verbose=0)
    return validation_accuracy(model, data, output)


def validation_top(model, data: TrainingData, output: str) -> tuple[np.ndarray, np.ndarray]:
    """(the model's top class, the label) of every validation image."""
    from ..runtime.preprocess import top_class
    from ..tf import tensorflow

    tops, labels = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for x, y in data.batches(tensorflow(), "val"):
        tops.append(top_class(np.asarray(model(x, training=False)), output))
        labels.append(np.asarray(y))
    return np.concatenate(tops), np.concatenate(labels)


def validation_accuracy(model, data: TrainingData, output: str) -> float | None:
    if len(data.val) == 0:
        return None
    top, labels = validation_top(model, data, output)
    return float((top == labels).mean()) if len(labels) else None
