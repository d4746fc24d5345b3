"""`edgecnn predict`: image files, folders, globs, or a camera or video, with the runtime only."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import click

from .app import echo, emit_json, main
from .options import device_option, json_option, model_facts, model_facts_options


def _line(prediction) -> str:
    return f"{prediction.source}: " + ", ".join(f"{label} {score:.3f}" for label, score in prediction.top)


def _csv(predictions, top_k: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image", *[f"{field}_{i}" for i in range(1, top_k + 1) for field in ("label", "score")]])
    for p in predictions:
        writer.writerow([p.source, *[v for label, score in p.top for v in (label, f"{score:.6f}")]])
    return out.getvalue().rstrip("\n")


def _scores(prediction) -> list:
    return [{"label": label, "score": s} for label, s in prediction.top]


@main.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1)
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", type=click.IntRange(min=1), default=None)
@click.option(
    "--camera",
    metavar="INDEX|VIDEO",
    is_flag=False,
    flag_value="0",
    default=None,
    help="Classify live frames of camera INDEX (default 0) or of a video file, printing the top class and fps.",
)
@click.option("--frames", type=click.IntRange(min=1), default=None, help="With --camera: stop after this many frames.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: the image, then label and score of each of the top k.")
@device_option
@model_facts_options
@json_option
def predict(model, images, top_k, threads, camera, frames, as_csv, device, labels_path, norm, mean, std, as_json):
    """Classify IMAGES (files, folders of images, glob patterns) with a .tflite or .onnx MODEL,
    using only the runtime; or, with --camera, the frames of a camera or a video file.

    For a MODEL without metadata, --labels names its classes and --norm or --mean/--std says
    how it takes pixels (otherwise the assumptions are printed).
    """
    from .. import predict as api
    from .. import runtime

    if as_csv and as_json:
        raise click.UsageError("choose one of --csv and --json")
    if camera is None and not images:
        raise click.UsageError("give IMAGES (files, folders or glob patterns) or --camera")
    if camera is not None and images:
        raise click.UsageError("give IMAGES or --camera, not both")
    if frames is not None and camera is None:
        raise click.UsageError("--frames counts camera frames: add --camera")
    loaded = runtime.load(model, num_threads=threads, device=device, facts=model_facts(labels_path, norm, mean, std))
    if camera is not None:
        return _camera(api, loaded, camera, frames, top_k, as_csv, as_json)
    paths = api.image_files(images)
    with click.progressbar(length=len(paths), label="classifying", file=sys.stderr) as bar:
        done, wall = api.timed(api.predict_files(loaded, paths, top_k), lambda _: bar.update(1))
    summary = api.throughput(done, wall)
    if as_json:
        predictions = {p.source: _scores(p) for p in done}
        emit_json({"model": str(model), "backend": loaded.backend, "predictions": predictions, "throughput": summary})
        return
    echo(_csv(done, top_k) if as_csv else "\n".join(_line(p) for p in done))
    echo(_summary(summary, loaded.backend), err=True)


def _camera(api, loaded, source, frames, top_k, as_csv, as_json):
    """A live loop: one line per frame (a JSON object per line with --json), fps at the end."""
    import json

    capture = api.open_video(source)
    if as_csv:
        echo(_csv([], top_k))

    def show(prediction):
        if as_json:
            echo(json.dumps({"frame": prediction.source, "top": _scores(prediction), "ms": round(1000 * prediction.seconds, 3)}))
        elif as_csv:
            echo(_csv([prediction], top_k).split("\n", 1)[1])
        else:
            label, score = prediction.top[0]
            echo(f"{prediction.source}: {label} {score:.3f} ({1 / max(prediction.seconds, 1e-9):.1f} fps)")

    done, wall = api.timed(api.predict_frames(loaded, api.frames(capture, frames), top_k), show, until_interrupted=True)
    if not done:
        raise click.ClickException(f"no frames came from {source}")
    echo(_summary(api.throughput(done, wall), loaded.backend), err=True)


def _summary(summary: dict, backend: str) -> str:
    rate = summary["images_per_second"]
    return (
        f"{summary['images']} images in {summary['seconds']:.2f} s ({rate} per second, "
        f"{summary['mean_ms']:.1f} ms each; {backend})"
    )
