"""The one place TensorFlow is imported.

tensorflow-model-optimization needs Keras 2, so ``TF_USE_LEGACY_KERAS=1`` must be set
before TensorFlow is first imported; every TensorFlow user in edgecnn goes through
:func:`tensorflow` and :func:`keras` here, from inside the function that needs them.
"""

from __future__ import annotations

import contextlib
import os

from .errors import MissingDependencyError

_INSTALL_HINT = 'install the training toolchain: pip install "edgecnn[train]"'


def _prepare_environment() -> None:
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN stays on (TensorFlow's default on x86): the one op whose training it breaks is
    # trained in another form (train/onednn.py). TF_ENABLE_ONEDNN_OPTS=0 still turns it off.


def tensorflow():
    """Return the ``tensorflow`` module, configured for Keras 2."""
    _prepare_environment()
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise MissingDependencyError(f"TensorFlow is not installed ({exc}); {_INSTALL_HINT}") from None
    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def deterministic():
    """TensorFlow's deterministic ops for a training: with oneDNN on, the same training otherwise
    gave 93.3% and 94.4% in two runs; they cost nothing measurable here. Only around training:
    left on, tf2onnx's conversion of a model with Dropout fails to trace."""
    from tensorflow.python.framework import config

    was = config.is_op_determinism_enabled()
    config.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            config.disable_op_determinism()


def keras():
    """Return ``tf_keras`` (Keras 2), the Keras that tfmot and edgecnn's models use."""
    tensorflow()
    try:
        import tf_keras
    except ImportError as exc:
        raise MissingDependencyError(f"tf_keras is not installed ({exc}); {_INSTALL_HINT}") from None
    return tf_keras


def tfmot():
    tensorflow()
    try:
        import tensorflow_model_optimization
    except ImportError as exc:
        raise MissingDependencyError(f"tensorflow-model-optimization is not installed ({exc}); {_INSTALL_HINT}") from None
    return tensorflow_model_optimization
