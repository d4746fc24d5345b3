"""Peak activation memory from tensor lifetimes, laid out the way TFLite's arena planner does.

Each activation tensor lives from the op that writes it (graph inputs: from the start)
to the last op that reads it (graph outputs: to the end). Tensors are placed greedily,
largest first, at the lowest aligned offset that does not collide with a tensor alive
at the same time (TFLite's ``GreedyMemoryPlanner``); the peak is the arena's high-water
mark. The sum of sizes alive at once is a lower bound any planner must meet.
"""

from __future__ import annotations

from dataclasses import dataclass

#: TFLite aligns arena allocations to 64 bytes (kDefaultTensorAlignment).
ALIGNMENT = 64


@dataclass(frozen=True)
class Lifetime:
    size: int
    first: int  # index of the op that writes it; -1 for a graph input
    last: int  # index of the last op that reads it; len(ops) for a graph output


@dataclass(frozen=True)
class ArenaPlan:
    peak_bytes: int
    live_lower_bound: int


def _aligned(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def plan(lifetimes: list[Lifetime], alignment: int = ALIGNMENT) -> ArenaPlan:
    placed: list[tuple[int, int, Lifetime]] = []  # (offset, end, tensor)
    peak = 0
    for t in sorted(lifetimes, key=lambda t: (-t.size, t.first)):
        size = _aligned(t.size, alignment)
        overlapping = sorted((o, e) for o, e, u in placed if u.first <= t.last and t.first <= u.last)
        offset = 0
        for start, end in overlapping:
            if offset + size <= start:
                break
            offset = max(offset, _aligned(end, alignment))
        placed.append((offset, offset + size, t))
        peak = max(peak, offset + size)
    steps = {s for t in lifetimes for s in (t.first, t.last)}
    lower = max((sum(t.size for t in lifetimes if t.first <= s <= t.last) for s in steps), default=0)
    return ArenaPlan(peak_bytes=peak, live_lower_bound=lower)


def lifetimes_from_graph(ops: list[tuple[list[int], list[int]]], inputs, outputs, sizes: dict[int, int]) -> list[Lifetime]:
    """`ops` as (input ids, output ids) in execution order; `sizes` only for activation tensors."""
    first = {t: -1 for t in inputs if t in sizes}
    last = {t: len(ops) for t in outputs if t in sizes}
    for index, (ins, outs) in enumerate(ops):
        for t in outs:
            if t in sizes:
                first.setdefault(t, index)
        for t in ins:
            if t in sizes:
                last[t] = max(last.get(t, index), index)
    return [Lifetime(sizes[t], first.get(t, 0), last.get(t, first.get(t, 0))) for t in sizes if t in first or t in last]
