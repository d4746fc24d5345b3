"""Validate an artifact under ARM user-mode emulation, against the same runtime on the host.

Both sides run the same runner (``runner.py`` + a copy of ``edgecnn.runtime``) on the
same images; only the CPU architecture and its kernels differ:

- arm64 targets run ai-edge-litert of the host's own version;
- armv7 runs tflite-runtime 2.14 (the only TFLite runtime with armv7l wheels), and so
  does the host side, from an isolated folder with numpy < 2 (``armhf/host-site``).
  Where that is impossible (a host Python without tflite-runtime wheels) the host runs
  its own runtime and the result says so (``same_runtime: false`` and a note).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ...errors import ConfigError
from .compare import compare
from .env import ArmEnv, load_env
from .inputs import artifact_metadata, labelled_test_images
from .payload import write_payload
from .protocol import DeviceRunError, RunnerReport, failure_message, parse_report, runner_args
from .targets import EmulatedTarget, parse_target
from .validation import TargetValidation

log = logging.getLogger(__name__)

#: Seconds an emulated run may take before it is stopped.
TIMEOUT = 1800


def _run(argv: list[str], env: dict, where: str, out: Path, timeout: float) -> RunnerReport:
    log.info("running the images on %s", where)
    try:
        proc = subprocess.run(argv, env=env, check=False, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceRunError(f"the runner on {where} took longer than {timeout:.0f} s and was stopped") from None
    if proc.returncode != 0 and not proc.stdout.strip():
        raise DeviceRunError(failure_message(proc, where))
    return parse_report(proc.stdout, where, out)


def run_emulated(
    env: ArmEnv, cpu: str, runner: Path, model: Path, images: Path, out: Path, threads: Optional[int], timeout: float = TIMEOUT
) -> RunnerReport:
    argv = env.command(cpu, str(runner), *runner_args(model, images, out, threads))
    return _run(argv, env.environ([runner.parent]), f"{env.arch} ({cpu}, emulated)", out, timeout)


def run_host(
    env: Optional[ArmEnv], runner: Path, model: Path, images: Path, out: Path, threads: Optional[int], timeout: float = TIMEOUT
) -> RunnerReport:
    """The same runner with the host's Python: the environment's host-site runtime if it has one."""
    args = [str(runner), *runner_args(model, images, out, threads)]
    environ = dict(os.environ)
    if env is not None and env.host_site is not None:
        # Only the isolated runtime (and its numpy < 2), none of the host's site-packages.
        environ = {k: v for k, v in environ.items() if not k.startswith("PYTHON")}
        environ["PYTHONPATH"] = str(env.host_site)
        argv = [sys.executable, "-S", "-s", *args]
    else:
        argv = [sys.executable, *args]
    return _run(argv, environ, "the host", out, timeout)


def validate_emulated(
    artifact: Union[str, os.PathLike],
    target: Union[str, EmulatedTarget],
    data: Optional[str] = None,
    threads: Optional[int] = 1,
    cache: Optional[os.PathLike] = None,
    max_drop: Optional[float] = None,
    images: Optional[np.ndarray] = None,
    labels: Optional[np.ndarray] = None,
) -> TargetValidation:
    """Accuracy of `artifact` on the test split under emulation of `target` and on the host.

    `images`/`labels` override the test split (uint8 NHWC, int labels).
    """
    started = time.perf_counter()
    if isinstance(target, str):
        target = parse_target(target)
    if not isinstance(target, EmulatedTarget):
        raise ConfigError(f"{target.label} is not an emulated target")
    path = Path(artifact).absolute()
    meta = artifact_metadata(path)
    env = load_env(target.arch, cache)
    if images is None:
        images, labels = labelled_test_images(meta, data, path)
    with tempfile.TemporaryDirectory(prefix="edgecnn-arm-") as tmp:
        work = Path(tmp)
        runner = write_payload(work)
        np.save(work / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
        device = run_emulated(env, target.cpu, runner, path, work / "images.npy", work / "device.npy", threads)
        host = run_host(env, runner, path, work / "images.npy", work / "host.npy", threads)
    result = compare(device.outputs, host.outputs, labels, meta.output_quantization)
    notes = [f"emulated {target.cpu} with qemu {env.qemu_version}; timings under emulation are not latency"]
    if device.backend != host.backend:
        notes.append(f"the host ran {host.backend}, the target {device.backend}: differences may come from the runtimes")
    return TargetValidation.from_runs(
        target.name,
        True,
        path,
        result,
        device,
        host,
        threads=threads,
        device={
            "board": target.board,
            "cpu": target.cpu,
            "arch": target.arch,
            "machine": device.device.get("machine"),
            "python": device.device.get("python"),
            "numpy": device.raw.get("numpy"),
        },
        notes=tuple(notes),
        seconds=round(time.perf_counter() - started, 2),
        max_drop=max_drop,
    )
