"""BatchNorm folding: merge inference-mode BatchNormalization into the preceding linear layer.

Importing this package does not import TensorFlow; the functions in
:mod:`edgecnn.fold.rewrite` load it when called.
"""

from .math import BNParams, fold_conv, fold_dense, fold_depthwise, fold_separable
from .rewrite import (
    LINEAR_LAYERS,
    VERIFY_SAMPLES,
    FoldResult,
    count_batchnorm_after_linear,
    fold_batchnorm,
    fold_file,
    fold_model,
    load_keras_model,
    verify_fold,
)

__all__ = [
    "BNParams",
    "FoldResult",
    "LINEAR_LAYERS",
    "VERIFY_SAMPLES",
    "count_batchnorm_after_linear",
    "fold_batchnorm",
    "fold_conv",
    "fold_dense",
    "fold_depthwise",
    "fold_file",
    "fold_model",
    "fold_separable",
    "load_keras_model",
    "verify_fold",
]
