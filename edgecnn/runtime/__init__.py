"""Device-side inference: numpy, Pillow, flatbuffers and a TFLite interpreter, never TensorFlow.

.onnx files run with onnxruntime (:mod:`edgecnn.runtime.onnx`), imported when one is loaded.

    from edgecnn import runtime
    model = runtime.load("model_int8.tflite")
    print(model.classify("photo.jpg", top_k=3))
"""

from .devices import Device, DeviceError, parse_device
from .foreign import AssumedModelFacts, ModelFacts
from .interpreters import find_interpreter, load_interpreter
from .loaders import LOADERS, load, register_loader
from .model import RuntimeModel, resolve_metadata
from .preprocess import dequantize, load_image, prepare_input, quantize, softmax
from .tflite import TFLiteRuntimeModel
from .tflite_file import TFLiteModel, check_tflite_bytes, load_tflite, read_metadata, read_tflite

__all__ = [
    "AssumedModelFacts",
    "Device",
    "DeviceError",
    "LOADERS",
    "ModelFacts",
    "RuntimeModel",
    "TFLiteModel",
    "TFLiteRuntimeModel",
    "check_tflite_bytes",
    "dequantize",
    "find_interpreter",
    "load",
    "load_image",
    "load_interpreter",
    "load_tflite",
    "parse_device",
    "prepare_input",
    "quantize",
    "read_metadata",
    "read_tflite",
    "register_loader",
    "resolve_metadata",
    "softmax",
]
