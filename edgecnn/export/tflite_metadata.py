"""Named metadata buffers inside .tflite files.

Uses the flatbuffer object API of the TFLite schema (``schema_py_generated``, shipped
with ai-edge-litert, and with TensorFlow, which is imported only when ai-edge-litert is
missing). Reading metadata needs neither: see :mod:`edgecnn.runtime.tflite_file`.
"""

from __future__ import annotations

from ..artifact import METADATA_KEY, ArtifactMetadata
from ..errors import MissingDependencyError, ModelFileError
from ..runtime import standard_metadata
from ..runtime.tflite_file import FILE_IDENTIFIER, read_metadata, read_tflite

__all__ = ["embed_metadata", "embed_artifact_metadata", "read_metadata"]

#: TFLite aligns constant buffers to 16 bytes (``force_align: 16`` in schema.fbs).
_BUFFER_ALIGNMENT = 16


def _schema():
    try:
        from ai_edge_litert import schema_py_generated as schema

        schema.ModelT  # noqa: B018 - the object API is required
        return schema
    except (ImportError, AttributeError):
        pass
    from ..tf import tensorflow

    try:
        tensorflow()
        from tensorflow.lite.python import schema_py_generated as schema

        return schema
    except (ImportError, MissingDependencyError):
        raise MissingDependencyError("the TFLite flatbuffer schema is not installed; pip install ai-edge-litert") from None


def _aligned_buffer_class(schema):
    import numpy as np

    class AlignedBufferT(schema.BufferT):
        """BufferT whose data vector starts on a 16-byte boundary, like the converter's output."""

        def Pack(self, builder):
            if self.data is None or len(self.data) == 0:
                return super().Pack(builder)
            payload = np.asarray(self.data, dtype=np.uint8).tobytes()
            builder.StartVector(1, len(payload), _BUFFER_ALIGNMENT)
            builder.head -= len(payload)
            builder.Bytes[builder.head : builder.head + len(payload)] = payload
            data = builder.EndVector()
            schema.BufferStart(builder)
            schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    return AlignedBufferT


def _shared_zero_point_class(schema, cache: dict):
    """QuantizationParametersT that stores each distinct zero-point vector once.

    Per-channel weights and biases are symmetric: their zero points are all 0, one
    int64 per channel, twice per layer. Flatbuffers allow several tables to refer to
    one vector, so sharing them cuts 16 bytes per output channel, which is a large share
    of a small int8 model.
    """
    import numpy as np

    class SharedZeroPointT(schema.QuantizationParametersT):
        def Pack(self, builder):
            if self.details is not None or self.zeroPoint is None or len(self.zeroPoint) == 0:
                return super().Pack(builder)
            vectors = {}
            for field in ("min", "max", "scale"):
                values = getattr(self, field)
                if values is not None and len(values):
                    vectors[field] = builder.CreateNumpyVector(np.asarray(values, dtype=np.float32))
            zero_point = np.asarray(self.zeroPoint, dtype=np.int64)
            key = zero_point.tobytes()
            if key not in cache:
                cache[key] = builder.CreateNumpyVector(zero_point)
            schema.QuantizationParametersStart(builder)
            for field, add in (
                ("min", schema.QuantizationParametersAddMin),
                ("max", schema.QuantizationParametersAddMax),
                ("scale", schema.QuantizationParametersAddScale),
            ):
                if field in vectors:
                    add(builder, vectors[field])
            schema.QuantizationParametersAddZeroPoint(builder, cache[key])
            schema.QuantizationParametersAddQuantizedDimension(builder, self.quantizedDimension)
            return schema.QuantizationParametersEnd(builder)

    return SharedZeroPointT


def _share_zero_points(schema, model) -> None:
    cls = _shared_zero_point_class(schema, {})
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            if tensor.quantization is not None:
                shared = cls()
                shared.__dict__.update(tensor.quantization.__dict__)
                tensor.quantization = shared


def _as_aligned(schema, cls, buf):
    out = cls()
    out.data, out.offset, out.size = buf.data, buf.offset, buf.size
    return out


def embed_metadata(tflite_bytes: bytes, name: str, payload: bytes) -> bytes:
    """Return a copy of the model with ``Metadata{name}`` pointing at a buffer holding `payload`.

    An existing entry of the same name is replaced; its buffer is reused when nothing
    else refers to it, so re-embedding does not grow the file.
    """
    import flatbuffers
    import numpy as np

    read_tflite(tflite_bytes)  # ModelFileError for foreign or truncated input
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(tflite_bytes), 0)
    if any(b.offset > 1 for b in model.buffers or []):
        raise ModelFileError("cannot embed metadata in a TFLite model whose weights are stored outside the flatbuffer")
    data = np.frombuffer(bytes(payload), dtype=np.uint8)
    buffers = model.buffers = list(model.buffers or [])
    entries = model.metadata = list(model.metadata or [])

    existing = next((m for m in entries if m.name is not None and _text(m.name) == name), None)
    if existing is not None and _only_metadata_user(model, existing):
        buffers[existing.buffer].data = data
    else:
        buffers.append(schema.BufferT(data=data))
        if existing is None:
            existing = schema.MetadataT()
            existing.name = name
            entries.append(existing)
        existing.buffer = len(buffers) - 1

    aligned = _aligned_buffer_class(schema)
    model.buffers = [_as_aligned(schema, aligned, b) for b in buffers]
    _share_zero_points(schema, model)
    builder = flatbuffers.Builder(len(tflite_bytes) + len(payload) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
    out = bytes(builder.Output())
    if read_metadata(out, name) != bytes(payload):
        raise ModelFileError(f"embedding metadata {name!r} produced a model that does not read back; report this bug")
    return out


def embed_artifact_metadata(tflite_bytes: bytes, meta: ArtifactMetadata) -> bytes:
    """The model with edgecnn's metadata and the standard TFLite metadata (with its labels
    file appended), so that edgecnn, MediaPipe, the Task Library and Android Studio all read it."""
    standard = standard_metadata.for_artifact(meta)
    out = embed_metadata(tflite_bytes, METADATA_KEY, meta.to_json().encode())
    out = embed_metadata(out, standard_metadata.METADATA_NAME, standard_metadata.build(standard, meta.input_shape[:2]))
    return standard_metadata.labels_archive(out, meta.labels) if standard.labels_file else out


def _text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _only_metadata_user(model, entry) -> bool:
    index = entry.buffer
    if index <= 0 or index >= len(model.buffers):
        return False
    if sum(m.buffer == index for m in model.metadata) != 1:
        return False
    if model.metadataBuffer is not None and index in list(model.metadataBuffer):
        return False
    return all(t.buffer != index for sg in model.subgraphs or [] for t in sg.tensors or [])
