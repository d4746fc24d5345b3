"""Keras building blocks of the Xception family, with stable derived layer names.

Every convolution followed by BatchNormalization has ``use_bias=False`` (the BN's
beta is the bias; folding restores it). No Rescaling layer: normalisation lives in
the artifact metadata so the int8 model can take raw uint8 pixels.

The ReLU that opens an Xception block is applied once, after the previous block's
residual Add, so the residual carries post-activation values. After folding, every
ReLU then fuses into the op before it (a Conv or the Add). In the original order each
block starts with a ReLU whose input also feeds the residual, so it cannot fuse; as an
int8 TFLite op it requantizes and runs outside XNNPACK: 0.19 ms for 24x24x128 against
0.003 ms in float, which made int8 models slower than float.

A recipe's first ``fused_entry`` entry blocks use full 3x3 convolutions ("fused" blocks,
as in EfficientNet-EdgeTPU): at high resolution and few channels the int8 depthwise
kernels are slower than float ones, while full convs run on the int8 GEMM kernels.
"""

from __future__ import annotations

from .recipe import Recipe


def build(recipe: Recipe, input_shape: tuple[int, int, int], num_classes: int):
    from ..tf import keras

    k = keras()
    layers = k.layers

    def bn(x, name):
        return layers.BatchNormalization(momentum=recipe.bn_momentum, epsilon=recipe.bn_epsilon, name=name)(x)

    def conv_bn(x, filters, name, relu_first: bool, separable: bool = True):
        if relu_first:
            x = layers.Activation("relu", name=f"{name}_act")(x)
        conv = layers.SeparableConv2D if separable else layers.Conv2D
        x = conv(filters, 3, padding="same", use_bias=False, name=name)(x)
        return bn(x, f"{name}_bn")

    def convs(x, filters, block, count, fused=False):
        kind = "conv" if fused else "sepconv"
        for j in range(1, count + 1):
            x = conv_bn(x, filters, f"block{block}_{kind}{j}", relu_first=j > 1, separable=not fused)
        return x

    def add_relu(x, residual, block):
        x = layers.Add(name=f"block{block}_add")([x, residual])
        return layers.Activation("relu", name=f"block{block}_act")(x)

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
        x = convs(x, filters, block, 2, fused=block <= recipe.fused_entry)
        x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{block}_pool")(x)
        x = add_relu(x, residual, block)

    for _ in range(recipe.middle_repeats):
        block += 1
        x = add_relu(convs(x, recipe.entry[-1], block, recipe.middle_convs), x, block)

    x = layers.SeparableConv2D(recipe.exit_filters, 3, padding="same", use_bias=False, name="exit_sepconv")(x)
    x = bn(x, "exit_sepconv_bn")
    x = layers.Activation("relu", name="exit_sepconv_act")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if recipe.dropout:
        x = layers.Dropout(recipe.dropout, name="dropout")(x)
    # Logits: softmax is applied by the runtime, which keeps int8 outputs at full resolution.
    outputs = layers.Dense(num_classes, name="logits")(x)
    return k.Model(inputs, outputs, name=recipe.name)
