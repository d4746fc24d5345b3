"""Options shared by several commands, defined once."""

from __future__ import annotations

import click

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout instead of a table.")
seed_option = click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed for data generation, splits and training."
)
data_option = click.option(
    "--data",
    default=None,
    metavar="NAME|DIR",
    help="Data set: 'digits', 'shapes', or a folder of images in class subfolders.",
)
img_size_option = click.option(
    "--img-size", type=click.IntRange(min=8), default=None, help="Square input size in pixels (default: the data set's)."
)
arch_option = click.option(
    "--arch", default="xception-nano", show_default=True, help="Registered architecture (see `edgecnn models`)."
)
epochs_option = click.option("--epochs", default=20, show_default=True, type=click.IntRange(min=1), help="Training epochs.")
io_option = click.option(
    "--io",
    type=click.Choice(["uint8", "int8", "float32"]),
    default="uint8",
    show_default=True,
    help="Input/output type of int8 TFLite models (uint8: feed camera bytes directly); int8 ONNX models take float32.",
)
calib_size_option = click.option(
    "--calib-size",
    default=300,
    show_default=True,
    type=click.IntRange(min=1),
    help="Calibration images drawn from the training split.",
)


def calib_method_option(f):
    from ..export.options import CALIB_METHODS, DEFAULT_CALIB_METHOD

    return click.option(
        "--calib-method",
        type=click.Choice(CALIB_METHODS),
        default=DEFAULT_CALIB_METHOD,
        show_default=True,
        help="How ONNX int8 activation ranges are chosen from the calibration images.",
    )(f)


def onnx_format_option(f):
    from ..export.options import DEFAULT_ONNX_FORMAT, ONNX_FORMATS

    return click.option(
        "--onnx-format",
        type=click.Choice(ONNX_FORMATS),
        default=DEFAULT_ONNX_FORMAT,
        show_default=True,
        help="ONNX int8 graph: quantized operators (qoperator) or QuantizeLinear/DequantizeLinear pairs (qdq).",
    )(f)


dynamic_batch_option = click.option(
    "--dynamic-batch", is_flag=True, help="ONNX models take any batch size (default: exactly one image)."
)


def formats_option(default: str = "tflite"):
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
