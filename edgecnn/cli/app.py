"""The click group: turns EdgecnnError into one line on stderr and exit code 1."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings

import click

from .. import __version__
from ..errors import EdgecnnError


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"Warning: {message}", err=True)


class EdgecnnGroup(click.Group):
    def invoke(self, ctx):
        warnings.showwarning = _one_line_warning
        try:
            return super().invoke(ctx)
        except EdgecnnError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except click.UsageError as exc:
            # One line and exit 1, like every other user error (click's default is usage text and 2).
            command = f"edgecnn {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else "edgecnn"
            click.echo(f"Error: {exc.format_message()} (see `{command} --help`)", err=True)
            ctx.exit(1)


@click.group(cls=EdgecnnGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecnn")
def main():
    """Train compact Xception-style CNNs, fold BatchNorm, export int8 TFLite and validate them."""


@contextlib.contextmanager
def quiet_stdout(enabled: bool):
    """With --json, stdout carries exactly one JSON object: send progress output to stderr."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield


def emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2))
