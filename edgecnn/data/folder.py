"""Images in class subfolders (``data/cat/*.jpg``, ``data/dog/*.png``), like Keras'
``image_dataset_from_directory``: class names are the sorted subfolder names.

Images are stretched to the target size (no cropping), EXIF rotation is applied, and
GIFs contribute their first frame. Files that cannot be decoded are skipped and
reported, so one corrupt download does not stop a training run.

A folder is listed, not decoded: its splits are :class:`~edgecnn.data.files.FileSplit`s,
streamed by training and decoded in parallel when a command needs their pixels.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._image import (
    IMAGE_EXTENSIONS,
    check_channels,
    check_fractions,
    check_image_size,
    check_seed,
    find_images,
)
from .dataset import Dataset, build_dataset
from .files import FileSplit, decode_files, header_reason, parallel

DEFAULT_SIZE = (96, 96)
DEFAULT_CHANNELS = 3
_EXPECTED = "expected class subfolders like {p}/cat/*.jpg and {p}/dog/*.jpg"


def _check_folder(path: Path, source) -> None:
    if not path.exists():
        raise DataError(f"data folder {str(source)!r} does not exist; " + _EXPECTED.format(p=source))
    if not path.is_dir():
        raise DataError(f"{str(source)!r} is not a folder; " + _EXPECTED.format(p=source))


def _report_skipped(skipped, where) -> None:
    if skipped:
        first_file, first_reason = skipped[0]
        msg = f"skipped {len(skipped)} unreadable image file(s) in {where} (first: {first_file}: {first_reason})"
        warnings.warn(msg, stacklevel=3)


def folder_files(source, image_size=None, channels=None):
    """List a class-subfolder tree: ``(class_names, FileSplit of its readable files, skipped)``.

    Only headers are read (in parallel): a file Pillow cannot even open is skipped here, one that
    fails while decoding is skipped when it is met.
    """
    size = check_image_size(image_size, DEFAULT_SIZE)
    channels = check_channels(channels, DEFAULT_CHANNELS)
    root = Path(source)
    _check_folder(root, source)

    from .registry import folder_classes

    classes = list(folder_classes(root))
    if len(classes) < 2:
        found = f"found {len(classes)} ({classes[0]!r})" if classes else "found none"
        raise DataError(
            f"data folder {str(source)!r} needs at least two class subfolders, {found}; " + _EXPECTED.format(p=source)
        )

    files, file_labels = [], []
    for label, name in enumerate(classes):
        found = find_images(root / name)
        files.extend(found)
        file_labels.extend([label] * len(found))

    reasons = parallel(header_reason, files, "listing images")
    good = [i for i, reason in enumerate(reasons) if reason is None]
    skipped = [(str(f), reason) for f, reason in zip(files, reasons) if reason is not None]
    if not good:
        what = f"{len(skipped)} image file(s), none readable" if skipped else "no image files"
        raise DataError(
            f"data folder {str(source)!r} has {what}; "
            f"expected {', '.join(IMAGE_EXTENSIONS)} files in class subfolders like {source}/cat/*.jpg"
        )
    _report_skipped(skipped, repr(os.fspath(source)))
    labels = np.asarray(file_labels, dtype=np.int64)[good]
    empty = [name for i, name in enumerate(classes) if not np.any(labels == i)]
    if empty:
        msg = f"class subfolder(s) with no readable image in {source!s}: {', '.join(empty)}"
        warnings.warn(msg, stacklevel=3)
    pool = FileSplit(tuple(os.fspath(files[i]) for i in good), labels, size, channels)
    return tuple(classes), pool, tuple(skipped)


def load_folder(
    source,
    image_size=None,
    channels=None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> Dataset:
    """A data set from class subfolders (default 96x96x3), split stratified by `seed`."""
    seed = check_seed(seed)
    val_fraction, test_fraction = check_fractions(val_fraction, test_fraction)
    classes, pool, skipped = folder_files(source, image_size, channels)
    return build_dataset(
        # Absolute: the name is recorded in the model's metadata, which later commands run from anywhere.
        os.fspath(Path(source).resolve()),
        classes,
        pool,
        pool.labels,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        skipped=skipped,
    )


def load_images(paths_or_folder, image_size=DEFAULT_SIZE, channels: int = DEFAULT_CHANNELS) -> np.ndarray:
    """Read images for a calibration or evaluation set as uint8 ``(N, H, W, C)``.

    Accepts a folder (flat or with class subfolders, read recursively), one image file,
    or a list of image files. Unreadable files are skipped with a warning.
    """
    size = check_image_size(image_size, DEFAULT_SIZE)
    channels = check_channels(channels, DEFAULT_CHANNELS)
    if isinstance(paths_or_folder, (str, os.PathLike)):
        path = Path(paths_or_folder)
        if not path.exists():
            raise DataError(f"image path {str(paths_or_folder)!r} does not exist; pass a folder of images or an image file")
        files = find_images(path) if path.is_dir() else [path]
        where = repr(os.fspath(paths_or_folder))
    else:
        files = [Path(p) for p in paths_or_folder]
        where = "the given list"
    if not files:
        raise DataError(f"no image files in {where}; expected files ending in {', '.join(IMAGE_EXTENSIONS)}")
    _, images, skipped = decode_files(files, size, channels)
    if not len(images):
        raise DataError(
            f"none of the {len(files)} image file(s) in {where} could be read "
            f"(first: {skipped[0][0]}: {skipped[0][1]}); check that they are valid images"
        )
    _report_skipped(skipped, where)
    return images
