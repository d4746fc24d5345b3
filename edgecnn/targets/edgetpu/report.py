"""The report shared by the pre-flight check and the parsed compiler log."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Optional

from .latency import LatencyEstimate
from .table import AFTER_CPU_OP, ON_CHIP_CACHE_BYTES

TARGET = "edgetpu"


@dataclass(frozen=True)
class OpStatus:
    """One operator (pre-flight) or one row of the compiler's operator table (`count` ops)."""

    op: str
    mapped: bool
    status: str
    reason: Optional[str] = None
    index: Optional[int] = None
    version: Optional[int] = None
    count: int = 1

    def to_dict(self) -> dict:
        d = {
            "index": self.index,
            "op": self.op,
            "version": self.version,
            "mapped": self.mapped,
            "status": self.status,
            "reason": self.reason,
        }
        if self.count != 1:
            d["count"] = self.count
        return d


@dataclass(frozen=True)
class EdgeTpuReport:
    model: str
    #: "pre-flight check" or "edgetpu_compiler <version>".
    source: str
    ops: tuple[OpStatus, ...]
    subgraphs: int
    param_bytes: int
    on_chip_cache_bytes: int = ON_CHIP_CACHE_BYTES
    off_chip_bytes: int = 0
    #: Problems that make the compiler reject the whole model (nothing is compiled).
    errors: tuple[str, ...] = ()
    first_unmapped: Optional[dict] = None
    estimate: Optional[LatencyEstimate] = None
    notes: tuple[str, ...] = ()

    @property
    def ops_total(self) -> int:
        return sum(o.count for o in self.ops)

    @property
    def ops_mapped(self) -> int:
        return sum(o.count for o in self.ops if o.mapped)

    @property
    def ops_cpu(self) -> int:
        return self.ops_total - self.ops_mapped

    @property
    def compatible(self) -> bool:
        """Every op runs on the Edge TPU, in one subgraph."""
        return not self.errors and self.ops_total > 0 and self.ops_mapped == self.ops_total and self.subgraphs == 1

    def to_dict(self) -> dict:
        return {
            "target": TARGET,
            "compatible": self.compatible,
            "model": self.model,
            "source": self.source,
            "ops_total": self.ops_total,
            "ops_mapped": self.ops_mapped,
            "ops_cpu": self.ops_cpu,
            "subgraphs": self.subgraphs,
            "first_unmapped": self.first_unmapped,
            "errors": list(self.errors),
            "param_bytes": self.param_bytes,
            "on_chip_cache_bytes": self.on_chip_cache_bytes,
            "off_chip_bytes": self.off_chip_bytes,
            "estimated_latency": self.estimate.to_dict() if self.estimate else None,
            "notes": list(self.notes),
            "ops": [o.to_dict() for o in self.ops],
        }

    def summary(self) -> str:
        """One line: what maps and where the report is weak."""
        if self.compatible:
            return f"{self.ops_mapped} of {self.ops_total} ops map to the Edge TPU in 1 subgraph"
        first = self.first_unmapped
        where = f"; first unmapped: {_first(first)}" if first else ""
        return f"not compatible with the Edge TPU: {self.ops_mapped} of {self.ops_total} ops map, {self.subgraphs} Edge TPU subgraph(s){where}"

    def to_text(self, all_ops: bool = False) -> str:
        lines = [f"Edge TPU {self.source}: {self.model}"]
        lines += [f"ERROR: {e}" for e in self.errors]
        lines += [
            f"Compatible: {'yes, every op maps to the Edge TPU' if self.compatible else 'no'}",
            f"Number of Edge TPU subgraphs: {self.subgraphs}",
            f"Total number of operations: {self.ops_total}",
            f"Number of operations that will run on Edge TPU: {self.ops_mapped}",
            f"Number of operations that will run on CPU: {self.ops_cpu}",
            f"Parameter data: {format_bytes(self.param_bytes)} (on-chip cache about {format_bytes(self.on_chip_cache_bytes)}; "
            f"streamed off-chip on every inference: {format_bytes(self.off_chip_bytes)})",
        ]
        if self.estimate:
            lines.append(f"Estimated latency: {self.estimate.describe()}")
        lines += self.notes
        lines += ["", f"{'Operator':<30} {'Count':<10} Status", ""]
        rows = Counter((o.op, o.status) for o in self.ops for _ in range(o.count))
        lines += [f"{op:<30} {count:<10} {status}" for (op, status), count in rows.items()]
        shown = [o for o in self.ops if all_ops or not (o.mapped or o.status == AFTER_CPU_OP)]
        if shown:
            lines += ["", "Operators:" if all_ops else "Not mapped:"]
            for o in shown:
                where = f"#{o.index} " if o.index is not None else ""
                lines.append(f"  {where}{o.op} (v{o.version}): {o.status}" + (f": {o.reason}" if o.reason else ""))
        if self.first_unmapped:
            lines += ["", f"First unmapped: {_first(self.first_unmapped)}; it and everything after it run on the CPU"]
        return "\n".join(lines)


def _first(first: dict) -> str:
    where = f"#{first['index']} " if first.get("index") is not None else ""
    return f"{where}{first['op']} ({first['reason']})"


def format_bytes(n: int) -> str:
    """Like the compiler's log: 0.00B, 80.00KiB, 3.21MiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return f"{n:.2f}B"
