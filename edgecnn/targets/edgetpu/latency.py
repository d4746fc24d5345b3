"""A rough Edge TPU latency estimate from multiply-accumulates and parameter bytes.

``t = a + b * GMACs + off_chip_bytes / bandwidth``: `a` and `b` are a least-squares fit to
Coral's published USB Accelerator latencies of models whose parameters fit the on-chip
cache, the bandwidth to those of models that stream most of theirs. Real latency depends on
the layer shapes far more than this can see (MobileNet v2 has half v1's MACs and is slower),
so the figure is always reported as an estimate with the calibration's spread.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...evaluate.graph_stats import tflite_op_macs
from ...runtime.tflite_file import TFLiteModel
from .table import LATENCY_REFERENCES, ON_CHIP_CACHE_BYTES, STREAMING_REFERENCES

DEVICE = "Coral USB Accelerator (USB 3.0)"


def count_macs(model: TFLiteModel, op_indices=None) -> int:
    """Multiply-accumulates of the operators of subgraph 0 (those in `op_indices`, if given)."""
    tensors = model.subgraphs[0].tensors
    return sum(
        tflite_op_macs(code.name, op.inputs, op.outputs, tensors)
        for i, (code, op) in enumerate(model.operators())
        if op_indices is None or i in op_indices
    )


def _fit():
    gmacs = np.array([r[1] for r in LATENCY_REFERENCES])
    ms = np.array([r[3] for r in LATENCY_REFERENCES])
    slope, intercept = np.polyfit(gmacs, ms, 1)
    ratios = ms / (intercept + slope * gmacs)
    rates = []
    for _, g, params_m, t in STREAMING_REFERENCES:
        streamed = params_m * 1e6 - ON_CHIP_CACHE_BYTES  # int8: one byte per parameter
        rates.append(streamed / ((t - (intercept + slope * g)) / 1e3))
    return float(intercept), float(slope), float(ratios.min()), float(ratios.max()), float(np.mean(rates))


INTERCEPT_MS, MS_PER_GMAC, LOW_RATIO, HIGH_RATIO, STREAM_BYTES_PER_S = _fit()


@dataclass(frozen=True)
class LatencyEstimate:
    milliseconds: float
    low_ms: float
    high_ms: float
    macs: int
    off_chip_bytes: int

    def to_dict(self) -> dict:
        return {
            "estimate": True,
            "milliseconds": round(self.milliseconds, 2),
            "range_ms": [round(self.low_ms, 2), round(self.high_ms, 2)],
            "device": DEVICE,
            "macs": self.macs,
            "basis": self.basis,
        }

    @property
    def basis(self) -> str:
        names = ", ".join(f"{name} {ms} ms" for name, _, _, ms in LATENCY_REFERENCES)
        return (
            f"{INTERCEPT_MS:.2f} ms + {MS_PER_GMAC:.2f} ms per GMAC + off-chip bytes at "
            f"{STREAM_BYTES_PER_S / 1e6:.0f} MB/s, fitted to Coral's published figures ({names}); "
            "Edge TPU ops only, not measured"
        )

    def describe(self) -> str:
        return (
            f"~{self.milliseconds:.1f} ms on a {DEVICE} (estimate, {self.low_ms:.1f}-{self.high_ms:.1f} ms; "
            f"{self.macs / 1e6:,.1f}M MACs; not measured)"
        )


def estimate_latency(macs: int, off_chip_bytes: int = 0) -> LatencyEstimate:
    ms = INTERCEPT_MS + MS_PER_GMAC * macs / 1e9
    stream_ms = 1e3 * off_chip_bytes / STREAM_BYTES_PER_S
    return LatencyEstimate(ms + stream_ms, ms * LOW_RATIO + stream_ms, ms * HIGH_RATIO + stream_ms, macs, off_chip_bytes)
