"""Device outputs against the host's: accuracy on both, top-1 agreement, differences in LSBs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ...artifact import Quantization
from .protocol import DeviceRunError


def lsb_diff(a: np.ndarray, b: np.ndarray, quantization: Optional[Quantization]) -> Optional[np.ndarray]:
    """|a - b| in steps of the output quantization (integers), or None for a float output.

    `a` and `b` are dequantized outputs ``scale * (q - zero_point)``, so their difference
    divided by the scale is a whole number up to float rounding.
    """
    if quantization is None or not quantization.scale:
        return None
    diff = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)) / float(quantization.scale)
    return np.rint(diff).astype(np.int64)


@dataclass(frozen=True)
class Comparison:
    samples: int
    accuracy: float
    host_accuracy: float
    agreement: float
    max_abs_diff: float
    max_abs_diff_lsb: Optional[int]
    #: Share of output values that differ at all.
    differing_outputs: float


def compare(device: np.ndarray, host: np.ndarray, labels: np.ndarray, quantization: Optional[Quantization]) -> Comparison:
    device, host, labels = np.asarray(device), np.asarray(host), np.asarray(labels)
    if device.shape != host.shape or len(device) != len(labels):
        raise DeviceRunError(
            f"the device returned outputs of shape {device.shape}, the host {host.shape}, for {len(labels)} images"
        )
    d_top, h_top = device.argmax(axis=-1), host.argmax(axis=-1)
    lsb = lsb_diff(device, host, quantization)
    abs_diff = np.abs(device.astype(np.float64) - host.astype(np.float64))
    return Comparison(
        samples=int(len(labels)),
        accuracy=float((d_top == labels).mean()),
        host_accuracy=float((h_top == labels).mean()),
        agreement=float((d_top == h_top).mean()),
        max_abs_diff=float(abs_diff.max()) if abs_diff.size else 0.0,
        max_abs_diff_lsb=int(lsb.max()) if lsb is not None and lsb.size else (0 if lsb is not None else None),
        differing_outputs=float((lsb > 0).mean() if lsb is not None else (abs_diff > 0).mean()) if abs_diff.size else 0.0,
    )
