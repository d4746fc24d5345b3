"""Cross-layer equalization and bias correction on small untrained models: the float function
stays, the pairs are the ones it may scale, and the result does not depend on how a model was scaled."""

import numpy as np

from edgecnn.fold import verify_fold
from edgecnn.quantize.equalize import channel_pairs, correct_biases, equalize


def _net(relu6_after_stem=False, shared_tensor=False):
    """Conv -> ReLU -> SeparableConv -> ReLU -> pool -> Depthwise -> Conv -> GAP -> Dense, with biases
    (as folding leaves them), random weights and a few channels scaled far apart."""
    from edgecnn.tf import keras

    k = keras()
    k.utils.set_random_seed(3)
    layers = k.layers
    inputs = k.Input((12, 12, 3))
    x = layers.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = layers.ReLU(max_value=6.0, name="stem_act")(x) if relu6_after_stem else layers.Activation("relu", name="stem_act")(x)
    x = layers.SeparableConv2D(12, 3, padding="same", name="sep")(x)
    side = x
    x = layers.Activation("relu", name="sep_act")(x)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.Conv2D(16, 1, activation="relu", name="pw")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Dense(5, name="logits")(x)
    if shared_tensor:  # the separable conv's output also reaches the head another way
        outputs = layers.Add(name="mix")([outputs, layers.Dense(5, name="side")(layers.GlobalAveragePooling2D()(side))])
    model = k.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:
        for w in layer.weights:
            w.assign(rng.normal(0, 0.5, w.shape).astype(np.float32))
    return model


def _copy(model):
    from edgecnn.tf import keras

    copy = keras().models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _inputs():
    return np.random.default_rng(1).uniform(0, 1, (16, 12, 12, 3)).astype(np.float32)


def _ranges_spread(model):
    """Largest ratio between the weight ranges of two channels a pair shares."""
    worst = 1.0
    for pair in channel_pairs(model):
        r = pair.output.ranges() * pair.input.ranges()
        worst = max(worst, float(r.max() / r[r > 0].min()))
    return worst


def test_pairs_follow_relu_and_pooling_and_include_the_halves_of_a_separable_conv():
    pairs = [(p.producer, p.consumer) for p in channel_pairs(_net())]
    assert pairs == [
        ("stem", "sep"),
        ("sep (depthwise)", "sep"),
        ("sep", "dw"),
        ("dw", "pw"),
        ("pw", "logits"),
    ]


def test_no_pair_across_relu6_or_a_tensor_something_else_reads():
    relu6 = [(p.producer, p.consumer) for p in channel_pairs(_net(relu6_after_stem=True))]
    assert ("stem", "sep") not in relu6  # min(x, 6) does not commute with a scale
    shared = [(p.producer, p.consumer) for p in channel_pairs(_net(shared_tensor=True))]
    assert ("sep", "dw") not in shared and ("stem", "sep") in shared


def test_equalization_keeps_the_function_and_balances_every_pair():
    model = _net()
    original = _copy(model)
    for pair in channel_pairs(model):  # the kind of scales training and folding leave
        s = np.exp(np.random.default_rng(2).uniform(-4, 4, len(pair.output.ranges())))
        pair.scale(s)
    before = _ranges_spread(model)
    assert equalize(model) == 5
    assert verify_fold(original, model, _inputs(), what="equalized") < 1e-5
    for pair in channel_pairs(model):
        np.testing.assert_allclose(pair.output.ranges(), pair.input.ranges(), rtol=1e-3)
    assert before > 100 * _ranges_spread(model) or before < 2


def test_equalization_undoes_any_rescaling_of_the_same_model():
    a, b = _net(), _net()
    for pair in channel_pairs(b):
        s = np.ones(len(pair.output.ranges()))
        s[::3] = 1e-3
        s[1::3] = 50.0
        pair.scale(s)
    equalize(a)
    equalize(b)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-3, atol=1e-6)


def test_bias_correction_moves_outputs_little_and_only_biases():
    model = _net()
    original = _copy(model)
    kernels = [w.numpy().copy() for w in model.weights if "bias" not in w.name]
    assert correct_biases(model, _inputs()) == 5
    for before, w in zip(kernels, [w for w in model.weights if "bias" not in w.name]):
        np.testing.assert_array_equal(before, w.numpy())
    change = verify_fold(original, model, _inputs(), rtol=1.0)
    assert 0 < change < 0.05
