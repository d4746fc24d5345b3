"""A Keras model as a plain list of layers, edited and rebuilt as a tf_keras model.

Keras 3 and tf_keras write a layer's config almost alike, but connect layers differently
(``inbound_nodes`` of ``__keras_tensor__`` arguments in Keras 3, ``[name, node, tensor,
kwargs]`` lists in tf_keras). Both are read into :class:`Node` lists here, so that the
import steps (dropping augmentation, taking normalisation out, reading the head) are
written once, and the result is built layer by layer in tf_keras with the weights copied.
Reading configs as JSON rather than walking a live model keeps Keras 3 internals out.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from ..errors import ModelFileError

#: Layers that only act in training: identity at inference, so an import drops them.
AUGMENTATION = frozenset(
    {
        "RandomFlip",
        "RandomRotation",
        "RandomZoom",
        "RandomTranslation",
        "RandomContrast",
        "RandomBrightness",
        "GaussianNoise",
        "GaussianDropout",
    }
)
MODELS = frozenset({"Functional", "Model", "Sequential"})


@dataclass
class Node:
    name: str
    class_name: str
    config: dict
    inputs: list[str]
    weights: list[np.ndarray] = field(default_factory=list)
    #: Keyword arguments of the call, tensors among them as ``{"__tensor__": name}``
    #: (a TFOpLambda's ``y`` in ``x * y`` or ``x + 3.0``).
    kwargs: dict = field(default_factory=dict)


@dataclass
class Graph:
    nodes: list[Node]  # in the order they run; the first is the InputLayer
    output: str

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs or name in _kwarg_tensors(n.kwargs)]

    def remove(self, node: Node) -> None:
        """Drop a one-input layer, connecting its consumers (and the output) to its input."""
        (source,) = node.inputs
        self.nodes.remove(node)
        for other in self.nodes:
            other.inputs = [source if i == node.name else i for i in other.inputs]
            other.kwargs = _renamed(other.kwargs, {node.name: source})
        if self.output == node.name:
            self.output = source


def _kwarg_tensors(value: Any) -> list[str]:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return [value["__tensor__"]]
        return [n for v in value.values() for n in _kwarg_tensors(v)]
    if isinstance(value, list):
        return [n for v in value for n in _kwarg_tensors(v)]
    return []


def _renamed(value: Any, names: dict) -> Any:
    """`value` with tensor references renamed (layers taken out, nested inputs)."""
    if isinstance(value, dict):
        if "__tensor__" in value:
            return {"__tensor__": names.get(value["__tensor__"], value["__tensor__"])}
        return {k: _renamed(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, names) for v in value]
    return value


def _as_refs(value: Any) -> Any:
    """Call kwargs with tensor entries (either Keras's encoding) as ``{"__tensor__": name}``."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return {"__tensor__": value["config"]["keras_history"][0]}
        return {k: _as_refs(v) for k, v in value.items()}
    if isinstance(value, list):
        if len(value) == 3 and isinstance(value[0], str) and all(isinstance(i, int) for i in value[1:]):
            return {"__tensor__": value[0]}
        return [_as_refs(v) for v in value]
    return value


def _resolved(value: Any, tensors: dict) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return tensors[value["__tensor__"]]
        return {k: _resolved(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, tensors) for v in value]
    return value


#: Call arguments that change what a layer computes at inference; an import runs inference.
_TRAINING_KWARGS = ("training", "mask")


def _tensor_sources(args: Any) -> list[str]:
    """Layer names feeding a node, from Keras 3 ``__keras_tensor__`` entries or tf_keras lists."""
    if isinstance(args, dict):
        if args.get("class_name") == "__keras_tensor__":
            return [args["config"]["keras_history"][0]]
        return [name for value in args.values() for name in _tensor_sources(value)]
    if isinstance(args, list):
        if len(args) in (3, 4) and isinstance(args[0], str) and all(isinstance(i, int) for i in args[1:3]):
            return [args[0]]
        return [name for value in args for name in _tensor_sources(value)]
    return []


def _layer_label(entry: dict) -> str:
    return f"layer {entry.get('config', {}).get('name', entry.get('name'))!r} ({entry.get('class_name')})"


def from_config(config: dict, weights_of: Callable[[list[str]], list[np.ndarray]], where: str) -> Graph:
    """The layers of a Functional or Sequential model config; `weights_of(path)` gives a layer's weights."""
    nodes, output = _model_nodes(config, [], None, weights_of, where)
    return Graph(nodes, output)


def _model_nodes(entry: dict, path: list[str], feed: Optional[str], weights_of, where: str) -> tuple[list[Node], str]:
    cls, config = entry["class_name"], entry["config"]
    if cls == "Sequential":
        return _sequential(config, path, feed, weights_of, where)
    return _functional(config, path, feed, weights_of, where)


def _input_node(config: dict, name: str) -> Node:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    return Node(name, "InputLayer", {"name": name, "batch_input_shape": list(shape), "dtype": "float32"}, [])


def _sequential(config: dict, path: list[str], feed, weights_of, where: str):
    layers = list(config["layers"])
    nodes: list[Node] = []
    if feed is None:
        if layers and layers[0]["class_name"] == "InputLayer":
            first = layers.pop(0)
            nodes.append(_input_node(first["config"], first["config"]["name"]))
        else:
            shape = (layers[0].get("build_config") or {}).get("input_shape") if layers else None
            shape = shape or (layers[0]["config"].get("batch_input_shape") if layers else None)
            if not shape:
                raise ModelFileError(f"{where}: the Sequential model does not say its input shape; give it an Input layer")
            nodes.append(_input_node({"batch_shape": shape}, "input"))
        feed = nodes[0].name
    elif layers and layers[0]["class_name"] == "InputLayer":
        layers.pop(0)
    for entry in layers:
        inner, feed = _entry_nodes(entry, path, [feed], weights_of, where)
        nodes += inner
    return nodes, feed


def _functional(config: dict, path: list[str], feed, weights_of, where: str):
    nodes: list[Node] = []
    renamed: dict[str, str] = {}
    inputs = [e for e in config["layers"] if e["class_name"] == "InputLayer"]
    if len(inputs) != 1:
        raise ModelFileError(f"{where}: the model has {len(inputs)} inputs; edgecnn takes image classifiers with one input")
    for entry in config["layers"]:
        name = entry["config"]["name"]
        if entry["class_name"] == "InputLayer":
            if feed is None:
                nodes.append(_input_node(entry["config"], name))
            else:
                renamed[name] = feed
            continue
        calls = entry.get("inbound_nodes") or []
        if len(calls) != 1:
            raise ModelFileError(
                f"{where}: {_layer_label(entry)} is called {len(calls)} times; edgecnn needs each layer used once"
            )
        call = calls[0]
        if isinstance(call, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
            sources, kwargs = _tensor_sources(call.get("args", [])), call.get("kwargs") or {}
        else:  # tf_keras: [[name, node, tensor, kwargs], ...], or one such entry unwrapped
            call = [call] if call and isinstance(call[0], str) else call
            sources = [e[0] for e in call]
            kwargs = (call[0][3] if len(call[0]) > 3 else None) or {}
        sources = [renamed.get(s, s) for s in sources]
        kwargs = _renamed(_as_refs({k: v for k, v in kwargs.items() if k not in _TRAINING_KWARGS}), renamed)
        inner, out = _entry_nodes(entry, path, sources, weights_of, where, kwargs)
        nodes += inner
        renamed[name] = out
    outputs = _tensor_sources(config["output_layers"])
    if len(outputs) != 1:
        raise ModelFileError(f"{where}: the model has {len(outputs)} outputs; edgecnn takes classifiers with one output")
    return nodes, renamed.get(outputs[0], outputs[0])


def _entry_nodes(entry: dict, path: list[str], sources: list[str], weights_of, where: str, kwargs=None):
    name = entry["config"]["name"]
    if entry["class_name"] in MODELS:  # a nested model is inlined, its layers named as they are
        if len(sources) != 1:
            raise ModelFileError(f"{where}: nested model {name!r} takes {len(sources)} inputs; edgecnn takes one")
        return _model_nodes(entry, [*path, name], sources[0], weights_of, where)
    node = Node(name, entry["class_name"], dict(entry["config"]), sources, list(weights_of([*path, name])), kwargs or {})
    return [node], name


# --- Keras 3 configs in tf_keras terms ---------------------------------------------------------

#: Config keys renamed between Keras 3 and tf_keras.
_RENAMED = {("LeakyReLU", "negative_slope"): "alpha"}
_ACTIVATIONS = {"silu": "swish"}


def to_tf_keras_config(node: Node, keras) -> dict:
    """A Keras 3 layer config as tf_keras's class takes it: dtype policies by name, initializers
    and regularizers left out (the weights are copied), keys tf_keras does not know dropped."""
    cls = getattr(keras.layers, node.class_name, None)
    if cls is None:
        raise ModelFileError(f"layer {node.name!r} ({node.class_name}) has no tf_keras counterpart edgecnn can build")
    accepted = set(inspect.signature(cls.__init__).parameters) | {"name", "trainable", "dtype"}
    config = {}
    for key, value in node.config.items():
        key = _RENAMED.get((node.class_name, key), key)
        if key == "dtype" and isinstance(value, dict):
            value = (value.get("config") or {}).get("name", "float32")
        if key.endswith(("_initializer", "_regularizer", "_constraint")) or key not in accepted:
            continue
        if key == "activation" and isinstance(value, str):
            value = _ACTIVATIONS.get(value, value)
        config[key] = value
    return config


def build(graph: Graph, keras, input_shape: Optional[tuple] = None):
    """The tf_keras Functional model of `graph`, with every node's weights set."""
    tensors: dict[str, Any] = {}
    model_input = None
    for node in graph.nodes:
        if node.class_name == "InputLayer":
            shape = tuple(input_shape or node.config["batch_input_shape"][1:])
            model_input = tensors[node.name] = keras.Input(shape, name=node.name)
            continue
        try:
            # deserialize knows every built-in class (TFOpLambda is not in keras.layers); the config passed the allow-list.
            layer = keras.layers.deserialize({"class_name": node.class_name, "config": node.config})
            args = [tensors[i] for i in node.inputs]
            tensors[node.name] = layer(args if len(args) > 1 else args[0], **_resolved(node.kwargs, tensors))
            if node.weights:
                layer.set_weights(node.weights)
        except ModelFileError:
            raise
        except Exception as exc:  # a config or weights Keras will not take: the file's, named
            from ..errors import first_line

            raise ModelFileError(
                f"cannot rebuild layer {node.name!r} ({node.class_name}) in tf_keras ({type(exc).__name__}: {first_line(exc, 160)})"
            ) from None
    return keras.Model(model_input, tensors[graph.output])
