"""Training with BatchNorm statistics that hold in inference mode."""

from .config import TrainConfig

__all__ = ["TrainConfig", "TrainResult", "accuracy", "batchnorm_layers", "fit", "reestimate_bn_statistics"]

#: Name -> module of the names that import numpy: loaded on first use, so reading
#: TrainConfig's defaults (the CLI's --help) stays instant.
_LAZY = {
    "TrainResult": ".trainer",
    "fit": ".trainer",
    "accuracy": ".bn_stats",
    "batchnorm_layers": ".bn_stats",
    "reestimate_bn_statistics": ".bn_stats",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name], __name__), name)
