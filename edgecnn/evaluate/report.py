"""Run reports: report.json (the schema other tools read), report.md and a terminal table."""

from __future__ import annotations

from pathlib import Path

from ..fileio import write_bytes, write_json

COLUMNS = (
    ("artifact", lambda a: a["name"]),
    ("format", lambda a: a["format"]),
    ("precision", lambda a: a["precision"]),
    ("size", lambda a: _size(a["size_bytes"])),
    ("accuracy", lambda a: f"{a['accuracy'] * 100:.2f}%"),
    ("agreement", lambda a: "-" if a.get("agreement") is None else f"{a['agreement'] * 100:.2f}%"),
    ("drop (pts)", lambda a: "-" if a.get("accuracy_drop") is None else f"{a['accuracy_drop']:+.2f}"),
)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def rows(artifacts: list[dict]) -> list[list[str]]:
    return [[render(a) for _, render in COLUMNS] for a in artifacts]


def text_table(artifacts: list[dict]) -> str:
    header = [name for name, _ in COLUMNS]
    body = rows(artifacts)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    fmt = lambda r: "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, body)])


def markdown(report: dict) -> str:
    header = [name for name, _ in COLUMNS]
    lines = [
        f"# edgecnn run: {report['arch']} on {report['dataset']}",
        "",
        f"Input {'x'.join(map(str, report['input_shape']))}, {report['num_classes']} classes, "
        f"test split of {report['artifacts'][0]['samples'] if report['artifacts'] else 0} images. "
        "Agreement and drop are against the trained Keras model.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(report["artifacts"])]
    train = report.get("train")
    if train:
        lines += [
            "",
            f"Training: {train['epochs']} epochs in {train['seconds']:.0f} s, {train['params']:,} parameters; "
            f"validation accuracy {train['val_accuracy'] * 100:.2f}% in inference mode, "
            f"{train['val_accuracy_training_mode'] * 100:.2f}% in training mode.",
        ]
    return "\n".join(lines) + "\n"


def write_report(out_dir: str | Path, report: dict) -> tuple[Path, Path]:
    out = Path(out_dir)
    json_path = write_json(out / "report.json", report)
    md_path = write_bytes(out / "report.md", markdown(report).encode())
    return json_path, md_path
