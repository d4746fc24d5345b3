"""The model family: every registered architecture builds, trains, folds and converts."""

import json
from pathlib import Path

import numpy as np
import pytest

from edgecnn.errors import ConfigError
from edgecnn.nets import Recipe, create_model, get_recipe, list_models, make_divisible, register_model

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
#: Approximate parameter counts at each recipe's default input (10 classes; 2 for mini-xception).
EXPECTED_PARAMS = {
    "xception-pico": (15_000, 30_000),
    "xception-nano": (150_000, 300_000),
    "xception-micro": (300_000, 500_000),
    "xception-small": (800_000, 950_000),
    "mini-xception": (2_600_000, 2_900_000),
}


def test_registry_lists_every_recipe_file():
    """Holds in any test order: tests/conftest.py isolates what other tests register."""
    names = {json.loads(p.read_text())["name"] for p in MODELS_DIR.glob("*.json")}
    assert names == set(list_models()) >= set(EXPECTED_PARAMS)


def test_make_divisible_keeps_multiples_of_eight():
    assert [make_divisible(v) for v in (3, 8, 12, 20, 33.6, 100)] == [8, 8, 16, 24, 32, 104]


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts_span_the_family(name):
    classes = 2 if name == "mini-xception" else 10
    low, high = EXPECTED_PARAMS[name]
    assert low <= create_model(name, num_classes=classes).count_params() <= high


@pytest.mark.parametrize("name", list_models())
def test_architecture_follows_the_xception_pattern(name):
    from edgecnn.tf import keras

    layers = keras().layers
    model = create_model(name, input_shape=(32, 32, 3), num_classes=4)
    by_name = {layer.name: layer for layer in model.layers}
    assert not any(isinstance(layer, layers.Rescaling) for layer in model.layers)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            producer = layer._inbound_nodes[0].inbound_layers
            assert isinstance(producer, (layers.Conv2D, layers.SeparableConv2D)), layer.name
            assert producer.use_bias is False and layer.name == f"{producer.name}_bn"
        if isinstance(layer, (layers.Conv2D, layers.SeparableConv2D, layers.Dense)):
            assert layer.get_config().get("filters", layer.get_config().get("units")) % 8 == 0 or layer.name == "logits"
    recipe = get_recipe(name)
    for block in range(1, len(recipe.entry) + 1):
        kind = "conv" if block <= recipe.fused_entry else "sepconv"
        layer = by_name[f"block{block}_{kind}1"]
        assert type(layer) is (layers.Conv2D if kind == "conv" else layers.SeparableConv2D), layer.name
        assert f"block{block}_{kind}1_bn" in by_name and f"block{block}_{kind}2_bn" in by_name
    assert type(by_name["exit_sepconv"]) is layers.SeparableConv2D
    assert "block1_residual" in by_name
    assert by_name["block1_residual"].strides == (2, 2)
    assert by_name["block1_pool"].pool_size == (3, 3)
    assert sum(isinstance(layer, layers.Add) for layer in model.layers) == len(recipe.entry) + recipe.middle_repeats
    assert model.output_shape == (None, 4)


def test_width_and_overrides():
    base = create_model("xception-nano", num_classes=10)
    wide = create_model("xception-nano", num_classes=10, width=2.0)
    deeper = create_model("xception-nano", num_classes=10, middle_repeats=2)
    assert wide.count_params() > 2 * base.count_params()
    assert deeper.count_params() > base.count_params()
    assert wide.get_layer("block1_sepconv1").filters == 2 * base.get_layer("block1_sepconv1").filters


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: create_model("resnet-50"), "unknown model 'resnet-50'"),
        (lambda: create_model("xception-nano", input_shape=(4, 4, 1)), "at least 8x8"),
        (lambda: create_model("xception-nano", num_classes=1), "num_classes"),
        (lambda: create_model("xception-nano", width=-1), "width"),
        (lambda: create_model("xception-nano", depth=3), "unknown recipe override"),
        (lambda: create_model("xception-nano", entry=[30, 64]), "multiples of 8"),
        (lambda: create_model("xception-nano", fused_entry=3), "fused_entry must be between 0 and the 2"),
        (lambda: Recipe.from_dict({**_recipe_data("xception-pico"), "fused_entyr": 1}), r"unknown field\(s\) \['fused_entyr'\]"),
    ],
)
def test_bad_arguments_quote_the_value(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def _recipe_data(name: str) -> dict:
    return json.loads((MODELS_DIR / f"{name}.json").read_text())


def test_a_recipe_file_takes_the_dataclass_defaults():
    data = {
        k: v
        for k, v in _recipe_data("xception-pico").items()
        if k in ("name", "default_input_shape", "stem", "entry", "exit_filters")
    }
    recipe = Recipe.from_dict(data)
    assert (recipe.fused_entry, recipe.middle_repeats, recipe.dropout, recipe.bn_momentum) == (
        Recipe.fused_entry,
        Recipe.middle_repeats,
        Recipe.dropout,
        Recipe.bn_momentum,
    )


def test_register_a_recipe_file(tmp_path):
    data = _recipe_data("xception-pico")
    data["name"] = "xception-test-custom"
    data["entry"], data["fused_entry"] = [16], 1
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(data))
    recipe = register_model(path)
    assert isinstance(recipe, Recipe) and "xception-test-custom" in list_models()
    assert get_recipe("xception-test-custom").entry == (16,)
    assert (
        create_model("xception-test-custom", num_classes=3).count_params()
        < create_model("xception-pico", num_classes=3).count_params()
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_folds_and_converts(name, tmp_path):
    """Registry-wide: one training step, an exact fold, a full-integer int8 conversion."""
    from edgecnn.artifact import Normalization
    from edgecnn.calibration import CalibrationSet
    from edgecnn.export.tflite import convert_int8
    from edgecnn.fold import count_batchnorm_after_linear, fold_model
    from edgecnn.runtime.tflite_file import read_tflite
    from edgecnn.tf import keras

    k = keras()
    shape = (32, 32, 3)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(16, *shape), dtype=np.uint8)
    x, y = Normalization().apply(pixels), rng.integers(0, 3, size=16)
    model = create_model(name, input_shape=shape, num_classes=3)
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss=k.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = {w.name: w.numpy().copy() for w in model.trainable_weights}
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    unchanged = [w.name for w in model.trainable_weights if np.array_equal(before[w.name], w.numpy())]
    assert not unchanged, f"one training step left these weights unchanged: {unchanged}"

    folded = fold_model(model, x)
    assert count_batchnorm_after_linear(folded.model) == 0
    assert folded.relative_error <= 1e-4

    data = convert_int8(folded.model, shape, CalibrationSet(pixels, "random"), Normalization(), io="uint8")
    graph = read_tflite(data).subgraphs[0]
    assert graph.tensors[graph.inputs[0]].dtype == "uint8"
    float_ops = [t for t in graph.tensors if t.dtype == "float32"]
    assert not float_ops, "full-integer model still has float tensors"
