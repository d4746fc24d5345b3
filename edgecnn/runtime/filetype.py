"""What a file really is, from its first bytes: one table for every loader's "not a model" error."""

from __future__ import annotations

from typing import Optional

#: (kind, test on the first bytes, what to tell the user).
_KINDS = (
    ("tflite", lambda d: d[4:8] == b"TFL3", "it is a TFLite model; load it as .tflite"),
    ("png", lambda d: d.startswith(b"\x89PNG"), "it is a PNG image"),
    ("jpeg", lambda d: d.startswith(b"\xff\xd8\xff"), "it is a JPEG image"),
    ("zip", lambda d: d.startswith(b"PK\x03\x04"), "it is a zip archive, e.g. a .keras model"),
    ("hdf5", lambda d: d.startswith(b"\x89HDF"), "it is an HDF5 file, e.g. a .h5 Keras model"),
)


def foreign_kind(data: bytes, expected: str) -> Optional[str]:
    """A phrase naming what `data` is when it is a known kind other than `expected`, else None."""
    return next((hint for kind, matches, hint in _KINDS if kind != expected and matches(data)), None)
