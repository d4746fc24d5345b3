"""Cross-layer equalization and bias correction (Nagel et al., "Data-Free Quantization Through
Weight Equalization and Bias Correction", ICCV 2019) for a folded tf_keras model.

ReLU, max pooling and average pooling commute with a positive per-channel scale, so for a
pair ``A -> [ReLU / pool / dropout] -> B`` where nothing else reads A's output, dividing A's
output channel i (weights and bias) by ``s_i`` and multiplying B's input channel i by ``s_i``
leaves the float function unchanged. Choosing ``s_i = sqrt(r1_i / r2_i)``, with ``r1_i`` the
range of A's weights for output channel i and ``r2_i`` that of B's for input channel i, gives
both the same range, whatever scales training or folding left in the model: a channel scaled
by 1000 comes out as it would have without it. The activation between them (one scale per
tensor in TFLite and ONNX Runtime) then spans comparable ranges on every channel. The pairs
include the depthwise -> pointwise halves of every SeparableConv2D; the sweep repeats until
the scales settle, since one layer can end one pair and start the next.

Bias correction then subtracts, from each layer's bias, the mean output error its rounded
int8 weights (per-channel, symmetric, as TFLite quantizes them) add on the calibration data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Sweeps over all pairs; each moves every scale closer to 1, and a few suffice for chains.
MAX_SWEEPS = 50
#: A sweep whose largest change of a scale is below this (relative) ends the iteration.
TOLERANCE = 1e-4
#: Integer levels of per-channel symmetric int8 weights (-127..127).
WEIGHT_LEVELS = 127


@dataclass
class _Part:
    """One side of a pair: the weights whose channel `axis` meets the shared tensor.

    `bias` is scaled with an output side (a producer); an input side has none to scale.
    """

    layer: object
    kernel: str
    axis: int
    bias: str | None = None

    def _get(self, name):
        return _weights(self.layer)[name]

    def ranges(self) -> np.ndarray:
        w = self._get(self.kernel).numpy()
        return np.abs(np.moveaxis(w, self.axis, -1)).reshape(-1, w.shape[self.axis]).max(axis=0)

    def multiply(self, s: np.ndarray) -> None:
        var = self._get(self.kernel)
        shape = [1] * len(var.shape)
        shape[self.axis] = -1
        var.assign(var.numpy() * s.reshape(shape).astype(var.dtype.as_numpy_dtype))
        if self.bias is not None:
            b = self._get(self.bias)
            b.assign(b.numpy() * s.astype(b.dtype.as_numpy_dtype))


@dataclass
class Pair:
    """Channels that one layer (or the depthwise half of a SeparableConv2D) writes and the next reads."""

    producer: str
    consumer: str
    output: _Part
    input: _Part

    def scale(self, s: np.ndarray) -> None:
        """Divide the producer's channels by `s` and multiply the consumer's: the float function is unchanged."""
        s = np.asarray(s, dtype=np.float64)
        self.output.multiply(1.0 / s)
        self.input.multiply(s)

    def balance(self) -> float:
        """Scale both sides to equal ranges; returns the largest relative change made."""
        r1, r2 = self.output.ranges().astype(np.float64), self.input.ranges().astype(np.float64)
        live = (r1 > 0) & (r2 > 0)  # a dead channel has nothing to balance
        s = np.ones_like(r1)
        s[live] = np.sqrt(r1[live] / r2[live])
        self.scale(s)
        return float(np.max(np.abs(s - 1.0))) if len(s) else 0.0


def _class(layer) -> str:
    return type(layer).__name__


def _weights(layer) -> dict:
    """A layer's variables by their own names ("kernel", "bias", "depthwise_kernel", ...)."""
    return {v.name.split("/")[-1].split(":")[0]: v for v in layer.weights}


def _output_part(layer) -> _Part | None:
    """The weights of `layer` along its output channels, if it is a linear layer whose output may be scaled."""
    cls = _class(layer)
    activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
    if activation not in ("linear", "relu") or not getattr(layer, "use_bias", False):
        return None  # a bias is where the scale of an affine output goes (every folded layer has one)
    if cls == "Conv2D" and layer.groups == 1:
        return _Part(layer, "kernel", 3, "bias")
    if cls == "Dense":
        return _Part(layer, "kernel", 1, "bias")
    if cls == "DepthwiseConv2D" and layer.depth_multiplier == 1:
        return _Part(layer, "depthwise_kernel", 2, "bias")
    if cls == "SeparableConv2D":
        return _Part(layer, "pointwise_kernel", 3, "bias")
    return None


def _input_part(layer) -> _Part | None:
    cls = _class(layer)
    if cls == "Conv2D" and layer.groups == 1:
        return _Part(layer, "kernel", 2)
    if cls == "Dense":
        return _Part(layer, "kernel", 0)
    if cls in ("DepthwiseConv2D", "SeparableConv2D") and layer.depth_multiplier == 1:
        return _Part(layer, "depthwise_kernel", 2)
    return None


def _passes_scale(layer) -> bool:
    """Whether `layer` commutes with a positive per-channel scale (relu(x / s) = relu(x) / s)."""
    cls = _class(layer)
    if cls == "Activation":
        return getattr(layer.activation, "__name__", "") in ("relu", "linear")
    if cls == "ReLU":
        return layer.max_value is None and float(layer.threshold) == 0.0 and float(layer.negative_slope) == 0.0
    return cls in ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dropout")


def _consumers(model) -> dict[str, list]:
    inside = {id(layer) for layer in model.layers}
    found: dict[str, list] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for parent in node.inbound_layers if isinstance(node.inbound_layers, list) else [node.inbound_layers]:
                if id(parent) in inside and id(layer) in inside:
                    found[parent.name].append(layer)
    return found


def channel_pairs(model) -> list[Pair]:
    """Every pair of `model` whose shared channels can be rescaled, in layer order."""
    consumers = _consumers(model)
    outputs = {t.name.split("/")[0] for t in model.outputs}
    pairs = []
    for layer in model.layers:
        if _class(layer) == "SeparableConv2D" and layer.depth_multiplier == 1:
            pairs.append(
                Pair(
                    f"{layer.name} (depthwise)",
                    layer.name,
                    _Part(layer, "depthwise_kernel", 2),
                    _Part(layer, "pointwise_kernel", 2),
                )
            )
        out = _output_part(layer)
        if out is None:
            continue
        current = layer
        while current.name not in outputs and len(consumers[current.name]) == 1:
            following = consumers[current.name][0]
            if len(following._inbound_nodes) != 1:
                break  # a layer called twice would see the scale twice
            if _passes_scale(following):
                current = following
                continue
            part = _input_part(following)
            if part is not None:
                pairs.append(Pair(layer.name, following.name, out, part))
            break
    return pairs


def equalize(model) -> int:
    """Cross-layer equalization in place; returns the number of pairs balanced."""
    pairs = channel_pairs(model)
    for _ in range(MAX_SWEEPS):
        if max((p.balance() for p in pairs), default=0.0) < TOLERANCE:
            break
    return len(pairs)


def _rounded(w: np.ndarray, axis: int) -> np.ndarray:
    """`w` rounded to per-channel symmetric int8 along `axis`, as the converters quantize weights."""
    moved = np.moveaxis(w, axis, -1)
    scale = np.abs(moved).reshape(-1, moved.shape[-1]).max(axis=0) / WEIGHT_LEVELS
    scale = np.where(scale > 0, scale, 1.0)
    return np.moveaxis(np.round(moved / scale) * scale, -1, axis)


def _bias_shift(layer, mean_in: np.ndarray) -> np.ndarray | None:
    """The mean output error int8 weights add to `layer` given its mean input per channel."""
    cls, w = _class(layer), {name: v.numpy().astype(np.float64) for name, v in _weights(layer).items()}
    if cls == "Conv2D" and layer.groups == 1:
        return np.einsum("hwio,i->o", _rounded(w["kernel"], 3) - w["kernel"], mean_in)
    if cls == "Dense":
        return mean_in @ (_rounded(w["kernel"], 1) - w["kernel"])
    if cls == "DepthwiseConv2D" and layer.depth_multiplier == 1:
        return np.einsum("hwc,c->c", (_rounded(w["depthwise_kernel"], 2) - w["depthwise_kernel"])[..., 0], mean_in)
    if cls == "SeparableConv2D" and layer.depth_multiplier == 1:
        dw, pw = w["depthwise_kernel"][..., 0], w["pointwise_kernel"][0, 0]
        dw_q, pw_q = _rounded(w["depthwise_kernel"], 2)[..., 0], _rounded(w["pointwise_kernel"], 3)[0, 0]
        mid, mid_q = np.einsum("hwc,c->c", dw, mean_in), np.einsum("hwc,c->c", dw_q, mean_in)
        return mid_q @ pw_q - mid @ pw
    return None


def correct_biases(model, inputs: np.ndarray, batch_size: int = 64) -> int:
    """Subtract each layer's expected int8 weight error from its bias; returns the layers corrected.

    The mean input of every layer (per channel, over the images and positions of `inputs`)
    comes from the float model; padding at the borders is ignored, as in the paper.
    """
    from ..tf import keras

    layers = [layer for layer in model.layers if _output_part(layer) is not None]
    if not layers:
        return 0
    probe = keras().Model(model.inputs, [layer.input for layer in layers])
    sums, rows = [0.0] * len(layers), [0] * len(layers)
    for i in range(0, len(inputs), batch_size):
        outs = probe(inputs[i : i + batch_size], training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        for j, t in enumerate(outs):
            t = np.asarray(t, dtype=np.float64).reshape(-1, t.shape[-1])  # every image and position
            sums[j], rows[j] = sums[j] + t.sum(axis=0), rows[j] + len(t)
    corrected = 0
    for layer, total, count in zip(layers, sums, rows):
        shift = _bias_shift(layer, total / count)
        if shift is None:
            continue
        bias = _weights(layer)["bias"]
        bias.assign((bias.numpy() - shift).astype(bias.dtype.as_numpy_dtype))
        corrected += 1
    return corrected
