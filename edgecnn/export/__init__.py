"""Export trained models to deployable files, one module per format."""

from .options import IO_TYPES, ExportOptions
from .pipeline import FORMATS, Artifact, ExportResult, export_model

__all__ = ["FORMATS", "IO_TYPES", "Artifact", "ExportOptions", "ExportResult", "export_model"]
