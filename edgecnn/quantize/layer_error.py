"""Where an int8 model goes wrong: every quantized tensor against the float model's, layer by layer.

Both files run on the same images with every intermediate tensor kept; each integer tensor
of the int8 model is dequantized and compared with the float model's tensor of the same name
(TFLite keeps the converter's names in both files; ONNX Runtime's quantizer names a tensor
``T_quantized`` or ``T_QuantizeLinear_Output`` with ``T_scale`` and ``T_zero_point``).
Runs on the runtimes alone (ai-edge-litert, onnxruntime and onnx): no TensorFlow. Written here
because LiteRT's QuantizationDebugger needs TensorFlow and the converter that made the file, and
ONNX Runtime's qdq_loss_debug reads QDQ graphs only; this compares any two files of one format.

Two numbers per tensor:

- ``sqnr_db``: signal-to-quantization-noise ratio of the int8 tensor against the float one.
  It includes the error of every layer before, so it falls along the graph.
- ``channel_sqnr_db``: the float tensor rounded onto this tensor's own int8 grid (its scale
  and zero point), SQNR per channel, the median channel. It isolates what this tensor's one
  scale does to its channels: when one channel's range is orders of magnitude wider than
  the others', they all round to a few levels, and this falls to a few dB. Whole-tensor SQNR
  misses that, since the wide channel carries nearly all the signal.

``sqnr_db`` and ``channel_sqnr_db`` are capped at :data:`MAX_DB` (an exact match has none).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..artifact import Quantization
from ..errors import ConfigError
from ..runtime.preprocess import dequantize

#: What "no measurable error" reads as; keeps JSON free of infinities.
MAX_DB = 120.0
#: Below this median-channel SQNR a tensor's scale leaves most of its channels a few levels:
#: healthy tensors of edgecnn's models measured 26-40 dB, the rescaled ones of the issue 0-3 dB.
DAMAGED_CHANNEL_DB = 12.0
#: Images a comparison runs by default: the statistics settle well before this.
DEFAULT_SAMPLES = 64

_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


@dataclass(frozen=True)
class LayerError:
    #: Position of the op in the float graph (0 = first).
    position: int
    layer: str
    op: str
    tensor: str
    #: The float model's tensor the op writes (what a converter is told to keep float).
    source: str
    sqnr_db: float
    #: Root-mean-square error relative to the float tensor's range (max - min).
    relative_rmse: float
    channel_sqnr_db: float
    channels: int
    dtype: str
    scale: float
    zero_point: int
    float_min: float
    float_max: float

    @property
    def grid_range(self) -> tuple[float, float]:
        """The real values the tensor's integers can hold."""
        lo, hi = _INT_RANGES[self.dtype]
        return (lo - self.zero_point) * self.scale, (hi - self.zero_point) * self.scale

    @property
    def damaged(self) -> bool:
        return self.channel_sqnr_db < DAMAGED_CHANNEL_DB

    def to_dict(self) -> dict:
        grid = self.grid_range
        return {**asdict(self), "grid_min": grid[0], "grid_max": grid[1], "damaged": self.damaged}


def _db(signal: np.ndarray, noise: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(signal / noise)
    return np.where(noise > 0, np.minimum(db, MAX_DB), MAX_DB)


class _Stats:
    """Running sums for one tensor: nothing but a few numbers per channel is kept per image."""

    def __init__(self, dtype: str, scale: float, zero_point: int, channel_axis: int):
        self.dtype, self.scale, self.zero_point, self.axis = dtype, scale, zero_point, channel_axis
        self.count, self.signal, self.noise = 0, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf
        self.channel_signal = self.channel_noise = None

    def add(self, reference: np.ndarray, dequantized: np.ndarray) -> None:
        f = reference.astype(np.float64)
        self.count += f.size
        self.signal += float(np.square(f).sum())
        self.noise += float(np.square(dequantized.astype(np.float64) - f).sum())
        self.low, self.high = min(self.low, float(f.min())), max(self.high, float(f.max()))
        lo, hi = _INT_RANGES[self.dtype]
        grid = (np.clip(np.round(f / self.scale) + self.zero_point, lo, hi) - self.zero_point) * self.scale
        axis = self.axis % f.ndim if f.ndim > 1 else 0
        per_channel = np.moveaxis(f, axis, -1).reshape(-1, f.shape[axis])
        grid = np.moveaxis(grid, axis, -1).reshape(-1, f.shape[axis])
        signal, noise = np.square(per_channel).sum(0), np.square(grid - per_channel).sum(0)
        if self.channel_signal is None:
            self.channel_signal, self.channel_noise = signal, noise
        else:
            self.channel_signal, self.channel_noise = self.channel_signal + signal, self.channel_noise + noise

    def result(self, position: int, layer: str, op: str, tensor: str, source: str) -> LayerError:
        live = self.channel_signal > 0  # a channel ReLU keeps at zero has no signal to lose
        channel_db = float(np.median(_db(self.channel_signal[live], self.channel_noise[live]))) if live.any() else MAX_DB
        spread = self.high - self.low
        rmse = math.sqrt(self.noise / max(self.count, 1))
        return LayerError(
            position=position,
            layer=layer,
            op=op,
            tensor=tensor,
            source=source,
            sqnr_db=float(_db(np.float64(self.signal), np.float64(self.noise))),
            relative_rmse=rmse / spread if spread > 0 else 0.0,
            channel_sqnr_db=channel_db,
            channels=int(len(self.channel_signal)),
            dtype=self.dtype,
            scale=self.scale,
            zero_point=self.zero_point,
            float_min=self.low,
            float_max=self.high,
        )


@dataclass(frozen=True)
class _Tensor:
    """One quantized tensor of the int8 model, where to read it and its float counterpart."""

    position: int
    layer: str
    op: str
    name: str
    dtype: str
    scale: float
    zero_point: int
    #: The float model's tensor of the same op (None: the name itself).
    source: str | None = None


# A tracer runs one image and returns {tensor name: array} for the names it was built to read.
Tracer = Callable[[np.ndarray], dict]


def _layer_name(tensor: str) -> str:
    """The Keras layer a converter's tensor name comes from: ``model/block1_sepconv1/...`` -> block1_sepconv1.

    A fused op's name joins its parts with ';'; an activation's part names the next layer in
    edgecnn's models (``block2_sepconv2_act/Relu``), so the first other part is taken.
    """
    parts = [p for p in tensor.split(";") if p]
    main = next((p for p in parts if not p.rsplit("/", 1)[-1].startswith(("Relu", "Relu6"))), parts[0] if parts else tensor)
    # An RGB input wraps the model in an outer one of the same name: "net/net/block1_sepconv1/...".
    segments = [p for i, p in enumerate(main.split("/")) if i == 0 or p != main.split("/")[i - 1]]
    return segments[1] if len(segments) > 2 else segments[0].split(":")[0]


def _tflite_side(path: Path, want_integer: bool):
    from .. import runtime
    from ..runtime.interpreters import load_interpreter
    from ..runtime.tflite_file import load_tflite

    model = runtime.load(path)
    parsed = load_tflite(path)
    interpreter, _ = load_interpreter(parsed.data, keep_intermediates=True)
    interpreter.allocate_tensors()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    tensors = {}
    graph_outputs = set(parsed.subgraphs[0].outputs)
    # The tensor a QUANTIZE op re-scales into the output type: the same values on another grid.
    requantized = {
        op.outputs[0]: op.inputs[0]
        for code, op in parsed.operators(0)
        if code.name == "QUANTIZE" and op.outputs[0] in graph_outputs
    }
    graph_outputs |= set(requantized.values())
    for position, (code, op) in enumerate(parsed.operators(0)):
        for index in op.outputs:
            d = details.get(index)
            if d is None:
                continue
            dtype = np.dtype(d["dtype"]).name
            scale, zero_point = d["quantization"]
            if want_integer and (dtype not in _INT_RANGES or not scale):
                continue
            layer = "output" if index in graph_outputs else _layer_name(d["name"])
            tensors[d["name"]] = (index, _Tensor(position, layer, code.name, d["name"], dtype, scale, zero_point))
    inp = interpreter.get_input_details()[0]

    def trace(pixels: np.ndarray, names) -> dict:
        x = runtime.preprocess.prepare_input(pixels[None], model.metadata, model.input_dtype, model.input_quantization)
        interpreter.set_tensor(inp["index"], x)
        interpreter.invoke()
        return {name: interpreter.get_tensor(tensors[name][0]) for name in names}

    names = {index: d["name"] for index, d in details.items()}
    aliases = {names[inner]: names[outer] for outer, inner in requantized.items()}
    return model, {name: t for name, (_, t) in tensors.items()}, aliases, trace


def _tflite_pairs(int8_path: Path, float_path: Path):
    int8_model, quantized, aliases, int8_trace = _tflite_side(int8_path, want_integer=True)
    float_model, floats, _, float_trace = _tflite_side(float_path, want_integer=False)
    pairs = []
    for name, t in quantized.items():
        # The int8 model's last computing op writes under a name of its own before the output QUANTIZE.
        reference = name if name in floats else aliases.get(name)
        if reference in floats and floats[reference].dtype == "float32":
            pairs.append((t, reference))
    return int8_model, float_model, pairs, int8_trace, float_trace, -1


def _onnx_side(path: Path, outputs: list[str]):
    """A session on the verified file with `outputs` added as graph outputs."""
    import onnx

    from .. import runtime
    from ..runtime.onnx import create_session, read_verified

    model = runtime.load(path)
    proto = onnx.load_model_from_string(read_verified(path))
    existing = {o.name for o in proto.graph.output}
    proto.graph.output.extend(onnx.ValueInfoProto(name=name) for name in outputs if name not in existing)
    session = create_session(proto.SerializeToString(), path)
    input_name = session.get_inputs()[0].name

    def trace(pixels: np.ndarray, names) -> dict:
        x = runtime.preprocess.prepare_input(pixels[None], model.metadata, model.input_dtype, model.input_quantization)
        return dict(zip(names, session.run(list(names), {input_name: x})))

    return model, proto, trace


def _onnx_pairs(int8_path: Path, float_path: Path):
    import onnx
    from onnx import numpy_helper

    from ..runtime.onnx import read_verified

    float_graph = onnx.load_model_from_string(read_verified(float_path)).graph
    int8_graph = onnx.load_model_from_string(read_verified(int8_path)).graph
    constants = {t.name: t for t in int8_graph.initializer}
    produced = {out: node for node in int8_graph.node for out in node.output}
    float_producers = {out: node for node in float_graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in float_graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    tensors, references = [], []
    inputs = {i.name for i in float_graph.input}
    for position, node in enumerate(float_graph.node):
        for name in node.output:
            integer = next((c for c in (f"{name}_quantized", f"{name}_QuantizeLinear_Output") if c in produced), None)
            scale, zero_point = constants.get(f"{name}_scale"), constants.get(f"{name}_zero_point")
            if integer is None or scale is None or zero_point is None:
                continue
            zp = numpy_helper.to_array(zero_point)
            if zp.size != 1:
                continue
            # The quantizer fuses a Relu into the op before it and keeps that op's output name.
            reference = name
            after = consumers.get(name, [])
            if len(after) == 1 and after[0].op_type == "Relu" and not any(o + "_quantized" in produced for o in after[0].output):
                reference = after[0].output[0]
            layer = "input" if any(i in inputs for i in node.input) else _layer_name(name)
            if node.op_type == "Relu" and node.input[0] in float_producers:  # QDQ quantizes after a fused ReLU
                layer = _layer_name(node.input[0])
            source = produced[integer]
            if source.op_type == "QuantizeLinear" and source.input[0] in produced:
                source = produced[source.input[0]]  # QDQ: the op whose output is quantized
            tensors.append(
                _Tensor(
                    position,
                    layer,
                    source.op_type,
                    integer,
                    zp.dtype.name,
                    float(numpy_helper.to_array(scale).reshape(-1)[0]),
                    int(zp.reshape(-1)[0]),
                    name,
                )
            )
            references.append(reference)
    int8_model, _, int8_trace = _onnx_side(int8_path, [t.name for t in tensors])
    float_model, _, float_trace = _onnx_side(float_path, references)
    return int8_model, float_model, list(zip(tensors, references)), int8_trace, float_trace, 1


_PAIRS = {"tflite": _tflite_pairs, "onnx": _onnx_pairs}


def _format(path: Path) -> str:
    return {".tflite": "tflite", ".onnx": "onnx"}.get(path.suffix, "")


def check_formats(int8_path: Path, float_path: Path) -> str:
    """The format both files have ("tflite" or "onnx"); ConfigError when they differ."""
    kind = _format(Path(int8_path))
    if not kind or _format(Path(float_path)) != kind:
        raise ConfigError(
            f"compare an int8 model with the float model of the same format: got {Path(int8_path).name} and "
            f"{Path(float_path).name} (give two .tflite files or two .onnx files)"
        )
    return kind


def layer_errors(int8_path, float_path, images: np.ndarray, samples: int = DEFAULT_SAMPLES) -> list[LayerError]:
    """Every quantized tensor of `int8_path` against `float_path` on uint8 `images`, worst first.

    Both files must be the same format (.tflite or .onnx) and come from the same float model.
    """
    int8_path, float_path = Path(int8_path), Path(float_path)
    kind = check_formats(int8_path, float_path)
    if len(images) == 0:
        raise ConfigError("no images to compare the models on; give a data set with test images")
    int8_model, float_model, pairs, int8_trace, float_trace, axis = _PAIRS[kind](int8_path, float_path)
    if tuple(int8_model.input_shape) != tuple(float_model.input_shape):
        raise ConfigError(
            f"{int8_path.name} takes {int8_model.input_shape} images and {float_path.name} takes {float_model.input_shape}; "
            "compare an int8 model with the float model it was quantized from"
        )
    if not pairs:
        raise ConfigError(
            f"no quantized tensor of {int8_path.name} matches a tensor of {float_path.name}; "
            "give the float file exported beside the int8 one"
        )
    stats = [_Stats(t.dtype, t.scale, t.zero_point, axis) for t, _ in pairs]
    int8_names, float_names = [t.name for t, _ in pairs], [ref for _, ref in pairs]
    for pixels in _pick(images, samples):
        quantized, reference = int8_trace(pixels, int8_names), float_trace(pixels, float_names)
        for s, (t, ref) in zip(stats, pairs):
            q, f = quantized[t.name], reference[ref]
            if q.shape != f.shape:
                continue
            s.add(f, dequantize(q, Quantization(t.dtype, t.scale, t.zero_point)))
    results = [s.result(t.position, t.layer, t.op, t.name, t.source or ref) for s, (t, ref) in zip(stats, pairs) if s.count]
    return sorted(results, key=lambda r: (r.channel_sqnr_db >= DAMAGED_CHANNEL_DB, r.sqnr_db))


def spread(total: int, count: int) -> np.ndarray:
    """`count` indices (at most `total`) spread evenly over 0..total-1: a split may be sorted by class."""
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int)) if total else np.zeros(0, int)


def _pick(images: np.ndarray, samples: int) -> Iterator[np.ndarray]:
    for i in spread(len(images), samples):
        yield images[i]


def damaged_layers(errors: list[LayerError]) -> list[str]:
    """Names of the layers whose tensors int8 damages, in graph order, each once."""
    return list(dict.fromkeys(e.layer for e in sorted(errors, key=lambda e: e.position) if e.damaged))


def markdown_table(errors: list[LayerError]) -> str:
    lines = [
        "| layer | op | SQNR dB | channel SQNR dB | RMSE / range | scale | zero point | float range | int8 range |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for e in errors:
        lo, hi = e.grid_range
        mark = " **damaged**" if e.damaged else ""
        lines.append(
            f"| {e.layer}{mark} | {e.op} | {e.sqnr_db:.1f} | {e.channel_sqnr_db:.1f} | {e.relative_rmse:.4f} | "
            f"{e.scale:.3g} | {e.zero_point} | [{e.float_min:.3g}, {e.float_max:.3g}] | [{lo:.3g}, {hi:.3g}] |"
        )
    return "\n".join(lines)


def plot(errors: list[LayerError], path, title: str) -> Path:
    """SQNR of every quantized tensor in graph order, the damaged ones marked."""
    from ..evaluate.plot import pyplot
    from ..fileio import atomic_path

    plt = pyplot()
    ordered = sorted(errors, key=lambda e: e.position)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(ordered)), 4), dpi=120)
    x = np.arange(len(ordered))
    ax.bar(x - 0.2, [e.sqnr_db for e in ordered], 0.4, label="SQNR (int8 vs float)")
    colours = ["tab:red" if e.damaged else "tab:orange" for e in ordered]
    ax.bar(x + 0.2, [e.channel_sqnr_db for e in ordered], 0.4, color=colours, label="median channel SQNR on its grid")
    ax.axhline(DAMAGED_CHANNEL_DB, color="tab:red", linewidth=0.8, linestyle="--")
    ax.set_xticks(x, [f"{e.layer} {e.op}" for e in ordered], rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("dB")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)
    return Path(path)
