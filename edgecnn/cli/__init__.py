"""The `edgecnn` command line: thin commands over the Python API."""

from . import commands  # noqa: F401  (registers the commands)
from .app import main

__all__ = ["main"]
