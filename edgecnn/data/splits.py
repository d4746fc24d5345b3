"""Seeded, stratified index selection in pure numpy (no scikit-learn on the device)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from ._image import check_fractions


def _round_half_up(x: float) -> int:
    # Python's round() is banker's rounding, which would make 2.5 -> 2 but 3.5 -> 4.
    return int(np.floor(x + 0.5))


def _class_counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    n_val = _round_half_up(n * val_fraction)
    n_test = _round_half_up(n * test_fraction)
    # Small classes would otherwise round to zero and be missing from val/test metrics.
    if n >= 3:
        if val_fraction > 0:
            n_val = max(n_val, 1)
        if test_fraction > 0:
            n_test = max(n_test, 1)
    # A class must stay learnable: keep at least one sample in train.
    while n_val + n_test > n - 1 and (n_val or n_test):
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def stratified_split(labels, val_fraction: float, test_fraction: float, seed: int):
    """Split sample indices per class into ``(train_idx, val_idx, test_idx)``.

    Each class is permuted with ``np.random.default_rng(seed)``, so the result depends
    only on the labels and the seed. Each index array is returned in a seeded random
    order, never grouped by class.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise DataError(f"labels must be a 1-D array, got shape {labels.shape}; pass one label per sample")
    return split_indices(labels, *check_fractions(val_fraction, test_fraction), seed)


def split_indices(labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int):
    """:func:`stratified_split` on arguments a loader has already checked."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_val, n_test = _class_counts(len(idx), val_fraction, test_fraction)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
        parts[0].append(idx[n_val + n_test :])
    return tuple(rng.permutation(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts)


def stratified_sample(labels, size: int, seed: int) -> np.ndarray:
    """A seeded subset of ``size`` indices with class proportions kept (e.g. a calibration set).

    Quotas are proportional to class frequency (largest remainder), and every class gets
    at least one sample when ``size`` allows it. Returns all indices if ``size >= len``.
    Indices are returned sorted.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise DataError(f"sample size must be a positive integer, got {size!r}")
    if size >= n:
        return np.arange(n, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / n
    quota = np.floor(exact).astype(np.int64)
    # Stable sort: ties go to the earlier class, so the result is reproducible.
    for i in np.argsort(-(exact - quota), kind="stable")[: size - int(quota.sum())]:
        quota[i] += 1
    if size >= len(classes):
        # Move single samples from the largest quotas to classes that got none.
        for i in np.flatnonzero(quota == 0):
            quota[np.argmax(quota)] -= 1
            quota[i] = 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
