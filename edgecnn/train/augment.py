"""Training-time augmentation, a named choice recorded in train.json, applied per batch in tf.data.

- ``none``: the images as they are.
- ``light`` (the default): a random translation by up to a tenth of the image size.
- ``standard``: a random crop of 80-100% of each side resized back (scale and position), a
  horizontal flip where the data set allows it (never digits: a mirrored 2 is no 2),
  brightness within 10% of the pixel range and contrast within 20%.
"""

from __future__ import annotations

AUGMENTATIONS = ("none", "light", "standard")
#: The largest translation of ``light``, as a share of the image size.
SHIFT = 0.1
#: The smallest crop side of ``standard``, as a share of the image's.
MIN_CROP = 0.8
BRIGHTNESS = 0.1
CONTRAST = 0.2


def augmenter(tf, shape, augment: str, seed: int, flip: bool = False, span: float = 1.0):
    """A tf.data map function over (images, labels) batches, or None for ``none``.

    `flip` allows horizontal flips; `span` is the normalised pixel range (what 0..255 became).
    """
    if augment == "none":
        return None
    if augment == "light":
        return _translate(tf, shape, seed)
    height, width = shape[0], shape[1]

    def standard(x, y):
        n = tf.shape(x)[0]
        side = tf.random.uniform((n, 1), MIN_CROP, 1.0, seed=seed)
        top = tf.random.uniform((n, 1), 0.0, 1.0, seed=seed + 1) * (1 - side)
        left = tf.random.uniform((n, 1), 0.0, 1.0, seed=seed + 2) * (1 - side)
        boxes = tf.concat([top, left, top + side, left + side], axis=1)
        x = tf.image.crop_and_resize(x, boxes, tf.range(n), (height, width))
        if flip:
            x = tf.image.random_flip_left_right(x, seed=seed + 3)
        mean = tf.reduce_mean(x, axis=(1, 2, 3), keepdims=True)
        contrast = tf.random.uniform((n, 1, 1, 1), 1 - CONTRAST, 1 + CONTRAST, seed=seed + 4)
        brightness = tf.random.uniform((n, 1, 1, 1), -BRIGHTNESS, BRIGHTNESS, seed=seed + 5) * span
        return (x - mean) * contrast + mean + brightness, y

    return standard


def _translate(tf, shape, seed: int):
    height, width = shape[0], shape[1]
    pad_h, pad_w = int(round(height * SHIFT)), int(round(width * SHIFT))

    def translate(x, y):
        # Pad with zeros and crop back: a random translation of up to SHIFT.
        x = tf.image.pad_to_bounding_box(x, pad_h, pad_w, height + 2 * pad_h, width + 2 * pad_w)
        x = tf.image.random_crop(x, (tf.shape(x)[0], height, width, shape[2]), seed=seed)
        return x, y

    return translate
