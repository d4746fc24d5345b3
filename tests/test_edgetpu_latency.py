"""Edge TPU latency estimate: MACs counted by hand, the fit's figures worked out by hand, and
an estimate that grows with compute and with streamed parameters."""

from __future__ import annotations

import numpy as np
import pytest
from tflite_builder import T, conv2d, one_op, options

from edgecnn.evaluate.graph_stats import tflite_stats
from edgecnn.runtime.tflite_file import read_tflite
from edgecnn.targets.edgetpu import check_model, count_macs, estimate_latency

# (name, model, multiply-accumulates counted by hand)
MAC_CASES = [
    ("conv 3x3, 4 -> 8 channels on 8x8", conv2d, 8 * 8 * 8 * (3 * 3 * 4)),
    (
        "depthwise 3x3 on 8x8x4",
        lambda: one_op(
            "DEPTHWISE_CONV_2D",
            [T((1, 8, 8, 4)), T((1, 3, 3, 4), values=np.ones(36)), T((4,), "int32", np.zeros(4))],
            [T((1, 8, 8, 4))],
            options("DepthwiseConv2DOptions", depthMultiplier=1),
        ),
        8 * 8 * 4 * (3 * 3),
    ),
    (
        "fully connected 8 -> 4",
        lambda: one_op(
            "FULLY_CONNECTED", [T((1, 8)), T((4, 8), values=np.ones(32))], [T((1, 4))], options("FullyConnectedOptions")
        ),
        8 * 4,
    ),
    (
        "transpose conv 3x3 stride 2, 4x4x8 -> 8x8x4",
        lambda: one_op(
            "TRANSPOSE_CONV",
            [T((4,), "int32", [1, 8, 8, 4]), T((4, 3, 3, 8), values=np.ones(288)), T((1, 4, 4, 8))],
            [T((1, 8, 8, 4))],
            options("TransposeConvOptions", strideW=2, strideH=2),
        ),
        4 * 4 * 8 * (3 * 3 * 4),  # every input element spreads over a 3x3 window of each output channel
    ),
    ("add", lambda: one_op("ADD", [T((1, 4, 4, 8)), T((1, 4, 4, 8))], [T((1, 4, 4, 8))]), 0),
]


@pytest.mark.parametrize("name, build, macs", MAC_CASES, ids=[c[0] for c in MAC_CASES])
def test_macs_by_hand(name, build, macs):
    model = read_tflite(build())
    assert count_macs(model) == macs == tflite_stats(model).macs


def test_estimate_counts_the_edge_tpu_ops_only(converted_nets):
    # 16x16 input: conv 3x3 3 -> 8, depthwise 3x3 on 8 channels, conv 1x1 8 -> 16, dense 16 -> 4.
    first_conv = 16 * 16 * 8 * (3 * 3 * 3)
    everything = first_conv + 16 * 16 * 8 * (3 * 3) + 16 * 16 * 16 * 8 + 16 * 4
    assert check_model(converted_nets["int8"]).estimate.macs == everything
    # The LEAKY_RELU after the first convolution sends the rest to the CPU.
    assert check_model(converted_nets["middle"]).estimate.macs == first_conv


def test_estimate_of_a_small_graph_by_hand():
    # Least squares through the cached references (GMACs, ms): MobileNet v1 (0.569, 2.4), v2 (0.300,
    # 2.6) and EfficientNet-EdgeTPU-S (1.8, 5.1) gives 1.739 ms + 1.829 ms per GMAC; measured over
    # fitted spans x0.863 (v1) to x1.136 (v2).
    estimate = check_model(conv2d()).estimate
    assert estimate.macs == 18432 and estimate.off_chip_bytes == 0
    assert estimate.milliseconds == pytest.approx(1.739 + 1.829 * 18432e-9, abs=1e-3)
    assert (estimate.low_ms, estimate.high_ms) == pytest.approx((1.739 * 0.863, 1.739 * 1.136), abs=2e-3)
    # Streamed parameters: Inception v3 moves 23.8M - 8 MiB bytes in 42.8 - 12.17 ms (503 MB/s),
    # Inception v4 34.3 MB in 84.7 - 24.24 ms (567 MB/s); the estimate uses their mean, 535 MB/s.
    streamed = estimate_latency(10**9, off_chip_bytes=4 << 20)
    assert streamed.milliseconds == pytest.approx(1.739 + 1.829 + 1e3 * (4 << 20) / 535e6, abs=0.02)


def test_estimate_grows_with_macs_and_streamed_bytes():
    macs = [0, 10**6, 10**8, 10**9, 10**10]
    off_chip = [0, 1 << 20, 16 << 20, 64 << 20]
    for fewer, more in zip(macs, macs[1:]):
        assert estimate_latency(more).milliseconds > estimate_latency(fewer).milliseconds
    for fewer, more in zip(off_chip, off_chip[1:]):
        assert estimate_latency(10**8, more).milliseconds > estimate_latency(10**8, fewer).milliseconds
    for m in macs:
        for b in off_chip:
            estimate = estimate_latency(m, b)
            assert 0 < estimate.low_ms <= estimate.milliseconds <= estimate.high_ms


def test_estimate_is_labelled_as_one():
    estimate = estimate_latency(10**8, off_chip_bytes=4 << 20)
    d = estimate.to_dict()
    assert d["estimate"] is True and "not measured" in d["basis"] and "estimate" in estimate.describe()
