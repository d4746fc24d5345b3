"""scikit-learn's bundled 8x8 handwritten digits, upscaled for CNN inputs.

Nothing is downloaded: the 1,797 images ship inside scikit-learn.
"""

from __future__ import annotations

import numpy as np

from ..errors import MissingDependencyError
from ._image import bilinear, check_channels, check_fractions, check_image_size, check_pool_memory, check_seed
from .dataset import Dataset, build_dataset

DEFAULT_SIZE = (32, 32)
DEFAULT_CHANNELS = 1
LABELS = tuple(str(i) for i in range(10))


def digits_arrays(image_size=None, channels=None) -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 digits as uint8 ``(N, H, W, C)`` images and int64 labels, in sklearn's order."""
    from PIL import Image

    size = check_image_size(image_size, DEFAULT_SIZE)
    channels = check_channels(channels, DEFAULT_CHANNELS)
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError:
        raise MissingDependencyError(
            'the "digits" data set needs scikit-learn; install it with: pip install "edgecnn[train]"'
        ) from None

    bunch = _sk_load_digits()
    check_pool_memory(len(bunch.images), size, channels)
    # Source pixels are 0..16 (4-bit counts); stretch them to the full uint8 range.
    raw = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    if raw.shape[1:] == size:
        images = raw
    else:
        resample = bilinear()
        images = np.stack([np.asarray(Image.fromarray(im, "L").resize((size[1], size[0]), resample)) for im in raw])
    images = np.repeat(images[..., None], channels, axis=-1)
    return np.ascontiguousarray(images), np.asarray(bunch.target, dtype=np.int64)


def load_digits(image_size=None, channels=None, seed: int = 0, val_fraction: float = 0.1, test_fraction: float = 0.2) -> Dataset:
    """The digits data set (default 32x32x1), split stratified by `seed`."""
    seed = check_seed(seed)
    val_fraction, test_fraction = check_fractions(val_fraction, test_fraction)
    images, labels = digits_arrays(image_size, channels)
    # A mirrored digit is not that digit (or not a digit at all): never flipped in training.
    return build_dataset(
        "digits", LABELS, images, labels, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, flippable=False
    )
