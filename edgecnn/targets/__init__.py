"""Deployment targets: what each device needs from a model, checked before it gets there."""

# Imported here so that the targets register their exporters (edgecnn.export.targets).
from . import edgetpu  # noqa: F401
