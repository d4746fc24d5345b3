"""`edgecnn bench`: latency, size, MACs and memory of artifacts."""

from __future__ import annotations

from pathlib import Path

import click

from .app import echo, emit_json, main, quiet_stdout
from .options import device_option, json_option


def _thread_list(ctx, param, value):
    try:
        threads = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        threads = ()
    if not threads or min(threads) < 1:
        raise click.BadParameter(f"{value!r}: give positive thread counts, comma-separated (e.g. 1,4)")
    return threads


@main.command()
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--threads", default="1", show_default=True, callback=_thread_list, help="Thread counts, comma-separated.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(min=1), help="Minimum timed runs.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Untimed runs first.")
@click.option("--min-time", default=1.0, show_default=True, type=click.FloatRange(min=0), help="Minimum seconds of timed runs.")
@device_option
@json_option
def bench(artifacts, threads, runs, warmup, min_time, device, as_json):
    """Latency (p50/p90/mean), size, parameters, MACs and peak memory of ARTIFACTS."""
    from ..evaluate.bench import BenchOptions, runtime_versions, text_table
    from ..evaluate.bench import bench as run_bench

    with quiet_stdout(as_json):
        report = run_bench(
            artifacts, BenchOptions(threads=threads, runs=runs, warmup=warmup, min_seconds=min_time, device=device)
        )
    if as_json:
        emit_json(report)
    else:
        host = report["host"]
        echo(f"{host['cpu']} ({host['cores']} cores), {runtime_versions(host)}")
        echo(text_table(report["results"]))
