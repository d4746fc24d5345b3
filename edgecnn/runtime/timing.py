"""Latency measured like a benchmark harness: warm-up, then enough runs and enough time."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50: float  # milliseconds
    p90: float
    mean: float
    runs: int

    @property
    def throughput(self) -> float:
        """Inferences per second at the median latency."""
        return 1000.0 / self.p50 if self.p50 > 0 else float("inf")

    def to_dict(self) -> dict:
        return asdict(self)


def measure(run: Callable[[], object], runs: int = 100, warmup: int = 10, min_seconds: float = 1.0) -> Latency:
    """Time `run()` after `warmup` calls: at least `runs` calls and at least `min_seconds`."""
    for _ in range(warmup):
        run()
    times = []
    deadline = time.perf_counter() + min_seconds
    while len(times) < runs or time.perf_counter() < deadline:
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    ms = np.asarray(times) * 1000.0
    return Latency(float(np.percentile(ms, 50)), float(np.percentile(ms, 90)), float(ms.mean()), len(ms))
