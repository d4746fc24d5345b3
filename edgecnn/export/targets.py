"""Exporters that device targets put in place of a format's own, registered by each target.

The targets declare theirs in :mod:`edgecnn.targets`, by module path, so that registering costs
nothing: the exporter (and TensorFlow with it) is imported only when an export runs.
"""

from __future__ import annotations

_EXPORTERS: dict[tuple[str, str], str] = {}


def register_target_exporter(format: str, target: str, module: str) -> None:
    """Export `format` for `target` with `module` (a dotted path) instead of the format's exporter.

    The module has the format exporter's ``export(model, meta, calibration, options, out_dir)``.
    """
    _EXPORTERS[(format, target)] = module


def target_exporter(format: str, target: str) -> str | None:
    """The module path registered for `format` and `target`, if any."""
    _load_targets()
    return _EXPORTERS.get((format, target))


def export_targets() -> tuple[str, ...]:
    """Targets an export can be made for (``--target``)."""
    _load_targets()
    return tuple(dict.fromkeys(target for _, target in _EXPORTERS))


def _load_targets() -> None:
    from .. import targets  # noqa: F401  (declares the targets' exporters on import)
