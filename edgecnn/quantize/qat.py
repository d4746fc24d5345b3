"""Quantization-aware training with tensorflow-model-optimization: a short fine-tune of the
float model with int8 rounding simulated, so its weights and activation ranges suit int8."""

from __future__ import annotations

#: Epochs of the fine-tune: one to three recover what PTQ loses on edgecnn's models.
DEFAULT_QAT_EPOCHS = 2


def quantization_aware(model, meta, options):
    raise NotImplementedError
