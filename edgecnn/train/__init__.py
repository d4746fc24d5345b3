"""Training with BatchNorm statistics that hold in inference mode."""

from .bn_stats import accuracy, batchnorm_layers, reestimate_bn_statistics
from .trainer import TrainConfig, TrainResult, fit

__all__ = ["TrainConfig", "TrainResult", "accuracy", "batchnorm_layers", "fit", "reestimate_bn_statistics"]
