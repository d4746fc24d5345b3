"""`edgecnn predict`: classify many image files, or the frames of a camera or video, with the runtime only."""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from .data._image import IMAGE_EXTENSIONS
from .errors import ConfigError, DataError, MissingDependencyError


@dataclass(frozen=True)
class Prediction:
    source: str  # an image path, or "frame N"
    top: list  # [(label, score)], best first
    seconds: float  # inference, image decoding and resizing included


def image_files(args: Iterable[str]) -> list[Path]:
    """The image files named by `args`: files, folders (searched recursively for images) and
    glob patterns, in the order given, each file once; DataError for one that matches nothing."""
    found: dict[Path, None] = {}
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
            if not matches:
                raise DataError(f"folder {arg} holds no {', '.join(IMAGE_EXTENSIONS)} files; pass a folder of images")
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(arg):
            matches = sorted(Path(p) for p in glob.glob(arg, recursive=True) if Path(p).is_file())
            if not matches:
                raise DataError(f"{arg!r} matches no files; check the pattern (quote it so the shell leaves it to edgecnn)")
        else:
            raise DataError(f"image {arg} does not exist; pass image files, folders or glob patterns")
        found.update(dict.fromkeys(matches))
    return list(found)


def _predict(model, named: Iterable[tuple[str, object]], top_k: int) -> Iterator[Prediction]:
    for source, image in named:
        started = time.perf_counter()
        top = model.classify(image, top_k=top_k)
        yield Prediction(source, top, time.perf_counter() - started)


def predict_files(model, paths: Iterable[Path], top_k: int) -> Iterator[Prediction]:
    return _predict(model, ((str(path), path) for path in paths), top_k)


def open_video(source: str):
    """An OpenCV capture of camera `source` (an index such as "0") or of a video file."""
    try:
        import cv2
    except ImportError:
        raise MissingDependencyError('--camera needs OpenCV: pip install "edgecnn[camera]"') from None
    capture = cv2.VideoCapture(int(source) if source.isdigit() else source)
    if not capture.isOpened():
        what = f"camera {source}" if source.isdigit() else f"video {source}"
        raise DataError(f"cannot open {what}; check that it exists and that no other program holds it")
    return capture


def frames(capture, limit: Optional[int] = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames from an OpenCV capture (which gives BGR), until it ends or `limit` frames."""
    import cv2

    count = 0
    try:
        while limit is None or count < limit:
            ok, frame = capture.read()
            if not ok:
                return
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def predict_frames(model, images: Iterable[np.ndarray], top_k: int) -> Iterator[Prediction]:
    return _predict(model, ((f"frame {i}", image) for i, image in enumerate(images)), top_k)


def throughput(predictions: list[Prediction], wall_seconds: float) -> dict:
    """Images per second over the wall time, and the mean time per image."""
    if not predictions:
        raise ConfigError("no predictions to summarise")
    return {
        "images": len(predictions),
        "seconds": round(wall_seconds, 3),
        "images_per_second": round(len(predictions) / wall_seconds, 1) if wall_seconds > 0 else None,
        "mean_ms": round(1000 * sum(p.seconds for p in predictions) / len(predictions), 3),
    }


def timed(
    items: Iterable[Prediction], each: Callable[[Prediction], None] = lambda p: None, until_interrupted: bool = False
) -> tuple[list[Prediction], float]:
    """Run the predictions, calling `each` on every one; returns them and the wall time.
    `until_interrupted`: Ctrl-C ends the run (a live loop's way to stop) instead of aborting it."""
    started = time.perf_counter()
    done = []
    try:
        for prediction in items:
            done.append(prediction)
            each(prediction)
    except KeyboardInterrupt:
        if not until_interrupted:
            raise
    return done, time.perf_counter() - started
