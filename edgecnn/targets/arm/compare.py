"""Device against host: accuracy on both, top-1 agreement, output differences in LSBs."""

from __future__ import annotations

import base64
import io
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ...artifact import METADATA_KEY, ArtifactMetadata, Quantization
from ...errors import EdgecnnError, MissingDependencyError, ModelFileError


class DeviceRunError(EdgecnnError):
    """The runner failed on the device (or under emulation)."""


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


@dataclass(frozen=True)
class TargetValidation:
    """One artifact validated on a target against the same artifact on the host."""

    target: str
    emulated: bool
    artifact: str
    samples: int
    accuracy: float
    host_accuracy: float
    agreement: float
    max_abs_diff_lsb: Optional[int]
    max_abs_diff: float
    differing_outputs: float
    runtime: str
    host_runtime: str
    threads: Optional[int]
    device: dict = field(default_factory=dict)
    latency_ms: Optional[dict] = None
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    max_drop: Optional[float] = None

    @classmethod
    def from_runs(cls, target: str, emulated: bool, artifact, result, target_run, host_run, **fields) -> "TargetValidation":
        """Combine a :func:`compare` `result` with the target's and the host's runner reports."""
        return cls(
            target=target,
            emulated=emulated,
            artifact=str(artifact),
            samples=result.samples,
            accuracy=result.accuracy,
            host_accuracy=result.host_accuracy,
            agreement=result.agreement,
            max_abs_diff_lsb=result.max_abs_diff_lsb,
            max_abs_diff=result.max_abs_diff,
            differing_outputs=result.differing_outputs,
            runtime=target_run.backend,
            host_runtime=host_run.backend,
            **fields,
        )

    @property
    def same_runtime(self) -> bool:
        return self.runtime == self.host_runtime

    @property
    def accuracy_drop(self) -> float:
        """Accuracy lost on the target against the host, in percentage points."""
        return round((self.host_accuracy - self.accuracy) * 100, 4)

    @property
    def passed(self) -> bool:
        return self.max_drop is None or self.accuracy_drop <= self.max_drop

    def to_dict(self) -> dict:
        out = asdict(self)
        out["notes"] = list(self.notes)
        if self.latency_ms is None:
            del out["latency_ms"]  # emulated timings are not latency
        out.update(same_runtime=self.same_runtime, accuracy_drop=self.accuracy_drop, passed=self.passed)
        return out


@dataclass(frozen=True)
class RunnerReport:
    """What the runner printed, with the outputs it produced."""

    outputs: np.ndarray
    backend: str
    device: dict
    latency_ms: Optional[dict]
    raw: dict


def artifact_metadata(path: Path) -> ArtifactMetadata:
    """Metadata of a .tflite artifact, read without an interpreter."""
    from ...runtime import load_tflite, resolve_metadata

    if path.suffix.lower() != ".tflite":
        raise ModelFileError(
            f"{path} is not a .tflite file; ARM targets run TFLite artifacts (export with `edgecnn export --int8`)"
        )
    parsed = load_tflite(path)
    return resolve_metadata(path, parsed.metadata.get(METADATA_KEY))


def test_split(meta: ArtifactMetadata, data: Optional[str]):
    """(uint8 images, labels) of the test split the model was trained with (loaded on the host)."""
    from ...data import dataset_for

    dataset = dataset_for(meta, data)
    images = np.ascontiguousarray(dataset.test.images, dtype=np.uint8)
    return images, np.asarray(dataset.test.labels)


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
    lines = [text.strip() for text in (proc.stderr or "").splitlines() if text.strip()]
    interesting = [text for text in lines if "Error" in text or "error" in text or "fault" in text.lower()]
    detail = (interesting or lines or [f"exit code {proc.returncode}"])[-1]
    return f"the runner failed on {where} (exit code {proc.returncode}): {detail[:300]}"


def runner_args(model: Path, images: Path, out: Optional[Path], threads: Optional[int], extra: Sequence[str] = ()) -> list[str]:
    args = ["--model", str(model), "--images", str(images)]
    if out is not None:
        args += ["--out", str(out)]
    if threads is not None:
        args += ["--threads", str(threads)]
    return [*args, *extra]
