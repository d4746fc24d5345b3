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


def reestimate_bn_statistics(model, images: np.ndarray, batch_size: int = 128, normalization=None) -> int:
    """Set every BN layer's moving mean/variance to its input's population statistics.

    `images` are model inputs, or raw uint8 pixels that `normalization` turns into them one
    batch at a time (a float copy of a large sample would cost four times its memory). Layers
    are visited in topological order, so each sees inputs produced with the corrected statistics
    of the layers before it. Returns the number of layers updated.
    """
    from ..progress import bar
    from ..tf import keras, tensorflow

    tf, k = tensorflow(), keras()
    layers = batchnorm_layers(model)
    for layer in bar(layers, what="BatchNorm statistics", unit="layer"):
        probe = k.Model(model.inputs, layer.input)
        count, mean, m2 = 0, 0.0, 0.0
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            act = probe(normalization.apply(batch) if normalization else batch, training=False)
            # Each batch's moments in TensorFlow, merged in float64 (Chan et al.): no float64 copy of
            # a batch's activations, and no cancellation in E[x^2] - E[x]^2.
            b_mean, b_var = (np.float64(1) * v.numpy() for v in tf.nn.moments(act, axes=list(range(act.shape.rank - 1))))
            n = int(np.prod(act.shape[:-1]))
            delta = b_mean - mean
            total = count + n
            mean = mean + delta * (n / total)
            m2 = m2 + b_var * n + delta**2 * (count * n / total)
            count = total
        weights = {w.name.split("/")[-1].split(":")[0]: w for w in layer.weights}
        weights["moving_mean"].assign(np.asarray(mean, np.float32))
        weights["moving_variance"].assign(np.maximum(m2 / count, 0.0).astype(np.float32))
    return len(layers)


def accuracy(model, batches, training: bool) -> float:
    """Top-1 accuracy over (images, labels) `batches`, with BN in training mode (batch statistics) or inference mode.

    Training mode would update the moving statistics as a side effect, so the BN
    weights are restored afterwards.
    """
    saved = [(layer, layer.get_weights()) for layer in batchnorm_layers(model)] if training else []
    correct = count = 0
    for images, labels in batches:
        logits = model(images, training=training).numpy()
        correct += int((logits.argmax(-1) == np.asarray(labels)).sum())
        count += len(labels)
    for layer, weights in saved:
        layer.set_weights(weights)
    return correct / max(count, 1)


def input_statistics(model, images: np.ndarray, batch_size: int = 128) -> list[tuple[object, np.ndarray, np.ndarray]]:
    """(layer, mean, variance) of every BN layer's input on `images`, the model run as it is (inference mode)."""
    from ..tf import keras

    layers = batchnorm_layers(model)
    if not layers:
        return []
    probe = keras().Model(model.inputs, [layer.input for layer in layers])
    sums = [None] * len(layers)
    squares = [None] * len(layers)
    count = [0] * len(layers)
    for start in range(0, len(images), batch_size):
        acts = probe(images[start : start + batch_size], training=False)
        acts = acts if isinstance(acts, (list, tuple)) else [acts]
        for i, act in enumerate(acts):
            a = np.asarray(act, np.float64).reshape(-1, act.shape[-1])
            sums[i] = a.sum(0) if sums[i] is None else sums[i] + a.sum(0)
            squares[i] = (a**2).sum(0) if squares[i] is None else squares[i] + (a**2).sum(0)
            count[i] += a.shape[0]
    stats = []
    for layer, total, sq, n in zip(layers, sums, squares, count):
        mean = total / n
        stats.append((layer, mean, np.maximum(sq / n - mean**2, 0.0)))
    return stats


def statistics_mismatch(model, images: np.ndarray) -> list[dict]:
    """How far each BN layer's moving statistics are from its input's on `images`.

    ``mean_shift``: RMS over channels of ``|input mean - moving mean| / moving std``;
    ``variance_ratio``: the median channel's ``input variance / moving variance`` (1 when they agree).
    """
    report = []
    for layer, mean, var in input_statistics(model, images):
        weights = {w.name.split("/")[-1].split(":")[0]: w.numpy().astype(np.float64) for w in layer.weights}
        moving_std = np.sqrt(weights["moving_variance"] + layer.epsilon)
        shift = float(np.sqrt(np.mean(((mean - weights["moving_mean"]) / moving_std) ** 2)))
        ratio = float(np.median((var + layer.epsilon) / (weights["moving_variance"] + layer.epsilon)))
        report.append({"layer": layer.name, "mean_shift": round(shift, 4), "variance_ratio": round(ratio, 4)})
    return report
