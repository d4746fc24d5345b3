"""Data loading: built-in data sets, splits, image folders and their error messages."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

from edgecnn.artifact import Normalization
from edgecnn.data import (
    SHAPE_LABELS,
    Dataset,
    Split,
    generate_shapes,
    list_datasets,
    load_dataset,
    load_images,
    stratified_sample,
    stratified_split,
)
from edgecnn.errors import DataError, MissingDependencyError


@pytest.fixture(scope="module")
def digits():
    pytest.importorskip("sklearn")
    return load_dataset("digits", seed=0)


def _all_labels(ds: Dataset) -> np.ndarray:
    return np.concatenate([ds.train.labels, ds.val.labels, ds.test.labels])


# --- digits -----------------------------------------------------------------


def test_digits_shape_dtype_range(digits):
    assert digits.name == "digits"
    assert digits.labels == tuple(str(i) for i in range(10))
    assert digits.num_classes == 10
    assert digits.input_shape == (32, 32, 1)
    assert len(digits.train) + len(digits.val) + len(digits.test) == 1797
    for split in (digits.train, digits.val, digits.test):
        assert split.images.dtype == np.uint8 and split.labels.dtype == np.int64
        assert split.images.shape[1:] == (32, 32, 1)
    assert digits.train.images.min() == 0 and digits.train.images.max() == 255
    assert sorted(np.unique(_all_labels(digits))) == list(range(10))
    assert digits.normalization == Normalization()


def test_digits_scaling_matches_source_and_channels():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    raw = sklearn_datasets.load_digits()
    from edgecnn.data.digits import digits_arrays

    images, labels = digits_arrays(image_size=8, channels=3)
    assert images.shape == (1797, 8, 8, 3)
    np.testing.assert_array_equal(images[..., 0], np.rint(raw.images * 255 / 16).astype(np.uint8))
    np.testing.assert_array_equal(images[..., 0], images[..., 2])
    np.testing.assert_array_equal(labels, raw.target)


def test_digits_without_sklearn_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "edgecnn\[train\]"'):
        load_dataset("digits")


# --- splits -----------------------------------------------------------------


def test_split_is_stratified_disjoint_and_complete():
    labels = np.repeat(np.arange(10), np.arange(10, 110, 10))  # unbalanced: 10..100 per class
    tr, va, te = stratified_split(labels, 0.1, 0.2, seed=3)
    joined = np.concatenate([tr, va, te])
    assert len(joined) == len(labels) and len(np.unique(joined)) == len(labels)
    for idx in (tr, va, te):
        assert idx.dtype == np.int64
        assert set(labels[idx]) == set(range(10))
    for c in range(10):
        n = np.sum(labels == c)
        assert np.sum(labels[va] == c) == max(1, int(np.floor(n * 0.1 + 0.5)))
        assert np.sum(labels[te] == c) == max(1, int(np.floor(n * 0.2 + 0.5)))
    # Not grouped by class: a trainer that forgets to shuffle still sees mixed batches.
    assert len(set(labels[tr[:20]])) > 1


def test_split_is_deterministic_per_seed():
    labels = np.repeat(np.arange(5), 40)
    a = stratified_split(labels, 0.1, 0.2, seed=7)
    b = stratified_split(labels, 0.1, 0.2, seed=7)
    c = stratified_split(labels, 0.1, 0.2, seed=8)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(np.sort(x), np.sort(z)) for x, z in zip(a, c))


def test_split_small_classes_keep_one_training_sample():
    labels = np.array([0, 0, 0, 1, 1, 2] + [3] * 20)
    tr, va, te = stratified_split(labels, 0.1, 0.2, seed=0)
    assert [np.sum(labels[idx] == 0) for idx in (tr, va, te)] == [1, 1, 1]
    for c in (1, 2):
        assert np.sum(labels[tr] == c) >= 1
    tr, va, te = stratified_split(labels, 0.0, 0.0, seed=0)
    assert len(va) == 0 and len(te) == 0 and len(tr) == len(labels)


def test_dataset_splits_follow_seed(digits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    np.testing.assert_array_equal(again.val.images, digits.val.images)
    assert not np.array_equal(other.val.images, digits.val.images)
    for split in (digits.train, digits.val, digits.test):
        assert set(split.labels) == set(range(10))


def test_stratified_sample_is_proportional_and_seeded():
    labels = np.repeat(np.arange(4), [100, 50, 30, 20])
    idx = stratified_sample(labels, 20, seed=0)
    assert len(idx) == 20 and len(np.unique(idx)) == 20
    assert np.bincount(labels[idx], minlength=4).tolist() == [10, 5, 3, 2]
    np.testing.assert_array_equal(idx, stratified_sample(labels, 20, seed=0))
    assert not np.array_equal(idx, stratified_sample(labels, 20, seed=1))
    # Every class is represented once the size allows it, even a rare one.
    rare = np.array([0] * 98 + [1, 2])
    assert set(rare[stratified_sample(rare, 5, seed=0)]) == {0, 1, 2}
    np.testing.assert_array_equal(stratified_sample(labels, 500, seed=0), np.arange(200))
    with pytest.raises(DataError, match="positive integer"):
        stratified_sample(labels, 0, seed=0)


# --- shapes -----------------------------------------------------------------


def test_shapes_are_deterministic_per_seed():
    a, la = generate_shapes(samples_per_class=10, image_size=32, seed=5)
    b, lb = generate_shapes(samples_per_class=10, image_size=32, seed=5)
    c, _ = generate_shapes(samples_per_class=10, image_size=32, seed=6)
    assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    assert a.tobytes() != c.tobytes()


def test_shapes_dataset_classes_colour_and_balance():
    ds = load_dataset("shapes", samples_per_class=30, seed=0)
    assert ds.name == "shapes" and ds.labels == SHAPE_LABELS and ds.num_classes >= 6
    assert ds.input_shape == (64, 64, 3)
    labels = _all_labels(ds)
    assert np.bincount(labels).tolist() == [30] * ds.num_classes
    for split in (ds.train, ds.val, ds.test):
        assert set(split.labels) == set(range(ds.num_classes))
    x = ds.train.images.astype(np.int16)
    # Colour: the channels differ, not a grey image stored three times.
    assert np.mean(np.abs(x[..., 0] - x[..., 1])) > 10
    # Every image shows something: a shape on a background, not a flat fill.
    assert (x.reshape(len(x), -1).std(axis=1) > 10).all()


@pytest.mark.parametrize("size", [24, 96, (24, 40)])
def test_shapes_any_resolution(size):
    images, labels = generate_shapes(samples_per_class=3, image_size=size, seed=1)
    hw = (size, size) if isinstance(size, int) else size
    assert images.shape == (18, *hw, 3) and images.dtype == np.uint8
    # Scene parameters do not depend on the resolution.
    _, labels_small = generate_shapes(samples_per_class=3, image_size=16, seed=1)
    np.testing.assert_array_equal(labels, labels_small)


def test_shapes_grayscale_matches_pillow_conversion():
    rgb, _ = generate_shapes(samples_per_class=2, image_size=16, seed=2, channels=3)
    gray, _ = generate_shapes(samples_per_class=2, image_size=16, seed=2, channels=1)
    assert gray.shape == (12, 16, 16, 1)
    expected = np.stack([np.asarray(Image.fromarray(im).convert("L")) for im in rgb])
    np.testing.assert_array_equal(gray[..., 0], expected)


def _shape_features(images: np.ndarray) -> np.ndarray:
    """Rotation/translation-invariant silhouette features: radial histogram, fill, angular spectrum."""
    x = images.astype(np.float32)
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    background = np.median(border, axis=1)
    masks = np.linalg.norm(x - background[:, None, None], axis=-1) > 40
    yy, xx = np.mgrid[: x.shape[1], : x.shape[2]] + 0.5
    feats = []
    for m in masks:
        ys, xs = yy[m], xx[m]
        cy, cx = ys.mean(), xs.mean()
        r = np.hypot(ys - cy, xs - cx)
        rmax = r.max() + 0.5
        hist = np.histogram(r / rmax, bins=8, range=(0, 1))[0] / len(r)
        sector = ((np.arctan2(ys - cy, xs - cx) + np.pi) / (2 * np.pi) * 32).astype(int) % 32
        profile = np.zeros(32)
        np.maximum.at(profile, sector, r / rmax)
        spectrum = np.abs(np.fft.rfft(profile))[1:9] / 32
        feats.append(np.r_[hist, len(r) / (np.pi * rmax**2), spectrum])
    return np.asarray(feats)


def test_shapes_classes_are_learnable():
    linear_model = pytest.importorskip("sklearn.linear_model")
    x_train, y_train = generate_shapes(samples_per_class=100, image_size=32, seed=1)
    x_test, y_test = generate_shapes(samples_per_class=40, image_size=32, seed=2)
    clf = linear_model.LogisticRegression(max_iter=3000).fit(_shape_features(x_train), y_train)
    accuracy = clf.score(_shape_features(x_test), y_test)
    assert accuracy >= 0.6, f"shape classes barely separable: accuracy {accuracy:.2f} (chance 0.17)"


def test_data_package_needs_no_tensorflow_or_sklearn():
    code = (
        "import sys, edgecnn.data as d; d.load_dataset('shapes', samples_per_class=2, image_size=16); "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'sklearn')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --- image folders -----------------------------------------------------------


def _solid(color, size=(20, 12), mode="RGB"):
    return Image.new(mode, size, color)


@pytest.fixture
def image_folder(tmp_path):
    root = tmp_path / "pets"
    (root / "dog").mkdir(parents=True)
    (root / "cat" / "nested").mkdir(parents=True)
    (root / ".cache").mkdir()
    _solid((255, 0, 0)).save(root / "cat" / "a.png")
    _solid((250, 10, 10)).save(root / "cat" / "b.JPG", format="JPEG", quality=95)
    _solid((0, 255, 0)).save(root / "cat" / "nested" / "c.bmp")
    frames = [_solid((0, 0, 255)).convert("P"), _solid((255, 255, 0)).convert("P")]
    frames[0].save(root / "dog" / "anim.gif", save_all=True, append_images=frames[1:])
    _solid(128, mode="L").save(root / "dog" / "gray.jpeg")
    _solid((10, 20, 30, 0), mode="RGBA").save(root / "dog" / "alpha.png")
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "dog" / "notes.txt").write_text("not an image")
    _solid((1, 2, 3)).save(root / ".cache" / "x.png")
    return root


def test_folder_loader_reads_classes_and_skips_corrupt_files(image_folder):
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image file"):
        ds = load_dataset(str(image_folder), val_fraction=0.0, test_fraction=0.0)
    assert ds.name == str(image_folder)
    assert ds.labels == ("cat", "dog")
    assert ds.input_shape == (96, 96, 3)
    assert len(ds.train) == 6
    assert np.bincount(ds.train.labels).tolist() == [3, 3]
    assert len(ds.skipped) == 1
    assert ds.skipped[0][0].endswith("broken.png") and ds.skipped[0][1]
    # The GIF contributes its first (blue) frame.
    means = ds.train.load().images.reshape(len(ds.train), -1, 3).mean(axis=1)
    assert any(np.allclose(m, (0, 0, 255), atol=2) for m in means)
    assert not any(np.allclose(m, (255, 255, 0), atol=2) for m in means)


def test_folder_loader_size_and_grayscale(image_folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = load_dataset(image_folder, image_size=(16, 24), channels=1, test_fraction=0.0, val_fraction=0.0)
    assert ds.input_shape == (16, 24, 1)
    assert ds.train.load().images.dtype == np.uint8


def test_load_images_flat_nested_and_list(tmp_path, image_folder):
    flat = tmp_path / "calib"
    flat.mkdir()
    for i in range(3):
        _solid((i * 50, 0, 0)).save(flat / f"{i}.png")
    images = load_images(flat, image_size=32, channels=3)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert [int(im[0, 0, 0]) for im in images] == [0, 50, 100]
    with pytest.warns(UserWarning, match="skipped 1"):
        nested = load_images(image_folder, image_size=8, channels=1)
    assert nested.shape == (6, 8, 8, 1)
    listed = load_images([flat / "1.png", flat / "2.png"], image_size=8, channels=3)
    assert listed.shape == (2, 8, 8, 3)
    with pytest.raises(DataError, match="does not exist"):
        load_images(tmp_path / "missing", image_size=8, channels=3)
    with pytest.raises(DataError, match="no image files"):
        load_images([], image_size=8, channels=3)
    text_only = tmp_path / "text_only"
    text_only.mkdir()
    (text_only / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no image files in .*text_only"):
        load_images(text_only, image_size=8, channels=3)


# --- errors -------------------------------------------------------------------


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_error_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError) as exc:
        load_dataset(missing)
    assert "nowhere" in _one_line(exc) and "class subfolders" in str(exc.value)
    with pytest.raises(DataError, match="digits, shapes"):
        load_dataset("no-such-dataset")


def test_error_path_is_a_file(tmp_path):
    f = tmp_path / "img.png"
    _solid((0, 0, 0)).save(f)
    with pytest.raises(DataError, match="is not a folder"):
        load_dataset(str(f))


def test_error_one_class_only(tmp_path):
    (tmp_path / "only").mkdir()
    _solid((0, 0, 0)).save(tmp_path / "only" / "a.png")
    with pytest.raises(DataError) as exc:
        load_dataset(str(tmp_path))
    message = _one_line(exc)
    assert "at least two class subfolders" in message and "'only'" in message and "/cat/" in message


def test_error_no_readable_images(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError) as exc:
        load_dataset(str(tmp_path))
    assert "2 image file(s), none readable" in _one_line(exc)
    for name in ("a", "b"):
        (tmp_path / name / "x.jpg").unlink()
    with pytest.raises(DataError, match="no image files"):
        load_dataset(str(tmp_path))


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(image_size=0), "image_size 0 is too small"),
        (dict(image_size=(32, -3)), "image_size (32, -3) is too small"),
        (dict(image_size="big"), "got 'big'"),
        (dict(channels=2), "got 2"),
        (dict(val_fraction=1.0), "val_fraction must be a number in [0, 1), got 1.0"),
        (dict(val_fraction=0.5, test_fraction=0.5), "got 0.5 + 0.5"),
        (dict(seed=-1), "got -1"),
        (dict(samples_per_class=0), "samples_per_class must be a positive integer, got 0"),
        (dict(colour="red"), "unknown option(s) colour for shapes; accepted: samples_per_class"),
    ],
)
def test_error_bad_arguments(kwargs, fragment):
    with pytest.raises(DataError) as exc:
        load_dataset("shapes", **kwargs)
    assert fragment in _one_line(exc)


def test_split_rejects_malformed_arrays():
    with pytest.raises(ValueError):
        Split(images=np.zeros((2, 8, 8, 1), np.float32), labels=np.zeros(2, np.int64))
    with pytest.raises(ValueError):
        Split(images=np.zeros((2, 8, 8, 1), np.uint8), labels=np.zeros(3, np.int64))


def test_list_datasets_names_builtins():
    names = list_datasets()
    assert set(names) == {"digits", "shapes"} and all(names.values())


def test_a_folder_is_recorded_by_its_absolute_path(image_folder, monkeypatch):
    monkeypatch.chdir(image_folder.parent)
    with pytest.warns(UserWarning):
        ds = load_dataset(image_folder.name, val_fraction=0.0, test_fraction=0.0)
    assert ds.name == str(image_folder.resolve())


def test_dataset_for_refuses_data_whose_classes_differ_from_the_model(image_folder):
    from edgecnn.artifact import ArtifactMetadata
    from edgecnn.data import dataset_for

    def meta(labels):
        return ArtifactMetadata("tflite", "int8", labels, (16, 16, 3), dataset=str(image_folder), data_seed=0)

    with pytest.warns(UserWarning):
        assert dataset_for(meta(("cat", "dog"))).labels == ("cat", "dog")
    for labels in (("cat", "dog", "fish"), ("dog", "cat"), ("0", "1")):
        with pytest.raises(DataError, match="are not the model's labels") as err:
            dataset_for(meta(labels))  # refused from the subfolder names, before any image is read
        assert "\n" not in str(err.value)
    with pytest.raises(DataError, match="'digits' has classes"):
        dataset_for(meta(("cat", "dog")), "digits")


def test_fifos_and_symlink_loops_in_a_folder_do_not_hang(image_folder):
    import os

    os.mkfifo(image_folder / "cat" / "stuck.png")
    os.symlink(image_folder, image_folder / "dog" / "loop")
    with pytest.warns(UserWarning, match="not regular files"):
        ds = load_dataset(str(image_folder), val_fraction=0.0, test_fraction=0.0)
    assert len(ds.train) == 6  # the same images as without the FIFO and the loop


def test_an_image_path_that_is_a_fifo_or_a_bomb_is_a_one_line_error(tmp_path):
    import os

    from edgecnn.runtime import load_image

    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_image(fifo, (8, 8, 3))
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 50 KB on disk, 400 megapixels decoded
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(DataError, match="more than 64,000,000 pixels"):
        load_image(bomb, (8, 8, 3))
    Image.new("1", (10_000, 7_000)).save(bomb)  # under Pillow's own limit, over edgecnn's
    with pytest.raises(DataError, match="claims 10000x7000 pixels, more than 64,000,000"):
        load_image(bomb, (8, 8, 3))


def test_a_folder_named_by_a_model_file_is_checked_before_it_is_read(tmp_path, monkeypatch):
    from edgecnn.artifact import ArtifactMetadata
    from edgecnn.data import dataset_for, registry

    def meta(folder):
        return ArtifactMetadata("tflite", "int8", ("cat", "dog"), (16, 16, 3), dataset=folder, data_seed=0)

    monkeypatch.setattr(registry, "load_dataset", lambda *a, **k: pytest.fail("the folder was read"))
    with pytest.raises(DataError, match="the model's metadata names the folder '/', whose subfolders"):
        dataset_for(meta("/"))
    with pytest.raises(DataError, match="does not exist here; pass --data"):
        dataset_for(meta(str(tmp_path / "gone")))


def test_a_data_set_too_large_for_memory_says_what_it_would_need():
    with pytest.raises(DataError, match=r"1,797 images at 20000x20000x1 need 669\.4 GiB of memory"):
        load_dataset("digits", image_size=20000)
