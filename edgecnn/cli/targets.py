"""`edgecnn targets`: the emulated ARM boards; `edgecnn validate --target` runs through here."""

from __future__ import annotations

from pathlib import Path

import click

from .app import echo, emit_json, main, quiet_stdout
from .options import json_option


@main.group()
def targets():
    """Emulated ARM boards: set up their environments and list them."""


@targets.command("setup")
@click.argument("arches", nargs=-1, required=True, metavar="arm64|armhf|all...")
@click.option("--force", is_flag=True, help="Rebuild even when a finished environment is cached.")
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder [default: $EDGECNN_ARM_CACHE, else ~/.cache/edgecnn/arm].",
)
@json_option
def setup(arches, force, cache, as_json):
    """Build the ARM emulation environment (qemu, a Debian sysroot, ARM wheels); cached."""
    from ..targets.arm import ARCHES
    from ..targets.arm import setup as arm_setup

    names = list(ARCHES) if "all" in arches else list(dict.fromkeys(arches))
    with quiet_stdout(as_json):
        results = [arm_setup(name, cache=cache, force=force) for name in names]
    if as_json:
        emit_json(results[0].to_dict() if len(results) == 1 else [r.to_dict() for r in results])
        return
    for r in results:
        state = "cached" if r.cached else f"built in {r.seconds:.0f} s"
        echo(
            f"{r.env.arch}: {state} in {r.env.root} (qemu {r.env.qemu_version}, {r.env.runtime}, "
            f"{len(r.env.packages)} Debian packages)"
        )


@targets.command("list")
@json_option
def list_targets(as_json):
    """The emulated targets and whether their environment is set up."""
    from ..targets.arm import EMULATED_TARGETS, cache_dir, status

    ready = status()
    rows = [
        {
            "target": t.name,
            "arch": t.arch,
            "cpu": t.cpu,
            "board": t.board,
            "ready": ready.get(t.arch) is not None,
            "runtime": (ready.get(t.arch) or {}).get("runtime"),
        }
        for t in EMULATED_TARGETS.values()
    ]
    if as_json:
        emit_json({"cache": str(cache_dir()), "targets": rows})
        return
    for row in rows:
        state = row["runtime"] if row["ready"] else f"not set up (edgecnn targets setup {row['arch']})"
        echo(f"{row['target']:10s} {row['cpu']:11s} {row['board']}: {state}")
    echo("ssh://[user@]host[:port] a real board over SSH (needs Python with numpy, flatbuffers and a TFLite runtime)")


def _percent(x: float) -> str:
    return f"{x * 100:.2f}%"


def validate_on_target(artifact, target, python, data, threads, max_drop, as_json) -> None:
    """The body of `edgecnn validate --target`: run there and on the host, print, exit 1 on a drop."""
    from ..targets.arm import validate_on

    with quiet_stdout(as_json):
        result = validate_on(artifact, target, python=python, data=data, threads=threads or 1, max_drop=max_drop)
    if as_json:
        emit_json(result.to_dict())
    else:
        where = (
            f"emulated {result.device.get('cpu')}"
            if result.emulated
            else (result.device.get("model") or result.device.get("cpu") or "board")
        )
        diff = "-" if result.max_abs_diff_lsb is None else f"{result.max_abs_diff_lsb} LSB"
        echo(
            f"{Path(result.artifact).name} on {result.target} ({where}, {result.runtime}): accuracy {_percent(result.accuracy)}, "
            f"host {_percent(result.host_accuracy)} ({result.host_runtime}); agreement {_percent(result.agreement)}, "
            f"largest difference {diff} ({_percent(result.differing_outputs)} of outputs differ) on {result.samples} test images"
        )
        if result.latency_ms:
            lat = result.latency_ms
            echo(
                f"latency on the board: p50 {lat['p50']:.3f} ms, p90 {lat['p90']:.3f} ms, mean {lat['mean']:.3f} ms "
                f"({lat['runs']} runs, {result.threads} thread{'s' if (result.threads or 1) > 1 else ''})"
            )
        for note in result.notes:
            echo(f"note: {note}")
    if not result.passed:
        echo(
            f"Error: accuracy on {result.target} is {result.accuracy_drop:.2f} points below the host's, more than --max-drop {max_drop}",
            err=True,
        )
        raise SystemExit(1)
