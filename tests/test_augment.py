"""Augmentation levels: what each does to a batch, and that digits are never flipped."""

import numpy as np
import pytest

from edgecnn.train.augment import augmenter


def _left_bright(n=64, size=16):
    x = np.zeros((n, size, size, 1), np.float32)
    x[:, :, : size // 2] = 1.0
    return x


def _flipped(tf, x, **kwargs):
    got, _ = augmenter(tf, x.shape[1:], "standard", 0, **kwargs)(tf.constant(x), tf.zeros(len(x)))
    got = got.numpy()
    half = x.shape[2] // 2
    return got[:, :, :half].mean(axis=(1, 2, 3)) < got[:, :, half:].mean(axis=(1, 2, 3)), got


def test_standard_flips_only_where_allowed_and_keeps_the_shape():
    from edgecnn.tf import tensorflow

    tf = tensorflow()
    x = _left_bright()
    never, got = _flipped(tf, x, flip=False)
    assert got.shape == x.shape and np.isfinite(got).all() and not never.any()
    some, _ = _flipped(tf, x, flip=True)
    assert 0.2 < some.mean() < 0.8  # about half of them mirrored
    assert not np.allclose(got, x)  # cropped, scaled, brightened


def test_none_is_nothing_and_light_translates():
    from edgecnn.tf import tensorflow

    tf = tensorflow()
    assert augmenter(tf, (16, 16, 1), "none", 0) is None
    x = _left_bright(8)
    got, _ = augmenter(tf, x.shape[1:], "light", 0)(tf.constant(x), tf.zeros(8))
    got = got.numpy()
    assert got.shape == x.shape and set(np.unique(got)) <= {0.0, 1.0}  # moved, not resampled


@pytest.mark.parametrize("data, flip", [("digits", False), ("shapes", True)])
def test_training_passes_the_data_sets_flip_rule(monkeypatch, tmp_path, data, flip):
    from edgecnn.data import load_dataset
    from edgecnn.train import TrainConfig, fit, trainer

    seen = {}

    def recording(*args, **kwargs):
        seen.update(kwargs, augment=args[2])
        return augmenter(*args, **kwargs)

    monkeypatch.setattr(trainer, "augmenter", recording)
    dataset = load_dataset(data, image_size=16, seed=0)
    fit(dataset, TrainConfig(arch="xception-pico", epochs=1, augment="standard", verbose=0))
    assert seen["flip"] is flip and seen["augment"] == "standard" and seen["span"] == pytest.approx(1.0)
