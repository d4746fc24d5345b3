"""The cached ARM emulation environment, for the ARM tests: in CI its absence fails, elsewhere it skips."""

import pytest
from external_tools import IN_CI

from edgecnn.targets.arm import ArmEnv, SetupError, load_env


def environment(arch: str) -> ArmEnv:
    """The environment of `arch` as ``edgecnn targets setup`` left it."""
    try:
        return load_env(arch)
    except SetupError as exc:
        if IN_CI:
            pytest.fail(f"CI must set up the ARM emulation ({exc})")
        pytest.skip(f"ARM emulation is not set up on this machine: {exc}")
