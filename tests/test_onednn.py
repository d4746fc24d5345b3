"""Training with oneDNN on: the strided 1x1 conv its backward pass breaks is trained in another form."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edgecnn.train.onednn import trainable_form, unsafe_convs


def _functional(channels):
    from edgecnn.tf import keras

    k = keras()
    x = k.Input((15, 15, 3), name="image")
    y = k.layers.Conv2D(channels, 3, padding="same", name="stem")(x)
    projection = k.layers.Conv2D(24, 1, strides=2, padding="same", name="projection")(y)
    wide = k.layers.Conv2D(24, 1, strides=2, name="wide")(k.layers.Conv2D(16, 1, name="to16")(y))
    strided3 = k.layers.Conv2D(24, 3, strides=2, padding="same", name="strided3")(y)
    z = k.layers.Add()([projection, wide, strided3])
    return k.Model(x, k.layers.Dense(5)(k.layers.GlobalAveragePooling2D()(z)), name="net")


def test_only_strided_1x1_convs_on_fewer_than_16_channels_are_split_and_the_function_stays():
    from edgecnn.tf import keras

    model = _functional(8)
    assert unsafe_convs(model) == {"projection": (2, 2)}
    routed = trainable_form(model)
    pool = routed.get_layer("projection_subsample")
    assert type(pool).__name__ == "MaxPooling2D" and tuple(pool.strides) == (2, 2)
    assert tuple(routed.get_layer("projection").strides) == (1, 1) and tuple(routed.get_layer("wide").strides) == (2, 2)
    x = np.random.default_rng(1).normal(size=(3, 15, 15, 3)).astype(np.float32)  # odd size: ceil(15 / 2) = 8
    np.testing.assert_allclose(routed.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert unsafe_convs(routed) == {}
    assert trainable_form(_functional(16)) is not None and unsafe_convs(_functional(16)) == {}

    # A Sequential model whose first layer is such a conv, inside a functional one (as an RGB wrapper nests).
    k = keras()
    inner = k.Sequential(
        [k.layers.Conv2D(8, 1, strides=2, input_shape=(9, 9, 4), name="first"), k.layers.Flatten()], name="inner"
    )
    outer = k.Sequential([inner, k.layers.Dense(3)])
    outer.build((None, 9, 9, 4))
    routed = trainable_form(outer)
    x = np.random.default_rng(2).normal(size=(2, 9, 9, 4)).astype(np.float32)
    np.testing.assert_allclose(routed.predict(x, verbose=0), outer.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert unsafe_convs(routed) == {}


@pytest.mark.slow
def test_xception_pico_at_half_width_trains_with_onednn_on_odd_batches(tmp_path):
    """Half width gives the first residual projection 8 input channels; batches of 33 are odd.
    Without the split this aborts (munmap_chunk(): invalid pointer) in the first epoch."""
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1"}
    command = [sys.executable, "-m", "edgecnn", "train", "--data", "digits", "--arch", "xception-pico", "--width", "0.5"]
    command += ["--batch-size", "33", "--epochs", "2", "--out", str(tmp_path), "--json"]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["val_accuracy"] > 0.3
    config = json.loads((tmp_path / "train.json").read_text())
    assert config["onednn"] is True and config["subsampled"] == ["block1_residual", "block2_residual"]
