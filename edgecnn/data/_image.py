"""Argument checks and Pillow helpers shared by the loaders."""

from __future__ import annotations

import numbers
import os
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError

#: File types the folder loaders read (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def check_image_size(image_size, default: tuple[int, int]) -> tuple[int, int]:
    """``None`` -> default, ``n`` -> ``(n, n)``, ``(h, w)`` -> ``(h, w)``."""
    if image_size is None:
        return default
    if is_int(image_size):
        hw = (int(image_size), int(image_size))
    elif isinstance(image_size, (tuple, list)) and len(image_size) == 2 and all(is_int(v) for v in image_size):
        hw = (int(image_size[0]), int(image_size[1]))
    else:
        raise DataError(f"image_size must be an integer or a (height, width) pair, got {image_size!r}")
    # The smallest size a model takes is the model family's rule (edgecnn.nets.MIN_INPUT_SIZE), checked there.
    if min(hw) < 1:
        raise DataError(f"image_size {image_size!r} is too small; use at least 1 pixel per side")
    return hw


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        return 8 << 30


def check_pool_memory(count: int, size: tuple[int, int], channels: int) -> None:
    """Refuse a data set whose decoded pixels would not fit in half this machine's memory, saying how much."""
    need = count * size[0] * size[1] * channels
    have = _memory_bytes()
    if need > have // 2:
        raise DataError(
            f"{count:,} images at {size[0]}x{size[1]}x{channels} need {need / 2**30:.1f} GiB of memory, more than half "
            f"of this machine's {have / 2**30:.1f} GiB; use a smaller --img-size or fewer images"
        )


def check_channels(channels, default: int) -> int:
    if channels is None:
        return default
    if not is_int(channels) or int(channels) not in (1, 3):
        raise DataError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}")
    return int(channels)


def check_seed(seed) -> int:
    if not is_int(seed) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_fractions(val_fraction, test_fraction) -> tuple[float, float]:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
            raise DataError(f"{name} must be a number in [0, 1), got {value!r}")
    if val_fraction + test_fraction >= 1:
        raise DataError(
            f"val_fraction + test_fraction must be below 1 to leave training data, got {val_fraction!r} + {test_fraction!r}"
        )
    return float(val_fraction), float(test_fraction)


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma with Pillow's integer arithmetic, so it matches ``Image.convert("L")``."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def find_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a stable (sorted) order; hidden entries skipped.

    Links are followed, but a folder is entered once (a symlink loop ends), and only regular
    files are taken: a FIFO named like an image would block the reader forever.
    """
    found, seen, odd = [], set(), []
    top = Path(folder).resolve()
    for root, dirs, files in os.walk(folder, followlinks=True):
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        # A link to the folder itself or above it would pull other classes' images in under this one.
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not top.is_relative_to((Path(root) / d).resolve()))
        for name in sorted(files):
            path = Path(root) / name
            if is_image_file(path):
                (found if path.is_file() else odd).append(path)
    if odd:
        warnings.warn(
            f"skipped {len(odd)} entries in {folder} that are not regular files (FIFOs, sockets, broken links; first: {odd[0]})",
            stacklevel=3,
        )
    return found


def bilinear():
    from PIL import Image

    # Image.Resampling exists from Pillow 9.1; the bare constant warned in 9.1-9.5.
    return getattr(Image, "Resampling", Image).BILINEAR


def read_image(path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decode one file to uint8 ``(H, W, channels)``; raises whatever Pillow raises on bad files."""
    from PIL import ImageOps

    from ..runtime.preprocess import open_image

    with open_image(path) as img:
        img.seek(0)  # first frame of animated GIF/PNG
        img.load()
        try:
            # Phone photos store rotation in EXIF; without this they would train sideways.
            img = ImageOps.exif_transpose(img)
        except Exception:  # a malformed EXIF block should not cost a readable image
            pass
        img = _to_mode(img, "L" if channels == 1 else "RGB")
        if img.size != (size[1], size[0]):
            img = img.resize((size[1], size[0]), bilinear())
        arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if arr.ndim == 2 else arr


def _to_mode(img, mode: str):
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        # 16-bit/float PNG and TIFF data: convert() would clip instead of rescaling.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "P":
        # Palette images with transparency warn unless expanded through RGBA first.
        img = img.convert("RGBA")
    return img if img.mode == mode else img.convert(mode)


def summarize_reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "unreadable"
    return f"{type(exc).__name__}: {text}"[:200]
