"""The `edgecnn` command line: thin commands over the Python API."""

from . import bench, check, commands, predict, targets  # noqa: F401  (each module registers its commands)
from .app import main

__all__ = ["main"]
