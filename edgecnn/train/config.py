"""Training options: a frozen dataclass with no heavy imports, so the CLI reads its defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "xception-nano"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    width: float = 1.0
    seed: int = 0
    #: Random translation by up to this share of the image size (0 disables augmentation).
    shift: float = 0.1
    #: Training images used to re-estimate BN statistics.
    bn_samples: int = 4096
    #: Largest tolerated gap between training-mode and inference-mode validation accuracy.
    max_bn_gap: float = 0.05
    verbose: int | None = None

    def __post_init__(self):
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "weight_decay": self.weight_decay >= 0,
            "width": self.width > 0,
            "shift": 0 <= self.shift < 0.5,
            "bn_samples": self.bn_samples >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"invalid training option {name}={getattr(self, name)!r}")
