"""Coral Edge TPU: pre-flight check, compiler driver and log parser, latency estimate.

Everything here but :mod:`.export` works without TensorFlow. Running a compiled model on a
Coral is :mod:`edgecnn.runtime` (``runtime.load(path, device="edgetpu")``).
"""

from .checker import check_model, max_accepted_version, version_problem
from .compiler import CompilerError, compile_model, find_compiler, parse_log
from .latency import count_macs, estimate_latency
from .report import EdgeTpuReport, OpStatus

__all__ = [
    "CompilerError",
    "EdgeTpuReport",
    "OpStatus",
    "check_model",
    "compile_model",
    "count_macs",
    "estimate_latency",
    "find_compiler",
    "max_accepted_version",
    "parse_log",
    "version_problem",
]
