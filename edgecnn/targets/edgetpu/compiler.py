"""Run ``edgetpu_compiler`` when it is installed, and read its log into an :class:`EdgeTpuReport`.

edgecnn never installs the compiler. It runs only on x86-64 Debian/Ubuntu;
:data:`INSTALL_HINT` says how to get it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import EdgecnnError
from .report import EdgeTpuReport, OpStatus
from .table import COMPILER, MAPPED, ON_CHIP_CACHE_BYTES

INSTALL_HINT = (
    "edgetpu_compiler is not installed (it runs on x86-64 Debian/Ubuntu only): add Coral's apt repository "
    "(https://coral.ai/docs/edgetpu/compiler/#download) and `sudo apt-get install edgetpu-compiler`, or use "
    "Coral's Colab notebook; then run `edgetpu_compiler -s {model}`"
)
#: Seconds before a compile is abandoned (the compiler's own timer defaults to 180 s).
TIMEOUT_S = 300


class CompilerError(EdgecnnError):
    """edgetpu_compiler failed or could not be run."""


def find_compiler() -> Optional[str]:
    """The path of ``edgetpu_compiler`` on PATH, or None."""
    return shutil.which(COMPILER)


@dataclass(frozen=True)
class Compiled:
    model: Path  # <stem>_edgetpu.tflite
    log: Optional[Path]  # <stem>_edgetpu.log, the compiler's operation log
    report: EdgeTpuReport
    output: str  # what the compiler printed


def compile_model(
    model: str | os.PathLike, out_dir: str | os.PathLike | None = None, compiler: Optional[str] = None, timeout: float = TIMEOUT_S
) -> Compiled:
    """Compile `model` with edgetpu_compiler into `out_dir` (default: beside the model)."""
    model = Path(model)
    out = Path(out_dir) if out_dir else model.parent
    exe = compiler or find_compiler()
    if exe is None:
        raise CompilerError(INSTALL_HINT.format(model=model.name))
    args = [exe, "--show_operations", "--out_dir", str(out), str(model)]
    try:
        proc = subprocess.run(args, check=True, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CompilerError(f"edgetpu_compiler did not finish compiling {model.name} within {timeout:.0f} s") from None
    except subprocess.CalledProcessError as exc:
        output = (exc.stdout or "") + (exc.stderr or "")
        errors = [
            line for line in output.splitlines() if line.startswith("ERROR") or "Invalid model" in line or "not quantized" in line
        ]
        detail = "; ".join(errors[:3]) or (output.strip().splitlines() or [f"exit status {exc.returncode}"])[-1]
        raise CompilerError(
            f"edgetpu_compiler could not compile {model.name}: {detail}; run `edgecnn check --target edgetpu {model}`"
        ) from None
    except OSError as exc:
        raise CompilerError(f"cannot run {exe} ({exc.strerror or exc})") from None
    output = proc.stdout + proc.stderr
    compiled, log = out / f"{model.stem}_edgetpu.tflite", out / f"{model.stem}_edgetpu.log"
    if not compiled.is_file():
        raise CompilerError(f"edgetpu_compiler exited without writing {compiled.name}; its output ends: {output.strip()[-300:]}")
    text = output + ("\n" + log.read_text(errors="replace") if log.is_file() else "")
    return Compiled(compiled, log if log.is_file() else None, parse_log(text, compiled.name), output)


_SIZE = re.compile(r"([\d.]+)\s*(B|KiB|MiB|GiB)\b")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
_ROW = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]*)\s+(?P<count>\d+)\s+(?P<status>\S.*?)\s*$")


def _bytes(text: str) -> Optional[int]:
    m = _SIZE.search(text)
    return int(round(float(m.group(1)) * _UNITS[m.group(2)])) if m else None


def _field(text: str, label: str) -> Optional[str]:
    m = re.search(rf"^{re.escape(label)}\s*:?\s*(.+?)\s*$", text, re.M)
    return m.group(1) if m else None


def parse_log(text: str, model: str = "model") -> EdgeTpuReport:
    """Parse the compiler's console output and/or its ``*_edgetpu.log`` operation log."""
    version = _field(text, "Edge TPU Compiler version")
    rows, seen = [], set()
    in_table = False
    for line in text.splitlines():
        if re.match(r"^Operator\s+Count\s+Status\s*$", line.strip()):
            in_table = True
            continue
        if in_table:
            m = _ROW.match(line.strip())
            if m:
                key = (m["op"], m["count"], m["status"])
                if key in seen:  # the table appears twice when the console output and the log are both given
                    continue
                seen.add(key)
                rows.append(OpStatus(m["op"], m["status"] == MAPPED, m["status"], count=int(m["count"])))
            elif line.strip() and not line.startswith(" "):
                in_table = False
    errors = tuple(
        line.strip()
        for line in text.splitlines()
        if line.startswith("ERROR") or line.strip() in ("Model not quantized", "Compilation failed!")
    )
    total = _int(_field(text, "Total number of operations"))
    on_tpu = _int(_field(text, "Number of operations that will run on Edge TPU"))
    subgraphs = _int(_field(text, "Number of Edge TPU subgraphs"))
    if not rows and total is not None:
        partial = "not all operations are supported" in text
        mapped = on_tpu if on_tpu is not None else (0 if partial else total)
        rows = [OpStatus("(all)", True, MAPPED, count=mapped)] if mapped else []
        if total > mapped:
            rows.append(OpStatus("(all)", False, "Runs on the CPU (see the operation log)", count=total - mapped))
    used = _bytes(_field(text, "On-chip memory used for caching model parameters") or "") or 0
    remaining = _bytes(_field(text, "On-chip memory remaining for caching model parameters") or "")
    streamed = _bytes(_field(text, "Off-chip memory used for streaming uncached model parameters") or "") or 0
    first = next((o for o in rows if not o.mapped), None)
    return EdgeTpuReport(
        model=model,
        source=f"edgetpu_compiler {version}" if version else "edgetpu_compiler",
        ops=tuple(rows),
        subgraphs=subgraphs if subgraphs is not None else (1 if any(o.mapped for o in rows) else 0),
        param_bytes=used + streamed,
        on_chip_cache_bytes=used + remaining if remaining is not None else ON_CHIP_CACHE_BYTES,
        off_chip_bytes=streamed,
        errors=errors,
        first_unmapped={"index": None, "op": first.op, "status": first.status, "reason": first.status} if first else None,
    )


def _int(text: Optional[str]) -> Optional[int]:
    return int(text) if text and text.strip().isdigit() else None
