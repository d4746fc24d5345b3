"""Training options: a frozen dataclass with no heavy imports, so the CLI reads its defaults cheaply."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .augment import AUGMENTATIONS

MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
#: The family's channel counts times 8 already exceed what a device can run.
MAX_WIDTH = 8.0
_RANGES = {
    "epochs": f"use 1 to {MAX_EPOCHS:,}",
    "batch_size": f"use 1 to {MAX_BATCH_SIZE:,}",
    "learning_rate": "use a value in (0, 10]",
    "width": f"use a multiplier in (0, {MAX_WIDTH:g}]",
    "seed": "use 0 to 2**32 - 1",
    "precision": "use fp32 or bf16",
    "augment": "use none, light or standard",
}
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "xception-nano"
    epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    width: float = 1.0
    seed: int = 0
    #: Augmentation: "none", "light" or "standard" (see augment).
    augment: str = "light"
    #: Training images used to re-estimate BN statistics.
    bn_samples: int = 4096
    #: Largest tolerated gap between training-mode and inference-mode validation accuracy.
    max_bn_gap: float = 0.05
    #: "fp32", or "bf16": mixed precision (bfloat16 compute, float32 weights, BatchNorm statistics
    #: and logits) for CPUs with AVX512_BF16 or AMX. The saved model is float32 either way.
    precision: str = "fp32"
    verbose: int | None = None

    def __post_init__(self):
        # Upper bounds catch typos (--epochs 10**20, --width inf) before hours of work or a crash;
        # the seed must fit the 32 bits numpy's global generator takes.
        checks = {
            "epochs": 1 <= self.epochs <= MAX_EPOCHS,
            "batch_size": 1 <= self.batch_size <= MAX_BATCH_SIZE,
            "learning_rate": 0 < self.learning_rate <= 10,
            "weight_decay": 0 <= self.weight_decay <= 1,
            "width": 0 < self.width <= MAX_WIDTH,
            "seed": 0 <= self.seed < 2**32,
            "augment": self.augment in AUGMENTATIONS,
            "bn_samples": self.bn_samples >= 1,
            "precision": self.precision in PRECISIONS,
        }
        for name, ok in checks.items():
            if not ok:  # also False for NaN
                raise ConfigError(f"invalid training option {name}={getattr(self, name)!r}; {_RANGES.get(name, 'see --help')}")
