"""Atomic file output: a reader never sees a half-written model."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Iterator, Mapping


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike, suffix: str | None = None) -> Iterator[list[Path]]:
    """Yield a temporary path beside each of `paths`; all move into place together if the block succeeds.

    The moves run with SIGINT and SIGTERM held back, so an interrupt never leaves one file of
    the group new and another old (a model beside the sidecar of the previous export). The
    files get the mode the umask implies, as ``open()`` would give them; mkstemp's is 0600.
    """
    targets = [Path(p) for p in paths]
    mode = 0o666 & ~_umask()
    temps: list[Path] = []
    try:
        for path in targets:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent)
            os.close(fd)
            temps.append(Path(tmp))
            os.chmod(tmp, mode)
        yield list(temps)
        with _signals_held():
            for tmp, path in zip(temps, targets):
                os.replace(tmp, path)
    finally:
        for tmp in temps:
            if tmp.exists():
                tmp.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it into place only if the block succeeds."""
    with atomic_paths(path, suffix=suffix) as (tmp,):
        yield tmp


#: Open stages: stage folder -> (the folder it moves into, files kept if the block fails).
_STAGES: dict[Path, tuple[Path, list[Path]]] = {}


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike) -> Iterator[Path]:
    """Yield a hidden folder inside `out` to write a whole set of files into; they move into `out` together.

    The set lands only if the block succeeds, with SIGINT and SIGTERM held back while it moves:
    an error, a full disk or an interrupt leaves `out` as it was, never this export's model
    beside the previous one's report, except for files marked with :func:`keep_on_failure`
    (the report that says why an export was refused). Stages nest (a run stages its export).
    """
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    _STAGES[stage] = (out, [])
    try:
        yield stage
        with _signals_held():
            for entry in sorted(stage.iterdir()):
                target = out / entry.name
                if entry.is_dir() and target.is_dir():
                    shutil.rmtree(target)
                os.replace(entry, target)
    except BaseException:
        for kept in _STAGES[stage][1]:
            if kept.is_file():
                os.replace(kept, out / kept.name)
                keep_on_failure(out / kept.name)
        raise
    finally:
        del _STAGES[stage]
        shutil.rmtree(stage, ignore_errors=True)
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a folder this call made and nothing landed in


def keep_on_failure(path: str | os.PathLike) -> Path:
    """Keep a staged file even if its stage fails; returns where it will be (for an error to name)."""
    path = Path(path)
    if path.parent in _STAGES:
        out, kept = _STAGES[path.parent]
        kept.append(path)
        return final_path(out / path.name)
    return path


def final_path(path: str | os.PathLike) -> Path:
    """Where a file written into an open stage lands once every stage around it has moved in."""
    path = Path(path)
    while path.parent in _STAGES:
        path = _STAGES[path.parent][0] / path.name
    return path


def unstaged(path: str | os.PathLike, stage: Path, out: Path) -> Path:
    """Where a file written into `stage` lives once :func:`staged_folder` has moved it into `out`."""
    path = Path(path)
    return out / path.relative_to(stage) if path.is_relative_to(stage) else path


@contextlib.contextmanager
def _signals_held():
    """Defer SIGINT and SIGTERM until the block ends.

    In the main thread Python's own handlers are swapped for a recorder: a signal mask would
    hold only this thread, and the kernel hands a process's signal to any thread that does
    not block it (TensorFlow's thread pools), whose delivery Python then raises here anyway.
    """
    held = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is threading.main_thread():
        received = []
        previous = {s: signal.signal(s, lambda number, _frame: received.append(number)) for s in held}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)
            for number in dict.fromkeys(received):
                signal.raise_signal(number)
        return
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(held))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)


def read_model_bytes(path: str | os.PathLike) -> bytes:
    """A model file's bytes, with a one-line ModelFileError when it cannot be read."""
    from .errors import ModelFileError

    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(f"{path} does not exist; check the model path") from None
    except OSError as exc:
        raise ModelFileError(f"cannot read {path} ({exc.strerror or exc}); check the path and its permissions") from None


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_files({path: data})[0]


def write_files(files: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write several files so that they appear together or not at all (see :func:`atomic_paths`)."""
    paths = [Path(p) for p in files]
    with atomic_paths(*paths) as temps:
        for tmp, data in zip(temps, files.values()):
            tmp.write_bytes(data)
    return paths


def json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode()


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_bytes(path, json_bytes(obj))


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
