"""Splits of image files, read only when and where they are needed.

A folder data set is a list of files: training streams it (see :mod:`edgecnn.train.stream`)
and the smaller splits are decoded when a command asks for them. Files whose header Pillow
cannot read are left out when the folder is listed; a file that fails later, while being
decoded, is skipped and counted in :attr:`FileSplit.skipped`.
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ._image import read_image, summarize_reason
from .dataset import Split, check_labels


def workers() -> int:
    # Pillow releases the GIL while it decodes and resizes, so threads decode in parallel.
    return max(1, min(8, os.cpu_count() or 1))


def read_or_reason(path, size, channels):
    """``(pixels, None)`` or ``(None, reason)``: a file that cannot be decoded is a reason, not an error."""
    try:
        return read_image(path, size, channels), None
    except Exception as exc:  # Pillow raises many types on corrupt data; any of them means "skip".
        return None, summarize_reason(exc)


def header_reason(path) -> str | None:
    """Why `path` is not an image by its header alone (cheap: nothing is decoded), or None."""
    from ..runtime.preprocess import open_image

    try:
        with open_image(path):
            return None
    except Exception as exc:
        return summarize_reason(exc)


def parallel(fn, items, what: str, unit: str = "img") -> list:
    """``[fn(item) ...]`` on a thread pool, in order, with a progress bar."""
    from ..progress import bar

    with ThreadPoolExecutor(workers()) as pool:
        return list(bar(pool.map(fn, items), what=what, unit=unit, total=len(items)))


def decode_files(files, size, channels, what: str = "decoding images"):
    """Decode `files` in parallel: ``(index of each good file, stacked uint8 images, [(file, reason)])``."""
    results = parallel(lambda f: read_or_reason(f, size, channels), list(files), what)
    good = [i for i, (pixels, _) in enumerate(results) if pixels is not None]
    skipped = [(str(f), reason) for f, (pixels, reason) in zip(files, results) if pixels is None]
    images = np.stack([results[i][0] for i in good]) if good else np.zeros((0, *size, channels), np.uint8)
    return good, images, skipped


# eq=False as for Split: a numpy field makes == ambiguous.
@dataclass(frozen=True, eq=False)
class FileSplit:
    """Image files and their labels; pixels are decoded to ``size`` x ``channels`` on demand."""

    files: tuple[str, ...]
    labels: np.ndarray  # int64 (N,), one per file
    size: tuple[int, int]
    channels: int
    #: (file, reason) for files that failed while being decoded, filled in as they are met.
    skipped: list = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        check_labels("FileSplit", self.labels, len(self.files))

    def __len__(self) -> int:
        return len(self.files)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (*self.size, self.channels)

    def note_skipped(self, path: str, reason: str) -> None:
        with self._lock:
            if all(path != seen for seen, _ in self.skipped):
                self.skipped.append((path, reason))

    def subset(self, idx) -> "FileSplit":
        """The files at `idx`, still unread."""
        idx = np.asarray(idx, dtype=np.int64)
        return FileSplit(tuple(self.files[i] for i in idx), self.labels[idx], self.size, self.channels)

    def take(self, idx, warn: bool = True) -> Split:
        """The files at `idx` decoded, in memory; unreadable ones are left out (with a warning if `warn`)."""
        idx = np.asarray(idx, dtype=np.int64)
        files = [self.files[i] for i in idx]
        good, images, skipped = decode_files(files, self.size, self.channels)
        for path, reason in skipped:
            self.note_skipped(path, reason)
        if skipped and warn:
            warnings.warn(
                f"skipped {len(skipped)} of {len(files)} image file(s) that could not be decoded "
                f"(first: {skipped[0][0]}: {skipped[0][1]})",
                stacklevel=2,
            )
        return Split(images=images, labels=self.labels[idx][good])

    def load(self) -> Split:
        """Every file of the split decoded, in memory."""
        return self.take(np.arange(len(self)))
