"""Results that would look fine and be wrong, and user text that would break the files and screens it lands in."""

import json
import shutil

import numpy as np
import pytest

from edgecnn.artifact import ArtifactMetadata
from edgecnn.calibration import CalibrationWarning, from_path
from edgecnn.data.registry import folder_classes
from edgecnn.errors import DataError, ModelFileError
from edgecnn.evaluate.report import markdown
from edgecnn.text import markdown_text, one_line, terminal_safe

HOSTILE = ["a\nb", "c\x1b]0;owned\x07", "d\r", "e\x9b2J"]


@pytest.mark.parametrize("name", HOSTILE)
def test_a_class_folder_whose_name_is_no_label_is_refused_in_one_line(tmp_path, name):
    for cls in ("ok", name):
        (tmp_path / cls).mkdir()
    with pytest.raises(DataError) as exc:
        folder_classes(tmp_path)
    message = str(exc.value)
    assert "\n" not in message and "\x1b" not in message and "\r" not in message and "\x9b" not in message
    assert "control character" in message and "rename it" in message


@pytest.mark.parametrize("name", HOSTILE)
def test_metadata_with_a_label_of_two_lines_or_an_escape_is_refused(name):
    meta = {"format": "keras", "precision": "float32", "labels": ["cat", name], "input_shape": [8, 8, 3]}
    with pytest.raises(ModelFileError, match="control character") as exc:
        ArtifactMetadata.from_dict(meta)
    assert "\n" not in str(exc.value) and "\x1b" not in str(exc.value)
    assert ArtifactMetadata.from_dict({**meta, "labels": ["cat", "<b>dog</b> | *fox*"]}).labels[1] == "<b>dog</b> | *fox*"


def test_report_md_shows_a_path_and_names_as_text_never_as_markup():
    path = "/data/photos\n# Injected heading <script>alert(1)</script> | [link](x) `code` *bold*"
    artifact = {"name": "model|int8\n<img src=x>.tflite", "format": "tflite", "precision": "int8", "size_bytes": 10}
    artifact.update(accuracy=0.5, agreement=None, accuracy_drop=None, samples=4)
    report = {"arch": "xception-pico", "dataset": path, "input_shape": [8, 8, 3], "num_classes": 2, "artifacts": [artifact]}
    text = markdown(report)
    lines = text.splitlines()
    assert lines[0].startswith("# edgecnn run: xception-pico on /data/photos\\\\n")  # markdown shows a backslash and an n
    assert not any(line.startswith("# Injected") for line in lines)
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text
    table = [line for line in lines if line.startswith("| ")]
    assert len(table) == 2 and all(line.count(" | ") == table[0].count(" | ") for line in table)  # no cell break
    assert "\\[link\\](x)" in text and "\\`code\\`" in text and "\\*bold\\*" in text
    assert "\\|" in markdown_text("a|b") and one_line("a\nb\tc") == "a\\nb\\tc"
    # report.json keeps the text as it is: JSON escapes it.
    assert json.loads(json.dumps(report))["dataset"] == path


def test_terminal_output_cannot_drive_the_terminal():
    assert terminal_safe("cat\x1b]0;owned\x07\x9b2J") == "cat\\x1b]0;owned\\x07\\x9b2J"


def test_calibration_images_that_cannot_hold_real_inputs_are_refused_before_conversion(tmp_path):
    rng = np.random.default_rng(0)
    black = np.zeros((120, 8, 8, 3), np.uint8)
    np.save(tmp_path / "black.npy", black)
    with pytest.raises(DataError, match="the same image"):
        from_path(tmp_path / "black.npy", (8, 8, 3))
    colours = np.repeat(np.repeat(rng.integers(0, 256, (120, 1, 1, 3), dtype=np.uint8), 8, 1), 8, 2)
    np.save(tmp_path / "flat.npy", colours)
    with pytest.raises(DataError, match="each a single flat colour"):
        from_path(tmp_path / "flat.npy", (8, 8, 3))
    mostly = colours.copy()
    mostly[:40] = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "mostly.npy", mostly)
    with pytest.warns(CalibrationWarning, match="80 of the 120 calibration images .* single flat colour"):
        assert len(from_path(tmp_path / "mostly.npy", (8, 8, 3))) == 120


def test_export_refuses_a_model_whose_outputs_are_not_its_labels(trained_run, tmp_path):
    from edgecnn.export import ExportOptions, export_model

    for name in ("model.keras", "model.keras.json"):
        shutil.copy(trained_run / name, tmp_path / name)
    sidecar = json.loads((tmp_path / "model.keras.json").read_text())
    sidecar["labels"] = sidecar["labels"][:-1]
    (tmp_path / "model.keras.json").write_text(json.dumps(sidecar))
    with pytest.raises(ModelFileError, match="has 10 output.* names 9 labels"):
        export_model(tmp_path / "model.keras", tmp_path / "out", ExportOptions(int8=True, calib_size=120))
    assert not (tmp_path / "out").exists()


def _one_image_per_class(root, classes, size=16):
    from PIL import Image

    for i, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        Image.fromarray(np.full((size, size), i * 20, np.uint8)).save(root / name / "only.png")
    return root


def test_validate_never_prints_a_figure_for_the_wrong_classes_or_no_test_images(trained_run, tmp_path):
    from click.testing import CliRunner

    from edgecnn.cli import main

    model = trained_run / "model.keras"
    labels = json.loads((trained_run / "model.keras.json").read_text())["labels"]
    cases = {
        "other classes": (_one_image_per_class(tmp_path / "pets", ["cat", "dog"]), "are not the model's labels"),
        "no test images": (_one_image_per_class(tmp_path / "few", labels), "0 images"),
    }
    for what, (folder, fragment) in cases.items():
        result = CliRunner().invoke(main, ["validate", str(model), "--data", str(folder)])
        assert result.exit_code == 1, (what, result.output)
        (line,) = result.stderr.strip().splitlines()
        assert fragment in line and "nan" not in line and "%" not in line, (what, line)
