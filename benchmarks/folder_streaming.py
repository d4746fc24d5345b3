"""A folder data set larger than a training process should hold: peak memory and the disk cache.

Writes N synthetic shapes images as PNG or JPEG files of --file-size pixels into class folders
(once; kept for later runs), then runs one `edgecnn train --cache` of two epochs at --size in
a process of its own. Reports the process's peak resident memory against the size of the
decoded images, and the first epoch (files decoded, cache written) against the second (read
from the cache). One run.

    python benchmarks/folder_streaming.py [--images 50000] [--size 96] [--file-size 96] [--format png]

Writes folder_streaming_<format><file size>.json and .md to --out (default benchmarks/results).
How much the cache saves is how much of an epoch decoding is: small PNGs decode fast next to
training, photos larger than the model's input do not.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgecnn.evaluate.bench import host_info  # noqa: E402

CHUNK = 500  # images per class generated at a time: the writer holds no more than this


def write_folder(folder: Path, images: int, size: int, fmt: str) -> float:
    """The PNG folder, written unless a complete one is there; returns the seconds it took."""
    from PIL import Image

    from edgecnn.data import SHAPE_LABELS, generate_shapes

    marker = folder / f".complete-{images}-{size}-{fmt}"
    if marker.exists():
        return 0.0
    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    per_class = -(-images // len(SHAPE_LABELS))
    written = 0
    for chunk, start in enumerate(range(0, per_class, CHUNK)):
        pixels, labels = generate_shapes(min(CHUNK, per_class - start), size, 3, seed=chunk)
        for image, label in zip(pixels, labels):
            if written == images:
                break
            target = folder / SHAPE_LABELS[label] / f"{written:06d}.{fmt}"
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target, quality=90) if fmt == "jpg" else Image.fromarray(image).save(target)
            written += 1
    marker.touch()
    return time.perf_counter() - started


def train(folder: Path, size: int, arch: str, epochs: int, work: Path) -> dict:
    out, cache = work / "run", work / "cache"
    command = [sys.executable, "-m", "edgecnn", "train", "--data", str(folder), "--img-size", str(size)]
    command += ["--arch", arch, "--epochs", str(epochs), "--cache", str(cache), "--out", str(out), "--json"]
    with open(work / "train.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("training failed: " + (work / "train.log").read_text()[-1500:])
    report = json.loads((out / "train.json").read_text())
    cached = sum(f.stat().st_size for f in cache.iterdir())
    return {
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "epoch_seconds": report["epoch_seconds"],
        "cache_bytes": cached,
        "val_accuracy": report["accuracy"]["val_inference_mode"],
        "dataset": report["dataset"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--size", type=int, default=96, help="the model's input size")
    parser.add_argument("--file-size", type=int, default=None, help="the files' size (default --size)")
    parser.add_argument("--format", choices=("png", "jpg"), default="png")
    parser.add_argument("--arch", default="xception-pico")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=None, help="default: a folder under the temporary directory")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    file_size = args.file_size or args.size
    name = f"{args.format}{file_size}"
    args.folder = args.folder or Path(tempfile.gettempdir()) / f"edgecnn-shapes-{args.images}-{name}"
    generated = write_folder(args.folder, args.images, file_size, args.format)
    on_disk = sum(f.stat().st_size for f in args.folder.rglob(f"*.{args.format}"))
    with tempfile.TemporaryDirectory() as work:
        measured = train(args.folder, args.size, args.arch, args.epochs, Path(work))
    decoded = args.images * args.size * args.size * 3
    first, second = measured["epoch_seconds"][:2]
    result = {
        "host": host_info(),
        "images": args.images,
        "image_size": args.size,
        "file_size": file_size,
        "format": args.format,
        "arch": args.arch,
        "file_bytes": on_disk,
        "generate_seconds": round(generated, 1),
        "decoded_bytes": decoded,
        **measured,
        "peak_rss_over_decoded": round(measured["peak_rss_bytes"] / decoded, 3),
        "second_epoch_speedup": round(first / second, 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"folder_streaming_{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    gib = 2**30
    lines = [
        f"# A folder of {args.images:,} {args.format.upper()} files ({file_size}x{file_size}x3), "
        f"trained at {args.size}x{args.size} by {args.arch}, one run",
        "",
        "| | |",
        "|---|---|",
        f"| files on disk | {on_disk / gib:.2f} GiB |",
        f"| decoded images (N x H x W x 3 bytes) | {decoded / gib:.2f} GiB |",
        f"| peak resident memory of `edgecnn train` | {measured['peak_rss_bytes'] / gib:.2f} GiB "
        f"({result['peak_rss_over_decoded']:.2f}x the decoded images) |",
        f"| epoch 1: decode, train, write the cache | {first:.1f} s |",
        f"| epoch 2: from the cache | {second:.1f} s ({result['second_epoch_speedup']:.2f}x faster) |",
        f"| cache on disk | {measured['cache_bytes'] / gib:.2f} GiB |",
        f"| validation accuracy | {measured['val_accuracy']:.1%} |",
    ]
    (args.out / f"folder_streaming_{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
