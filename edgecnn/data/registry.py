"""``load_dataset``: one entry point for the built-in data sets and image folders."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from ..errors import DataError
from ..text import control_character, one_line
from .dataset import Dataset

_BUILTIN = {
    "digits": "8x8 handwritten digits from scikit-learn, upscaled (1,797 images, 10 classes, default 32x32x1)",
    "shapes": "synthetic coloured shapes generated from the seed (6 classes, default 64x64x3)",
}


def list_datasets() -> dict[str, str]:
    """Built-in data set names with a one-line description each."""
    return dict(_BUILTIN)


def _loader(source):
    if isinstance(source, str) and source in _BUILTIN:
        # Imported here so that e.g. "shapes" never touches scikit-learn.
        if source == "digits":
            from .digits import load_digits

            return load_digits
        from .shapes import load_shapes

        return load_shapes
    if isinstance(source, (str, os.PathLike)) and Path(source).exists():
        from .folder import load_folder

        return lambda **kw: load_folder(source, **kw)
    raise DataError(
        f"unknown data set {os.fspath(source)!r}: not a built-in name ({', '.join(_BUILTIN)}) "
        f"and no such folder; pass a built-in name or a folder of class subfolders"
    )


def _accepted_options(source) -> tuple[str, ...]:
    if source == "digits":
        from .digits import load_digits as fn
    elif source == "shapes":
        from .shapes import load_shapes as fn
    else:
        from .folder import load_folder as fn
    common = {"source", "image_size", "channels", "seed", "val_fraction", "test_fraction"}
    return tuple(p for p in inspect.signature(fn).parameters if p not in common)


def load_dataset(
    source: str | os.PathLike,
    image_size: int | tuple[int, int] | None = None,
    channels: int | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    **options,
) -> Dataset:
    """Load ``"digits"``, ``"shapes"`` or a folder of class subfolders, split train/val/test.

    Built-in names take precedence over a folder of the same name: write ``./shapes``
    to load a local folder called ``shapes``. `options` go to the loader, e.g.
    ``samples_per_class`` for shapes.
    """
    if not isinstance(source, (str, os.PathLike)):
        raise DataError(f"data source must be a name or a folder path, got {source!r}")
    loader = _loader(source)  # each loader checks its own arguments
    accepted = _accepted_options(source)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        name = source if isinstance(source, str) and source in _BUILTIN else "a folder data set"
        raise DataError(f"unknown option(s) {', '.join(unknown)} for {name}; accepted: {', '.join(accepted) or 'none'}")
    return loader(
        image_size=image_size,
        channels=channels,
        seed=seed,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        **options,
    )


def dataset_for(meta, source: str | os.PathLike | None = None, split=None) -> Dataset:
    """The data set a model was trained on, at its input size and with its split seed.

    `meta` is the model's :class:`~edgecnn.artifact.ArtifactMetadata`; `source` overrides
    the data set it names. `split` is the run's split file (see :mod:`.split_file`): where it
    is of this folder, its files are the splits, whatever the folder holds now.
    """
    named_by_model = not source
    source = source or meta.dataset
    if not source:
        raise DataError("the model's metadata names no data set; pass --data NAME or a folder")
    if not (isinstance(source, str) and source in _BUILTIN):
        _check_class_folders(Path(source), meta.labels, named_by_model)
    height, width, channels = meta.input_shape
    dataset = None
    if split is not None and not (isinstance(source, str) and source in _BUILTIN):
        dataset = _saved_split(split, Path(source).resolve(), meta)
    if dataset is None:
        dataset = load_dataset(source, image_size=(height, width), channels=channels, seed=meta.data_seed or 0)
    if tuple(dataset.labels) != tuple(meta.labels):
        # Label ids are positions in these lists: any difference makes every accuracy figure meaningless.
        raise DataError(
            f"data set {dataset.name!r} has classes {_quoted(dataset.labels)} but the model's labels are "
            f"{_quoted(meta.labels)}; pass the data the model was trained on, or a folder with one subfolder per label"
        )
    return dataset


def _saved_split(path, root: Path, meta) -> Dataset | None:
    from .split_file import read_split

    height, width, channels = meta.input_shape
    parts = read_split(path, root, meta.labels, (height, width), channels)
    if parts is None:
        return None
    return Dataset(name=os.fspath(root), labels=tuple(meta.labels), seed=meta.data_seed or 0, **parts)


def class_names(source: str | os.PathLike) -> tuple[str, ...]:
    """The classes of a built-in data set, or a folder's class subfolders, without reading an image."""
    if isinstance(source, str) and source in _BUILTIN:
        from .digits import LABELS as DIGITS
        from .shapes import LABELS as SHAPES

        return tuple(DIGITS if source == "digits" else SHAPES)
    folder = Path(source)
    if not folder.is_dir():
        raise DataError(f"--data {os.fspath(source)!r} is neither a built-in data set ({', '.join(_BUILTIN)}) nor a folder")
    return folder_classes(folder)


def folder_classes(folder: Path) -> tuple[str, ...]:
    """A data folder's class subfolders, in label order; DataError for a name that cannot be a label."""
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")))
    odd = next((c for c in classes if control_character(c)), None)
    if odd is not None:
        # A class is a line of labels.txt and of the model's labels file: a newline would shift every class after it.
        raise DataError(
            f"class folder '{one_line(odd)}' in {one_line(folder)} has a control character ({control_character(odd)}) "
            "in its name; rename it (a class name is one line of labels.txt)"
        )
    return classes


def _check_class_folders(folder: Path, labels, named_by_model: bool) -> None:
    """Refuse a folder whose class subfolders are not the model's labels before reading a file of it.

    A path from a model file's metadata is not the user's choice: it may be `/`, whose walk would
    take hours, or absent on this machine.
    """
    origin = "the model's metadata names" if named_by_model else "--data is"
    if not folder.is_dir():
        raise DataError(f"{origin} the folder {str(folder)!r}, which does not exist here; pass --data NAME or FOLDER")
    classes = folder_classes(folder)
    if tuple(classes) != tuple(labels):
        raise DataError(
            f"{origin} the folder {str(folder)!r}, whose subfolders {_quoted(classes)} are not the model's labels "
            f"{_quoted(labels)}; pass --data with the folder the model was trained on"
        )


def _quoted(labels, limit: int = 8) -> str:
    shown = ", ".join(repr(label) for label in labels[:limit])
    return f"[{shown}{', ...' if len(labels) > limit else ''}] ({len(labels)})"
