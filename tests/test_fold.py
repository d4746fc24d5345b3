"""BatchNorm folding: the numpy arithmetic against tf_keras, and the graph rewrite."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from edgecnn.errors import ConfigError, ModelFileError, VerificationError
from edgecnn.fold import (
    BNParams,
    count_batchnorm_after_linear,
    fold_batchnorm,
    fold_conv,
    fold_dense,
    fold_depthwise,
    fold_file,
    fold_model,
    fold_separable,
    verify_fold,
)

EPS = 1e-3


@pytest.fixture(scope="module")
def keras():
    from edgecnn.tf import keras as _keras

    return _keras()


def _randomise_bn(layer, rng) -> None:
    """Non-trivial inference statistics (the defaults would make BN an identity)."""
    values = []
    n = layer.moving_mean.shape[0]
    if layer.scale:
        values.append(rng.uniform(0.5, 1.5, n) * rng.choice([-1.0, 1.0], n))
    if layer.center:
        values.append(rng.normal(0.0, 0.3, n))
    values.append(rng.normal(0.0, 0.3, n))  # moving_mean
    values.append(rng.uniform(0.3, 2.0, n))  # moving_variance
    layer.set_weights([v.astype(np.float32) for v in values])


def _randomise_all_bn(model, rng) -> None:
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            _randomise_bn(layer, rng)


def _bn_names(model) -> set[str]:
    return {layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization"}


def _relative_error(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / (np.max(a) - np.min(a)))


# ---------------------------------------------------------------------------
# numpy arithmetic vs tf_keras
# ---------------------------------------------------------------------------

LAYER_CASES = {
    "Conv2D": ((6, 6, 3), lambda L, bias: L.Conv2D(5, 3, padding="same", use_bias=bias)),
    "DepthwiseConv2D": ((6, 6, 3), lambda L, bias: L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=bias)),
    "SeparableConv2D": (
        (6, 6, 3),
        lambda L, bias: L.SeparableConv2D(5, 3, depth_multiplier=2, padding="same", use_bias=bias),
    ),
    "Dense": ((7,), lambda L, bias: L.Dense(5, use_bias=bias)),
}


def _fold_numpy(kind, layer, bn_layer):
    bn = BNParams(
        gamma=bn_layer.gamma.numpy() if bn_layer.scale else None,
        beta=bn_layer.beta.numpy() if bn_layer.center else None,
        moving_mean=bn_layer.moving_mean.numpy(),
        moving_variance=bn_layer.moving_variance.numpy(),
        epsilon=bn_layer.epsilon,
    )
    bias = layer.bias.numpy() if layer.use_bias else None
    if kind == "Conv2D":
        return list(fold_conv(layer.kernel.numpy(), bias, bn))
    if kind == "Dense":
        return list(fold_dense(layer.kernel.numpy(), bias, bn))
    if kind == "DepthwiseConv2D":
        return list(fold_depthwise(layer.depthwise_kernel.numpy(), bias, bn))
    return list(fold_separable(layer.depthwise_kernel.numpy(), layer.pointwise_kernel.numpy(), bias, bn))


@pytest.mark.parametrize("kind", sorted(LAYER_CASES))
@pytest.mark.parametrize(
    "use_bias,center,scale",
    [(False, True, True), (True, True, True), (False, False, True), (True, True, False)],
)
def test_numpy_fold_matches_keras(keras, kind, use_bias, center, scale):
    rng = np.random.default_rng(zlib.crc32(repr((kind, use_bias, center, scale)).encode()))
    L = keras.layers
    shape, make = LAYER_CASES[kind]
    inp = L.Input(shape)
    linear = make(L, use_bias)
    bn_layer = L.BatchNormalization(epsilon=EPS, center=center, scale=scale)
    reference = keras.Model(inp, bn_layer(linear(inp)))
    linear.set_weights([rng.normal(0.0, 0.5, w.shape).astype(np.float32) for w in linear.get_weights()])
    _randomise_bn(bn_layer, rng)

    folded_layer = make(L, True)
    folded = keras.Model(inp, folded_layer(inp))
    weights = _fold_numpy(kind, linear, bn_layer)
    assert all(w.dtype == np.float32 for w in weights)
    folded_layer.set_weights(weights)

    x = rng.normal(size=(4,) + shape).astype(np.float32)
    want = reference(x, training=False).numpy()
    got = folded(x, training=False).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_bnparams_rejects_bad_statistics():
    with pytest.raises(ValueError, match="positive"):
        BNParams(None, None, np.zeros(3), np.array([1.0, -1.0, 1.0]), 1e-3)
    with pytest.raises(ValueError, match="channels"):
        BNParams(np.ones(2), None, np.zeros(3), np.ones(3), 1e-3)
    bn = BNParams(None, None, np.zeros(3), np.ones(3), 1e-3)
    with pytest.raises(ValueError, match="output channels"):
        fold_dense(np.ones((4, 5)), None, bn)


# ---------------------------------------------------------------------------
# Graph rewrite on an Xception-style residual model
# ---------------------------------------------------------------------------


def build_xception_tiny(keras, rng):
    L = keras.layers
    inp = L.Input((32, 32, 3), name="image")
    x = L.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inp)
    x = L.BatchNormalization(name="stem_bn")(x)
    x = L.Activation("relu", name="stem_act")(x)

    # Downsampling block with a strided 1x1 projection on the residual path.
    residual = x
    y = x
    for i in (1, 2):
        y = L.Activation("relu", name=f"block1_act{i}")(y)
        y = L.SeparableConv2D(16, 3, padding="same", use_bias=False, name=f"block1_sep{i}")(y)
        y = L.BatchNormalization(name=f"block1_bn{i}")(y)
    y = L.MaxPooling2D(3, strides=2, padding="same", name="block1_pool")(y)
    r = L.Conv2D(16, 1, strides=2, padding="same", use_bias=False, name="block1_res_conv")(residual)
    r = L.BatchNormalization(name="block1_res_bn")(r)
    x = L.Add(name="block1_add")([y, r])

    # Identity block.
    residual = x
    y = L.ReLU(name="block2_act1")(x)
    y = L.DepthwiseConv2D(3, padding="same", use_bias=False, name="block2_dw")(y)
    y = L.BatchNormalization(name="block2_bn1")(y)
    y = L.ReLU(name="block2_act2")(y)
    y = L.SeparableConv2D(16, 3, padding="same", use_bias=False, name="block2_sep")(y)
    y = L.BatchNormalization(name="block2_bn2")(y)
    x = L.Add(name="block2_add")([y, residual])

    # Exit flow.
    x = L.SeparableConv2D(24, 3, padding="same", use_bias=False, name="exit_sep")(x)
    x = L.BatchNormalization(name="exit_bn")(x)
    x = L.Activation("relu", name="exit_act")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dropout(0.3, name="dropout")(x)
    x = L.Dense(5, name="logits")(x)
    out = L.BatchNormalization(name="logits_bn")(x)
    model = keras.Model(inp, out, name="xception_tiny")
    _randomise_all_bn(model, rng)
    return model


EXPECTED_PAIRS = {
    ("stem_conv", "stem_bn"),
    ("block1_sep1", "block1_bn1"),
    ("block1_sep2", "block1_bn2"),
    ("block1_res_conv", "block1_res_bn"),
    ("block2_dw", "block2_bn1"),
    ("block2_sep", "block2_bn2"),
    ("exit_sep", "exit_bn"),
    ("logits", "logits_bn"),
}


@pytest.fixture(scope="module")
def xception(keras):
    rng = np.random.default_rng(0)
    model = build_xception_tiny(keras, rng)
    x = rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
    return model, x


@pytest.fixture(scope="module")
def xception_folded(xception):
    model, x = xception
    return fold_model(model, x)


def test_xception_fold_removes_every_bn_after_linear(xception, xception_folded):
    model, _ = xception
    result = xception_folded
    assert count_batchnorm_after_linear(model) == len(EXPECTED_PAIRS)
    assert count_batchnorm_after_linear(result.model) == 0
    assert set(result.folded) == EXPECTED_PAIRS
    assert result.kept == ()
    assert _bn_names(result.model) == set()
    for conv, _ in EXPECTED_PAIRS:
        assert result.model.get_layer(conv).use_bias


def test_xception_fold_matches_outputs(xception, xception_folded):
    model, x = xception
    want = model(x, training=False).numpy()
    got = xception_folded.model(x, training=False).numpy()
    assert _relative_error(want, got) <= 1e-4
    assert xception_folded.relative_error is not None and xception_folded.relative_error <= 1e-4


def test_xception_fold_preserves_names_and_shrinks(xception, xception_folded):
    model, _ = xception
    result = xception_folded
    bns = {bn for _, bn in EXPECTED_PAIRS}
    # Layer order may change (Keras re-sorts by depth), the names may not.
    assert {layer.name for layer in result.model.layers} == {layer.name for layer in model.layers} - bns
    assert result.model.name == model.name
    assert result.params_before == model.count_params()
    assert result.params_after == result.model.count_params()
    assert result.params_after < result.params_before
    # The original model is untouched.
    assert _bn_names(model) >= bns
    assert not model.get_layer("stem_conv").use_bias


# ---------------------------------------------------------------------------
# What is kept
# ---------------------------------------------------------------------------


def test_bn_after_activation_is_kept_and_reported(keras):
    rng = np.random.default_rng(1)
    L = keras.layers
    inp = L.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inp)
    x = L.Activation("relu", name="block1_act")(x)
    x = L.BatchNormalization(name="bn_after_act")(x)
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv2")(x)
    x = L.BatchNormalization(name="bn_after_conv")(x)
    model = keras.Model(inp, x)
    _randomise_all_bn(model, rng)

    result = fold_model(model, rng.normal(size=(4, 8, 8, 3)).astype(np.float32))
    assert result.folded == (("conv2", "bn_after_conv"),)
    assert len(result.kept) == 1
    name, reason = result.kept[0]
    assert name == "bn_after_act"
    assert "Activation 'block1_act'" in reason
    assert _bn_names(result.model) == {"bn_after_act"}


def test_conv_with_fused_activation_is_not_folded(keras):
    rng = np.random.default_rng(2)
    L = keras.layers
    inp = L.Input((8, 8, 3))
    x = L.Conv2D(4, 3, activation="relu", name="conv_relu")(inp)
    x = L.BatchNormalization(name="bn")(x)
    model = keras.Model(inp, x)
    _randomise_all_bn(model, rng)

    result = fold_model(model, rng.normal(size=(2, 8, 8, 3)).astype(np.float32))
    assert result.folded == ()
    assert result.kept[0][0] == "bn"
    assert "fused activation 'relu'" in result.kept[0][1]
    assert count_batchnorm_after_linear(result.model) == 0
    assert result.params_after == result.params_before


def test_conv_output_with_second_consumer_is_not_folded(keras):
    rng = np.random.default_rng(3)
    L = keras.layers
    inp = L.Input((8, 8, 3))
    c = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inp)
    b = L.BatchNormalization(name="bn")(c)
    model = keras.Model(inp, L.Add(name="add")([b, c]))
    _randomise_all_bn(model, rng)

    result = fold_model(model, rng.normal(size=(2, 8, 8, 3)).astype(np.float32))
    assert result.folded == ()
    assert result.kept[0][0] == "bn" and "'add'" in result.kept[0][1]


def test_bn_on_non_channel_axis_is_not_folded(keras):
    rng = np.random.default_rng(4)
    L = keras.layers
    inp = L.Input((6, 6, 3))
    x = L.Conv2D(4, 3, padding="same", name="conv")(inp)
    x = L.BatchNormalization(axis=1, name="bn")(x)
    model = keras.Model(inp, x)
    _randomise_all_bn(model, rng)

    result = fold_model(model, rng.normal(size=(2, 6, 6, 3)).astype(np.float32))
    assert result.folded == ()
    assert "axis" in result.kept[0][1]


def test_sequential_model_folds_and_stays_sequential(keras):
    rng = np.random.default_rng(5)
    L = keras.layers
    model = keras.Sequential(
        [
            L.Conv2D(4, 3, input_shape=(8, 8, 3), use_bias=False, name="conv"),
            L.BatchNormalization(name="bn"),
            L.ReLU(name="relu"),
            L.Flatten(name="flat"),
            L.Dense(3, name="dense"),
            L.BatchNormalization(name="dense_bn"),
        ],
        name="seq",
    )
    _randomise_all_bn(model, rng)
    result = fold_model(model, rng.normal(size=(4, 8, 8, 3)).astype(np.float32))
    assert isinstance(result.model, keras.Sequential)
    assert set(result.folded) == {("conv", "bn"), ("dense", "dense_bn")}
    assert [layer.name for layer in result.model.layers] == ["conv", "relu", "flat", "dense"]


def test_nested_model_with_bn_is_refused(keras):
    L = keras.layers
    inner_in = L.Input((8, 8, 3))
    inner = keras.Model(inner_in, L.BatchNormalization()(L.Conv2D(4, 3)(inner_in)), name="backbone")
    inp = L.Input((8, 8, 3))
    model = keras.Model(inp, L.GlobalAveragePooling2D()(inner(inp)))
    with pytest.raises(ConfigError, match="nested model 'backbone'"):
        fold_batchnorm(model)


# ---------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------


def _small_model(keras, rng):
    L = keras.layers
    inp = L.Input((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inp)
    x = L.BatchNormalization(name="bn")(x)
    x = L.ReLU(name="relu")(x)
    x = L.GlobalAveragePooling2D(name="gap")(x)
    x = L.Dense(3, name="dense")(x)
    model = keras.Model(inp, x, name="small")
    _randomise_all_bn(model, rng)
    return model


def test_verify_fold_detects_a_tampered_kernel(keras):
    rng = np.random.default_rng(6)
    model = _small_model(keras, rng)
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    result = fold_batchnorm(model)
    assert verify_fold(model, result.model, x) <= 1e-4

    kernel = result.model.get_layer("conv").kernel
    kernel.assign(kernel.numpy() * 1.05)
    with pytest.raises(VerificationError, match="does not match"):
        verify_fold(model, result.model, x)


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def test_fold_file_round_trip(keras, tmp_path):
    rng = np.random.default_rng(7)
    model = _small_model(keras, rng)
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    src = tmp_path / "model.keras"
    model.save(src)

    dst = tmp_path / "out" / "folded.keras"
    result = fold_file(src, dst, x)
    assert result.folded == (("conv", "bn"),)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["folded.keras"]

    loaded = keras.models.load_model(dst, compile=False)
    assert _bn_names(loaded) == set()
    assert _relative_error(model(x, training=False), loaded(x, training=False)) <= 1e-4


def test_fold_file_bad_sources(tmp_path):
    x = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ModelFileError, match="not found") as missing:
        fold_file(tmp_path / "missing.keras", tmp_path / "out.keras", x)
    text = tmp_path / "x.keras"
    text.write_text("not a model\n")
    with pytest.raises(ModelFileError, match="x.keras") as bad:
        fold_file(text, tmp_path / "out.keras", x)
    for exc in (missing.value, bad.value):
        assert "\n" not in str(exc)
    assert not (tmp_path / "out.keras").exists()


@pytest.mark.parametrize("stage", ["before_save", "after_save"])
def test_fold_file_leaves_no_destination_when_verification_fails(keras, tmp_path, monkeypatch, stage):
    from edgecnn.fold import rewrite

    rng = np.random.default_rng(8)
    model = _small_model(keras, rng)
    x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    src = tmp_path / "model.keras"
    model.save(src)

    if stage == "before_save":
        real_fold = rewrite.fold_batchnorm

        def tampered(*args, **kwargs):
            result = real_fold(*args, **kwargs)
            kernel = result.model.get_layer("conv").kernel
            kernel.assign(kernel.numpy() * 1.05)
            return result

        monkeypatch.setattr(rewrite, "fold_batchnorm", tampered)
    else:
        real_verify = rewrite.verify_fold
        calls = []

        def fail_on_reload(*args, **kwargs):
            calls.append(1)
            if len(calls) > 1:  # the check on the saved file
                raise VerificationError("saved copy differs")
            return real_verify(*args, **kwargs)

        monkeypatch.setattr(rewrite, "verify_fold", fail_on_reload)

    out_dir = tmp_path / "out"
    with pytest.raises(VerificationError):
        fold_file(src, out_dir / "folded.keras", x)
    assert not (out_dir / "folded.keras").exists()
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_a_model_that_cannot_be_rebuilt_is_a_one_line_error(keras):
    class Doubler(keras.layers.Layer):  # not registered: its config names a class Keras cannot find
        def call(self, x):
            return 2 * x

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    model = keras.Model(inputs, Doubler(name="doubler")(x))
    with pytest.raises(ConfigError, match="could not rebuild model") as err:
        fold_batchnorm(model)
    assert "\n" not in str(err.value) and "custom_objects" in str(err.value)
