"""Training with TensorFlow's oneDNN kernels on, around the one op they break.

TensorFlow 2.21's oneDNN backward pass of a strided 1x1 Conv2D on fewer than 16 input channels
corrupts the heap (free() or munmap_chunk(): invalid pointer, or a segfault) when a batch holds
an odd number of images. Measured here: 1, 4, 8, 9, 12 and 15 channels abort with batches of
1, 33, 43 and 65 and train with 32, 40 and 48; 16 to 64 channels train with any batch; a strided
3x3 conv and the forward pass are sound. A 1x1 conv at stride s equals a 1x1 max-pool at stride s
(a subsample) followed by the conv at stride 1, so such a model is trained in that form: the same
function (verified) and weights, one cheap op more in its files.
"""

from __future__ import annotations

import copy
import os

import numpy as np

#: Input channels from which oneDNN's strided 1x1 backward pass is sound.
MIN_SAFE_CHANNELS = 16


def onednn_requested() -> bool:
    """Whether TensorFlow was asked for its oneDNN kernels (its default on x86-64 Linux)."""
    return os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false", "off")


def unsafe_convs(model) -> dict[str, tuple[int, int]]:
    """Name -> strides of every Conv2D (nested models included) oneDNN cannot train."""
    found = {}
    for layer in model.layers:
        if hasattr(layer, "layers"):
            found.update(unsafe_convs(layer))
            continue
        if type(layer).__name__ != "Conv2D" or tuple(layer.kernel_size) != (1, 1) or tuple(layer.strides) == (1, 1):
            continue
        # The kernel's input axis: a shared conv has no single input_shape.
        if layer.groups == 1 and tuple(layer.dilation_rate) == (1, 1) and layer.kernel.shape[-2] < MIN_SAFE_CHANNELS:
            found[layer.name] = tuple(layer.strides)
    return found


def trainable_form(model):
    """`model`, or the same function with each unsafe conv split into a subsample and a stride-1 conv."""
    from ..fold import verify_fold
    from ..tf import keras

    unsafe = unsafe_convs(model)
    if not unsafe:
        return model
    config = copy.deepcopy(model.get_config())
    _split(config, unsafe)
    routed = keras().Model.from_config(config) if "input_layers" in config else keras().Sequential.from_config(config)
    routed.set_weights(model.get_weights())  # the pools have none: every weight keeps its place
    shape = (4, *model.input_shape[1:])
    verify_fold(model, routed, np.random.default_rng(0).uniform(0, 1, shape).astype(np.float32), what="subsampled")
    return routed


def _split(config: dict, unsafe: dict) -> None:
    layers = config["layers"]
    functional = "input_layers" in config
    for index in range(len(layers) - 1, -1, -1):
        layer = layers[index]
        inner = layer.get("config", {})
        if "layers" in inner:  # a nested model
            _split(inner, unsafe)
            continue
        name = inner.get("name")
        if layer["class_name"] != "Conv2D" or name not in unsafe:
            continue
        pool_name = f"{name}_subsample"
        pool = {
            "class_name": "MaxPooling2D",
            "config": {
                "name": pool_name,
                "trainable": inner.get("trainable", True),
                "dtype": inner.get("dtype", "float32"),
                "pool_size": [1, 1],
                "strides": list(unsafe[name]),
                "padding": "valid",  # with a 1x1 window, "same" and "valid" give the conv's ceil(size / stride)
                "data_format": inner.get("data_format", "channels_last"),
            },
        }
        inner["strides"] = [1, 1]
        if "batch_input_shape" in inner:  # the first layer of a Sequential model: the pool is now
            pool["config"]["batch_input_shape"] = inner.pop("batch_input_shape")
        if functional:
            pool["name"] = pool_name
            pool["inbound_nodes"] = layer["inbound_nodes"]
            layer["inbound_nodes"] = [[[pool_name, i, 0, {}]] for i in range(len(pool["inbound_nodes"]))]
        layers.insert(index, pool)
