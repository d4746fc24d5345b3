"""The rules of importing a model edgecnn did not train, each on a tiny untrained model, and its bad cases."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import user_models
from click.testing import CliRunner

from edgecnn.artifact import Normalization, normalization_from
from edgecnn.cli import main
from edgecnn.errors import ConfigError, ModelFileError
from edgecnn.importer import read_source, source_format
from edgecnn.runtime.foreign import AssumedModelFacts, ModelFacts, foreign_metadata
from edgecnn.runtime.model import TensorSpec

SHAPE = (16, 16, 3)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def keras3_model(*middle, inputs=None, head=None, shape=SHAPE):
    """Input -> `middle` layers -> Dense head, in Keras 3 (the library users' notebooks import).

    Seeded: an untrained net's top-1 on noise is near a tie, so its int8 agreement depends on the draw."""
    import keras

    keras.utils.set_random_seed(0)
    inp = inputs or keras.Input(shape)
    x = inp
    for layer in middle:
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D()(x) if len(x.shape) == 4 else x
    return keras.Model(inp, head(x) if head else keras.layers.Dense(3, name="logits")(x))


@pytest.fixture()
def calib(tmp_path):
    path = tmp_path / "calib.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (40, *SHAPE), dtype=np.uint8))
    return path


def test_mean_std_and_named_normalisations():
    norm = Normalization.from_mean_std((123.675, 116.28, 103.53), (58.395, 57.12, 57.375))
    x = norm.apply(np.array([[[[255, 0, 128]]]], np.uint8))[0, 0, 0]
    np.testing.assert_allclose(x, [(255 - 123.675) / 58.395, -116.28 / 57.12, (128 - 103.53) / 57.375], rtol=1e-5)
    assert normalization_from("-1,1").apply(np.array([0, 255], np.uint8)).tolist() == [-1.0, 1.0]
    assert Normalization.from_mean_std(127.5, 127.5) == Normalization(1 / 127.5, -1.0)
    # A Rescaling(1/255) after --mean 0 --std 1 is pixels/255.
    assert Normalization(1.0, 0.0).then(1 / 255, 0.0) == Normalization(1 / 255, 0.0)
    for bad in (
        dict(norm="0,1", mean=(1,), std=(1,)),
        dict(mean=(1,)),
        dict(mean=(0,), std=(0,)),
        dict(mean=(0, 0), std=(1, 1, 1)),
    ):
        with pytest.raises(ConfigError):
            normalization_from(**bad)


def test_leading_rescaling_and_normalization_are_taken_out_and_composed(tmp_path):
    import keras

    path = tmp_path / "m.keras"
    keras3_model(
        keras.layers.RandomFlip(),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Normalization(mean=[0.5, 0.4, 0.3], variance=[0.04, 0.09, 0.16]),
        keras.layers.Conv2D(4, 3),
    ).save(path)
    source = read_source(path)
    assert source.format == "keras3" and source_format(path) == "keras3" and len(source.dropped) == 1
    pixels = np.array([[[[255, 0, 51]]]], np.uint8)
    expected = [(1 - 0.5) / 0.2, (0 - 0.4) / 0.3, (0.2 - 0.3) / 0.4]
    np.testing.assert_allclose(source.normalization.apply(pixels)[0, 0, 0], expected, rtol=1e-5)
    assert [n.class_name for n in source.graph.nodes] == ["InputLayer", "Conv2D", "GlobalAveragePooling2D", "Dense"]


def test_a_normalisation_the_input_also_bypasses_stays_in_the_graph(tmp_path):
    import keras

    inp = keras.Input(SHAPE)
    scaled = keras.layers.Rescaling(1 / 255)(inp)
    both = keras.layers.Concatenate()([scaled, inp])
    path = tmp_path / "m.keras"
    keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(both))).save(path)
    source = read_source(path)
    assert source.normalization is None and "Rescaling" in [n.class_name for n in source.graph.nodes]


@pytest.mark.parametrize(
    "head, output, activation",
    [
        ("softmax", "logits", "softmax"),
        ("softmax-layer", "logits", "softmax"),
        ("linear", "logits", None),
        ("sigmoid-1", "binary_logit", "sigmoid"),
    ],
)
def test_the_head_is_read_and_its_activation_taken_off(tmp_path, head, output, activation):
    import keras

    layers = {
        "softmax": [keras.layers.Dense(3, activation="softmax")],
        "softmax-layer": [keras.layers.Dense(3), keras.layers.Softmax()],
        "linear": [keras.layers.Dense(3)],
        "sigmoid-1": [keras.layers.Dense(1, activation="sigmoid")],
    }[head]

    def apply(x):
        for layer in layers:
            x = layer(x)
        return x

    path = tmp_path / "m.keras"
    keras3_model(keras.layers.Conv2D(4, 3), head=apply).save(path)
    source = read_source(path)
    assert (source.output, source.activation) == (output, activation)
    last = source.graph.node(source.graph.output)
    assert last.class_name == "Dense" and last.config.get("activation") in (None, "linear")


def test_multi_label_sigmoid_heads_and_headless_models_are_refused(tmp_path):
    import keras

    keras3_model(keras.layers.Conv2D(4, 3), head=keras.layers.Dense(3, activation="sigmoid")).save(tmp_path / "ml.keras")
    with pytest.raises(ModelFileError, match="multi-label"):
        read_source(tmp_path / "ml.keras")
    inp = keras.Input(SHAPE)
    keras.Model(inp, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))).save(tmp_path / "nohead.keras")
    with pytest.raises(ModelFileError, match="end in a Dense"):
        read_source(tmp_path / "nohead.keras")


def one_line_error(result, *words):
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    error = result.stderr.strip().splitlines()[-1]
    for word in words:
        assert word in error, error
    return error


def test_an_unsupported_layer_is_named_with_its_class(tmp_path, calib):
    import keras

    keras3_model(keras.layers.Conv2D(4, 3), keras.layers.Lambda(lambda x: x * 2, name="double")).save(tmp_path / "lam.keras")
    one_line_error(invoke("export", tmp_path / "lam.keras", "--calib", calib), "'double'", "Lambda")

    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    keras3_model(keras.layers.Conv2D(4, 3), Doubler(name="doubler")).save(tmp_path / "custom.keras")
    one_line_error(invoke("export", tmp_path / "custom.keras", "--calib", calib), "'doubler'", "Doubler")


def test_two_inputs_are_refused(tmp_path, calib):
    import keras

    a, b = keras.Input(SHAPE), keras.Input(SHAPE)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Add()([a, b]))
    keras.Model([a, b], keras.layers.Dense(3)(x)).save(tmp_path / "two.keras")
    one_line_error(invoke("export", tmp_path / "two.keras", "--calib", calib), "2 inputs")


def test_an_open_input_size_needs_img_size(tmp_path, calib):
    import keras

    path = tmp_path / "any.keras"
    keras3_model(keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3), shape=(None, None, 3)).save(path)
    one_line_error(invoke("export", path, "--calib", calib, "-o", tmp_path / "a"), "--img-size")
    result = invoke("export", path, "--calib", calib, "--img-size", 16, "--int8", "-o", tmp_path / "b")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "b" / "model_int8.tflite.json").read_text())
    assert meta["input_shape"] == [16, 16, 3] and meta["labels"] == ["0", "1", "2"] and meta["source"]["format"] == "keras3"
    assert "classes are called 0..2" in result.stderr


def test_labels_that_do_not_match_the_model_are_refused(tmp_path, calib):
    import keras

    path = tmp_path / "m.keras"
    keras3_model(keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3)).save(path)
    images, labels = user_models.digits_rgb()
    folder = user_models.write_folder(tmp_path / "digits", images[:60], labels[:60], [str(i) for i in range(10)])
    one_line_error(invoke("export", path, "--data", folder, "--img-size", 16), "names 10 classes but the model has 3")
    (tmp_path / "two.txt").write_text("cat\ndog\n")
    one_line_error(invoke("export", path, "--calib", calib, "--labels", tmp_path / "two.txt"), "names 2 classes")
    (tmp_path / "three.txt").write_text("cat\ndog\ncow\n")
    one_line_error(invoke("export", path, "--data", folder, "--labels", tmp_path / "three.txt"), "are not the model's labels")


def test_a_file_with_edgecnn_metadata_refuses_facts_that_would_contradict_it(tmp_path):
    from edgecnn.runtime.model import resolve_metadata

    sidecar = tmp_path / "m.tflite.json"
    sidecar.write_text(json.dumps({"format": "tflite", "precision": "int8", "labels": ["a", "b"], "input_shape": [8, 8, 1]}))
    with pytest.raises(ConfigError, match="carries edgecnn metadata"):
        resolve_metadata(tmp_path / "m.tflite", None, ModelFacts(labels=("x", "y")))
    assert resolve_metadata(tmp_path / "m.tflite", None, ModelFacts(data_labels=("a", "b"))).labels == ("a", "b")


def _foreign(inp, out, final=None, facts=None, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        meta = foreign_metadata(Path("m.tflite"), "tflite", inp, out, final, facts or ModelFacts(), **kw)
    return meta, [str(w.message) for w in caught if issubclass(w.category, AssumedModelFacts)]


def test_what_a_file_from_elsewhere_is_taken_to_mean():
    from edgecnn.artifact import Quantization

    q = Quantization("uint8", 1 / 255, 0)
    meta, said = _foreign(TensorSpec((1, 8, 8, 3), "uint8", q), TensorSpec((1, 5), "uint8", q), "SOFTMAX")
    assert meta.output == "probabilities" and meta.labels == ("0", "1", "2", "3", "4") and meta.input_shape == (8, 8, 3)
    assert meta.normalization == Normalization(1 / 255, 0.0) and "raw pixels" in said[0] and "0..4" in said[0]
    meta, said = _foreign(TensorSpec((1, 8, 8, 1), "float32"), TensorSpec((1, 1), "float32"), "LOGISTIC")
    assert meta.output == "binary_probability" and len(meta.labels) == 2 and "pixels/255" in said[0]
    facts = ModelFacts(labels=("no", "yes"), normalization=Normalization(2 / 255, -1.0))
    meta, said = _foreign(TensorSpec((1, 8, 8, 1), "float32"), TensorSpec((1, 1), "float32"), None, facts)
    assert meta.output == "binary_logit" and meta.labels == ("no", "yes") and not said
    with pytest.raises(ModelFileError, match="up to 8192 px"):  # found by the fuzz: a 64 GiB input
        _foreign(TensorSpec((1, 16, 2147483647, 1), "uint8", q), TensorSpec((1, 5), "uint8", q))
    with pytest.raises(ModelFileError, match="NCHW"):
        _foreign(TensorSpec((1, 3, 8, 8), "float32"), TensorSpec((1, 5), "float32"))
    with pytest.raises(ModelFileError, match="names 2"):
        _foreign(TensorSpec((1, 8, 8, 3), "float32"), TensorSpec((1, 5), "float32"), facts=facts)


def test_a_tf_keras_mobilenet_v3_with_tf_op_layers_is_rebuilt_exactly(tmp_path):
    from edgecnn.importer import input_shape, max_difference, rebuild
    from edgecnn.tf import keras

    # Hard-swish is `x * relu6(x + 3) / 6` on Keras tensors: TFOpLambda layers with constant and tensor operands.
    keras().applications.MobileNetV3Small(input_shape=(32, 32, 3), weights=None, classes=4).save(tmp_path / "mnv3.keras")
    source = read_source(tmp_path / "mnv3.keras")
    assert "TFOpLambda" in {n.class_name for n in source.graph.nodes}
    assert source.normalization == Normalization(1 / 127.5, -1.0) and (source.output, source.activation) == ("logits", "softmax")
    model = rebuild(source, input_shape(source))
    pixels = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    assert max_difference(source, model, Normalization(1.0, 0.0), source.normalization, pixels) < 1e-5
