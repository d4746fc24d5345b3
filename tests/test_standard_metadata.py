"""Standard TFLite Model Metadata: what edgecnn's files carry for MediaPipe, the Task Library and
Android Studio, and what edgecnn.runtime reads from classifiers made elsewhere."""

import json
import warnings
import zipfile
from io import BytesIO

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from edgecnn import runtime
from edgecnn.artifact import METADATA_KEY, ArtifactMetadata, Normalization
from edgecnn.cli import main
from edgecnn.export.tflite_metadata import embed_artifact_metadata, embed_metadata
from edgecnn.runtime import standard_metadata as sm
from edgecnn.runtime.foreign import AssumedModelFacts
from edgecnn.runtime.tflite_file import read_tflite


def _standard(data: bytes) -> sm.StandardMetadata:
    return sm.parse(read_tflite(data).metadata[sm.METADATA_NAME])


def test_what_is_written_reads_back():
    meta = sm.StandardMetadata(
        name="net (pets)",
        version="abc",
        description="d",
        color_space="RGB",
        mean=(123.7, 116.3, 103.5),
        std=(58.4, 57.1, 57.4),
        labels_file="labels.txt",
        score_range=(0.0, 1.0),
    )
    parsed = sm.parse(sm.build(meta, (96, 128)))
    assert parsed == sm.StandardMetadata(**{**meta.__dict__, "mean": parsed.mean, "std": parsed.std})
    assert parsed.mean == pytest.approx(meta.mean) and parsed.std == pytest.approx(meta.std)
    pixels = np.arange(0, 256, 51, dtype=np.uint8).reshape(1, 1, 2, 3)
    np.testing.assert_allclose(parsed.normalization.apply(pixels), (pixels - np.array(meta.mean)) / np.array(meta.std), rtol=1e-5)


@pytest.mark.parametrize("cut", [0, 7, 12, 40, -20])
def test_a_damaged_buffer_is_a_value_error_never_a_crash(cut):
    good = sm.build(sm.StandardMetadata(name="x", mean=(0.0,), std=(1.0,), labels_file="labels.txt"), (8, 8))
    damaged = good[:cut] if cut > 0 else good[:cut] + b"\xff" * 20
    with pytest.raises(ValueError):
        sm.parse(damaged if cut else b"")
    rng = np.random.default_rng(0)
    for _ in range(200):  # random bytes after a valid identifier: refused or read, never anything else
        blob = bytearray(good)
        for i in rng.integers(8, len(blob), 6):
            blob[i] = rng.integers(0, 256)
        try:
            sm.parse(bytes(blob))
        except ValueError:
            pass


def test_edgecnn_files_carry_standard_metadata_for_under_a_kibibyte(converted_nets):
    raw = converted_nets["int8"]
    meta = ArtifactMetadata(
        "tflite", "int8", ("cat", "dog", "fox", "owl"), (16, 16, 3), Normalization(1 / 127.5, -1.0), output="probabilities"
    )
    with_standard = embed_artifact_metadata(raw, meta)
    edgecnn_only = embed_metadata(raw, METADATA_KEY, meta.to_json().encode())
    assert len(with_standard) - len(edgecnn_only) < 1024  # the metadata buffer and the zipped labels.txt
    standard = _standard(with_standard)
    assert standard.color_space == "RGB" and standard.score_range == (0.0, 1.0)
    assert standard.mean == pytest.approx((127.5,) * 3) and standard.std == pytest.approx((127.5,) * 3)
    assert sm.read_labels(with_standard, standard.labels_file) == meta.labels
    with zipfile.ZipFile(BytesIO(with_standard)) as zf:  # the standard's packing: one stored file
        (info,) = zf.infolist()
        assert info.filename == "labels.txt" and info.compress_type == zipfile.ZIP_STORED
    assert read_tflite(with_standard).metadata[METADATA_KEY] == meta.to_json().encode()
    assert embed_artifact_metadata(with_standard, meta) == with_standard  # re-embedding replaces, never grows


def _foreign(data: bytes, tmp_path, name: str, mean, std, labels) -> object:
    """`data` with standard metadata only, as MediaPipe Model Maker or Kaggle Models ship a classifier."""
    standard = sm.StandardMetadata(name="theirs", color_space="RGB", mean=mean, std=std, labels_file="labels.txt")
    model = sm.labels_archive(embed_metadata(data, sm.METADATA_NAME, sm.build(standard, (16, 16))), labels)
    path = tmp_path / name
    path.write_bytes(model)
    return path


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_predict_runs_a_classifier_that_has_only_standard_metadata(converted_nets, tmp_path, kind):
    labels = ("cat", "dog", "fox", "owl")
    path = _foreign(converted_nets[kind], tmp_path, f"{kind}.tflite", (127.5,) * 3, (127.5,) * 3, labels)
    assert METADATA_KEY not in read_tflite(path.read_bytes()).metadata
    with warnings.catch_warnings():
        warnings.simplefilter("error", AssumedModelFacts)  # nothing assumed: the file says it all
        model = runtime.load(path)
    assert model.labels == labels
    if kind == "float":  # a float input takes (pixel - mean) / std, as NormalizationOptions say
        assert model.metadata.normalization.apply(np.array([0, 255])) == pytest.approx([-1.0, 1.0])
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(image)
    result = CliRunner().invoke(main, ["predict", str(path), str(image), "--json"])
    assert result.exit_code == 0, result.output
    (top,) = json.loads(result.stdout)["predictions"].values()
    assert {t["label"] for t in top} == set(labels) and "Warning" not in result.stderr


@pytest.mark.parametrize("mean, std", [((127.5,) * 3, (0.0,) * 3), ((float("nan"),) * 3, (1.0,) * 3), ((0.0,) * 3, (-2.0,) * 3)])
def test_a_normalisation_that_is_no_normalisation_is_a_one_line_error(converted_nets, tmp_path, mean, std):
    path = _foreign(converted_nets["float"], tmp_path, "odd.tflite", mean, std, ("cat", "dog", "fox", "owl"))
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    result = CliRunner().invoke(main, ["predict", str(path), str(image)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert "not finite and positive" in line and "--mean/--std" in line
    # The user's word replaces the file's.
    assert CliRunner().invoke(main, ["predict", str(path), str(image), "--norm", "0,1"]).exit_code == 0


def test_a_damaged_standard_buffer_in_a_foreign_file_is_said_and_ignored(converted_nets, tmp_path):
    path = tmp_path / "odd.tflite"
    path.write_bytes(embed_metadata(converted_nets["int8"], sm.METADATA_NAME, b"\x08\x00\x00\x00M001\x99\x99"))
    with pytest.warns(AssumedModelFacts, match="TFLITE_METADATA"):
        model = runtime.load(path)
    assert model.labels == ("0", "1", "2", "3")
