"""``split.json``: which files of a folder data set a run trained, validated and tested on.

A folder's split is derived from its listing and the seed, so images added to the folder later
would move files between the splits, and a model would be tested on images it trained on.
Training writes the split beside the model and export copies it beside its files; later
commands on those files read the split from there instead of listing the folder again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

SPLIT_FILE = "split.json"
PARTS = ("train", "val", "test")


def split_record(dataset) -> dict | None:
    """The JSON of a folder data set's split (paths relative to its folder), or None for a built-in one."""
    if not all(hasattr(getattr(dataset, part), "files") for part in PARTS):
        return None
    root = Path(dataset.name)
    record = {"data": dataset.name, "seed": dataset.seed, "labels": list(dataset.labels)}
    for part in PARTS:
        record[part] = [os.path.relpath(f, root) for f in getattr(dataset, part).files]
    return record


def split_beside(path) -> Path | None:
    """The split file in the folder of the model file `path`, if there is one."""
    found = Path(path).parent / SPLIT_FILE
    return found if found.is_file() else None


def read_split(path: Path, root: Path, labels, size, channels) -> dict | None:
    """``{part: FileSplit}`` from `path` when it is the split of folder `root` with these labels, else None."""
    from .files import FileSplit

    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if Path(record["data"]) != root or tuple(record["labels"]) != tuple(labels):
            return None  # a split of other data: this data is split from its listing
        index = {name: i for i, name in enumerate(labels)}
        parts = {}
        for part in PARTS:
            files = [str(f) for f in record[part]]
            if any(Path(f).is_absolute() or ".." in Path(f).parts for f in files):
                raise ValueError(f"its {part} split names a file outside the folder")
            # A file's class is its class folder, the first part of its path (as when listed).
            ids = np.array([index[Path(f).parts[0]] for f in files], dtype=np.int64)
            parts[part] = FileSplit(tuple(os.fspath(root / f) for f in files), ids, size, channels)
        return parts
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise DataError(f"cannot read the split file {path}: {exc}; delete it to split {root} from its listing again") from None
