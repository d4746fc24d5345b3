"""`edgecnn check --target edgetpu MODEL.tflite`: will the model run on the device, and how."""

from __future__ import annotations

from pathlib import Path

import click

from .app import echo, emit_json, main
from .options import json_option

#: Devices `check` knows.
TARGETS = ("edgetpu",)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--target", required=True, type=click.Choice(TARGETS), help="Device to check the model against.")
@click.option("--all-ops", is_flag=True, help="List every operator, not only those that do not map.")
@json_option
def check(model, target, all_ops, as_json):
    """Check a .tflite MODEL against a device's requirements; exit 1 if it is not compatible.

    For the Edge TPU: op support and limits, op versions edgetpu_compiler 16.0 reads, 8-bit
    tensors, static shapes, batch 1, and partitioning as the compiler does it.
    """
    from ..targets.edgetpu import check_model

    report = check_model(model)
    if as_json:
        emit_json(report.to_dict())
    else:
        echo(report.to_text(all_ops=all_ops))
    if not report.compatible:
        if not as_json:
            echo(f"Error: {model.name} is {report.summary()}", err=True)
        raise SystemExit(1)
