"""Run reports: report.json (the schema other tools read), report.md and a terminal table."""

from __future__ import annotations

from pathlib import Path

from ..fileio import write_bytes, write_json
from ..text import markdown_text

COLUMNS = (
    ("artifact", lambda a: a["name"]),
    ("format", lambda a: a["format"]),
    ("precision", lambda a: a["precision"]),
    ("size", lambda a: human_size(a["size_bytes"])),
    ("accuracy", lambda a: f"{a['accuracy'] * 100:.2f}%"),
    ("agreement", lambda a: "-" if a.get("agreement") is None else f"{a['agreement'] * 100:.2f}%"),
    ("drop (pts)", lambda a: "-" if a.get("accuracy_drop") is None else f"{a['accuracy_drop']:+.2f}"),
    ("p50 ms", lambda a: "-" if not a.get("latency_ms") else f"{a['latency_ms']['p50']:.3f}"),
    ("MMACs", lambda a: "-" if not a.get("macs") else f"{a['macs'] / 1e6:.1f}"),
    ("peak mem", lambda a: "-" if a.get("peak_memory_bytes") is None else human_size(a["peak_memory_bytes"])),
)


def human_size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def rows(artifacts: list[dict]) -> list[list[str]]:
    return [[render(a) for _, render in COLUMNS] for a in artifacts]


def format_table(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt(row):
        return "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()

    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)])


def text_table(artifacts: list[dict]) -> str:
    return format_table([name for name, _ in COLUMNS], rows(artifacts))


def markdown(report: dict) -> str:
    header = [name for name, _ in COLUMNS]
    lines = [
        f"# edgecnn run: {markdown_text(report['arch'])} on {markdown_text(report['dataset'])}",
        "",
        f"Input {'x'.join(map(str, report['input_shape']))}, {report['num_classes']} classes, "
        f"test split of {report['artifacts'][0]['samples'] if report['artifacts'] else 0} images. "
        "Agreement and drop are against the trained Keras model. Latency: p50 of one inference, one thread "
        "(Keras: `predict_on_batch`). ![accuracy against latency](report.png)",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(map(markdown_text, r)) + " |" for r in rows(report["artifacts"])]
    train = report.get("train")
    if train:
        lines += [
            "",
            f"Training: {train['epochs']} epochs in {train['seconds']:.0f} s, {train['params']:,} parameters; "
            f"validation accuracy {train['val_accuracy'] * 100:.2f}% in inference mode, "
            f"{train['val_accuracy_training_mode'] * 100:.2f}% in training mode.",
        ]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, report: dict) -> tuple[Path, ...]:
    """report.json, report.md and, when artifacts were timed, report.png."""
    from .plot import accuracy_latency_plot

    out = Path(out_dir)
    written = (write_json(out / "report.json", report), write_bytes(out / "report.md", markdown(report).encode()))
    if any(a.get("latency_ms") for a in report["artifacts"]):
        title = f"{report['arch']} on {report['dataset']}"
        written += (accuracy_latency_plot(report["artifacts"], out / "report.png", title),)
    return written
