"""Folder data sets stream from their files: training, the disk cache, unreadable files, the saved split."""

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgecnn.data import SHAPE_LABELS, dataset_for, generate_shapes, load_dataset
from edgecnn.data.files import FileSplit
from edgecnn.data.split_file import SPLIT_FILE, split_beside
from edgecnn.errors import ConfigError, DataError
from edgecnn.keras_file import read_sidecar

SIZE = 16


def _write(root, per_class: int, seed: int, start: int = 0):
    images, labels = generate_shapes(per_class, SIZE, 3, seed=seed)
    for i, (image, label) in enumerate(zip(images, labels)):
        target = root / SHAPE_LABELS[label] / f"{start + i:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(target)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "shapes-folder"
    _write(root, 40, seed=3)
    return root


def test_a_folder_is_listed_not_decoded_and_its_splits_decode_on_demand(folder):
    ds = load_dataset(folder, image_size=SIZE, seed=1)
    assert all(isinstance(part, FileSplit) for part in (ds.train, ds.val, ds.test))
    assert len(ds.train) + len(ds.val) + len(ds.test) == 40 * len(SHAPE_LABELS)
    test = ds.test.load()
    assert test.images.shape == (len(ds.test), SIZE, SIZE, 3) and test.images.dtype == np.uint8
    assert np.array_equal(test.labels, ds.test.labels)
    first = np.asarray(Image.open(ds.test.files[0]).convert("RGB"))
    assert np.array_equal(test.images[0], first)


def test_the_training_stream_is_the_pixels_every_other_command_reads(folder):
    from edgecnn.tf import tensorflow
    from edgecnn.train.stream import batches

    ds = load_dataset(folder, image_size=SIZE, seed=1)
    x, y = next(iter(batches(tensorflow(), ds.val, ds.normalization, 8)))
    expected = ds.val.take(np.arange(8))
    np.testing.assert_array_equal(x.numpy(), ds.normalization.apply(expected.images))
    np.testing.assert_array_equal(y.numpy(), expected.labels)


def _fit(ds, out, **kw):
    from edgecnn.train import TrainConfig, fit

    return fit(ds, TrainConfig(arch="xception-pico", epochs=2, bn_samples=32, verbose=0), out, **kw)


@pytest.mark.slow
def test_training_streams_counts_a_file_that_fails_to_decode_and_fills_the_cache(folder, tmp_path, monkeypatch):
    ds = load_dataset(folder, image_size=SIZE, seed=1)
    victim = ds.train.files[5]  # cut short after the folder was listed: its header read, its pixels do not
    Path(victim).write_bytes(Path(victim).read_bytes()[:60])
    taken = []
    original = FileSplit.take
    monkeypatch.setattr(FileSplit, "take", lambda self, idx, warn=True: taken.append(len(idx)) or original(self, idx, warn))
    with pytest.warns(UserWarning, match="could not be decoded while training"):
        result = _fit(ds, tmp_path / "run", cache_dir=tmp_path / "cache")
    assert taken == [32]  # the BatchNorm sample; the splits themselves were streamed
    report = json.loads((tmp_path / "run" / "train.json").read_text())
    assert report["dataset"]["skipped"] == 1
    assert [f for f, _ in ds.unreadable] == [victim]
    assert len(report["epoch_seconds"]) == 2
    assert 0 <= result.val_accuracy <= 1
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert any(n.startswith("train-") and n.endswith(".index") for n in cached), cached
    assert any(n.startswith("val-") and n.endswith(".index") for n in cached), cached


def test_a_cache_held_by_another_run_is_refused_and_a_stale_lock_is_cleared(folder, tmp_path):
    from edgecnn.train.stream import Cache

    ds = load_dataset(folder, image_size=SIZE, seed=1)
    held = Cache(tmp_path / "cache")
    script = f"from edgecnn.train.stream import Cache; Cache({str(tmp_path / 'cache')!r})"
    other = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True)
    assert other.returncode != 0 and "in use by another training run" in other.stderr
    prefix = held.prefix(ds.train, "train")
    stale = tmp_path / "cache" / (prefix.rsplit("/", 1)[1] + "_0.lockfile")
    stale.write_text("left by a killed run")
    assert held.prefix(ds.train, "train") == prefix and not stale.exists()
    # Another image size, or a file changed in place, is another cache.
    assert held.prefix(load_dataset(folder, image_size=SIZE + 1, seed=1).train, "train") != prefix
    victim = ds.train.files[0]
    shutil.copy(ds.train.files[1], victim)
    assert held.prefix(ds.train, "train") != prefix
    held.close()
    with pytest.raises(ConfigError, match="cannot use --cache"):
        Cache(tmp_path / "cache" / "edgecnn.lock" / "below-a-file")


@pytest.mark.slow
def test_the_split_is_saved_and_later_commands_keep_it_when_the_folder_grows(folder, tmp_path):
    ds = load_dataset(folder, image_size=SIZE, seed=1)
    _fit(ds, tmp_path / "run")
    model = tmp_path / "run" / "model.keras"
    assert split_beside(model) == tmp_path / "run" / SPLIT_FILE
    meta = read_sidecar(model)
    _write(folder, 15, seed=9, start=1000)  # new photos arrive after training
    regrown = dataset_for(meta, folder)
    assert set(regrown.test.files) != set(ds.test.files)  # listed again, the split moves
    kept = dataset_for(meta, folder, split_beside(model))
    for part in ("train", "val", "test"):
        assert getattr(kept, part).files == getattr(ds, part).files
        assert np.array_equal(getattr(kept, part).labels, getattr(ds, part).labels)
    # The command line finds it beside the model.
    out = subprocess.run(
        [sys.executable, "-m", "edgecnn", "validate", str(model), "--data", str(folder), "--json"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["samples"] == len(ds.test)


def test_a_split_file_naming_files_outside_the_folder_is_refused(folder, tmp_path):
    from edgecnn.artifact import ArtifactMetadata

    ds = load_dataset(folder, image_size=SIZE, seed=1)
    split = tmp_path / SPLIT_FILE
    record = {"data": ds.name, "seed": 1, "labels": list(ds.labels), "train": [], "val": [], "test": ["circle/../../x.png"]}
    split.write_text(json.dumps(record))
    meta = ArtifactMetadata(
        format="keras", precision="float32", labels=ds.labels, input_shape=(SIZE, SIZE, 3), dataset=ds.name, data_seed=1
    )
    with pytest.raises(DataError, match="outside the folder"):
        dataset_for(meta, folder, split)
    split.write_text("{damaged")
    with pytest.raises(DataError, match="cannot read the split file"):
        dataset_for(meta, folder, split)
    # A split of another folder is not this one's: the folder is listed.
    split.write_text(json.dumps({**record, "data": str(tmp_path / "elsewhere")}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(dataset_for(meta, folder, split).test) == len(ds.test)
