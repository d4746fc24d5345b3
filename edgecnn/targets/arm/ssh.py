"""Validate an artifact on a real board over SSH, and measure its latency there.

The system's OpenSSH client does the work, so ``~/.ssh/config`` (host aliases, keys,
jump hosts) applies; ``$EDGECNN_SSH_CONFIG`` names another config file. Every call runs
with ``BatchMode=yes``: a board that wants a password fails at once instead of waiting.

One validation is four short connections: a probe (Python, numpy, the TFLite runtime),
an upload of the runner, edgecnn's runtime, the model and the images into a fresh
temporary folder, the run, and the removal of that folder. The runner exits when its
connection closes (it watches stdin) and deletes its folder itself, so an interrupted
validation leaves nothing running and nothing behind.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ...errors import ConfigError, EdgecnnError, MissingDependencyError
from .compare import compare
from .emulate import run_host
from .env import load_env
from .inputs import artifact_metadata, labelled_test_images
from .payload import payload_tar, write_payload
from .protocol import DeviceRunError, parse_report
from .targets import SshTarget, parse_target
from .tools import SetupError
from .validation import TargetValidation

SSH_CONFIG_ENV = "EDGECNN_SSH_CONFIG"
CONNECT_TIMEOUT = 10
RUN_TIMEOUT = 1800
INSTALL_HINT = "on the board: pip install ai-edge-litert (64-bit OS) or pip install tflite-runtime 'numpy<2' (32-bit Pi OS)"

#: Printed by the board's Python: what it has. Needs nothing but the standard library.
PROBE = """
import importlib, importlib.util, json, platform, sys
def version(module, dist):
    if importlib.util.find_spec(module) is None:
        return None
    try:
        from importlib.metadata import version as v
        return v(dist)
    except Exception:
        return "unknown"
print(json.dumps({
    "python": platform.python_version(), "machine": platform.machine(),
    "numpy": version("numpy", "numpy"), "flatbuffers": version("flatbuffers", "flatbuffers"),
    "runtimes": {m: version(m, d) for m, d in (("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime"))},
}))
"""

#: Reads a tar from stdin into a new temporary folder and prints the folder.
UNPACK = """
import os, shutil, sys, tarfile, tempfile
folder = tempfile.mkdtemp(prefix="edgecnn-")
options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
try:
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                raise SystemExit("refusing archive member " + member.name)
            tar.extract(member, folder, **options)
except BaseException:
    shutil.rmtree(folder, ignore_errors=True)
    raise
print(folder)
"""

REMOVE = "import shutil, sys; shutil.rmtree(sys.argv[1], ignore_errors=True)"


def ssh_config_file() -> Optional[Path]:
    value = os.environ.get(SSH_CONFIG_ENV)
    return Path(value).expanduser() if value else None


def ssh_argv(target: SshTarget, remote: Sequence[str], config: Optional[Path] = None) -> list[str]:
    """argv of ``ssh`` running `remote` (quoted for the board's POSIX shell) on `target`."""
    argv = [
        "ssh",
        "-o",
        "BatchMode=yes",
        "-o",
        f"ConnectTimeout={CONNECT_TIMEOUT}",
        "-o",
        "ServerAliveInterval=10",
        "-o",
        "ServerAliveCountMax=3",
        "-o",
        "LogLevel=ERROR",
    ]
    if config is not None:
        argv += ["-F", str(config)]
    if target.port is not None:
        argv += ["-p", str(target.port)]
    return [*argv, "--", target.destination, shlex.join(remote)]


class _Session:
    """ssh calls to one board, turning ssh's failures into one-line errors."""

    def __init__(self, target: SshTarget, python: str, config: Optional[Path]):
        self.target, self.python, self.config = target, python, config

    def argv(self, remote: Sequence[str]) -> list[str]:
        return ssh_argv(self.target, remote, self.config)

    def call(
        self, remote: Sequence[str], what: str, data: Optional[bytes] = None, timeout: float = 120, keep_stdin_open: bool = False
    ) -> subprocess.CompletedProcess:
        argv = self.argv(remote)
        try:
            if keep_stdin_open:
                return self._call_watched(argv, what, timeout)
            return subprocess.run(
                argv, input=data if data is not None else b"", check=False, capture_output=True, timeout=timeout
            )
        except FileNotFoundError:
            raise EdgecnnError("the OpenSSH client (ssh) is not installed; install it (apt-get install openssh-client)") from None
        except subprocess.TimeoutExpired:
            raise DeviceRunError(f"{what} on {self.target.label} took longer than {timeout:.0f} s and was stopped") from None

    def _call_watched(self, argv: list[str], what: str, timeout: float) -> subprocess.CompletedProcess:
        # stdin stays open while the remote command runs; closing it (or dying) ends the command there.
        read_end, write_end = os.pipe()
        try:
            proc = subprocess.Popen(argv, stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        finally:
            os.close(read_end)
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.communicate()
            raise
        finally:
            os.close(write_end)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def check(self, proc: subprocess.CompletedProcess, what: str, connected: bool = False) -> str:
        """stdout of a successful call; else the one-line error for what went wrong.

        ssh exits 255 both when it cannot connect and when the remote command dies of a
        signal; `connected` (an earlier call got through) tells them apart.
        """
        stderr = proc.stderr.decode(errors="replace") if isinstance(proc.stderr, bytes) else proc.stderr
        lines = [text.strip() for text in stderr.splitlines() if text.strip()]
        detail = lines[-1] if lines else f"exit code {proc.returncode}"
        if proc.returncode == 255 and connected:
            errors = [text for text in lines if "error" in text.lower() or "fault" in text.lower()] or lines
            raise DeviceRunError(
                f"{what} on {self.target.label} ended abnormally (the process was killed or the connection dropped): "
                f"{(errors[-1] if errors else 'no message')[:300]}"
            )
        if proc.returncode == 255:
            if "host key verification failed" in detail.lower():
                advice = f"connect once with ssh {self.target.destination} to check and accept the board's host key"
            else:
                advice = "check the address, that the board runs sshd and that it accepts your key without a password"
            raise DeviceRunError(
                f"cannot reach {self.target.label}: {detail}; {advice} (try: ssh -o BatchMode=yes {self.target.destination} true)"
            )
        if proc.returncode == 127:
            raise MissingDependencyError(
                f"{self.python!r} was not found on {self.target.label}; pass --python with the board's Python interpreter"
            )
        if proc.returncode != 0:
            raise DeviceRunError(f"{what} failed on {self.target.label} (exit code {proc.returncode}): {detail[:300]}")
        return proc.stdout.decode(errors="replace") if isinstance(proc.stdout, bytes) else proc.stdout


def probe(session: _Session) -> dict:
    """What the board's Python has; MissingDependencyError when it cannot run a model."""
    out = session.check(
        session.call([session.python, "-c", PROBE], "checking Python", timeout=CONNECT_TIMEOUT + 60), "checking Python"
    )
    try:
        info = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DeviceRunError(f"{session.python} on {session.target.label} did not answer the probe: {out[:200]!r}") from None
    label, python = session.target.label, session.python
    version = tuple(int(x) for x in info["python"].split(".")[:2])
    if version < (3, 8):
        raise MissingDependencyError(f"{python} on {label} is Python {info['python']}; the runtime needs Python 3.8 or newer")
    missing = [name for name in ("numpy", "flatbuffers") if not info.get(name)]
    if missing:
        raise MissingDependencyError(
            f"{python} on {label} lacks {' and '.join(missing)}; on the board: pip install {' '.join(missing)}"
        )
    if not any(info["runtimes"].values()):
        raise MissingDependencyError(
            f"{label} has no TFLite runtime for {python} (Python {info['python']} on {info['machine']}); {INSTALL_HINT}"
        )
    return info


def _host_reference(board_backend: str):
    """The armhf environment's isolated tflite-runtime when the board runs that same version (32-bit Pi OS)."""
    if not board_backend.startswith("tflite_runtime "):
        return None
    try:
        env = load_env("armhf")
    except SetupError:
        return None
    if env.host_runtime and env.host_runtime.split()[-1] == board_backend.split()[-1]:
        return env
    return None


def validate_remote(
    artifact: Union[str, os.PathLike],
    target: Union[str, SshTarget],
    python: str = "python3",
    data: Optional[str] = None,
    threads: Optional[int] = 1,
    runs: int = 100,
    warmup: int = 10,
    min_seconds: float = 1.0,
    max_drop: Optional[float] = None,
    ssh_config: Optional[os.PathLike] = None,
    images: Optional[np.ndarray] = None,
    labels: Optional[np.ndarray] = None,
    timeout: float = RUN_TIMEOUT,
) -> TargetValidation:
    """Accuracy and latency of `artifact` on the board at `target`, compared with the host."""
    started = time.perf_counter()
    if isinstance(target, str):
        target = parse_target(target)
    if not isinstance(target, SshTarget):
        raise ConfigError(f"{target.name} is not an ssh:// target")
    if not python or python.startswith("-"):
        raise ConfigError(f"--python must name the board's interpreter, got {python!r}")
    path = Path(artifact).absolute()
    meta = artifact_metadata(path)
    if images is None:
        images, labels = labelled_test_images(meta, data, path)
    images = np.ascontiguousarray(images, dtype=np.uint8)
    config = Path(ssh_config) if ssh_config else ssh_config_file()
    session = _Session(target, python, config)

    board = probe(session)
    buffer = io.BytesIO()
    np.save(buffer, images)
    archive = payload_tar({"model.tflite": path, "images.npy": buffer.getvalue()})
    folder = (
        session.check(
            session.call([python, "-c", UNPACK], "uploading the model", data=archive, timeout=300),
            "uploading the model",
            connected=True,
        )
        .strip()
        .splitlines()[-1]
    )
    if not os.path.basename(folder).startswith("edgecnn-"):
        raise DeviceRunError(f"unexpected temporary folder {folder!r} on {target.label}")
    try:
        remote = [
            python,
            f"{folder}/runner.py",
            "--model",
            f"{folder}/model.tflite",
            "--images",
            f"{folder}/images.npy",
            "--inline",
            "--runs",
            str(runs),
            "--warmup",
            str(warmup),
            "--min-seconds",
            str(min_seconds),
            "--watch-stdin",
            "--remove-when-done",
        ]
        if threads is not None:
            remote += ["--threads", str(threads)]
        proc = session.call(remote, "running the model", timeout=timeout, keep_stdin_open=True)
        stdout = proc.stdout.decode(errors="replace")
        if proc.returncode == 255 or not stdout.strip():
            session.check(proc, "running the model", connected=True)
        device = parse_report(stdout, target.label)
    finally:
        try:
            session.call([python, "-c", REMOVE, folder], "cleaning up", timeout=CONNECT_TIMEOUT + 30)
        except EdgecnnError:
            pass  # the runner removes its folder itself; this is a second chance

    with tempfile.TemporaryDirectory(prefix="edgecnn-host-") as tmp:
        work = Path(tmp)
        runner = write_payload(work)
        np.save(work / "images.npy", images)
        host = run_host(_host_reference(device.backend), runner, path, work / "images.npy", work / "host.npy", threads)

    result = compare(device.outputs, host.outputs, labels, meta.output_quantization)
    notes = []
    if device.backend != host.backend:
        notes.append(f"the host ran {host.backend}, the board {device.backend}: differences may come from the runtimes")
    info = dict(device.device)
    info.update(
        host=target.label,
        python_path=python,
        numpy=device.raw.get("numpy"),
        runtimes={k: v for k, v in board["runtimes"].items() if v},
    )
    return TargetValidation.from_runs(
        target.label,
        False,
        path,
        result,
        device,
        host,
        threads=threads,
        device=info,
        latency_ms=device.latency_ms,
        notes=tuple(notes),
        seconds=round(time.perf_counter() - started, 2),
        max_drop=max_drop,
    )
