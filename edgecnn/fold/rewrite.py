"""Fold BatchNormalization layers into the linear layer in front of them.

The transform works on the model *config*, not on live layers: find each
``linear layer -> BatchNormalization`` pair that is safe to merge, drop the BN from
``config["layers"]``, point everything that read the BN at the linear layer, rebuild
with ``from_config`` and copy the weights across by layer name (folded ones from
:mod:`edgecnn.fold.math`). Rebuilding from config keeps layer names, the model name and
every unrelated layer exactly as they were.

A BN is merged only where the result is exact in inference mode: it must read a
Conv2D/DepthwiseConv2D/SeparableConv2D/Dense with no fused activation, that layer's
output must feed nothing else, and the BN must normalise the last (channel) axis.
Every other BN stays in place and is listed in ``FoldResult.kept`` with the reason.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import numpy as np

from ..artifact import ArtifactMetadata, sidecar_path
from ..errors import ConfigError, DataError, ModelFileError, VerificationError, first_line
from ..fileio import atomic_paths, json_bytes, sha256_file
from ..keras_file import load_keras_model
from .math import BNParams, fold_conv, fold_dense, fold_depthwise, fold_separable

__all__ = [
    "FoldResult",
    "LINEAR_LAYERS",
    "count_batchnorm_after_linear",
    "fold_batchnorm",
    "fold_file",
    "fold_model",
    "load_keras_model",
    "verify_fold",
]

# class_name -> (kernel attributes in from_config/set_weights order, fold function).
_LINEAR = {
    "Conv2D": (("kernel",), fold_conv),
    "Dense": (("kernel",), fold_dense),
    "DepthwiseConv2D": (("depthwise_kernel",), fold_depthwise),
    "SeparableConv2D": (("depthwise_kernel", "pointwise_kernel"), fold_separable),
}
LINEAR_LAYERS = tuple(_LINEAR)

_NONLINEAR = {"Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "ThresholdedReLU"}
_BATCHNORM = "BatchNormalization"
_MODEL_OUTPUT = "<model output>"


@dataclass(frozen=True)
class FoldResult:
    """What :func:`fold_batchnorm` produced.

    ``folded`` lists ``(linear_layer_name, bn_layer_name)`` pairs in the order they were
    merged; ``kept`` lists ``(bn_layer_name, reason)`` for every BN still in the model.
    ``relative_error`` is set by :func:`fold_model`/:func:`fold_file`, which verify.
    """

    model: Any
    folded: tuple[tuple[str, str], ...]
    kept: tuple[tuple[str, str], ...]
    params_before: int
    params_after: int
    relative_error: Optional[float] = None


# ---------------------------------------------------------------------------
# Config graph
# ---------------------------------------------------------------------------


def _plain(obj):
    """Deep copy of a config with tuples turned into lists (what a JSON round trip gives)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _is_ref(obj) -> bool:
    # A tensor reference in a functional config is [layer_name, node_index, tensor_index]
    # with the call kwargs appended in inbound_nodes. "_CONSTANT_VALUE" marks a literal.
    return (
        isinstance(obj, list)
        and len(obj) in (3, 4)
        and isinstance(obj[0], str)
        and obj[0] != "_CONSTANT_VALUE"
        and type(obj[1]) is int
        and type(obj[2]) is int
        and (len(obj) == 3 or isinstance(obj[3], dict))
    )


def _refs(obj) -> Iterator[list]:
    """Every tensor reference inside a node structure, including ones passed as kwargs."""
    if _is_ref(obj):
        yield obj
        if len(obj) == 4:
            yield from _refs(obj[3])
    elif isinstance(obj, list):
        for item in obj:
            yield from _refs(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _refs(item)


def _entry_name(entry: Mapping) -> str:
    return entry.get("name") or entry["config"]["name"]


class _Graph:
    """The layer graph of a functional or Sequential config, editable in place."""

    def __init__(self, config: dict, sequential: bool):
        self.config = config
        self.sequential = sequential

    @property
    def entries(self) -> list:
        return self.config["layers"]

    def names(self) -> list[str]:
        return [_entry_name(e) for e in self.entries]

    def entry(self, name: str) -> dict:
        for e in self.entries:
            if _entry_name(e) == name:
                return e
        raise KeyError(name)

    def class_of(self, name: str) -> str:
        return self.entry(name)["class_name"]

    def calls(self, name: str) -> list[list[str]]:
        """Producer layer names, one list per call of the layer."""
        if self.sequential:
            names = self.names()
            i = names.index(name)
            return [[names[i - 1]]] if i > 0 else []
        nodes = self.entry(name).get("inbound_nodes") or []
        return [[ref[0] for ref in _refs(node)] for node in nodes]

    def consumers(self, name: str) -> list[str]:
        """One item per use of `name`'s output (a layer reading it, or the model output)."""
        if self.sequential:
            names = self.names()
            i = names.index(name)
            return [names[i + 1]] if i + 1 < len(names) else [_MODEL_OUTPUT]
        out = []
        for e in self.entries:
            out.extend(_entry_name(e) for ref in _refs(e.get("inbound_nodes") or []) if ref[0] == name)
        out.extend(_MODEL_OUTPUT for ref in _refs(self.config.get("output_layers") or []) if ref[0] == name)
        return out

    def bypass(self, bn: str, producer: str) -> None:
        """Remove `bn` and make everything that read it read `producer` instead."""
        self.config["layers"] = [e for e in self.entries if _entry_name(e) != bn]
        if self.sequential:
            return
        for e in self.entries:
            self._redirect(e.get("inbound_nodes") or [], bn, producer)
        self._redirect(self.config.get("output_layers") or [], bn, producer)

    @staticmethod
    def _redirect(structure, bn: str, producer: str) -> None:
        # Both layers are called exactly once in this model, so each has node index 0 and
        # a single output tensor; the consumer's own call kwargs (ref[3]) are kept.
        for ref in _refs(structure):
            if ref[0] == bn:
                ref[0], ref[1], ref[2] = producer, 0, 0


def _model_graph(model, keras) -> _Graph:
    if isinstance(model, keras.Sequential):
        if not model.built:
            raise ConfigError(
                f"Sequential model '{model.name}' is not built; give its first layer an input shape "
                "or call model.build(input_shape) before folding"
            )
        sequential = True
    elif isinstance(model, keras.Model) and getattr(model, "_is_graph_network", False):
        sequential = False
    else:
        raise ConfigError(
            f"cannot fold {type(model).__name__} '{getattr(model, 'name', '?')}': only functional and "
            "Sequential Keras models have a layer graph to rewrite; rebuild it with the functional API"
        )
    config = _plain(model.get_config())
    if "layers" not in config:
        raise ConfigError(f"model '{model.name}' has no layer list in its config; cannot fold it")
    return _Graph(config, sequential)


def _check_nested(model, keras) -> None:
    # A nested model is copied as one opaque layer: fine for BN-free blocks such as an
    # augmentation Sequential, wrong for a backbone whose BNs would silently stay unfolded.
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            inner = [m.name for m in layer.submodules if isinstance(m, keras.layers.BatchNormalization)]
            if inner:
                raise ConfigError(
                    f"model '{model.name}' contains the nested model '{layer.name}' with BatchNormalization "
                    f"layers ({', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''}); folding does not "
                    "reach into nested models, so flatten it into one functional model first"
                )


# ---------------------------------------------------------------------------
# Pattern
# ---------------------------------------------------------------------------


def _bn_rank(layer) -> Optional[int]:
    spec = getattr(layer, "input_spec", None)
    if spec is not None and getattr(spec, "ndim", None) is not None:
        return int(spec.ndim)
    try:
        return len(layer.get_input_shape_at(0))
    except Exception:
        return None


def _is_exact_linear(graph: _Graph, name: str, model, keras) -> bool:
    cls = graph.class_of(name)
    if cls not in _LINEAR:
        return False
    # Exact type: a subclass may override call() and no longer be the plain linear map.
    return type(model.get_layer(name)) is getattr(keras.layers, cls)


def _why_not(graph: _Graph, bn: str, model, keras) -> Optional[str]:
    """None if `bn` can be folded into its producer, else the reason it cannot."""
    calls = graph.calls(bn)
    if len(calls) != 1:
        return f"the BatchNormalization is shared (called {len(calls)} times in this model)"
    if len(calls[0]) != 1:
        return f"the BatchNormalization has {len(calls[0])} inputs"
    layer = model.get_layer(bn)
    rank = _bn_rank(layer)
    axis = [int(layer.axis)] if isinstance(layer.axis, int) else [int(a) for a in layer.axis]
    if rank is None or len(axis) != 1 or axis[0] not in (-1, rank - 1):
        return f"it normalises axis {axis} of a rank-{rank} tensor, not the last (channel) axis"

    producer = calls[0][0]
    cls = graph.class_of(producer)
    if cls in _NONLINEAR:
        return f"follows {cls} '{producer}': folding into the next conv is not exact at zero-padded borders"
    if cls not in _LINEAR:
        return f"follows {cls} '{producer}', which is not one of {', '.join(LINEAR_LAYERS)}"
    if not _is_exact_linear(graph, producer, model, keras):
        return f"follows '{producer}', a subclass of {cls} whose call may not be the plain linear map"
    pconf = graph.entry(producer)["config"]
    activation = pconf.get("activation", "linear")
    if activation not in ("linear", None):
        return (
            f"follows {cls} '{producer}' with fused activation {activation!r}: the BatchNormalization "
            "sees the activation's output, so it cannot be merged into the kernel"
        )
    if pconf.get("data_format", "channels_last") != "channels_last":
        return f"follows {cls} '{producer}' with data_format {pconf['data_format']!r}; only channels_last is folded"
    producer_calls = len(graph.calls(producer))
    if producer_calls != 1 and not (graph.sequential and producer_calls == 0):
        return f"{cls} '{producer}' is shared (called {producer_calls} times); folding would change its other uses"
    consumers = graph.consumers(producer)
    others = sorted({c for c in consumers if c != bn})
    if others or consumers.count(bn) != 1:
        uses = [f"'{o}'" for o in others if o != _MODEL_OUTPUT] + (["the model output"] if _MODEL_OUTPUT in others else [])
        return (
            f"the output of {cls} '{producer}' is also used by {', '.join(uses) or 'the BatchNormalization again'}; "
            "folding would change what that use receives"
        )
    return None


# ---------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------


def _bn_params(layer) -> BNParams:
    def value(var):
        return None if var is None else np.asarray(var.numpy())

    return BNParams(
        gamma=value(layer.gamma) if layer.scale else None,
        beta=value(layer.beta) if layer.center else None,
        moving_mean=value(layer.moving_mean),
        moving_variance=value(layer.moving_variance),
        epsilon=float(layer.epsilon),
    )


def _linear_weights(layer, cls: str) -> dict:
    attrs, _ = _LINEAR[cls]
    weights = {a: np.asarray(getattr(layer, a).numpy()) for a in attrs}
    weights["bias"] = np.asarray(layer.bias.numpy()) if layer.use_bias else None
    return weights


def _fold_weights(weights: dict, cls: str, bn: BNParams) -> dict:
    attrs, fold = _LINEAR[cls]
    out = fold(*(weights[a] for a in attrs), weights["bias"], bn)
    return dict(zip(attrs + ("bias",), out))


def _assign(layer, weights: dict) -> None:
    for attr, value in weights.items():
        var = getattr(layer, attr)
        var.assign(np.asarray(value, dtype=var.dtype.as_numpy_dtype))


# ---------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------


def fold_batchnorm(model, custom_objects: Optional[Mapping[str, Any]] = None) -> FoldResult:
    """Return a new model with every safely foldable BatchNormalization merged away.

    The input model is not modified. Nothing is verified here: use :func:`fold_model`.
    """
    from edgecnn.tf import keras as _keras

    keras = _keras()
    graph = _model_graph(model, keras)
    _check_nested(model, keras)

    folded: list[tuple[str, str]] = []
    new_weights: dict[str, dict] = {}
    # Repeat until nothing changes so that a chain conv -> BN -> BN folds completely.
    changed = True
    while changed:
        changed = False
        for name in graph.names():
            if graph.class_of(name) != _BATCHNORM or _why_not(graph, name, model, keras) is not None:
                continue
            producer = graph.calls(name)[0][0]
            cls = graph.class_of(producer)
            current = new_weights.get(producer) or _linear_weights(model.get_layer(producer), cls)
            new_weights[producer] = _fold_weights(current, cls, _bn_params(model.get_layer(name)))
            graph.entry(producer)["config"]["use_bias"] = True
            graph.bypass(name, producer)
            folded.append((producer, name))
            changed = True

    kept = tuple(
        (name, _why_not(graph, name, model, keras) or "not folded")
        for name in graph.names()
        if graph.class_of(name) == _BATCHNORM
    )

    cls = keras.Sequential if graph.sequential else keras.Model
    with keras.utils.custom_object_scope(dict(custom_objects or {})):
        try:
            new_model = cls.from_config(graph.config, custom_objects=custom_objects)
        except Exception as exc:
            raise ConfigError(
                f"could not rebuild model '{model.name}' from its config ({first_line(exc)}); "
                "pass custom_objects for any custom layers"
            ) from exc

    old_names = {layer.name for layer in model.layers} - {bn for _, bn in folded}
    new_names = {layer.name for layer in new_model.layers}
    if old_names != new_names:
        raise VerificationError(
            f"the rebuilt model's layers differ from the original: "
            f"missing {sorted(old_names - new_names)}, extra {sorted(new_names - old_names)}"
        )
    for layer in new_model.layers:
        if layer.name in new_weights:
            _assign(layer, new_weights[layer.name])
        else:
            values = model.get_layer(layer.name).get_weights()
            if values:
                layer.set_weights(values)

    return FoldResult(
        model=new_model,
        folded=tuple(folded),
        kept=kept,
        params_before=int(model.count_params()),
        params_after=int(new_model.count_params()),
    )


def count_batchnorm_after_linear(model) -> int:
    """How many BatchNormalization layers read a linear layer with no fused activation.

    Counts inside nested models too. Zero after a complete fold.
    """
    from edgecnn.tf import keras as _keras

    keras = _keras()
    graph = _model_graph(model, keras)
    count = 0
    for name in graph.names():
        if graph.class_of(name) != _BATCHNORM:
            continue
        for producers in graph.calls(name):
            if (
                len(producers) == 1
                and graph.class_of(producers[0]) in _LINEAR
                and graph.entry(producers[0])["config"].get("activation", "linear") in ("linear", None)
            ):
                count += 1
                break
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            count += count_batchnorm_after_linear(layer)
    return count


def _outputs(model, inputs) -> list[np.ndarray]:
    from edgecnn.tf import tensorflow as _tensorflow

    tf = _tensorflow()
    out = model(inputs, training=False)
    return [np.asarray(t, dtype=np.float64) for t in tf.nest.flatten(out)]


def verify_fold(original, folded, inputs, rtol: float = 1e-4, what: str = "folded") -> float:
    """Max |folded - original| over the original's output range, in inference mode.

    Raises VerificationError above `rtol`; `what` names the rewrite in its messages. A constant
    output (range 0) is compared against ``max(|output|, 1)`` instead, so the check still means something.
    """
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and rtol > 0):
        raise ConfigError(f"rtol must be a positive number, got {rtol!r}")
    expected = _outputs(original, inputs)
    actual = _outputs(folded, inputs)
    if len(expected) != len(actual):
        raise VerificationError(f"the {what} model has {len(actual)} outputs, the original {len(expected)}")
    worst = 0.0
    for i, (ref, got) in enumerate(zip(expected, actual)):
        if ref.size == 0:
            raise DataError("the sample inputs are empty: verification needs at least one real input")
        if ref.shape != got.shape:
            raise VerificationError(f"output {i}: the {what} model gives shape {got.shape}, the original {ref.shape}")
        if not np.all(np.isfinite(ref)):
            raise VerificationError(f"output {i}: the original model gives non-finite values on the sample inputs")
        if not np.all(np.isfinite(got)):
            raise VerificationError(f"output {i}: the {what} model gives non-finite values on the sample inputs")
        diff = float(np.max(np.abs(got - ref)))
        span = float(np.max(ref) - np.min(ref))
        scale = span if span > 0 else max(float(np.max(np.abs(ref))), 1.0)
        rel = diff / scale
        if rel > rtol:
            raise VerificationError(
                f"{what} model does not match the original: output {i} max |difference| {diff:.3g} is "
                f"{rel:.3g} of the output range {scale:.3g} (allowed {rtol:g})"
            )
        worst = max(worst, rel)
    return worst


def fold_model(model, sample_inputs, rtol: float = 1e-4, custom_objects: Optional[Mapping[str, Any]] = None) -> FoldResult:
    """Fold and verify on `sample_inputs`; raises VerificationError if the outputs differ."""
    result = fold_batchnorm(model, custom_objects=custom_objects)
    error = verify_fold(model, result.model, sample_inputs, rtol=rtol)
    return replace(result, relative_error=error)


#: Images a fold is verified on: enough to exercise every channel's range.
VERIFY_SAMPLES = 64


def fold_file(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    sample_inputs,
    meta: Optional[ArtifactMetadata] = None,
    rtol: float = 1e-4,
    custom_objects: Optional[Mapping[str, Any]] = None,
    model=None,
    trust_model: bool = False,
) -> FoldResult:
    """Fold the model in `src`, verify, and write `dst` (a ``.keras`` file) atomically.

    The saved file is loaded back and verified again before it replaces `dst`, so a
    failure at any step leaves `dst` untouched. With `meta`, `dst` gets it as its sidecar,
    naming `src` as its parent. `model`: `src` already loaded. `trust_model`: load models
    whose config names code (see :func:`edgecnn.keras_file.load_keras_model`).
    """
    dst = Path(dst)
    if dst.suffix != ".keras":
        raise ConfigError(f"the folded model must be saved as a .keras file, got {dst.name}")
    original = model if model is not None else load_keras_model(src, custom_objects=custom_objects, trust_model=trust_model)
    result = fold_model(original, sample_inputs, rtol=rtol, custom_objects=custom_objects)
    # Keras chooses the file format from the suffix: the temporary file keeps .keras (atomic_paths does).
    paths = (dst, sidecar_path(dst)) if meta is not None else (dst,)
    with atomic_paths(*paths) as temps:
        result.model.save(str(temps[0]))
        try:
            reloaded = load_keras_model(temps[0], custom_objects=custom_objects, trust_model=trust_model)
        except ModelFileError as exc:
            raise VerificationError(f"the folded model does not load back after saving: {exc}") from exc
        verify_fold(original, reloaded, sample_inputs, rtol=rtol)
        if meta is not None:
            temps[1].write_bytes(json_bytes(meta.replace(parent_sha256=sha256_file(src)).to_dict()))
    return result
