"""The click group: turns EdgecnnError into one line on stderr and exit code 1."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import warnings

import click

from .. import __version__
from ..errors import EdgecnnError, first_line
from ..text import terminal_safe


def echo(message: str = "", err: bool = False) -> None:
    """click.echo for everything the commands print: nothing in it can drive the terminal."""
    click.echo(terminal_safe(message), err=err)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    echo(f"Warning: {message}", err=True)


class _EchoHandler(logging.Handler):
    """Library progress (``logging.getLogger("edgecnn...").info``) as plain lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        echo(record.getMessage(), err=True)


def show_progress() -> None:
    """Show the library's progress messages on stderr, once; stdout stays for results and --json."""
    from .. import progress

    progress.enable()
    logger = logging.getLogger("edgecnn")
    if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
        logger.addHandler(_EchoHandler(logging.INFO))
        logger.setLevel(logging.INFO)
        logger.propagate = False  # TensorFlow's absl gives the root logger a handler of its own


def _usage_error(exc: click.UsageError) -> None:
    """A usage error as one line naming the command's help; a bare group shows its help instead."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError) and exc.ctx is not None:
        click.echo(exc.ctx.get_help())
        raise click.exceptions.Exit(0)
    command = exc.ctx.command_path if exc.ctx else "edgecnn"
    echo(f"Error: {exc.format_message()} (see `{command} --help`)", err=True)
    raise click.exceptions.Exit(1)


class EdgecnnGroup(click.Group):
    """The top-level group: every user error ends as one line on stderr and exit code 1.

    click's default for a usage error is usage text and exit code 2.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        # The group's own options (`edgecnn --nope`) are parsed here, before invoke().
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            _usage_error(exc)

    def invoke(self, ctx):
        warnings.showwarning = _one_line_warning
        show_progress()
        try:
            return super().invoke(ctx)
        except EdgecnnError as exc:
            echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except OSError as exc:
            # The file system refused (a folder that cannot be made, a full disk, no permission): its own words.
            where = f" ({exc.filename})" if exc.filename else ""
            echo(f"Error: {exc.strerror or first_line(exc)}{where}; check the path, its permissions and free space", err=True)
            ctx.exit(1)
        except click.UsageError as exc:
            _usage_error(exc)


@click.group("edgecnn", cls=EdgecnnGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
