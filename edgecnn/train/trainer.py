"""Train a registered architecture on a data set, then fix its BatchNorm statistics."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..artifact import ArtifactMetadata
from ..errors import DataError, VerificationError
from ..fileio import staged_folder, write_bytes, write_json
from ..keras_file import copy_model, save_with_metadata
from . import distribute as distribution
from .augment import augmenter
from .bn_stats import accuracy, reestimate_bn_statistics
from .config import TrainConfig
from .onednn import onednn_requested, trainable_form, unsafe_convs
from .precision import check_bf16_supported, with_policy
from .resume import checkpoint_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    metadata: ArtifactMetadata
    train_accuracy: float
    val_accuracy_training_mode: float
    val_accuracy: float
    params: int
    seconds: float
    history: dict = field(default_factory=dict)
    model: object = field(default=None, compare=False, repr=False)
    #: The epoch this run started from: above 0 when it went on from a checkpoint.
    resumed_from_epoch: int = 0
    #: Training images per second over the epochs this run trained (None if it trained none).
    images_per_second: float | None = None
    #: Convs trained as a subsample and a stride-1 conv (see onednn).
    subsampled: tuple = ()
    #: The tf.distribute strategy trained under (None: one device) and its replicas in sync.
    distribute: str | None = None
    replicas: int = 1


def fit(
    dataset,
    config: TrainConfig = TrainConfig(),
    out_dir: str | Path | None = None,
    model=None,
    initial=None,
    resume: bool | None = None,
    checkpoint_dir: str | Path | None = None,
    distribute: str | None = None,
) -> TrainResult:
    """Train `config.arch` on `dataset` (an :class:`edgecnn.data.Dataset`).

    `model` replaces the registered architecture with a Keras model built elsewhere
    (benchmark baselines); its logits output must match the data set's classes.
    `initial` (:class:`edgecnn.importer.fine_tune.Initial`) goes on training an earlier or
    imported model: `model` is then that model (with its head for these classes), and the
    pixels are normalised as it was trained.
    Writes ``model.keras``, ``model.keras.json`` (artifact metadata), ``labels.txt`` and
    ``train.json`` to `out_dir` when given, and checkpoints every epoch there: a run killed
    part-way goes on from its last epoch when run again (`resume`, see :mod:`.resume`).
    The checkpoint lives in `checkpoint_dir` (default `out_dir`; a caller that stages `out_dir`
    gives the folder the stage lands in). `distribute` ("mirrored", "multiworker") trains under
    that tf.distribute strategy (see :mod:`.distribute`); only the chief writes files.
    """
    from ..nets import create_model
    from ..tf import deterministic, keras, tensorflow

    tf, k = tensorflow(), keras()
    strategy = distribution.strategy(distribute)  # before any model is built
    chief = distribution.is_chief(strategy)
    k.utils.set_random_seed(config.seed)
    shape = tuple(dataset.input_shape)
    empty = [name for name in ("train", "val") if len(getattr(dataset, name)) == 0]
    if empty:
        total = len(dataset.train) + len(dataset.val) + len(dataset.test)
        raise DataError(
            f"data set {dataset.name!r} has {total} images in {dataset.num_classes} classes: too few for a "
            f"{' and a '.join(empty)} split; add images (a few dozen per class at least)"
        )
    if config.precision == "bf16":
        check_bf16_supported()
    with strategy.scope():  # the model's variables are the strategy's
        given = model is not None
        if model is None:
            model = create_model(config.arch, shape, dataset.num_classes, width=config.width)
        subsampled = sorted(unsafe_convs(model))
        routed = trainable_form(model)
        if config.precision == "bf16":
            routed = with_policy(routed, "mixed_bfloat16")
        model = copy_model(routed) if given and routed is model and distribute else routed
        _compile(model, config, int(np.ceil(len(dataset.train) / config.batch_size)) * config.epochs)

    normalization = initial.normalization if initial is not None else dataset.normalization
    x_train = normalization.apply(dataset.train.images)
    x_val = normalization.apply(dataset.val.images)
    y_train, y_val = dataset.train.labels, dataset.val.labels

    train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(len(x_train), seed=config.seed)
    train_ds = train_ds.batch(config.batch_size)
    # What 0..255 became, per channel where the normalisation is (ImageNet mean/std): the widest.
    span = float(np.ptp(normalization.apply(np.array([[0], [255]], np.uint8)), axis=0).max())
    augment = augmenter(tf, shape, config.augment, config.seed, flip=dataset.flippable, span=span)
    if augment is not None:
        train_ds = train_ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    train_ds = train_ds.prefetch(tf.data.AUTOTUNE)

    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    checkpoint = None
    if out_dir:
        training = _training(config, dataset, model)
        checkpoint = checkpoint_for(Path(checkpoint_dir or out_dir), training, resume, writer=chief)
    started = time.perf_counter()
    with deterministic():
        history = model.fit(
            train_ds,
            validation_data=(x_val, y_val),
            epochs=config.epochs,
            verbose=verbose,
            callbacks=checkpoint.callbacks(config.epochs) if checkpoint else None,
        ).history
    if distribute:
        # Every worker reads the weights out of the strategy here, in the same order (reading
        # a BatchNorm statistic is a collective); what follows is local to each process.
        with strategy.scope():
            weights = model.get_weights()
        local = k.models.clone_model(model)
        local.set_weights(weights)
        model = local
    if config.precision == "bf16":
        model = with_policy(model, "float32")
    epochs_run = len(history.get("loss", []))
    images_per_second = len(x_train) * epochs_run / (time.perf_counter() - started) if epochs_run else None
    if checkpoint:
        history = checkpoint.history

    # Measure the mode gap before and after fixing the statistics, so a report can show both.
    val_train_mode = accuracy(model, x_val, y_val, training=True, batch_size=config.batch_size)
    val_lagged = accuracy(model, x_val, y_val, training=False)
    log.info("re-estimating BatchNorm statistics on %d training images", min(config.bn_samples, len(x_train)))
    rng = np.random.default_rng(config.seed)
    bn_idx = rng.permutation(len(x_train))[: config.bn_samples]
    reestimate_bn_statistics(model, x_train[bn_idx])
    val_inference = accuracy(model, x_val, y_val, training=False)
    train_inference = accuracy(model, x_train, y_train, training=False)
    seconds = time.perf_counter() - started
    if val_inference < val_train_mode - config.max_bn_gap:
        raise VerificationError(
            f"inference-mode validation accuracy {val_inference:.1%} is far below training-mode {val_train_mode:.1%} "
            "even after re-estimating BatchNorm statistics; train longer or lower the learning rate"
        )

    meta = ArtifactMetadata(
        format="keras",
        precision="float32",
        labels=dataset.labels,
        input_shape=shape,
        normalization=normalization,
        arch=initial.arch if initial is not None else config.arch,
        dataset=dataset.name,
        data_seed=dataset.seed,
        source=initial.source if initial is not None else None,
    )
    result = TrainResult(
        model_path=Path(out_dir) / "model.keras" if out_dir else Path(),
        metadata=meta,
        train_accuracy=train_inference,
        val_accuracy_training_mode=val_train_mode,
        val_accuracy=val_inference,
        params=int(model.count_params()),
        seconds=seconds,
        history={key: [float(v) for v in values] for key, values in history.items()},
        model=model,
        resumed_from_epoch=checkpoint.resumed_from if checkpoint else 0,
        images_per_second=round(images_per_second, 1) if images_per_second else None,
        subsampled=tuple(subsampled),
        distribute=distribute,
        replicas=distribution.replicas(strategy),
    )
    if out_dir and chief:
        _save(model, result, config, dataset, val_lagged, Path(out_dir))
        checkpoint.remove()
    return result


def _compile(model, config: TrainConfig, steps: int) -> None:
    from ..tf import keras

    k = keras()
    schedule = k.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps, alpha=0.01)
    model.compile(
        optimizer=k.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay),
        loss=k.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def _training(config: TrainConfig, dataset, model) -> dict:
    """What a checkpoint must match to be resumed: the options, the data and the model it started from."""
    options = {k: v for k, v in asdict(config).items() if k != "verbose"}
    return {
        "config": options,
        "dataset": [dataset.name, dataset.seed, list(dataset.input_shape), list(dataset.labels), len(dataset.train)],
        "model": [model.name, int(model.count_params()), _weights_digest(model)],
    }


def _weights_digest(model) -> str:
    import hashlib

    digest = hashlib.sha256()
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


def _save(model, result: TrainResult, config: TrainConfig, dataset, val_lagged: float, out: Path) -> None:
    # The model, its sidecar, labels.txt and train.json land together or not at all.
    with staged_folder(out) as stage:
        _write(model, result, config, dataset, val_lagged, stage)


def _write(model, result: TrainResult, config: TrainConfig, dataset, val_lagged: float, out: Path) -> None:
    save_with_metadata(model, out / result.model_path.name, result.metadata)
    write_bytes(out / "labels.txt", ("\n".join(dataset.labels) + "\n").encode())
    write_json(
        out / "train.json",
        {
            "edgecnn_version": __version__,
            "config": asdict(config),
            "dataset": {
                "name": dataset.name,
                "input_shape": list(dataset.input_shape),
                "num_classes": dataset.num_classes,
                "train": len(dataset.train),
                "val": len(dataset.val),
                "test": len(dataset.test),
                "skipped": len(dataset.skipped),
            },
            "params": result.params,
            "seconds": round(result.seconds, 2),
            "resumed_from_epoch": result.resumed_from_epoch,
            "images_per_second": result.images_per_second,
            "onednn": onednn_requested(),
            "subsampled": list(result.subsampled),
            "distribute": {"strategy": result.distribute, "replicas": result.replicas},
            "accuracy": {
                "train_inference_mode": result.train_accuracy,
                "val_training_mode": result.val_accuracy_training_mode,
                "val_inference_mode_before_bn_reestimation": val_lagged,
                "val_inference_mode": result.val_accuracy,
            },
            "history": result.history,
        },
    )
