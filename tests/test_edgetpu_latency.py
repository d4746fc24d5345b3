"""Edge TPU latency estimate."""

from edgecnn.targets.edgetpu.latency import LATENCY_REFERENCES, estimate_latency


def test_latency_estimate_is_labelled_and_calibrated():
    for name, gmacs, _, ms in LATENCY_REFERENCES:
        estimate = estimate_latency(int(gmacs * 1e9))
        assert estimate.low_ms <= ms <= estimate.high_ms, name
    streamed = estimate_latency(10**8, off_chip_bytes=4 << 20)
    assert streamed.milliseconds > estimate_latency(10**8).milliseconds + 5
    d = streamed.to_dict()
    assert d["estimate"] is True and "not measured" in d["basis"] and "estimate" in streamed.describe()
