"""Errors a user can cause and fix. The CLI prints them as one line and exits 1."""


class EdgecnnError(Exception):
    """Base class: the message says what was wrong and what to do."""


class DataError(EdgecnnError):
    """A data set, image or calibration set that cannot be used."""


class ModelFileError(EdgecnnError):
    """A model file that is missing, truncated or not of the expected kind."""


class ConfigError(EdgecnnError):
    """An option or recipe value that is out of range or unknown."""


class VerificationError(EdgecnnError):
    """A transform whose output no longer matches its input (folding, BN statistics)."""


class MissingDependencyError(EdgecnnError):
    """An optional package (the training toolchain, ONNX) is not installed."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message, for a one-line error that quotes it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(exc).__name__
