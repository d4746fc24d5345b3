"""The result of validating an artifact on a target against the same artifact on the host."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Optional

from .compare import Comparison
from .protocol import RunnerReport


@dataclass(frozen=True)
class TargetValidation:
    """One artifact validated on a target against the same artifact on the host."""

    target: str
    emulated: bool
    artifact: str
    samples: int
    accuracy: float
    host_accuracy: float
    agreement: float
    max_abs_diff_lsb: Optional[int]
    max_abs_diff: float
    differing_outputs: float
    runtime: str
    host_runtime: str
    threads: Optional[int]
    device: dict = field(default_factory=dict)
    latency_ms: Optional[dict] = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    max_drop: Optional[float] = None

    @classmethod
    def from_runs(
        cls,
        target: str,
        emulated: bool,
        artifact,
        result: Comparison,
        target_run: RunnerReport,
        host_run: RunnerReport,
        **fields,
    ) -> "TargetValidation":
        """Combine a :func:`compare` `result` with the target's and the host's runner reports."""
        return cls(
            target=target,
            emulated=emulated,
            artifact=str(artifact),
            samples=result.samples,
            accuracy=result.accuracy,
            host_accuracy=result.host_accuracy,
            agreement=result.agreement,
            max_abs_diff_lsb=result.max_abs_diff_lsb,
            max_abs_diff=result.max_abs_diff,
            differing_outputs=result.differing_outputs,
            runtime=target_run.backend,
            host_runtime=host_run.backend,
            **fields,
        )

    @property
    def same_runtime(self) -> bool:
        return self.runtime == self.host_runtime

    @property
    def accuracy_drop(self) -> float:
        """Accuracy lost on the target against the host, in percentage points."""
        return round((self.host_accuracy - self.accuracy) * 100, 4)

    @property
    def passed(self) -> bool:
        return self.max_drop is None or self.accuracy_drop <= self.max_drop

    def to_dict(self) -> dict:
        out = asdict(self)
        out["notes"] = list(self.notes)
        if self.latency_ms is None:
            del out["latency_ms"]  # emulated timings are not latency
        out.update(same_runtime=self.same_runtime, accuracy_drop=self.accuracy_drop, passed=self.passed)
        return out
