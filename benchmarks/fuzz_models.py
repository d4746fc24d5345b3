"""Mutation fuzz of model files through ``edgecnn.runtime``: crashes and foreign exceptions, counted.

Each case is an exported .tflite or .onnx file with one to three random mutations (a
quantization scale, a zero point, a shape, a tensor type, an operator's inputs or options,
the embedded metadata, raw bytes). A worker process loads each case with
``runtime.load(path).predict(...)`` (and, for .tflite, the Edge TPU checker and graph
statistics) and reports how it ended: ``ok``, ``refused`` (an edgecnn error), ``foreign``
(any other exception) or, seen from the parent, ``death`` (the worker died; it is
restarted) and ``hang`` (no answer within the timeout). Only the last three are failures.

    python benchmarks/fuzz_models.py --cases 20000 --onnx-cases 3000 --models runs/digits

`--models` is a folder with model_int8/model_fp32 .tflite (and .onnx) files from
``edgecnn export``; without it a small model is trained and exported first. Writes
``<out>/fuzz_models.json`` and ``fuzz_models.md``. Mutating needs ai-edge-litert's schema
module and the onnx package; the worker needs only the runtime.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FAILURES = ("foreign", "death", "hang")
#: Values that break arithmetic: what a hostile file would pick.
_FLOATS = (0.0, -1.0, math.inf, -math.inf, math.nan, 1e-45, 1e-30, 1e30, 3.4e38, 1.0, 255.0)
_INTS = (0, -1, 1, 2, 3, 127, 128, 255, 256, 300, -129, 65535, 65536, 2**31 - 1, -(2**31), 10**6)
_DIMS = (0, -1, 1, 2, 3, 7, 64, 255, 4096, 65536, 2**31 - 1)
_OPS = "ADD CONV_2D DEPTHWISE_CONV_2D FULLY_CONNECTED MAX_POOL_2D AVERAGE_POOL_2D MEAN RESHAPE SOFTMAX QUANTIZE DEQUANTIZE PAD CONCATENATION MUL LOGISTIC TRANSPOSE_CONV LSTM CUSTOM".split()


# --- metadata -----------------------------------------------------------------------------


def hostile_metadata(meta: dict, rng: random.Random) -> bytes:
    """The edgecnn metadata JSON broken in one of the ways a hostile file could."""
    choice = rng.randrange(14)
    if choice == 0:
        return rng.choice([b"not json", b"\xff\xfe", b"", b"null", b"[]", b'"text"', b"1e999"])
    if choice == 1:
        return b"[" * 100_000 + b"]" * 100_000
    if choice == 2:
        return b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    meta = json.loads(json.dumps(meta))
    key = rng.choice(list(meta) or ["labels"])
    if choice == 3:
        meta[key] = rng.choice(["text", 5, None, [], {}, -1, 1e308, [1, 2], {"x": 1}])
    elif choice == 4:
        meta["normalization"] = rng.choice(["x", [], {"scale": rng.choice(_FLOATS)}, {"offset": math.nan}, {"bad": 1}])
    elif choice == 5:
        key = rng.choice(["input_quantization", "output_quantization"])
        q = dict(meta.get(key) or {"dtype": "uint8", "scale": 1.0, "zero_point": 0})
        field = rng.choice(["scale", "zero_point", "dtype"])
        q[field] = rng.choice([*_FLOATS, *_INTS, "int64", "x", None])
        meta[key] = q
    elif choice == 6:
        meta["labels"] = rng.choice(["abc", 10, [1, 2, 3], [None] * 10, [[]] * 10, ["x"] * 100_000, [], {"a": 1}])
    elif choice == 7:
        meta["input_shape"] = rng.choice(
            [[10**9, 10**9, 3], [-1, 32, 1], [32, 32], [0, 0, 0], "abc", [32.5, 32, 1], [True, 32, 1], [65536, 65536, 3]]
        )
    elif choice == 8:
        meta["input_dtype"] = rng.choice(["int64", "string", "float16", "x", 5])
    elif choice == 9:
        meta["output"] = rng.choice(["scores", "x", 5, None])
    elif choice == 10:
        meta = rng.choice([[meta], "meta", 5])
    else:
        meta.pop(key, None)
    text = json.dumps(meta, allow_nan=True)
    return text.encode()


# --- .tflite mutations ---------------------------------------------------------------------


def _schema():
    import ai_edge_litert.schema_py_generated as S

    return S


def _pack(model) -> bytes:
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _tensor_mutation(S, m, sg, rng: random.Random) -> str:
    i = rng.randrange(len(sg.tensors))
    t = sg.tensors[i]
    kind = rng.randrange(8)
    if kind == 0:
        q = t.quantization or S.QuantizationParametersT()
        q.scale = [rng.choice(_FLOATS) for _ in range(len(q.scale) if q.scale is not None and len(q.scale) else 1)]
        q.zeroPoint = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0] * len(q.scale)
        t.quantization = q
        return f"tensor {i} scale {q.scale[0]}"
    if kind == 1:
        q = t.quantization or S.QuantizationParametersT()
        n = len(q.scale) if q.scale is not None and len(q.scale) else 1
        q.scale = q.scale if q.scale is not None and len(q.scale) else [0.1]
        q.zeroPoint = [rng.choice(_INTS) for _ in range(n)]
        t.quantization = q
        return f"tensor {i} zero point {q.zeroPoint[0]}"
    if kind == 2:
        q = t.quantization or S.QuantizationParametersT()
        choice = rng.randrange(3)
        if choice == 0:
            t.quantization = None
        elif choice == 1:
            q.scale, q.zeroPoint = [0.1] * rng.choice([2, 3, 1000]), [0] * rng.choice([1, 2, 3])
        else:
            q.quantizedDimension = rng.choice([-1, 1, 2, 3, 4, 100])
        t.quantization = q if choice else None
        return f"tensor {i} quantization layout {choice}"
    if kind == 3:
        shape = list(t.shape if t.shape is not None else [])
        op = rng.randrange(3)
        if op == 0 and shape:
            shape[rng.randrange(len(shape))] = rng.choice(_DIMS)
        elif op == 1:
            shape.insert(rng.randrange(len(shape) + 1), rng.choice(_DIMS))
        elif shape:
            shape.pop(rng.randrange(len(shape)))
        t.shape = shape
        return f"tensor {i} shape {shape}"
    if kind == 4:
        t.type = rng.choice(
            [rng.randrange(0, 30), S.TensorType.INT8, S.TensorType.UINT8, S.TensorType.FLOAT32, S.TensorType.INT32]
        )
        return f"tensor {i} type {t.type}"
    if kind == 5:
        t.buffer = rng.choice([0, 1, len(m.buffers) - 1, len(m.buffers), rng.randrange(len(m.buffers)), 2**31])
        return f"tensor {i} buffer {t.buffer}"
    if kind == 6:
        t.shapeSignature = [rng.choice(_DIMS) for _ in range(rng.randrange(5))]
        return f"tensor {i} signature {t.shapeSignature}"
    t.isVariable = True
    return f"tensor {i} variable"


def _operator_mutation(S, m, sg, rng: random.Random) -> str:
    k = rng.randrange(len(sg.operators))
    op = sg.operators[k]
    kind = rng.randrange(6)
    n = len(sg.tensors)
    pick = lambda: rng.choice([-1, 0, n - 1, n, rng.randrange(n), rng.randrange(n)])  # noqa: E731
    if kind in (0, 1):
        field = "inputs" if kind == 0 else "outputs"
        values = list(getattr(op, field) if getattr(op, field) is not None else [])
        action = rng.randrange(3)
        if action == 0 and values:
            values.pop(rng.randrange(len(values)))
        elif action == 1:
            values.append(pick())
        elif values:
            values[rng.randrange(len(values))] = pick()
        setattr(op, field, values)
        return f"op {k} {field} {values}"
    if kind == 2:
        code = m.operatorCodes[op.opcodeIndex] if op.opcodeIndex < len(m.operatorCodes) else None
        if code is not None and rng.random() < 0.7:
            code.builtinCode = rng.choice([getattr(S.BuiltinOperator, name) for name in _OPS] + [rng.randrange(210)])
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            if rng.random() < 0.3:
                code.version = rng.choice([0, 1, 2, 3, 4, 99])
            return f"op {k} code {code.builtinCode}"
        op.opcodeIndex = rng.choice([0, len(m.operatorCodes), rng.randrange(len(m.operatorCodes))])
        return f"op {k} opcode index {op.opcodeIndex}"
    if kind in (3, 4) and op.builtinOptions is not None:
        fields = [f for f in vars(op.builtinOptions) if isinstance(getattr(op.builtinOptions, f), (int, float))]
        if fields:
            field = rng.choice(fields)
            value = rng.choice(_FLOATS if isinstance(getattr(op.builtinOptions, field), float) else _INTS + (-128, 6, 7))
            if not isinstance(getattr(op.builtinOptions, field), float):
                value = int(max(-(2**31), min(2**31 - 1, value)))
                if field in ("padding", "fusedActivationFunction", "weightsFormat") or isinstance(
                    getattr(op.builtinOptions, field), bool
                ):
                    value = max(-128, min(127, value))
            setattr(op.builtinOptions, field, value)
            return f"op {k} option {field}={value}"
    op.builtinOptionsType, op.builtinOptions = 0, None
    return f"op {k} options dropped"


def _model_mutation(S, m, sg, rng: random.Random, meta) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        m.subgraphs = [] if rng.random() < 0.5 else m.subgraphs * 2
        return f"{len(m.subgraphs)} subgraphs"
    if kind == 1:
        field = rng.choice(["inputs", "outputs"])
        setattr(sg, field, rng.choice([[], [0], [len(sg.tensors)], [-1], [rng.randrange(len(sg.tensors))] * 2]))
        return f"graph {field} {getattr(sg, field)}"
    if kind == 2:
        b = m.buffers[rng.randrange(len(m.buffers))]
        if b.data is not None and len(b.data):
            b.data = b.data[: rng.randrange(len(b.data))]
            return "buffer truncated"
        return "no-op"
    if kind == 3 and meta is not None:
        index = next((x.buffer for x in (m.metadata or []) if x.name in (b"edgecnn", "edgecnn")), None)
        if index is not None and index < len(m.buffers):
            import numpy as np

            m.buffers[index].data = np.frombuffer(hostile_metadata(meta, rng), np.uint8)
            return "hostile metadata"
    if kind == 4:
        sg.operators = sg.operators[: rng.randrange(len(sg.operators) + 1)] if rng.random() < 0.5 else sg.operators[::-1]
        return f"{len(sg.operators)} operators"
    m.buffers = m.buffers[: rng.randrange(len(m.buffers) + 1)]
    return f"{len(m.buffers)} buffers"


def _bytes_mutation(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    out = bytearray(data)
    kind = rng.randrange(3)
    if kind == 0:
        return bytes(out[: rng.randrange(len(out))]), "truncated"
    # Flatbuffer tables, vtables and vectors sit mostly outside the large weight buffers:
    # aim at the first and last 8 KiB as often as anywhere.
    for _ in range(rng.randrange(1, 9)):
        region = rng.choice([(0, 8192), (max(0, len(out) - 8192), len(out)), (0, len(out))])
        pos = rng.randrange(region[0], max(region[0] + 1, min(region[1], len(out) - 4)))
        if kind == 1:
            out[pos] = rng.randrange(256)
        else:
            out[pos : pos + 4] = (rng.choice(_INTS) & 0xFFFFFFFF).to_bytes(4, "little")
    return bytes(out), "bytes"


def mutate_tflite(data: bytes, rng: random.Random, meta=None) -> tuple[bytes, str]:
    """`data` with one to three random mutations; returns (bytes, what was done)."""
    if rng.random() < 0.15:
        return _bytes_mutation(data, rng)
    S = _schema()
    m = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    done = []
    try:
        for _ in range(rng.choice([1, 1, 2, 3])):
            if not m.subgraphs:
                break
            sg = m.subgraphs[0]
            pick = rng.random()
            if pick < 0.45 and sg.tensors:
                done.append(_tensor_mutation(S, m, sg, rng))
            elif pick < 0.85 and sg.operators:
                done.append(_operator_mutation(S, m, sg, rng))
            else:
                done.append(_model_mutation(S, m, sg, rng, meta))
        return _pack(m), "; ".join(done)
    except Exception:  # a mutation that met an earlier one's wreck, or a value the builder cannot store
        return _bytes_mutation(data, rng)


# --- .onnx mutations -----------------------------------------------------------------------


def _onnx_node_mutation(onnx, g, rng: random.Random) -> str:
    k = rng.randrange(len(g.node))
    node = g.node[k]
    kind = rng.randrange(4)
    if kind == 0:
        node.op_type = rng.choice(
            ["Conv", "QLinearConv", "Add", "MatMul", "Reshape", "Gemm", "Softmax", "Relu", "Loop", "If", "Scan", "Unknown"]
        )
        return f"node {k} op {node.op_type}"
    if kind == 1:
        names = [v.name for v in list(g.initializer)[:50]] + [n.output[0] for n in g.node if n.output][:50] + ["", "missing"]
        field = node.input if rng.random() < 0.7 else node.output
        if len(field) and rng.random() < 0.5:
            field[rng.randrange(len(field))] = rng.choice(names)
        elif len(field):
            del field[rng.randrange(len(field))]
        else:
            field.append(rng.choice(names))
        return f"node {k} io"
    if len(node.attribute):
        a = node.attribute[rng.randrange(len(node.attribute))]
        if kind == 3:
            node.attribute.remove(a)
            return f"node {k} attribute {a.name} removed"
        values = [rng.choice(_INTS + (-(2**40), 2**40)) for _ in range(rng.randrange(6))]
        if a.ints:
            del a.ints[:]
            a.ints.extend(values)
        elif a.type == onnx.AttributeProto.INT:
            a.i = values[0] if values else 0
        elif a.type == onnx.AttributeProto.FLOAT:
            a.f = rng.choice(_FLOATS)
        return f"node {k} attribute {a.name}"
    node.attribute.add().CopyFrom(onnx.helper.make_attribute(rng.choice(["group", "axis", "strides", "pads"]), rng.choice(_INTS)))
    return f"node {k} attribute added"


def _onnx_tensor_mutation(onnx, g, rng: random.Random) -> str:
    import numpy as np

    if not len(g.initializer):
        return "no-op"
    t = g.initializer[rng.randrange(len(g.initializer))]
    kind = rng.randrange(6)
    if kind == 0:
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (
            ("location", rng.choice(["/dev/zero", "../../etc/passwd", "weights.bin", "/proc/self/mem"])),
            ("length", "1024"),
        ):
            entry = t.external_data.add()
            entry.key, entry.value = key, value
        t.ClearField("raw_data")
        return f"initializer {t.name} external"
    if kind == 1:
        del t.dims[:]
        t.dims.extend(rng.choice(_DIMS) for _ in range(rng.randrange(5)))
        return f"initializer {t.name} dims {list(t.dims)}"
    if kind == 2:
        t.data_type = rng.randrange(0, 25)
        return f"initializer {t.name} type {t.data_type}"
    if kind == 3 and t.raw_data:
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))]
        return f"initializer {t.name} truncated"
    if t.data_type == onnx.TensorProto.FLOAT and t.raw_data:
        values = np.frombuffer(t.raw_data, np.float32).copy()
        if len(values):
            values[rng.randrange(len(values))] = rng.choice(_FLOATS)
        t.raw_data = values.tobytes()
        return f"initializer {t.name} values"
    if t.data_type in (onnx.TensorProto.UINT8, onnx.TensorProto.INT8) and t.raw_data:
        t.data_type = rng.choice([onnx.TensorProto.UINT8, onnx.TensorProto.INT8, onnx.TensorProto.INT32])
        return f"initializer {t.name} zero point type"
    return "no-op"


def _onnx_graph_mutation(onnx, model, rng: random.Random, meta) -> str:
    g = model.graph
    kind = rng.randrange(5)
    if kind == 0:
        v = rng.choice(list(g.input) + list(g.output))
        dims = v.type.tensor_type.shape.dim
        if len(dims):
            dims[rng.randrange(len(dims))].dim_value = rng.choice(_DIMS[1:] + (2**40,))
        v.type.tensor_type.elem_type = rng.choice([v.type.tensor_type.elem_type, rng.randrange(25)])
        return f"graph io {v.name}"
    if kind == 1:
        op = model.opset_import[0]
        op.version = rng.choice([0, 1, 7, 99, 10**6])
        return f"opset {op.version}"
    if kind == 2:
        model.ir_version = rng.choice([0, 1, 3, 99])
        return f"ir {model.ir_version}"
    if kind == 3 and meta is not None:
        for p in model.metadata_props:
            if p.key == "edgecnn":
                p.value = hostile_metadata(meta, rng).decode("utf-8", "replace")
        return "hostile metadata"
    del g.node[rng.randrange(len(g.node))]
    return "node removed"


def mutate_onnx(data: bytes, rng: random.Random, meta=None) -> tuple[bytes, str]:
    if rng.random() < 0.15:
        return _bytes_mutation(data, rng)
    import onnx

    model = onnx.load_from_string(data)
    done = []
    try:
        for _ in range(rng.choice([1, 1, 2, 3])):
            pick = rng.random()
            if pick < 0.4 and len(model.graph.node):
                done.append(_onnx_node_mutation(onnx, model.graph, rng))
            elif pick < 0.75:
                done.append(_onnx_tensor_mutation(onnx, model.graph, rng))
            else:
                done.append(_onnx_graph_mutation(onnx, model, rng, meta))
        return model.SerializeToString(), "; ".join(done)
    except Exception:
        return _bytes_mutation(data, rng)


# --- the worker ----------------------------------------------------------------------------


def _run_case(path: str) -> dict:
    import numpy as np

    from edgecnn import runtime
    from edgecnn.errors import EdgecnnError

    def predict():
        model = runtime.load(path, num_threads=1)
        return model.predict(np.zeros((2, *model.input_shape), np.uint8))

    steps = [("load+predict", predict)]
    if path.endswith(".tflite"):
        from edgecnn.evaluate.graph_stats import tflite_stats
        from edgecnn.targets.edgetpu.checker import check_model

        steps += [("edgetpu check", lambda: check_model(path)), ("graph stats", lambda: tflite_stats(path))]
    outcome = {"outcome": "ok"}
    for step, run in steps:
        try:
            run()
        except EdgecnnError as exc:
            if "\n" in str(exc):
                return {"outcome": "foreign", "step": step, "error": f"multi-line {type(exc).__name__}: {exc!s:.600}"}
            if outcome["outcome"] == "ok":  # the first refusal is the one to report
                outcome = {"outcome": "refused", "step": step, "error": f"{type(exc).__name__}: {exc!s:.600}"}
        except BaseException as exc:  # counting every other exception is the point
            return {"outcome": "foreign", "step": step, "error": f"{type(exc).__name__}: {exc!s:.600}"}
    return outcome


def worker() -> None:
    """Read case paths from stdin, answer one JSON line each on stdout."""
    try:
        import resource

        # A runaway allocation becomes a MemoryError (a foreign exception), not the OOM killer.
        limit = int(os.environ.get("FUZZ_MEMORY_LIMIT", 4 * 2**30))
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass
    out = os.fdopen(os.dup(1), "w")
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # libraries that print must not corrupt the protocol
    for line in sys.stdin:
        out.write(json.dumps(_run_case(line.strip())) + "\n")
        out.flush()


class Harness:
    """One worker process, restarted after it dies or hangs."""

    def __init__(self, timeout: float = 30.0):
        self.timeout = timeout
        self.proc = None

    def _start(self):
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def run(self, path: Path) -> dict:
        import selectors

        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(f"{path}\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return self._died()
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(self.timeout)
        sel.close()
        if not ready:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            return {"outcome": "hang", "error": f"no answer in {self.timeout:g} s"}
        line = self.proc.stdout.readline()
        if not line:
            return self._died()
        return json.loads(line)

    def _died(self) -> dict:
        code = self.proc.wait()
        self.proc = None
        return {"outcome": "death", "error": f"worker exited with {code}"}

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def without_metadata(data: bytes, suffix: str) -> bytes:
    """The model with edgecnn's metadata removed: a file from elsewhere, which loads on what it says itself."""
    if suffix == ".onnx":
        import onnx

        proto = onnx.load_model_from_string(data)
        del proto.metadata_props[:]
        return proto.SerializeToString()
    m = _schema().ModelT.InitFromPackedBuf(bytearray(data), 0)
    m.metadata = [x for x in (m.metadata or []) if x.name not in (b"edgecnn", "edgecnn")]
    return _pack(m)


#: Share of cases mutated from a copy without edgecnn metadata (the foreign-file loading path).
BARE_SHARE = 0.3


def fuzz(
    models: list[Path], cases: int, seed: int, workdir: Path, timeout: float = 30.0, progress=None, results=None
) -> list[dict]:
    """Run `cases` mutated copies of `models` (cycled); one result per case, appended to `results`."""
    rng = random.Random(seed)
    sources = []
    for path in models:
        data = path.read_bytes()
        meta = None
        sidecar = path.with_name(path.name + ".json")
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text())
        mutate = mutate_tflite if path.suffix == ".tflite" else mutate_onnx
        sources.append([(path, data, meta, mutate, False), (path, without_metadata(data, path.suffix), None, mutate, True)])
    harness = Harness(timeout)
    results = [] if results is None else results
    try:
        for n in range(cases):
            source, data, meta, mutate, bare = sources[n % len(sources)][rng.random() < BARE_SHARE]
            mutated, what = mutate(data, rng, meta)
            case = workdir / f"case{n % 2}{source.suffix}"  # no sidecar: the embedded metadata is what is tested
            case.write_bytes(mutated)
            result = harness.run(case)
            result.update(case=n, source=source.name, without_metadata=bare, mutation=what)
            if result["outcome"] in FAILURES:
                keep = workdir / "failures" / f"{n}{source.suffix}"
                keep.parent.mkdir(exist_ok=True)
                keep.write_bytes(mutated)
                result["file"] = str(keep)
            results.append(result)
            if progress:
                progress(n, result)
    finally:
        harness.close()
    return results


def summarize(results: list[dict]) -> dict:
    by_format = {}
    for suffix in sorted({Path(r["source"]).suffix for r in results}):
        rows = [r for r in results if Path(r["source"]).suffix == suffix]
        by_format[suffix] = dict(collections.Counter(r["outcome"] for r in rows))
        by_format[suffix]["cases"] = len(rows)
        by_format[suffix]["without_metadata"] = sum(bool(r.get("without_metadata")) for r in rows)
    return by_format


def _train_models(folder: Path) -> list[Path]:
    from edgecnn.data import load_dataset
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.train import TrainConfig, fit

    fit(load_dataset("digits", image_size=16), TrainConfig(arch="xception-pico", epochs=2, verbose=0), folder)
    export_model(folder / "model.keras", folder, ExportOptions(formats=("tflite", "onnx"), int8=True, calib_size=60))
    return sorted(folder.glob("model_*.tflite")) + sorted(folder.glob("model_*.onnx"))


def main(argv=None) -> None:
    if argv is None and sys.argv[1:] == ["--worker"]:
        return worker()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=20000, help=".tflite cases")
    parser.add_argument("--onnx-cases", type=int, default=0)
    parser.add_argument("--models", type=Path, help="folder with model_*.tflite / model_*.onnx (+ .json sidecars)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case before it counts as a hang")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        models = (
            sorted(args.models.glob("model_*.tflite")) + sorted(args.models.glob("model_*.onnx"))
            if args.models
            else _train_models(workdir)
        )
        results, started = [], time.time()
        for suffix, cases in ((".tflite", args.cases), (".onnx", args.onnx_cases)):
            chosen = [m for m in models if m.suffix == suffix and not m.name.endswith("_edgetpu.tflite")]
            if cases and chosen:

                def progress(n, result, total=cases, suffix=suffix, done=results):
                    if (n + 1) % 2000 == 0:  # a long run leaves a report even if it is stopped
                        write_report(args.out, done, models, time.time() - started, args.seed)
                    if (n + 1) % 500 == 0 or result["outcome"] in FAILURES:
                        print(
                            f"{suffix} {n + 1}/{total}: {result['outcome']} {result.get('error', '')[:120]}",
                            file=sys.stderr,
                            flush=True,
                        )

                fuzz(chosen, cases, args.seed, workdir, args.timeout, progress, results)
        failures = [r for r in results if r["outcome"] in FAILURES]
        if failures:  # the files themselves, to reproduce with
            kept = args.out / "fuzz_failures"
            kept.mkdir(parents=True, exist_ok=True)
            for r in failures:
                target = kept / Path(r["file"]).name
                target.write_bytes(Path(r["file"]).read_bytes())
                r["file"] = str(target)
        write_report(args.out, results, models, time.time() - started, args.seed)


def write_report(out: Path, results, models, seconds: float, seed: int) -> None:
    import edgecnn

    failures = [r for r in results if r["outcome"] in FAILURES]
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(results)
    report = {
        "edgecnn": edgecnn.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "seed": seed,
        "seconds": round(seconds, 1),
        "models": [m.name for m in models],
        "summary": summary,
        "failures": failures[:200],
        "refusals": dict(collections.Counter(r.get("error", "").split(":")[0] for r in results if r["outcome"] == "refused")),
    }
    (out / "fuzz_models.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [
        "# Mutation fuzz of model files",
        "",
        f"`benchmarks/fuzz_models.py`, seed {seed}, {len(results)} cases in {seconds / 60:.0f} min; models: {', '.join(report['models'])}.",
        "",
        "| format | cases | of them without edgecnn metadata | ok | refused (edgecnn error) | foreign exception | process death | hang |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for suffix, row in summary.items():
        cells = [row.get(k, 0) for k in ("cases", "without_metadata", "ok", "refused", "foreign", "death", "hang")]
        lines.append(f"| {suffix} | " + " | ".join(str(c) for c in cells) + " |")
    if failures:
        lines += ["", "Failures (first 20):", ""] + [
            f"- case {f['case']} ({f['mutation']}): {f['outcome']} {f.get('error', '')}" for f in failures[:20]
        ]
    (out / "fuzz_models.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
