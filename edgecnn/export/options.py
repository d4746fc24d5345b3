"""Export options, shared by every format."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..errors import ConfigError
from ..quantize.check import DEFAULT_MIN_AGREEMENT
from ..quantize.compress import check_compression
from ..quantize.qat import DEFAULT_QAT_EPOCHS, MAX_QAT_EPOCHS
from .targets import export_targets

IO_TYPES = ("uint8", "int8", "float32")
CALIB_METHODS = ("minmax", "entropy", "percentile")
ONNX_FORMATS = ("qdq", "qoperator")
#: QDQ: ONNX Runtime, OpenVINO and onnxruntime-web all run it, while OpenVINO refuses QOperator's
#: per-channel QLinearConv. With uint8 activations ONNX Runtime ran both equally fast (1.3-2.2x
#: float, benchmarks/onnx_formats.py on x86, one thread); QOperator files are 7-10% smaller and stay
#: integer when a runtime does not fuse QDQ pairs (QDQ then ran 0.8-0.9x float). See README, "ONNX".
DEFAULT_ONNX_FORMAT = "qdq"
#: Over seven trained models the worst int8/float top-1 agreement was 99.4% with ONNX Runtime's
#: percentile ranges and 97.7% with min-max (which was ahead on one model, by 0.4 points).
DEFAULT_CALIB_METHOD = "percentile"


@dataclass(frozen=True)
class ExportOptions:
    formats: tuple[str, ...] = ("tflite",)
    int8: bool = False
    #: Input/output type of int8 models: uint8 lets an app feed camera bytes directly.
    io: str = "uint8"
    calib_size: int = 300
    calib_path: Optional[Path] = None
    #: Data set to draw calibration images from; defaults to the one the model was trained on.
    data: Optional[str] = None
    #: The run's split file (split.json beside the model, found by export): which files are test images.
    split: Optional[Path] = None
    #: How activation ranges are chosen from the calibration images (ONNX int8).
    calib_method: str = DEFAULT_CALIB_METHOD
    #: ONNX int8 graph style: QuantizeLinear/DequantizeLinear pairs, or quantized operators.
    onnx_format: str = DEFAULT_ONNX_FORMAT
    #: ONNX models take any batch size instead of exactly one image.
    dynamic_batch: bool = False
    #: Device to export for (one of export_targets()); None: no device-specific step.
    target: Optional[str] = None
    #: Load a model whose config names code (Lambda, custom layers): only for files you trust.
    trust_model: bool = False
    # For a model edgecnn did not train (no metadata beside it), what the file does not say:
    #: a labels file (one per line), else --data's class folders name the classes;
    labels_path: Optional[Path] = None
    #: how pixels become the model's input (--norm, or --mean/--std in pixel units);
    norm: Optional[str] = None
    mean: Optional[tuple[float, ...]] = None
    std: Optional[tuple[float, ...]] = None
    #: the input size, where the model leaves it open;
    img_size: Optional[int] = None
    #: re-estimate BatchNorm statistics on the calibration images, when they lag the weights.
    fix_bn: bool = False
    #: Top-1 agreement every int8 file must reach with its float sibling; below it export repairs.
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    #: Apply the repairs (equalization, bias correction) even when the agreement holds.
    repair: bool = False
    #: Quantization-aware training (tfmot) on --data before converting, for `qat_epochs` epochs.
    qat: bool = False
    qat_epochs: int = DEFAULT_QAT_EPOCHS
    #: Share of the large layers' weights magnitude pruning sets to zero (tfmot), before int8.
    prune: Optional[float] = None
    #: Distinct weights per layer after weight clustering (tfmot), before int8.
    cluster: Optional[int] = None
    #: TFLite's 16x8 mode: int16 activations (for ranges int8 cannot hold), int8 weights.
    int16_activations: bool = False
    #: Give a grayscale model an RGB input (a fixed luminance convolution in front), which
    #: MediaPipe Tasks and the LiteRT Task Library require; RGB models are unchanged.
    rgb: bool = False

    def __post_init__(self):
        if self.calib_method not in CALIB_METHODS:
            raise ConfigError(f"--calib-method must be one of {', '.join(CALIB_METHODS)}, got {self.calib_method!r}")
        if self.onnx_format not in ONNX_FORMATS:
            raise ConfigError(f"--onnx-format must be one of {', '.join(ONNX_FORMATS)}, got {self.onnx_format!r}")
        if self.io not in IO_TYPES:
            raise ConfigError(f"--io must be one of {', '.join(IO_TYPES)}, got {self.io!r}")
        if self.calib_size < 1:
            raise ConfigError(f"--calib-size must be at least 1, got {self.calib_size}")
        if not self.formats:
            raise ConfigError("give at least one export format")
        if not 0 <= self.min_agreement <= 1:  # also refuses NaN
            raise ConfigError(f"--min-agreement must be a share from 0 to 1 (0.98 is 98%), got {self.min_agreement}")
        if (self.repair or self.qat or self.prune or self.cluster) and not self.int8:
            raise ConfigError("--repair, --qat, --prune and --cluster work on the int8 model: add --int8")
        check_compression(self.prune, self.cluster)
        if self.int16_activations:
            self._check_int16()
        if not 1 <= self.qat_epochs <= MAX_QAT_EPOCHS:
            raise ConfigError(f"--qat-epochs must be 1 to {MAX_QAT_EPOCHS}, got {self.qat_epochs}")
        _ = self.normalization  # checks --norm/--mean/--std
        if self.target is not None:
            self._check_target()

    @property
    def normalization(self):
        from ..artifact import normalization_from

        return normalization_from(self.norm, self.mean, self.std)

    def _check_int16(self):
        if not self.int8:
            raise ConfigError("--int16-activations quantizes the model: add --int8")
        if self.formats != ("tflite",):
            raise ConfigError("--int16-activations is TFLite's 16x8 mode: export with --format tflite (ONNX without it)")
        if self.target is not None:
            raise ConfigError(f"--int16-activations cannot run on --target {self.target}, which takes 8-bit models only")

    def _check_target(self):
        targets = export_targets()
        if self.target not in targets:
            raise ConfigError(f"--target must be one of {', '.join(targets)}, got {self.target!r}")
        if not self.int8:
            raise ConfigError("--target edgetpu needs --int8: the Edge TPU runs only full-integer models")
        if self.io == "float32":
            raise ConfigError("--target edgetpu needs 8-bit input and output: use --io uint8 (the default) or --io int8")
        if "tflite" not in self.formats:
            raise ConfigError("--target edgetpu compiles a TFLite model: include tflite in --format")


@dataclass(frozen=True)
class Int8Plan:
    """How the int8 files are made beyond ExportOptions: what export's own steps decide."""

    #: A quantization-aware (tfmot) copy of the model, converted instead of the float one...
    qat_model: Any = None
    #: ...for these formats; the others are calibrated from the float model (QAT did not help them).
    qat_formats: tuple[str, ...] = ("tflite", "onnx")
    #: One weight scale per tensor instead of per channel: keeps a clustered layer's few values.
    per_tensor_weights: bool = False
    #: Format -> tensors (named as in the float file) whose ops stay float.
    keep_float: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def qat_for(self, fmt: str):
        """The quantization-aware model `fmt`'s int8 file is converted from, or None."""
        return self.qat_model if fmt in self.qat_formats else None
