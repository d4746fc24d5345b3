"""The host's side of the runner (``runner.py``): its command line, its JSON report, its failures."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...errors import EdgecnnError, MissingDependencyError


class DeviceRunError(EdgecnnError):
    """The runner failed on the device (or under emulation)."""


@dataclass(frozen=True)
class RunnerReport:
    """What the runner printed, with the outputs it produced."""

    outputs: np.ndarray
    backend: str
    device: dict
    latency_ms: Optional[dict]
    raw: dict


def runner_args(model: Path, images: Path, out: Optional[Path], threads: Optional[int], extra: Sequence[str] = ()) -> list[str]:
    args = ["--model", str(model), "--images", str(images)]
    if out is not None:
        args += ["--out", str(out)]
    if threads is not None:
        args += ["--threads", str(threads)]
    return [*args, *extra]


def parse_report(stdout: str, where: str, outputs: Optional[Path] = None) -> RunnerReport:
    """The runner's JSON line (the last one on stdout), and its outputs."""
    line = next((text for text in reversed(stdout.splitlines()) if text.startswith("{")), None)
    if line is None:
        raise DeviceRunError(f"the runner printed no result on {where}")
    try:
        raw = json.loads(line)
    except ValueError:
        raise DeviceRunError(f"the runner's output on {where} is not JSON: {line[:200]}") from None
    if "error" in raw:
        error = MissingDependencyError if raw.get("kind") == "missing-runtime" else DeviceRunError
        raise error(f"on {where}: {raw['error']}")
    if "outputs_npy" in raw:
        values = np.load(io.BytesIO(base64.b64decode(raw.pop("outputs_npy"))), allow_pickle=False)
    elif outputs is not None:
        values = np.load(outputs, allow_pickle=False)
    else:
        raise DeviceRunError(f"the runner on {where} returned no outputs")
    return RunnerReport(values, raw.get("backend", "?"), raw.get("device", {}), raw.get("latency_ms"), raw)


def failure_message(proc: subprocess.CompletedProcess, where: str) -> str:
    """One line for a runner that died without a report: its last error line on stderr."""
    lines = [text.strip() for text in (proc.stderr or "").splitlines() if text.strip()]
    interesting = [text for text in lines if "Error" in text or "error" in text or "fault" in text.lower()]
    detail = (interesting or lines or [f"exit code {proc.returncode}"])[-1]
    return f"the runner failed on {where} (exit code {proc.returncode}): {detail[:300]}"
