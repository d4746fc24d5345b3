"""Train a registered architecture on a data set, then fix its BatchNorm statistics."""

from __future__ import annotations

import logging
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..artifact import ArtifactMetadata
from ..data.split_file import SPLIT_FILE, split_record
from ..errors import DataError, VerificationError
from ..fileio import staged_folder, write_bytes, write_json
from ..keras_file import copy_model, save_with_metadata
from . import distribute as distribution
from . import stream
from .augment import augmenter
from .bn_stats import accuracy, reestimate_bn_statistics
from .config import TrainConfig
from .onednn import onednn_requested, trainable_form, unsafe_convs
from .precision import check_bf16_supported, with_policy
from .resume import checkpoint_for
from .stream import Cache

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
    #: Seconds each epoch this run trained took, validation included.
    epoch_seconds: tuple = ()
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
    cache_dir: str | Path | None = None,
    keep_checkpoint: bool = False,
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
    A folder data set streams from its files; `cache_dir` keeps its decoded pixels there after
    the first epoch (see :mod:`.stream`). `keep_checkpoint` leaves the checkpoint to a caller
    whose run goes on after training (it removes it with :func:`.resume.remove_checkpoint`).
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
    # What 0..255 became, per channel where the normalisation is (ImageNet mean/std): the widest.
    span = float(np.ptp(normalization.apply(np.array([[0], [255]], np.uint8)), axis=0).max())
    augment = augmenter(tf, shape, config.augment, config.seed, flip=dataset.flippable, span=span)
    cache = Cache(Path(cache_dir) / distribution.task_name(strategy)) if cache_dir else None
    cached = {name: cache.prefix(getattr(dataset, name), name) for name in ("train", "val")} if cache else {}

    def passes(name, **kw):
        split = getattr(dataset, name)
        return stream.batches(tf, split, normalization, config.batch_size, cache=cached.get(name), **kw)

    train_ds = passes("train", seed=config.seed, augment=augment)

    verbose = config.verbose if config.verbose is not None else (1 if sys.stdout.isatty() else 2)
    checkpoint = None
    if out_dir:
        training = _training(config, dataset, model)
        checkpoint = checkpoint_for(Path(checkpoint_dir or out_dir), training, resume, writer=chief)
    started = time.perf_counter()
    epoch_seconds: list[float] = []  # wall time of each epoch this run trained (a cached folder's first is the slow one)
    timer = k.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: epoch_seconds.append(time.perf_counter()),
        on_epoch_end=lambda epoch, logs: epoch_seconds.append(round(time.perf_counter() - epoch_seconds.pop(), 2)),
    )
    with deterministic():
        history = model.fit(
            train_ds,
            validation_data=passes("val"),
            epochs=config.epochs,
            verbose=verbose,
            callbacks=[timer, *(checkpoint.callbacks(config.epochs) if checkpoint else [])],
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
    images_per_second = len(dataset.train) * epochs_run / (time.perf_counter() - started) if epochs_run else None
    if checkpoint:
        history = checkpoint.history

    # Measure the mode gap before and after fixing the statistics, so a report can show both.
    val_train_mode = accuracy(model, passes("val"), training=True)
    val_lagged = accuracy(model, passes("val"), training=False)
    log.info("re-estimating BatchNorm statistics on %d training images", min(config.bn_samples, len(dataset.train)))
    rng = np.random.default_rng(config.seed)
    # Quiet: a file that fails here is in the warning below, with those training met.
    sample = dataset.train.take(rng.permutation(len(dataset.train))[: config.bn_samples], warn=False)
    reestimate_bn_statistics(model, sample.images, normalization=normalization)
    val_inference = accuracy(model, passes("val"), training=False)
    train_inference = accuracy(model, passes("train"), training=False)
    if cache:
        cache.close()
    streamed = dataset.unreadable[len(dataset.skipped) :]  # met while training: only train and val were read
    if streamed:
        warnings.warn(
            f"skipped {len(streamed)} image file(s) that could not be decoded while training "
            f"(first: {streamed[0][0]}: {streamed[0][1]})",
            stacklevel=2,
        )
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
        epoch_seconds=tuple(epoch_seconds),
        subsampled=tuple(subsampled),
        distribute=distribute,
        replicas=distribution.replicas(strategy),
    )
    if out_dir and chief:
        _save(model, result, config, dataset, val_lagged, Path(out_dir))
        if not keep_checkpoint:
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
    split = split_record(dataset)
    if split is not None:
        write_json(out / SPLIT_FILE, split)
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
                "skipped": len(dataset.unreadable),
            },
            "params": result.params,
            "seconds": round(result.seconds, 2),
            "resumed_from_epoch": result.resumed_from_epoch,
            "images_per_second": result.images_per_second,
            "epoch_seconds": list(result.epoch_seconds),
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
