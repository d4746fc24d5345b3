"""A split as a tf.data pipeline of normalised batches, for training and evaluation alike.

In-memory splits are sliced as uint8 (a float copy of the whole set is never made). File splits
(folders) are decoded by Pillow in tf.data's parallel map, the same decoder every other command
uses, so training sees the pixels validation and export see; a file that fails is dropped from
the stream and counted in the split's ``skipped``. With a cache folder, the decoded images are
written there during the first pass and read from it after (tf.data's ``cache``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

import numpy as np

#: Images a cached or streamed split is shuffled within (a file split is shuffled whole by name first).
SHUFFLE_BUFFER = 2048


def batches(tf, split, normalization, batch_size: int, *, seed: int | None = None, cache=None, augment=None):
    """(normalised float32 images, labels) batches of `split`; shuffled each pass when `seed` is given."""
    if hasattr(split, "files"):
        ds = _decoded(tf, split, shuffle=seed is not None and cache is None, seed=seed)
        if cache is not None:
            ds = ds.cache(cache)
            if seed is not None:
                ds = ds.shuffle(min(len(split), SHUFFLE_BUFFER), seed=seed)
    else:
        ds = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
        if seed is not None:
            ds = ds.shuffle(len(split), seed=seed)
    scale, offset = (np.asarray(v, np.float32) for v in (normalization.scale, normalization.offset))
    ds = ds.batch(batch_size).map(lambda x, y: (tf.cast(x, tf.float32) * scale + offset, y))
    if augment is not None:
        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def _decoded(tf, split, shuffle: bool, seed):
    from ..data.files import read_or_reason

    shape = split.image_shape

    def read(path):
        path = path.decode()
        pixels, reason = read_or_reason(path, split.size, split.channels)
        if pixels is None:
            split.note_skipped(path, reason)
            return np.zeros(shape, np.uint8), False
        return pixels, True

    def decode(path, label):
        pixels, ok = tf.numpy_function(read, [path], (tf.uint8, tf.bool), stateful=False)
        return tf.ensure_shape(pixels, shape), label, ok

    ds = tf.data.Dataset.from_tensor_slices((list(split.files), split.labels))
    if shuffle:
        ds = ds.shuffle(len(split), seed=seed)  # names only: cheap to shuffle whole
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.filter(lambda x, y, ok: ok).map(lambda x, y, ok: (x, y))


class Cache:
    """A folder of tf.data caches, one per split's files and pixel size, held by one process at a time.

    A run killed mid-pass leaves tf.data's lock file behind, and tf.data refuses the prefix for
    good; holding our own lock first tells a stale lock file from a live one.
    """

    def __init__(self, folder) -> None:
        from ..errors import ConfigError

        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = open(self.folder / "edgecnn.lock", "w")
        except OSError as exc:
            raise ConfigError(f"cannot use --cache {folder}: {exc.strerror or exc}; pass a writable folder") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock.close()
            raise ConfigError(f"--cache {folder} is in use by another training run; pass another folder") from None

    def prefix(self, split, what: str) -> str:
        """Where `split`'s decoded pixels are cached: named by its files and size, so other data never hits it."""
        # Sizes and times too: a file replaced under the same name must not come back from the cache.
        stats = [(f, st.st_size, st.st_mtime_ns) for f in split.files for st in [_stat(f)]]
        key = json.dumps([stats, list(split.image_shape)]).encode()
        prefix = self.folder / f"{what}-{hashlib.sha256(key).hexdigest()[:16]}"
        for stale in self.folder.glob(f"{prefix.name}*.lockfile"):
            os.unlink(stale)
        return os.fspath(prefix)

    def close(self) -> None:
        self._lock.close()


def _stat(path):
    try:
        return os.stat(path)
    except OSError:
        return os.stat_result((0,) * 10)
