"""Options shared by several commands, defined once; defaults come from the dataclasses that define them."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..export.options import CALIB_METHODS, IO_TYPES, ONNX_FORMATS, ExportOptions
from ..nets import MAX_INPUT_SIZE, MIN_INPUT_SIZE
from ..run import RUNS_DIR, RunConfig
from ..train.config import TrainConfig

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of a table.")
seed_option = click.option(
    "--seed", default=TrainConfig.seed, show_default=True, type=int, help="Seed for data generation, splits and training."
)
data_option = click.option(
    "--data",
    default=None,
    metavar="NAME|DIR",
    help="Data set: 'digits', 'shapes', or a folder of images in class subfolders.",
)
img_size_option = click.option(
    "--img-size",
    type=click.IntRange(min=MIN_INPUT_SIZE, max=MAX_INPUT_SIZE),
    default=None,
    help="Square input size in pixels (default: the data set's).",
)
arch_option = click.option(
    "--arch", default=TrainConfig.arch, show_default=True, help="Registered architecture (see `edgecnn models`)."
)
epochs_option = click.option(
    "--epochs", default=TrainConfig.epochs, show_default=True, type=click.IntRange(min=1), help="Training epochs."
)
io_option = click.option(
    "--io",
    type=click.Choice(IO_TYPES),
    default=ExportOptions.io,
    show_default=True,
    help="Input/output type of int8 TFLite models (uint8: feed camera bytes directly); int8 ONNX models take float32.",
)
calib_size_option = click.option(
    "--calib-size",
    default=ExportOptions.calib_size,
    show_default=True,
    type=click.IntRange(min=1),
    help="Calibration images drawn from the training split.",
)
calib_option = click.option(
    "--calib",
    "calib_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Calibration images (unlabeled): a folder or a uint8 .npy/.npz.",
)
max_drop_option = click.option(
    "--max-drop",
    default=RunConfig.max_drop,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Largest allowed accuracy drop in points.",
)
cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep a folder data set's decoded images in this folder after the first epoch, and read them from it after.",
)
out_dir_option = click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Output folder [default: {RUNS_DIR}/DATA].",
)


def calib_method_option(f):
    return click.option(
        "--calib-method",
        type=click.Choice(CALIB_METHODS),
        default=ExportOptions.calib_method,
        show_default=True,
        help="How ONNX int8 activation ranges are chosen from the calibration images.",
    )(f)


def onnx_format_option(f):
    return click.option(
        "--onnx-format",
        type=click.Choice(ONNX_FORMATS),
        default=ExportOptions.onnx_format,
        show_default=True,
        help="ONNX int8 graph: quantized operators (qoperator) or QuantizeLinear/DequantizeLinear pairs (qdq).",
    )(f)


trust_model_option = click.option(
    "--trust-model",
    is_flag=True,
    help="Load a model whose config names code (Lambda, custom layers); only for files you trust.",
)

dynamic_batch_option = click.option(
    "--dynamic-batch", is_flag=True, help="ONNX models take any batch size (default: exactly one image)."
)


def formats_option(default: str = ",".join(ExportOptions.formats)):
    def parse(ctx, param, value):
        from ..export import FORMATS

        names = tuple(v.strip() for v in value.split(",") if v.strip())
        unknown = [n for n in names if n not in FORMATS]
        if unknown or not names:
            raise click.BadParameter(f"{value!r}: choose from {', '.join(FORMATS)} (comma-separated)")
        return names

    return click.option(
        "--format", "formats", default=default, show_default=True, callback=parse, help="Export formats, comma-separated."
    )


def _parse_device(ctx, param, value):
    from ..errors import ConfigError
    from ..runtime.devices import parse_device

    try:
        return str(parse_device(value))
    except ConfigError as exc:
        raise click.BadParameter(str(exc)) from None


device_option = click.option(
    "--device",
    default="cpu",
    show_default=True,
    metavar="cpu|edgetpu[:usb|:pci][:N]",
    callback=_parse_device,
    help="Where to run: the CPU, or a Coral Edge TPU for a *_edgetpu.tflite model (e.g. edgetpu:usb:0).",
)


def _floats(ctx, param, value):
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: give a number or one per channel, comma-separated (e.g. 127.5 or 123.7,116.3,103.5)"
        ) from None


def model_facts_options(f):
    """What a model from elsewhere may not say about itself: its labels and how pixels become its input."""
    from ..artifact import NORMALIZATIONS

    f = click.option("--std", callback=_floats, default=None, metavar="S[,S,S]", help="Input std in pixel units (with --mean).")(
        f
    )
    f = click.option(
        "--mean",
        callback=_floats,
        default=None,
        metavar="M[,M,M]",
        help="Input mean in pixel units: the model takes (pixel - mean) / std.",
    )(f)
    f = click.option(
        "--norm",
        type=click.Choice(tuple(NORMALIZATIONS)),
        default=None,
        help="How pixels become the model's input: 0,1 (pixel/255), -1,1, or imagenet (mean/std per channel).",
    )(f)
    return click.option(
        "--labels",
        "labels_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Labels file, one class per line (default: the model's metadata, else --data's class folders).",
    )(f)


#: The ExportOptions fields import_options sets.
IMPORT_FIELDS = ("labels_path", "norm", "mean", "std", "img_size", "fix_bn")


def _as_fields(f, keyword: str, names: tuple[str, ...]):
    """`f` called with the options `names` gathered into one dict argument `keyword`."""

    @functools.wraps(f)
    def command(*args, **kwargs):
        return f(*args, **{keyword: {name: kwargs.pop(name) for name in names}}, **kwargs)

    return command


def import_options(f):
    """For a Keras model edgecnn did not train: what it may not say, its input size, BatchNorm repair.

    The command receives them as one ``import_fields`` dict of ExportOptions fields.
    """
    command = _as_fields(f, "import_fields", IMPORT_FIELDS)

    command = click.option("--fix-bn", is_flag=True, help="Re-estimate BatchNorm statistics on the calibration images first.")(
        command
    )
    command = click.option(
        "--img-size",
        type=click.IntRange(min=MIN_INPUT_SIZE, max=MAX_INPUT_SIZE),
        default=None,
        help="Input size, for a model that takes images of any size.",
    )(command)
    return model_facts_options(command)


def model_facts(labels_path=None, norm=None, mean=None, std=None, data=None):
    """The runtime's ModelFacts from --labels, --norm, --mean/--std and --data's class folders."""
    from ..artifact import normalization_from
    from ..data import class_names
    from ..labels import read_labels
    from ..runtime.foreign import ModelFacts

    return ModelFacts(
        labels=read_labels(labels_path) if labels_path else None,
        normalization=normalization_from(norm, mean, std),
        data_labels=class_names(data) if data else None,
    )


#: The ExportOptions fields int8_options sets.
INT8_FIELDS = ("min_agreement", "repair", "qat", "qat_epochs", "prune", "cluster", "int16_activations")


def int8_options(f):
    """How export makes sure its int8 files hold up: the agreement floor and the repairs.

    The command receives them as one ``int8_fields`` dict of ExportOptions fields.
    """
    from ..export.options import ExportOptions
    from ..quantize.compress import MAX_CLUSTERS
    from ..quantize.qat import MAX_QAT_EPOCHS

    command = _as_fields(f, "int8_fields", INT8_FIELDS)
    for option in (
        click.option(
            "--int16-activations",
            is_flag=True,
            help="TFLite 16x8: int16 activations and I/O, int8 weights, where int8 activations cannot hold the range.",
        ),
        click.option(
            "--cluster",
            type=click.IntRange(min=2, max=MAX_CLUSTERS),
            default=None,
            help="Cluster each layer's weights into this many values (tfmot) on --data's images before int8: a smaller download.",
        ),
        click.option(
            "--prune",
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=None,
            help="Set this share of the large layers' weights to zero (tfmot magnitude pruning) before int8.",
        ),
        click.option(
            "--qat-epochs",
            default=ExportOptions.qat_epochs,
            show_default=True,
            type=click.IntRange(min=1, max=MAX_QAT_EPOCHS),
            help="Epochs of quantization-aware training.",
        ),
        click.option("--qat", is_flag=True, help="Quantization-aware training on --data's training images (tfmot) before int8."),
        click.option(
            "--repair", is_flag=True, help="Equalize channels and correct biases before int8 even when the agreement holds."
        ),
        click.option(
            "--min-agreement",
            default=ExportOptions.min_agreement,
            show_default=True,
            type=click.FloatRange(0, 1),
            help="Top-1 agreement each int8 file must reach with the float model; below it export repairs, then fails.",
        ),
    ):
        command = option(command)
    return command


def rgb_option(default: bool):
    return click.option(
        "--rgb/--no-rgb",
        default=default,
        show_default=True,
        help="Give a grayscale model an RGB input (a fixed luminance conversion in the graph), as MediaPipe and "
        "the LiteRT Task Library require.",
    )
