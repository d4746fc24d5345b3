"""Layers an export puts around the model, for the runtimes apps use.

MediaPipe Tasks and the LiteRT Task Library take RGB images only and show the output tensor
as the scores: a grayscale model gets a fixed RGB -> luminance convolution in front
(``--rgb``), and every exported file ends in a softmax (sigmoid for a binary head), so that
each runtime, app and browser reads probabilities from it.
"""

from __future__ import annotations

import dataclasses

from ..artifact import ArtifactMetadata

#: ITU-R BT.601 luma weights. They sum to 1, so the luminance of normalised RGB is the
#: normalised luminance, and a gray pixel (R = G = B) passes through unchanged.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
#: Output kind -> (activation appended, output kind after it).
_SCORES = {"logits": ("softmax", "probabilities"), "binary_logit": ("sigmoid", "binary_probability")}


def with_scores(model, meta: ArtifactMetadata):
    """`model` ending in the activation that makes its output scores, and the metadata that says so."""
    if meta.output not in _SCORES:
        return model, meta
    from ..tf import keras

    activation, output = _SCORES[meta.output]
    scores = keras().layers.Activation(activation, name="scores")(model.outputs[0])
    return keras().Model(model.inputs, scores, name=model.name), meta.replace(output=output)


def with_rgb_input(model, meta: ArtifactMetadata):
    """A one-channel `model` behind a fixed luminance convolution that takes RGB images."""
    if meta.input_shape[2] != 1:
        return model, meta
    import numpy as np

    from ..tf import keras

    layers = keras().layers
    height, width, _ = meta.input_shape
    image = keras().Input((height, width, 3), name="image")
    luma = layers.Conv2D(1, 1, use_bias=False, trainable=False, name="rgb_to_luminance")
    gray = luma(image)
    luma.set_weights([np.asarray(LUMA_WEIGHTS, dtype=np.float32).reshape(1, 1, 3, 1)])
    return keras().Model(image, model(gray), name=model.name), meta.replace(input_shape=(height, width, 3))


def for_apps(model, meta: ArtifactMetadata, plan, calibration, rgb: bool):
    """What the exporters convert: the model (and the plan's quantization-aware copy) with
    scores at the output and, with `rgb`, an RGB input; its metadata and calibration images."""
    if rgb:
        model, rgb_meta = with_rgb_input(model, meta)
        if plan is not None and plan.qat_model is not None:
            plan = dataclasses.replace(plan, qat_model=with_rgb_input(plan.qat_model, meta)[0])
        meta, calibration = rgb_meta, calibration.with_channels(rgb_meta.input_shape[2])
    if plan is not None and plan.qat_model is not None:
        plan = dataclasses.replace(plan, qat_model=with_scores(plan.qat_model, meta)[0])
    model, meta = with_scores(model, meta)
    return model, meta, plan, calibration
