"""Calibration sets: the images that set activation ranges for int8.

Drawn stratified by class from the training split (never the test split), or read
from a folder of images or a .npy/.npz array the user points at. The same set feeds
every format's quantizer.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import DataError, first_line

#: Fewer samples than this give noisy activation ranges.
MIN_RECOMMENDED = 100


class CalibrationWarning(UserWarning):
    pass


@dataclass(frozen=True)
class CalibrationSet:
    images: np.ndarray  # uint8 (N, H, W, C), raw pixels
    source: str
    #: Class ids of the images, when they come from a labelled data set.
    labels: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.images)

    def with_channels(self, channels: int) -> "CalibrationSet":
        """The same images with `channels` channels: a gray image repeated as R = G = B."""
        if self.images.shape[-1] == channels:
            return self
        if self.images.shape[-1] != 1:
            raise DataError(f"calibration images from {self.source} have {self.images.shape[-1]} channels, not 1 or {channels}")
        return CalibrationSet(np.repeat(self.images, channels, axis=-1), self.source, self.labels)

    def batches(self, normalization):
        """Yield normalised float32 batches of one sample, as converters want them."""
        from ..progress import bar

        for image in bar(self.images, what="calibrating", unit="img"):
            yield normalization.apply(image[None])


def _checked(images: np.ndarray, source: str, input_shape, labels: Optional[np.ndarray] = None) -> CalibrationSet:
    if images.ndim == 3 and input_shape[2] == 1:
        images = images[..., None]
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(input_shape):
        raise DataError(
            f"calibration images from {source} have shape {tuple(images.shape[1:])}, the model expects {tuple(input_shape)}"
        )
    if len(images) == 0:
        raise DataError(f"the calibration set from {source} is empty; give at least {MIN_RECOMMENDED} images")
    _check_varied(images, source)
    if len(images) < MIN_RECOMMENDED:
        warnings.warn(
            f"only {len(images)} calibration samples from {source}; int8 ranges may be noisy (use {MIN_RECOMMENDED}+)",
            CalibrationWarning,
            stacklevel=3,
        )
    return CalibrationSet(np.ascontiguousarray(images, dtype=np.uint8), source, labels)


def _check_varied(images: np.ndarray, source: str) -> None:
    """Refuse images that cannot represent any real input: one image over and over, or only flat colours.

    Ranges calibrated on black frames hold nothing but black: measured, the int8 model of a
    digits net lost 89.7 points (ONNX 63.0) and the converter said nothing."""
    flat = np.ptp(images.reshape(len(images), -1, images.shape[-1]), axis=1).max(axis=1) == 0
    same = len(images) > 1 and not np.any(images != images[:1])
    if same or flat.all():
        what = "the same image" if same else "each a single flat colour"
        raise DataError(
            f"the {len(images)} calibration images from {source} are {what}: int8 ranges set on them cannot hold "
            "real inputs; calibrate on images like those the model will see (--calib FOLDER, or the training data)"
        )
    if flat.mean() > 0.5:
        warnings.warn(
            f"{int(flat.sum())} of the {len(images)} calibration images from {source} are a single flat colour; "
            "int8 ranges may not hold real inputs",
            CalibrationWarning,
            stacklevel=4,
        )


def from_dataset(dataset, size: int = 300, seed: int = 0) -> CalibrationSet:
    """A class-stratified sample of `size` images from the training split."""
    from ..data import stratified_sample

    if size < 1:
        raise DataError(f"--calib-size must be at least 1, got {size}")
    sample = dataset.train.take(stratified_sample(dataset.train.labels, size, seed))
    return _checked(sample.images, f"{dataset.name} (train split)", dataset.input_shape, sample.labels)


def _declared(f, available: int, path: Path) -> int:
    """Refuse an array whose header promises more data than the file holds, before numpy allocates it."""
    fmt = np.lib.format
    if f.read(len(fmt.MAGIC_PREFIX)) != fmt.MAGIC_PREFIX:
        raise DataError(
            f"calibration array {path} has no .npy header (pickled data? edgecnn never unpickles); "
            "save uint8 images with numpy.save"
        )
    version = (f.read(1)[:1] or b"\0")[0], (f.read(1)[:1] or b"\0")[0]
    if version not in ((1, 0), (2, 0)):
        raise DataError(f"cannot read calibration array {path}: .npy format {version} is unknown; save it with numpy.save")
    read_header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    shape, _, dtype = read_header(f)
    if dtype.hasobject:
        raise DataError(
            f"calibration array {path} holds Python objects, which only a pickle could carry (allow_pickle) and edgecnn "
            "never unpickles; save raw uint8 pixels with numpy.save"
        )
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if need > available - f.tell():
        raise DataError(
            f"calibration array {path} declares shape {shape} ({need:,} bytes) but holds {available - f.tell():,}; "
            "the file is damaged or truncated, save it again with numpy.save"
        )
    return need


def _check_memory(nbytes: int, path: Path) -> None:
    from ..data._image import _memory_bytes

    if nbytes > _memory_bytes() // 2:
        raise DataError(
            f"calibration array {path} needs {nbytes / 2**30:.1f} GiB in memory, more than half of this machine's; "
            "pass --calib-size N, or save fewer images (a .npy is read only where sampled)"
        )


def _read_array(path: Path) -> np.ndarray:
    """uint8 images from a .npy (memory-mapped), or the first array of a .npz; never unpickled (a pickle runs code)."""
    import zipfile

    try:
        if path.suffix == ".npy":
            with open(path, "rb") as f:
                _declared(f, os.fstat(f.fileno()).st_size, path)
            loaded = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            with zipfile.ZipFile(path) as archive:
                members = [i for i in archive.infolist() if i.filename.endswith(".npy")]
                if not members:
                    raise DataError(f"calibration archive {path} holds no arrays; save the images with numpy.savez")
                with archive.open(members[0]) as f:
                    _check_memory(_declared(f, members[0].file_size, path), path)
            with np.load(path, allow_pickle=False) as archive:
                loaded = archive[members[0].filename[: -len(".npy")]]
    except DataError:
        raise
    except Exception as exc:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ... for a damaged file
        raise DataError(
            f"cannot read calibration array {path} ({type(exc).__name__}: {first_line(exc)}); save uint8 images with numpy.save"
        ) from None
    if loaded.dtype != np.uint8:
        raise DataError(f"calibration array {path} has dtype {loaded.dtype}; save raw uint8 pixels (0..255)")
    if loaded.ndim not in (3, 4):
        raise DataError(
            f"calibration array {path} has shape {loaded.shape}; save images as (N, H, W, C), or (N, H, W) for one channel"
        )
    return loaded


def from_path(path: str | Path, input_shape, size: int | None = None, seed: int = 0) -> CalibrationSet:
    """Images from a folder (flat or in class subfolders) or a uint8 .npy/.npz array (N, H, W, C)."""
    from ..data import load_images

    path = Path(path)
    if not path.exists():
        raise DataError(f"calibration path {path} does not exist; give a folder of images or a .npy/.npz file")
    if path.suffix in (".npy", ".npz"):
        images = _read_array(path)
    else:
        images = load_images(path, image_size=tuple(input_shape[:2]), channels=input_shape[2])
    if size is not None and len(images) > size:
        images = images[np.sort(np.random.default_rng(seed).permutation(len(images))[:size])]
    _check_memory(images.nbytes, path)
    return _checked(images, str(path), input_shape)
