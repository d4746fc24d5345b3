"""Training and BatchNorm statistics."""

import json

import numpy as np
import pytest

from edgecnn.data import load_dataset
from edgecnn.errors import ConfigError, VerificationError
from edgecnn.nets import create_model
from edgecnn.train import TrainConfig, accuracy, batchnorm_layers, fit, reestimate_bn_statistics


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", image_size=16)


def test_reestimated_statistics_are_the_population_statistics_of_each_input():
    from edgecnn.tf import keras

    k = keras()
    model = create_model("xception-pico", input_shape=(16, 16, 3), num_classes=3)
    rng = np.random.default_rng(0)
    x = rng.random((96, 16, 16, 3), dtype=np.float32)
    for layer in batchnorm_layers(model):  # stale statistics, as after a short schedule
        gamma, beta, mean, var = layer.get_weights()
        layer.set_weights([gamma, beta, mean + 5.0, var * 40.0])
    assert reestimate_bn_statistics(model, x, batch_size=32) == len(batchnorm_layers(model)) > 5
    for layer in batchnorm_layers(model):
        act = k.Model(model.inputs, layer.input)(x, training=False).numpy().reshape(-1, layer.input.shape[-1])
        _, _, mean, var = layer.get_weights()
        np.testing.assert_allclose(mean, act.mean(0), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(var, act.var(0), rtol=1e-3, atol=1e-5)


def test_training_mode_accuracy_leaves_statistics_untouched():
    model = create_model("xception-pico", input_shape=(16, 16, 1), num_classes=3)
    x = np.random.default_rng(1).random((32, 16, 16, 1), dtype=np.float32)
    before = [layer.get_weights() for layer in batchnorm_layers(model)]
    accuracy(model, [(x, np.zeros(32, dtype=np.int64))], training=True)
    for layer, weights in zip(batchnorm_layers(model), before):
        for a, b in zip(layer.get_weights(), weights):
            np.testing.assert_array_equal(a, b)


def test_fit_writes_model_metadata_and_history(digits, tmp_path):
    result = fit(digits, TrainConfig(arch="xception-pico", epochs=3, verbose=0), tmp_path)
    assert result.model_path == tmp_path / "model.keras" and result.model_path.is_file()
    meta = json.loads((tmp_path / "model.keras.json").read_text())
    assert meta["labels"] == [str(i) for i in range(10)] and meta["input_shape"] == [16, 16, 1]
    assert meta["format"] == "keras" and meta["dataset"] == "digits" and meta["data_seed"] == 0
    assert (tmp_path / "labels.txt").read_text().split() == meta["labels"]
    report = json.loads((tmp_path / "train.json").read_text())
    assert len(report["history"]["loss"]) == 3 and report["config"]["arch"] == "xception-pico"
    acc = report["accuracy"]
    assert acc["val_inference_mode"] == result.val_accuracy > 0.5  # well above chance (10%) after 3 epochs
    assert abs(acc["val_inference_mode"] - acc["val_training_mode"]) < 0.1


def test_fit_fails_loudly_when_inference_mode_diverges(digits, monkeypatch):
    def stale(model, images, batch_size=128, normalization=None):  # simulate statistics that do not match the weights
        for layer in batchnorm_layers(model):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([gamma, beta, mean + 50.0, var])
        return 0

    monkeypatch.setattr("edgecnn.train.trainer.reestimate_bn_statistics", stale)
    with pytest.raises(VerificationError, match="inference-mode validation accuracy"):
        fit(digits, TrainConfig(arch="xception-pico", epochs=2, verbose=0))


@pytest.mark.parametrize(
    "field, value", [("epochs", 0), ("learning_rate", -1.0), ("augment", "heavy"), ("precision", "fp16"), ("width", 0)]
)
def test_bad_training_options(field, value):
    with pytest.raises(ConfigError, match=field):
        TrainConfig(**{field: value})
