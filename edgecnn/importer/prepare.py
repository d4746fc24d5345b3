"""Import steps on a layer graph: drop augmentation, take normalisation out, read the head."""

from __future__ import annotations

import logging
from typing import Optional

import numpy as np

from ..artifact import Normalization
from ..errors import ModelFileError
from .graph import AUGMENTATION, Graph

log = logging.getLogger(__name__)

#: Layers between a classifier's last Dense/Conv2D and its output that keep the class count.
_PASS_THROUGH = ("Flatten", "Reshape", "Dropout", "SpatialDropout2D")

#: Normalization's floor on the standard deviation, as both Keras versions apply it.
_STD_FLOOR = 1e-7


def drop_augmentation(graph: Graph) -> list[str]:
    """Remove layers that are identity at inference (RandomFlip, GaussianNoise, ...)."""
    dropped = [n for n in graph.nodes if n.class_name in AUGMENTATION]
    for node in dropped:
        graph.remove(node)
        log.info("training-only layer %r (%s) dropped: it is identity at inference", node.name, node.class_name)
    return [n.name for n in dropped]


def _affine(node, channels: int) -> tuple[object, object]:
    """(scale, offset) of a Rescaling or an axis -1 Normalization layer."""
    config = node.config
    if node.class_name == "Rescaling":
        return np.asarray(config.get("scale", 1.0), np.float64), np.asarray(config.get("offset", 0.0), np.float64)
    if config.get("invert"):
        raise ModelFileError(f"layer {node.name!r} (Normalization) inverts a normalisation; edgecnn cannot take it out")
    axis = config.get("axis", -1)
    if axis not in (-1, 3, [-1], [3], (-1,), (3,)):
        raise ModelFileError(f"layer {node.name!r} (Normalization) normalises axis {axis!r}; edgecnn takes per-channel ones")
    if config.get("mean") is not None and config.get("variance") is not None:
        mean, var = np.asarray(config["mean"], np.float64), np.asarray(config["variance"], np.float64)
    elif len(node.weights) >= 2:
        mean, var = (np.asarray(w, np.float64).reshape(-1) for w in node.weights[:2])
    else:
        raise ModelFileError(f"layer {node.name!r} (Normalization) has no mean and variance; adapt it before saving")
    std = np.maximum(np.sqrt(var), _STD_FLOOR)
    return 1.0 / std, -mean / std


def take_normalization(graph: Graph, channels: int) -> Optional[Normalization]:
    """Take the Rescaling/Normalization layers the input goes through first out of the graph.

    Returns the normalisation they applied (composed, when there are several), or None: the
    int8 model then takes raw pixels and the runtime applies it, with no float ops left.
    """
    taken = Normalization(1.0, 0.0)
    found = False
    while True:
        consumers = graph.consumers(graph.nodes[0].name)
        if len(consumers) != 1 or consumers[0].class_name not in ("Rescaling", "Normalization"):
            break
        node = consumers[0]
        scale, offset = _affine(node, channels)
        if scale.size not in (1, channels) or offset.size not in (1, channels):
            raise ModelFileError(f"layer {node.name!r} ({node.class_name}) does not normalise per channel of {channels}")
        taken = taken.then(scale.reshape(-1).tolist(), offset.reshape(-1).tolist())
        graph.remove(node)
        log.info("normalisation layer %r taken out of the graph into the metadata", node.name)
        found = True
    return taken if found else None


def take_head(graph: Graph) -> tuple[str, int, Optional[str]]:
    """Strip the final softmax or sigmoid; returns (ArtifactMetadata.output, output units, activation stripped).

    The exported model then ends in logits: int8 keeps their resolution (a quantized softmax
    rounds every probability to a multiple of 1/256) and the runtime applies the activation.
    """
    node = graph.node(graph.output)
    activation = None
    if node.class_name == "Softmax" or (
        node.class_name == "Activation" and node.config.get("activation") in ("softmax", "sigmoid")
    ):
        activation = "softmax" if node.class_name == "Softmax" else node.config["activation"]
        graph.remove(node)
        node = graph.node(graph.output)
    elif node.config.get("activation") in ("softmax", "sigmoid"):
        activation = node.config["activation"]
        node.config["activation"] = "linear"
    # The layer that sets the class count, looking through reshapes (MobileNetV3 ends Conv2D 1x1 -> Flatten).
    while node.class_name in _PASS_THROUGH and len(node.inputs) == 1:
        node = graph.node(node.inputs[0])
    if activation is None and node.config.get("activation") in ("softmax", "sigmoid"):
        activation = node.config["activation"]
        node.config["activation"] = "linear"
    units = node.config.get("units") or node.config.get("filters")
    if not isinstance(units, int):
        raise ModelFileError(
            f"the model ends in layer {node.name!r} ({node.class_name}); edgecnn takes classifiers that end in a Dense "
            "layer (with or without softmax)"
        )
    if units == 1:
        return "binary_logit", 1, activation
    if activation == "sigmoid":
        raise ModelFileError(
            f"layer {node.name!r} ends in {units} sigmoid units (multi-label); edgecnn exports single-label classifiers"
        )
    return "logits", units, activation
