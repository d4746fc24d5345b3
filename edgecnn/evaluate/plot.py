"""report.png: accuracy against latency for every artifact, marker area by file size."""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependencyError
from ..fileio import atomic_path

_MARKERS = {"keras": "o", "tflite": "s", "onnx": "^"}
_COLOURS = {"float32": "tab:blue", "int8": "tab:orange"}


def pyplot():
    """matplotlib.pyplot drawing to files (no display)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingDependencyError('plots need matplotlib: pip install "edgecnn[train]"') from None
    return plt


def accuracy_latency_plot(points: list[dict], path: str | Path, title: str) -> Path:
    """`points`: dicts with name, format, precision, accuracy, size_bytes and latency_ms.p50."""
    plt = pyplot()
    points = [p for p in points if p.get("latency_ms")]
    largest = max((p["size_bytes"] for p in points), default=1)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for p in points:
        area = 40 + 600 * p["size_bytes"] / largest
        ax.scatter(
            p["latency_ms"]["p50"],
            p["accuracy"] * 100,
            s=area,
            alpha=0.7,
            marker=_MARKERS.get(p["format"], "o"),
            color=_COLOURS.get(p["precision"], "tab:gray"),
            edgecolors="black",
        )
        if p.get("name"):
            ax.annotate(
                p["name"], (p["latency_ms"]["p50"], p["accuracy"] * 100), fontsize=7, xytext=(5, 4), textcoords="offset points"
            )
    ax.set_xscale("log")
    ax.set_xlabel("latency p50 (ms, log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.text(
        0.99,
        0.01,
        "area ~ file size; blue float32, orange int8; circle Keras, square TFLite, triangle ONNX",
        transform=ax.transAxes,
        ha="right",
        fontsize=7,
    )
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return path
