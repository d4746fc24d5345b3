"""The programs setup runs (dpkg-deb, pip, the emulated Python), and the error when one fails."""

from __future__ import annotations

import subprocess
from typing import Sequence

from ...errors import EdgecnnError


class SetupError(EdgecnnError):
    """The emulation environment could not be built or is not there."""


def run_tool(argv: Sequence[str], what: str, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    """Run `argv` for `what`; a missing program, a timeout or a failure is a one-line SetupError."""
    try:
        proc = subprocess.run(list(argv), check=False, capture_output=True, text=True, timeout=timeout, **kwargs)
    except FileNotFoundError:
        raise SetupError(f"{what}: {argv[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise SetupError(f"{what} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr + "\n" + proc.stdout).splitlines() if line.strip()]
        errors = [line for line in lines if "error" in line.lower()]
        raise SetupError(f"{what} failed: {(errors or lines or ['exit code ' + str(proc.returncode)])[-1].strip()}")
    return proc
