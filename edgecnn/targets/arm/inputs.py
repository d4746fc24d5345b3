"""What a validation runs: a .tflite artifact's metadata and the test split it was trained with."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ...artifact import METADATA_KEY, ArtifactMetadata
from ...errors import ModelFileError


def artifact_metadata(path: Path) -> ArtifactMetadata:
    """Metadata of a .tflite artifact, read without an interpreter."""
    from ...runtime import load_tflite, resolve_metadata

    if path.suffix.lower() != ".tflite":
        raise ModelFileError(
            f"{path} is not a .tflite file; ARM targets run TFLite artifacts (export with `edgecnn export --int8`)"
        )
    parsed = load_tflite(path)
    meta = resolve_metadata(path, parsed.metadata.get(METADATA_KEY))
    if meta is None:
        raise ModelFileError(
            f"{path} has no edgecnn metadata; ARM targets validate exported models: export it with `edgecnn export`, "
            "or validate it on this machine with --labels/--norm"
        )
    return meta


def labelled_test_images(meta: ArtifactMetadata, data: Optional[str], artifact=None) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images, labels) of the test split the model was trained with (loaded on the host).

    `artifact`: the model file, beside which the run's split file may be."""
    from ...data import dataset_for
    from ...data.split_file import split_beside

    test = dataset_for(meta, data, split_beside(artifact) if artifact else None).test.load()
    return np.ascontiguousarray(test.images, dtype=np.uint8), np.asarray(test.labels)
