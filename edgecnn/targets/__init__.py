"""Deployment targets: what each device needs from a model, checked before it gets there."""

from ..export.targets import register_target_exporter

# Each target declares the exporters it puts in place of a format's own, by module path:
# declaring imports nothing of the target, so `edgecnn --help` can list the targets cheaply.
register_target_exporter("tflite", "edgetpu", "edgecnn.targets.edgetpu.export")
