"""BatchNorm statistics: re-estimate them after training, and compare the two BN modes.

Moving averages lag the weights on short schedules (a digits model measured 100%
training accuracy and 14% in inference mode with momentum 0.99). Folding and int8
inherit whatever the moving statistics are, so after training each BN layer gets the
population mean and variance of its input, computed in inference mode with every
earlier layer already corrected.
"""

from __future__ import annotations

import numpy as np


def batchnorm_layers(model) -> list:
    from ..tf import keras

    bn_type = keras().layers.BatchNormalization
    return [layer for layer in model.layers if isinstance(layer, bn_type)]


def reestimate_bn_statistics(model, images: np.ndarray, batch_size: int = 128) -> int:
    """Set every BN layer's moving mean/variance to its input's population statistics.

    `images` are model inputs (already normalised). Layers are visited in topological
    order, so each sees inputs produced with the corrected statistics of the layers
    before it. Returns the number of layers updated.
    """
    from ..tf import keras

    k = keras()
    layers = batchnorm_layers(model)
    for layer in layers:
        probe = k.Model(model.inputs, layer.input)
        total = total_sq = None
        count = 0
        for start in range(0, len(images), batch_size):
            act = probe(images[start : start + batch_size], training=False).numpy().astype(np.float64)
            act = act.reshape(-1, act.shape[-1])
            total = act.sum(0) if total is None else total + act.sum(0)
            total_sq = (act**2).sum(0) if total_sq is None else total_sq + (act**2).sum(0)
            count += act.shape[0]
        mean = total / count
        var = np.maximum(total_sq / count - mean**2, 0.0)
        weights = {w.name.split("/")[-1].split(":")[0]: w for w in layer.weights}
        weights["moving_mean"].assign(mean.astype(np.float32))
        weights["moving_variance"].assign(var.astype(np.float32))
    return len(layers)


def accuracy(model, images: np.ndarray, labels: np.ndarray, training: bool, batch_size: int = 128) -> float:
    """Top-1 accuracy with BN in training mode (batch statistics) or inference mode.

    Training mode would update the moving statistics as a side effect, so the BN
    weights are restored afterwards.
    """
    saved = [(layer, layer.get_weights()) for layer in batchnorm_layers(model)] if training else []
    correct = 0
    for start in range(0, len(images), batch_size):
        logits = model(images[start : start + batch_size], training=training).numpy()
        correct += int((logits.argmax(-1) == labels[start : start + batch_size]).sum())
    for layer, weights in saved:
        layer.set_weights(weights)
    return correct / max(len(images), 1)
