"""What goes to the device: the runner script and the TensorFlow-free part of edgecnn."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path
from typing import Mapping, Union

import edgecnn

PACKAGE = Path(edgecnn.__file__).parent
RUNNER = Path(__file__).with_name("runner.py")
#: The modules the runtime imports; nothing else of edgecnn reaches the device.
RUNTIME_MODULES = ("__init__.py", "errors.py", "artifact.py", "fileio.py", "text.py")
RUNTIME_PACKAGES = ("runtime",)


def runtime_files() -> dict[str, Path]:
    """Archive name -> source file of the runner and edgecnn's runtime."""
    files = {"runner.py": RUNNER}
    for name in RUNTIME_MODULES:
        files[f"edgecnn/{name}"] = PACKAGE / name
    for package in RUNTIME_PACKAGES:
        for path in sorted((PACKAGE / package).glob("*.py")):
            files[f"edgecnn/{package}/{path.name}"] = path
    return files


def write_payload(dest: Path) -> Path:
    """Copy the runner and the runtime into `dest`; returns the runner's path."""
    for name, source in runtime_files().items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return dest / "runner.py"


def payload_tar(extra: Mapping[str, Union[Path, bytes]]) -> bytes:
    """A tar of the runner, the runtime and `extra` files (archive name -> path or bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, source in {**runtime_files(), **extra}.items():
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
