"""A synthetic RGB data set of filled shapes, generated from a seed with Pillow.

Needs no download and no scikit-learn, so it is the data set for smoke tests on a
device. Every image has a random shape colour, size, rotation and position on a
random background with per-pixel noise; the same seed gives byte-identical arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from ._image import check_channels, check_fractions, check_image_size, check_pool_memory, check_seed, is_int, rgb_to_gray
from .dataset import Dataset, build_dataset

DEFAULT_SIZE = (64, 64)
DEFAULT_CHANNELS = 3
DEFAULT_SAMPLES_PER_CLASS = 400
LABELS = ("circle", "square", "triangle", "star", "cross", "ring")

SIZE_RANGE = (0.3, 0.8)  # circumscribed diameter as a fraction of the shorter image side
NOISE_STD_RANGE = (2.0, 12.0)
# Both limits so the shape stays visible in colour and after conversion to grayscale.
MIN_COLOR_DISTANCE = 100.0
MIN_LUMA_DIFFERENCE = 50.0
SUPERSAMPLE = 2  # draw at 2x and box-downscale: cheap anti-aliasing
RING_HOLE = 0.55  # inner radius / outer radius


def _unit_polygon(name: str) -> np.ndarray:
    """Vertices on or inside the unit circle, at rotation 0."""
    if name == "square":
        a = np.pi / 4 + np.arange(4) * np.pi / 2
        return np.stack([np.cos(a), np.sin(a)], 1)
    if name == "triangle":
        a = -np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        return np.stack([np.cos(a), np.sin(a)], 1)
    if name == "star":
        a = -np.pi / 2 + np.arange(10) * np.pi / 5
        r = np.where(np.arange(10) % 2 == 0, 1.0, 0.42)
        return np.stack([r * np.cos(a), r * np.sin(a)], 1)
    if name == "cross":
        w = 0.3  # arm half-width relative to arm length
        pts = [(w, -1), (w, -w), (1, -w), (1, w), (w, w), (w, 1), (-w, 1), (-w, w), (-1, w), (-1, -w), (-w, -w), (-w, -1)]
        pts = np.asarray(pts, dtype=np.float64)
        return pts / math.hypot(1, w)  # the arm corners touch the unit circle
    raise ValueError(name)


_POLYGONS = {name: _unit_polygon(name) for name in ("square", "triangle", "star", "cross")}


def _luma(c) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _color_pair(rng: np.random.Generator) -> tuple[tuple[int, ...], tuple[int, ...]]:
    while True:
        bg, fg = rng.integers(0, 256, size=(2, 3))
        if float(np.linalg.norm(fg - bg)) >= MIN_COLOR_DISTANCE and abs(_luma(fg) - _luma(bg)) >= MIN_LUMA_DIFFERENCE:
            return tuple(int(v) for v in bg), tuple(int(v) for v in fg)


def _draw(name: str, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = size
    s = SUPERSAMPLE
    bg, fg = _color_pair(rng)
    radius = rng.uniform(*SIZE_RANGE) * min(h, w) / 2
    cx = rng.uniform(radius, w - radius)
    cy = rng.uniform(radius, h - radius)
    angle = rng.uniform(0, 2 * np.pi)

    img = Image.new("RGB", (w * s, h * s), bg)
    draw = ImageDraw.Draw(img)
    R, X, Y = radius * s, cx * s, cy * s
    if name in ("circle", "ring"):
        draw.ellipse((X - R, Y - R, X + R, Y + R), fill=fg)
        if name == "ring":
            r = R * RING_HOLE
            draw.ellipse((X - r, Y - r, X + r, Y + r), fill=bg)
    else:
        c, sn = math.cos(angle), math.sin(angle)
        pts = _POLYGONS[name] @ np.array([[c, sn], [-sn, c]]) * R + (X, Y)
        draw.polygon([tuple(p) for p in pts.tolist()], fill=fg)
    if s > 1:
        img = img.reduce(s)
    return np.asarray(img)


def generate_shapes(
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS, image_size=None, channels=None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``len(LABELS) * samples_per_class`` uint8 images and their int64 labels.

    Labels come in a seeded shuffled order, so any prefix is roughly class-balanced.
    """
    size = check_image_size(image_size, DEFAULT_SIZE)
    channels = check_channels(channels, DEFAULT_CHANNELS)
    seed = check_seed(seed)
    if not is_int(samples_per_class) or samples_per_class < 1:
        raise DataError(f"samples_per_class must be a positive integer, got {samples_per_class!r}")
    check_pool_memory(len(LABELS) * samples_per_class, size, channels)

    # Separate streams: scene parameters do not depend on the resolution, so one seed
    # gives the same scenes at every image size; only the noise differs.
    scene_seq, noise_seq = np.random.SeedSequence(seed).spawn(2)
    rng, noise_rng = np.random.default_rng(scene_seq), np.random.default_rng(noise_seq)
    labels = rng.permutation(np.repeat(np.arange(len(LABELS), dtype=np.int64), samples_per_class))
    images = np.empty((len(labels), *size, 3), dtype=np.uint8)
    buf = np.empty((*size, 3), dtype=np.float32)
    for i, label in enumerate(labels):
        pixels = _draw(LABELS[label], size, rng)
        noise_rng.standard_normal(out=buf, dtype=np.float32)
        buf *= np.float32(rng.uniform(*NOISE_STD_RANGE))
        buf += pixels
        np.rint(buf, out=buf)
        np.clip(buf, 0, 255, out=buf)
        images[i] = buf
    if channels == 1:
        images = rgb_to_gray(images)
    return images, labels


def load_shapes(
    image_size=None,
    channels=None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS,
) -> Dataset:
    """The shapes data set (default 64x64x3, 400 images per class), split stratified by `seed`."""
    val_fraction, test_fraction = check_fractions(val_fraction, test_fraction)
    images, labels = generate_shapes(samples_per_class, image_size, channels, seed)
    return build_dataset("shapes", LABELS, images, labels, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
