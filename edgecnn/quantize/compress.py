"""Smaller downloads with tensorflow-model-optimization: magnitude pruning and weight clustering,
each a short fine-tune of the folded float model, stripped of tfmot's wrappers before int8.

Pruned zeros and clustered weights leave the file's size as it is (every weight is still one
int8); they make it compress: what an app store or an over-the-air update moves. Pruning then
clustering keeps the zeros (tfmot's sparsity-preserving clustering).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import ConfigError

#: Layers with fewer weights are left whole: the stem and the classifier are small and sensitive,
#: and pruning them saves next to nothing.
MIN_PRUNED_WEIGHTS = 4096
PRUNABLE = ("Conv2D", "SeparableConv2D", "Dense")
#: Pruning ramps the sparsity up over all epochs but the last, which trains at the target.
PRUNE_EPOCHS = 4
PRUNE_LEARNING_RATE = 2e-4
CLUSTER_EPOCHS = 3
CLUSTER_LEARNING_RATE = 3e-4
MAX_CLUSTERS = 256


def check_compression(prune: float | None, cluster: int | None) -> None:
    if prune is not None and not 0 < prune < 1:
        raise ConfigError(f"--prune is the share of weights set to zero, between 0 and 1 (0.5 is half); got {prune}")
    if cluster is not None and not 2 <= cluster <= MAX_CLUSTERS:
        raise ConfigError(f"--cluster is the number of distinct weights per layer, 2 to {MAX_CLUSTERS}; got {cluster}")


def sparsity(model) -> float:
    """Share of zero weights over the kernels tfmot prunes."""
    zeros = total = 0
    for layer in model.layers:
        for w in layer.weights:
            if "kernel" in w.name and type(layer).__name__ in PRUNABLE:
                values = w.numpy()
                zeros, total = zeros + int((values == 0).sum()), total + values.size
    return zeros / total if total else 0.0


def prune(model, meta, options):
    """A copy of `model` with ``options.prune`` of its large layers' weights at zero; (model, report)."""
    from .qat import tfmot
    from .tuning import BATCH_SIZE, fine_tune, training_data

    started = time.perf_counter()
    data = training_data(meta, options, "--prune")
    sp = tfmot().sparsity.keras
    steps_per_epoch = int(np.ceil(len(data.train) / BATCH_SIZE))
    schedule = sp.PolynomialDecay(
        initial_sparsity=0.0,
        final_sparsity=options.prune,
        begin_step=0,
        end_step=steps_per_epoch * (PRUNE_EPOCHS - 1),
        frequency=max(1, steps_per_epoch // 4),
    )

    def wrap(layer):
        # Returning the layer itself keeps its trained weights; the wrapper shares them.
        large = type(layer).__name__ in PRUNABLE and layer.count_params() >= MIN_PRUNED_WEIGHTS
        return sp.prune_low_magnitude(layer, pruning_schedule=schedule) if large else layer

    from ..keras_file import copy_model
    from ..tf import keras
    from ..train.onednn import trainable_form

    wrapped = keras().models.clone_model(trainable_form(copy_model(model)), clone_function=wrap)
    pruned_layers = [layer.layer.name for layer in wrapped.layers if hasattr(layer, "pruning_schedule")]
    if not pruned_layers:
        raise ConfigError(
            f"the model has no Conv2D, SeparableConv2D or Dense layer of {MIN_PRUNED_WEIGHTS} weights or more to prune"
        )
    accuracy = fine_tune(wrapped, data, meta.output, PRUNE_EPOCHS, PRUNE_LEARNING_RATE, callbacks=[sp.UpdatePruningStep()])
    stripped = sp.strip_pruning(wrapped)
    return stripped, {
        "target_sparsity": options.prune,
        "sparsity": round(sparsity(stripped), 4),
        "layers": pruned_layers,
        "epochs": PRUNE_EPOCHS,
        "val_accuracy": accuracy,
        "seconds": round(time.perf_counter() - started, 1),
    }


def cluster(model, meta, options, preserve_sparsity: bool = False):
    """A copy of `model` whose layers each hold ``options.cluster`` distinct weights; (model, report)."""
    from .qat import tfmot
    from .tuning import fine_tune, training_data

    started = time.perf_counter()
    data = training_data(meta, options, "--cluster")
    cl = tfmot().clustering.keras
    # cluster_weights changes the model it is given: it gets a copy.
    from ..keras_file import copy_model
    from ..train.onednn import trainable_form

    wrapped = cl.cluster_weights(
        trainable_form(copy_model(model)),
        number_of_clusters=options.cluster,
        cluster_centroids_init=cl.CentroidInitialization.KMEANS_PLUS_PLUS,
        preserve_sparsity=preserve_sparsity,
    )
    accuracy = fine_tune(wrapped, data, meta.output, CLUSTER_EPOCHS, CLUSTER_LEARNING_RATE)
    stripped = cl.strip_clustering(wrapped)
    return stripped, {
        "clusters": options.cluster,
        "preserve_sparsity": preserve_sparsity,
        "epochs": CLUSTER_EPOCHS,
        "val_accuracy": accuracy,
        "seconds": round(time.perf_counter() - started, 1),
    }
