"""Accuracy and agreement, and evaluation without TensorFlow."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from edgecnn.errors import DataError, ModelFileError
from edgecnn.evaluate import load_predictor, top1, validate
from edgecnn.runtime import softmax


def test_accuracy_agreement_and_drop(exported_run, digits_small):
    out, _ = exported_run
    images, labels = digits_small.test.images, digits_small.test.labels
    keras_logits = load_predictor(out / "model.keras").predict(images)
    result = validate(out / "model_int8.tflite", images, labels, reference=out / "model.keras", max_drop=1.0)
    int8_top1 = top1(load_predictor(out / "model_int8.tflite").predict(images))
    assert result.accuracy == pytest.approx((int8_top1 == labels).mean())
    assert result.reference_accuracy == pytest.approx((top1(keras_logits) == labels).mean())
    assert result.agreement == pytest.approx((int8_top1 == top1(keras_logits)).mean())
    assert result.accuracy_drop == pytest.approx((result.reference_accuracy - result.accuracy) * 100, abs=1e-3)
    assert result.passed == (result.accuracy_drop <= 1.0)
    assert result.samples == len(labels) and result.precision == "int8" and "ai_edge_litert" in result.backend


def test_float_tflite_equals_the_folded_keras_model(exported_run, digits_small):
    out, _ = exported_run
    images = digits_small.test.images[:50]
    a = load_predictor(out / "folded.keras").predict(images)
    tflite = load_predictor(out / "model_fp32.tflite")
    assert tflite.metadata.output == "probabilities"  # the file ends in the softmax apps read scores from
    assert np.abs(softmax(a) - tflite.predict(images)).max() <= 1e-5


def test_mismatched_data_and_missing_files(exported_run, tmp_path):
    out, _ = exported_run
    with pytest.raises(DataError, match="expects"):
        validate(out / "model_int8.tflite", np.zeros((4, 32, 32, 1), np.uint8), np.zeros(4, np.int64))
    with pytest.raises(ModelFileError, match="does not exist"):
        load_predictor(tmp_path / "nope.tflite")


def test_validate_runs_without_tensorflow(exported_run):
    """evaluate/ and runtime/ run on a device where TensorFlow cannot be imported."""
    out, _ = exported_run
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras", "keras"):
                    raise ImportError("TensorFlow is not installed on this device")
        sys.meta_path.insert(0, Block())
        from edgecnn.data import load_dataset
        from edgecnn.evaluate import validate
        data = load_dataset("digits", image_size=16)
        result = validate({str(out / "model_int8.tflite")!r}, data.test.images, data.test.labels,
                          reference={str(out / "model_fp32.tflite")!r})
        assert "tensorflow" not in sys.modules
        print(result.accuracy, result.agreement)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    accuracy, agreement = map(float, proc.stdout.split())
    assert accuracy > 0.5 and agreement > 0.9


def test_validating_on_no_images_is_an_error_not_nan():
    import numpy as np
    import pytest

    from edgecnn.errors import DataError
    from edgecnn.evaluate import validate

    with pytest.raises(DataError, match="got 0 images and 0 labels"):
        validate("unused.tflite", np.zeros((0, 8, 8, 1), np.uint8), np.zeros(0, np.int64))


def test_training_on_too_few_images_is_a_one_line_error(tmp_path):
    import numpy as np
    import pytest

    from edgecnn.data.dataset import build_dataset
    from edgecnn.errors import DataError
    from edgecnn.train import fit

    images = np.zeros((2, 16, 16, 3), np.uint8)
    dataset = build_dataset("two", ("a", "b"), images, np.array([0, 1]), seed=0, val_fraction=0.1, test_fraction=0.2)
    with pytest.raises(DataError, match="has 2 images in 2 classes: too few for a val split"):
        fit(dataset)
