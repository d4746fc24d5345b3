"""Image loading and (de)quantization for the device runtime: numpy and Pillow only."""

from __future__ import annotations

import math
import os
from typing import Optional

import numpy as np

from ..artifact import ArtifactMetadata, Quantization
from ..errors import DataError, ModelFileError

_INT_DTYPES = ("uint8", "int8", "int16", "int32")
#: Largest image decoded (width x height): a 50-megapixel photo is fine, a crafted bomb that
#: claims 60000 x 60000 in a few kilobytes is refused from its header, before decoding.
MAX_PIXELS = 64_000_000


def _resample():
    from PIL import Image

    return getattr(Image, "Resampling", Image).BILINEAR


def _mode(channels: int) -> str:
    if channels == 1:
        return "L"
    if channels == 3:
        return "RGB"
    raise DataError(f"the model expects {channels}-channel input; only 1 (grayscale) and 3 (RGB) channels are supported")


def image_to_pixels(image, input_shape) -> np.ndarray:
    """A PIL image -> uint8 array of `input_shape` (H, W, C), converted and resized bilinearly."""
    height, width, channels = (int(x) for x in input_shape)
    image = image.convert(_mode(channels))
    if image.size != (width, height):
        image = image.resize((width, height), _resample())
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def open_image(path):
    """Open an image file for decoding; DataError for what is not a regular file or claims too many pixels.

    A FIFO or a device would block ``open()`` forever, so the path is checked first.
    """
    from PIL import Image

    if not os.path.exists(path):
        raise DataError(f"image {path} does not exist; check the path")
    if not os.path.isfile(path):
        raise DataError(f"{path} is not a regular file (a folder, FIFO or device); pass an image file")
    too_big = f"more than {MAX_PIXELS:,} pixels (a decompression bomb?); pass a smaller image"
    try:
        image = Image.open(path)
    except Image.DecompressionBombError:  # Pillow's own, higher limit
        raise DataError(f"image {path} has {too_big}") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise DataError(f"image {path} claims {width}x{height} pixels, {too_big}")
    return image


def load_image(path, input_shape) -> np.ndarray:
    """Read an image file as a uint8 (H, W, C) array matching `input_shape`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open_image(path) as image:
            return image_to_pixels(image, input_shape)
    except FileNotFoundError:
        raise DataError(f"image {path} does not exist; check the path") from None
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        OSError,
        ValueError,
        SyntaxError,
        TypeError,
        MemoryError,
    ) as exc:
        reason = "not an image Pillow can read" if isinstance(exc, UnidentifiedImageError) else str(exc) or type(exc).__name__
        raise DataError(f"cannot read image {path} ({reason}); pass a PNG, JPEG or BMP file") from None


def _int_range(dtype: str) -> tuple[int, int]:
    if dtype not in _INT_DTYPES:
        raise ModelFileError(f"unsupported quantized dtype {dtype!r}; expected one of {', '.join(_INT_DTYPES)}")
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def quantize(x, q: Quantization) -> np.ndarray:
    """Real values -> integers of ``q.dtype``: ``round(x / scale + zero_point)``, clipped."""
    lo, hi = _int_range(q.dtype)
    values = np.round(np.asarray(x, dtype=np.float32) / np.float32(q.scale)) + q.zero_point
    return np.clip(values, lo, hi).astype(q.dtype)


def dequantize(values, q: Quantization) -> np.ndarray:
    """Integers -> float32: ``scale * (values - zero_point)``."""
    return ((np.asarray(values).astype(np.float32) - np.float32(q.zero_point)) * np.float32(q.scale)).astype(np.float32)


def softmax(logits, axis: int = -1) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float32)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def class_scores(outputs, kind: str) -> np.ndarray:
    """Model outputs -> class probabilities (N, classes), by what the output holds (ArtifactMetadata.output)."""
    x = np.asarray(outputs, dtype=np.float32)
    if kind == "logits":
        return softmax(x)
    if kind in ("binary_logit", "binary_probability"):
        p = 1.0 / (1.0 + np.exp(-x[..., :1])) if kind == "binary_logit" else np.clip(x[..., :1], 0.0, 1.0)
        return np.concatenate([1.0 - p, p], axis=-1)
    return x


def gray_as_rgb(pixels: np.ndarray, channels: int) -> np.ndarray:
    """One-channel pixels for a three-channel model, as R = G = B (a gray image is an RGB one);
    anything else unchanged."""
    pixels = np.asarray(pixels)
    return np.repeat(pixels, 3, axis=-1) if channels == 3 and pixels.shape[-1:] == (1,) else pixels


def top_class(outputs, kind: str) -> np.ndarray:
    """The predicted class of each row of model outputs (a one-unit binary head included)."""
    x = np.asarray(outputs)
    if kind in ("binary_logit", "binary_probability"):
        return (x[..., 0] > (0.0 if kind == "binary_logit" else 0.5)).astype(np.int64)
    return x.argmax(axis=-1)


def is_identity_quantization(q: Quantization, meta: ArtifactMetadata) -> bool:
    """True when uint8 pixels already are the quantized input (quantization undoes the normalisation)."""
    norm = meta.normalization
    if q.dtype != "uint8" or q.scale <= 0 or norm.per_channel:
        return False
    return math.isclose(q.scale * 255.0, norm.scale * 255.0, rel_tol=1e-5) and q.zero_point == round(-norm.offset / q.scale)


def prepare_input(
    pixels,
    meta: ArtifactMetadata,
    input_dtype: str,
    quantization: Optional[Quantization] = None,
) -> np.ndarray:
    """uint8 pixels (N, H, W, C) -> model input of `input_dtype`.

    Pixels are normalised with ``meta.normalization`` and, for int8/uint8 inputs,
    quantized with `quantization` (the interpreter's input parameters; the metadata's
    when None).
    """
    input_dtype = np.dtype(input_dtype).name
    if input_dtype in ("float32", "float16", "float64"):
        return meta.normalization.apply(pixels).astype(input_dtype)
    q = quantization or meta.input_quantization
    if q is None:
        raise ModelFileError(f"the model takes {input_dtype} input but no input quantization is known; re-export it with edgecnn")
    if q.dtype != input_dtype:
        q = Quantization(input_dtype, q.scale, q.zero_point)
    if is_identity_quantization(q, meta):
        return np.asarray(pixels, dtype=np.uint8)
    return quantize(meta.normalization.apply(pixels), q)
