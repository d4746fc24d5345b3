"""Labels files: one class name per line, as TFLite metadata, MediaPipe and Android apps keep them."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

#: A labels file far larger than any class list (100,000 names of 100 bytes) is not one.
MAX_BYTES = 10 << 20


def read_labels(path: str | os.PathLike) -> tuple[str, ...]:
    """The labels in a UTF-8 text file, one per line (blank lines skipped); ConfigError if it is not one."""
    from .artifact import MAX_LABELS

    path = Path(path)
    try:
        if not path.is_file():
            raise ConfigError(f"labels file {path} does not exist or is not a file; give a text file, one label per line")
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"labels file {path} is larger than {MAX_BYTES >> 20} MiB; give a text file, one label per line")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read labels file {path} ({type(exc).__name__}); give a UTF-8 text file, one label per line"
        ) from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels:
        raise ConfigError(f"labels file {path} has no labels; write one label per line")
    if len(labels) > MAX_LABELS:
        raise ConfigError(f"labels file {path} has {len(labels):,} labels, more than {MAX_LABELS:,}")
    if len(set(labels)) != len(labels):
        raise ConfigError(f"labels file {path} names a class twice; labels must be distinct")
    return labels
