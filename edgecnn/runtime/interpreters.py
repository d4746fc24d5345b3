"""Find a TFLite interpreter: ai-edge-litert, else tflite-runtime, else an installed TensorFlow.

The model bytes are parsed by :mod:`edgecnn.runtime.tflite_file` and checked by
:mod:`edgecnn.runtime.tflite_verify` before any interpreter sees them, so a foreign,
truncated or hostile file gives a ModelFileError rather than a crash inside the C++
runtime (which, with its default XNNPACK delegate, trusts every field of the file).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Optional, Union

from ..errors import ConfigError, MissingDependencyError, ModelFileError, first_line
from ..fileio import read_model_bytes
from .tflite_file import read_tflite
from .tflite_verify import verify_tflite

INSTALL_HINT = "pip install ai-edge-litert (or tflite-runtime on 32-bit ARM)"
#: More threads than any board or server has cores; beyond it a number is a typo (2**31 would abort).
MAX_THREADS = 256


def check_threads(num_threads) -> None:
    """None (the backend's default) or an int in 1..MAX_THREADS; ConfigError otherwise (True is not 1)."""
    if num_threads is None:
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or not 1 <= num_threads <= MAX_THREADS:
        raise ConfigError(f"num_threads must be an integer from 1 to {MAX_THREADS}, got {num_threads!r}")


#: (module holding Interpreter, distribution name for the version) in order of preference.
_BACKENDS = (
    ("ai_edge_litert.interpreter", "ai-edge-litert", "ai_edge_litert"),
    ("tflite_runtime.interpreter", "tflite-runtime", "tflite_runtime"),
)


def _version(dist: str, module) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return str(getattr(module, "__version__", "unknown"))


def _tensorflow_interpreter():
    # Only when TensorFlow is already installed; it is never a requirement of the runtime.
    try:
        if importlib.util.find_spec("tensorflow") is None:
            return None
    except (ImportError, ValueError):
        return None
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        tf = importlib.import_module("tensorflow")
        return tf.lite.Interpreter, f"tensorflow {tf.__version__}"
    except (ImportError, AttributeError):
        return None


def find_interpreter():
    """Return ``(Interpreter class, backend name)``; MissingDependencyError if none is installed."""
    for module_name, dist, top in _BACKENDS:
        try:
            if importlib.util.find_spec(top) is None:
                continue
            module = importlib.import_module(module_name)
            interpreter_class = module.Interpreter
        except (ImportError, ValueError, AttributeError):
            continue
        return interpreter_class, f"{top} {_version(dist, importlib.import_module(top))}"
    found = _tensorflow_interpreter()
    if found is None:
        raise MissingDependencyError(f"no TFLite interpreter found; {INSTALL_HINT}")
    return found


def load_delegate(library: str, options: Optional[dict] = None):
    """A TFLite delegate from a shared library, with the installed backend's ``load_delegate``.

    Raises the backend's own error (ValueError, OSError) when the library or its device fails.
    """
    for module_name, _, top in _BACKENDS:
        try:
            if importlib.util.find_spec(top) is None:
                continue
            loader = importlib.import_module(module_name).load_delegate
        except (ImportError, ValueError, AttributeError):
            continue
        return loader(library, options or {})
    if _tensorflow_interpreter() is None:
        raise MissingDependencyError(f"no TFLite interpreter found to load {library}; {INSTALL_HINT}")
    return importlib.import_module("tensorflow").lite.experimental.load_delegate(library, options or {})


def load_interpreter(
    model: Union[str, os.PathLike, bytes],
    num_threads: Optional[int] = None,
    delegates=None,
    keep_intermediates: bool = False,
):
    """Create an interpreter for a model file or model bytes; returns ``(interpreter, backend)``.

    `num_threads` None keeps the backend's default (one thread for ai-edge-litert).
    `keep_intermediates` keeps every tensor readable after ``invoke`` (no XNNPACK, which
    computes fused ops in its own buffers): what a per-layer comparison reads.
    Tensors are not allocated yet, so the caller may resize inputs first.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, label = bytes(model), None
    else:
        label = Path(model)
        data = read_model_bytes(label)
    check_threads(num_threads)
    verify_tflite(read_tflite(data, label), str(label or "model data"))
    interpreter_class, backend = find_interpreter()
    kwargs = {"model_content": data}
    if num_threads is not None:
        kwargs["num_threads"] = num_threads
    if delegates:
        kwargs["experimental_delegates"] = list(delegates)
    if keep_intermediates:
        resolver = importlib.import_module(interpreter_class.__module__).OpResolverType
        kwargs.update(
            experimental_preserve_all_tensors=True, experimental_op_resolver_type=resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
    try:
        interpreter = interpreter_class(**kwargs)
    except (ValueError, RuntimeError) as exc:
        first = first_line(exc)
        raise ModelFileError(
            f"{label or 'model data'} could not be loaded by {backend} ({first}); "
            "the model may use ops this runtime lacks: upgrade it or re-export the model"
        ) from None
    return interpreter, backend
