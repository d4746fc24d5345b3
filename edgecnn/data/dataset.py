"""Data sets: raw uint8 pixels (in memory, or image files read on demand) plus labels, already split."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..artifact import Normalization


def check_labels(owner: str, labels: np.ndarray, count: int) -> None:
    """ValueError unless `labels` are int64, one per sample: what every split holds."""
    if labels.dtype != np.int64 or labels.shape != (count,):
        raise ValueError(f"{owner}.labels must be int64 ({count},), got {labels.dtype} {labels.shape}")


# eq=False: comparing numpy arrays with == is ambiguous, so identity equality is kept.
@dataclass(frozen=True, eq=False)
class Split:
    images: np.ndarray  # uint8 (N, H, W, C), raw pixels 0..255; normalisation is applied by the model side
    labels: np.ndarray  # int64 (N,)

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"Split.images must be uint8 (N, H, W, C), got {self.images.dtype} {self.images.shape}")
        check_labels("Split", self.labels, len(self.images))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        h, w, c = self.images.shape[1:]
        return int(h), int(w), int(c)

    def take(self, idx, warn: bool = True) -> "Split":
        """The samples at `idx` (the interface :class:`~edgecnn.data.files.FileSplit` shares)."""
        return Split(images=np.ascontiguousarray(self.images[idx]), labels=self.labels[idx])

    def load(self) -> "Split":
        """This split, in memory (it already is)."""
        return self


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str  # "digits", "shapes", or the folder's absolute path
    labels: tuple[str, ...]  # class names; index = label id
    train: Split  # or a FileSplit (folders): the same interface, pixels decoded on demand
    val: Split
    test: Split
    normalization: Normalization = field(default_factory=Normalization)
    skipped: tuple[tuple[str, str], ...] = ()  # (file, reason) for files that could not be read
    seed: int = 0  # drives generation and splits: later stages reload the same test split from it
    #: Whether a mirror image is still an image of its class (False for digits): --augment standard flips only then.
    flippable: bool = True

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def unreadable(self) -> tuple[tuple[str, str], ...]:
        """Files skipped when listed, and those that failed since, while being decoded."""
        later = [s for part in (self.train, self.val, self.test) for s in getattr(part, "skipped", ())]
        return self.skipped + tuple(later)

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
    """Split one pool of images (an array, or a FileSplit of them all) into train/val/test, stratified by class."""
    from .splits import split_indices

    labels = np.asarray(labels, dtype=np.int64)
    train_idx, val_idx, test_idx = split_indices(labels, val_fraction, test_fraction, seed)

    def take(idx):
        if hasattr(images, "subset"):  # a FileSplit: the split's files, still unread
            return images.subset(idx)
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
