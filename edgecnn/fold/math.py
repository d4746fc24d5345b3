"""BatchNorm folding arithmetic, in plain numpy.

In inference mode a BatchNormalization is a per-channel affine map,
``y = (x - mean) * s + beta`` with ``s = gamma / sqrt(var + eps)``, so when ``x`` is the
output of a linear layer ``x = W*u + b`` the two collapse into one linear layer with
``W' = W * s`` (per output channel) and ``b' = (b - mean) * s + beta``.

Everything is computed in float64 and returned as float32: the folded weights are then
the float32 rounding of the exact result, not an accumulation of float32 round-offs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

__all__ = ["BNParams", "fold_conv", "fold_dense", "fold_depthwise", "fold_separable"]


def _vector(name: str, value, size: Optional[int] = None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D per-channel vector, got shape {arr.shape}")
    if size is not None and arr.shape[0] != size:
        raise ValueError(f"{name} has {arr.shape[0]} channels, expected {size}")
    return arr


@dataclass(frozen=True, eq=False)
class BNParams:
    """Inference-time parameters of one BatchNormalization over the channel axis.

    ``gamma`` is None for ``scale=False`` and ``beta`` is None for ``center=False``.
    """

    gamma: Optional[np.ndarray]
    beta: Optional[np.ndarray]
    moving_mean: np.ndarray
    moving_variance: np.ndarray
    epsilon: float

    def __post_init__(self) -> None:
        mean = _vector("moving_mean", self.moving_mean)
        n = mean.shape[0]
        var = _vector("moving_variance", self.moving_variance, n)
        if not np.all(np.isfinite(var)) or np.any(var + float(self.epsilon) <= 0):
            raise ValueError("moving_variance + epsilon must be finite and positive for every channel")
        # Normalise to float64 once; object.__setattr__ because the dataclass is frozen.
        object.__setattr__(self, "moving_mean", mean)
        object.__setattr__(self, "moving_variance", var)
        object.__setattr__(self, "epsilon", float(self.epsilon))
        if self.gamma is not None:
            object.__setattr__(self, "gamma", _vector("gamma", self.gamma, n))
        if self.beta is not None:
            object.__setattr__(self, "beta", _vector("beta", self.beta, n))

    @property
    def channels(self) -> int:
        return int(self.moving_mean.shape[0])

    def scale(self) -> np.ndarray:
        """Per-channel multiplier ``s``."""
        s = 1.0 / np.sqrt(self.moving_variance + self.epsilon)
        return s if self.gamma is None else self.gamma * s

    def fold_bias(self, bias, channels: int) -> np.ndarray:
        """``(b - mean) * s + beta``; a missing bias counts as zero."""
        if channels != self.channels:
            raise ValueError(f"the linear layer has {channels} output channels, the BatchNormalization {self.channels}")
        b = np.zeros(channels) if bias is None else _vector("bias", bias, channels)
        out = (b - self.moving_mean) * self.scale()
        return out if self.beta is None else out + self.beta


def _f32(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr, dtype=np.float32)


def _fold_last_axis(kernel, bias, bn: BNParams, ndim: int, what: str):
    w = np.asarray(kernel, dtype=np.float64)
    if w.ndim != ndim:
        raise ValueError(f"{what} kernel must have {ndim} dimensions, got shape {w.shape}")
    b = bn.fold_bias(bias, w.shape[-1])
    return _f32(w * bn.scale()), _f32(b)


def fold_conv(kernel, bias, bn: BNParams):
    """Conv2D kernel ``(kh, kw, cin, cout)`` (or ``cin/groups``); returns ``(kernel, bias)``."""
    return _fold_last_axis(kernel, bias, bn, 4, "Conv2D")


def fold_dense(kernel, bias, bn: BNParams):
    """Dense kernel ``(in, out)``; returns ``(kernel, bias)``."""
    return _fold_last_axis(kernel, bias, bn, 2, "Dense")


def fold_depthwise(depthwise_kernel, bias, bn: BNParams):
    """DepthwiseConv2D kernel ``(kh, kw, cin, mult)``; returns ``(depthwise_kernel, bias)``.

    Output channel ``c * mult + m`` comes from ``depthwise_kernel[..., c, m]``, so the
    per-channel scale is reshaped to ``(cin, mult)`` in that (row-major) order.
    """
    w = np.asarray(depthwise_kernel, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"DepthwiseConv2D kernel must have 4 dimensions, got shape {w.shape}")
    cin, mult = w.shape[2], w.shape[3]
    b = bn.fold_bias(bias, cin * mult)
    return _f32(w * bn.scale().reshape(cin, mult)), _f32(b)


def fold_separable(depthwise_kernel, pointwise_kernel, bias, bn: BNParams):
    """SeparableConv2D; returns ``(depthwise_kernel, pointwise_kernel, bias)``.

    Only the pointwise kernel and the bias change: the depthwise stage has no bias of its
    own, and scaling the pointwise output channels is exact.
    """
    dw = np.asarray(depthwise_kernel, dtype=np.float64)
    pw = np.asarray(pointwise_kernel, dtype=np.float64)
    if dw.ndim != 4 or pw.ndim != 4 or pw.shape[:2] != (1, 1) or pw.shape[2] != dw.shape[2] * dw.shape[3]:
        raise ValueError(f"SeparableConv2D kernels do not fit together: depthwise {dw.shape}, pointwise {pw.shape}")
    pw, b = _fold_last_axis(pw, bias, bn, 4, "SeparableConv2D pointwise")
    return _f32(dw), pw, b
