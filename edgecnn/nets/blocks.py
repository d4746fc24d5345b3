"""Keras building blocks of the Xception family, with stable derived layer names.

Every convolution followed by BatchNormalization has ``use_bias=False`` (the BN's
beta is the bias; folding restores it). No Rescaling layer: normalisation lives in
the artifact metadata so the int8 model can take raw uint8 pixels.
"""

from __future__ import annotations

from .recipe import Recipe


def build(recipe: Recipe, input_shape: tuple[int, int, int], num_classes: int):
    from ..tf import keras

    k = keras()
    layers = k.layers

    def bn(x, name):
        return layers.BatchNormalization(momentum=recipe.bn_momentum, epsilon=recipe.bn_epsilon, name=name)(x)

    def sepconv_bn(x, filters, name):
        x = layers.Activation("relu", name=f"{name}_act")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
        return bn(x, f"{name}_bn")

    inputs = k.Input(shape=input_shape, name="image")
    x = inputs
    for i, conv in enumerate(recipe.stem, start=1):
        name = f"stem_conv{i}"
        x = layers.Conv2D(conv.filters, conv.kernel, strides=conv.strides, padding="same", use_bias=False, name=name)(x)
        x = bn(x, f"{name}_bn")
        x = layers.Activation("relu", name=f"{name}_act")(x)

    block = 0
    for filters in recipe.entry:
        block += 1
        residual = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False, name=f"block{block}_residual")(x)
        residual = bn(residual, f"block{block}_residual_bn")
        x = sepconv_bn(x, filters, f"block{block}_sepconv1")
        x = sepconv_bn(x, filters, f"block{block}_sepconv2")
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
        x = layers.Add(name=f"block{block}_add")([x, residual])

    for _ in range(recipe.middle_repeats):
        block += 1
        residual = x
        for j in range(1, recipe.middle_convs + 1):
            x = sepconv_bn(x, recipe.entry[-1], f"block{block}_sepconv{j}")
        x = layers.Add(name=f"block{block}_add")([x, residual])

    x = layers.SeparableConv2D(recipe.exit_filters, 3, padding="same", use_bias=False, name="exit_sepconv")(x)
    x = bn(x, "exit_sepconv_bn")
    x = layers.Activation("relu", name="exit_sepconv_act")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if recipe.dropout:
        x = layers.Dropout(recipe.dropout, name="dropout")(x)
    # Logits: softmax is applied by the runtime, which keeps int8 outputs at full resolution.
    outputs = layers.Dense(num_classes, name="logits")(x)
    return k.Model(inputs, outputs, name=recipe.name)
