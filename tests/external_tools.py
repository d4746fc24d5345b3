"""Tools from outside Python that some tests drive (Chromium, a MediaPipe venv, ARM emulation):
in CI their absence fails, elsewhere it skips with what to install."""

import os

import pytest

IN_CI = os.environ.get("CI") == "true"


def require(available: bool, what: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"CI must provide {what} (.ci/run installs it)")
    pytest.skip(f"{what} is not installed here")
