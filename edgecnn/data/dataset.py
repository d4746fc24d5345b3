"""In-memory data sets: raw uint8 pixels plus labels, already split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..artifact import Normalization


# eq=False: comparing numpy arrays with == is ambiguous, so identity equality is kept.
@dataclass(frozen=True, eq=False)
class Split:
    images: np.ndarray  # uint8 (N, H, W, C), raw pixels 0..255; normalisation is applied by the model side
    labels: np.ndarray  # int64 (N,)

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"Split.images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        if self.labels.dtype != np.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(f"Split.labels must be int64 ({len(self.images)},), got {self.labels.dtype} {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str  # "digits", "shapes", or the folder's absolute path
    labels: tuple[str, ...]  # class names; index = label id
    train: Split
    val: Split
    test: Split
    normalization: Normalization = field(default_factory=Normalization)
    skipped: tuple[tuple[str, str], ...] = ()  # (file, reason) for files that could not be read
    seed: int = 0  # drives generation and splits: later stages reload the same test split from it
    #: Whether a mirror image is still an image of its class (False for digits): --augment standard flips only then.
    flippable: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        h, w, c = self.train.images.shape[1:]
        return int(h), int(w), int(c)

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def build_dataset(
    name: str,
    class_names,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    skipped=(),
    flippable: bool = True,
) -> Dataset:
    """Split one pool of images into train/val/test, stratified by class."""
    from .splits import split_indices

    labels = np.asarray(labels, dtype=np.int64)
    train_idx, val_idx, test_idx = split_indices(labels, val_fraction, test_fraction, seed)

    def take(idx):
        return Split(images=np.ascontiguousarray(images[idx]), labels=labels[idx])

    return Dataset(
        name=str(name),
        labels=tuple(str(c) for c in class_names),
        train=take(train_idx),
        val=take(val_idx),
        test=take(test_idx),
        skipped=tuple((str(f), str(r)) for f, r in skipped),
        seed=int(seed),
        flippable=flippable,
    )
