"""The commands: each parses options, calls the Python API and prints."""

from __future__ import annotations

from pathlib import Path

import click

from ..export.options import ExportOptions
from ..export.targets import export_targets
from ..quantize.layer_error import DEFAULT_SAMPLES
from ..run import RunConfig, default_out_dir
from ..train.augment import AUGMENTATIONS
from ..train.config import PRECISIONS, TrainConfig
from ..train.distribute import STRATEGIES
from .app import echo, emit_json, main, quiet_stdout
from .options import (
    arch_option,
    cache_option,
    calib_method_option,
    calib_option,
    calib_size_option,
    data_option,
    device_option,
    dynamic_batch_option,
    epochs_option,
    formats_option,
    img_size_option,
    import_options,
    int8_options,
    io_option,
    json_option,
    max_drop_option,
    model_facts,
    model_facts_options,
    onnx_format_option,
    out_dir_option,
    rgb_option,
    seed_option,
    trust_model_option,
)

#: A file argument; whether it exists is for the loader to say, with a hint of what to pass.
file_path = click.Path(dir_okay=False, path_type=Path)


@main.command()
def models():
    """List the registered architectures."""
    from ..nets import get_recipe, list_models

    for name in list_models():
        recipe = get_recipe(name)
        shape = "x".join(map(str, recipe.default_input_shape))
        echo(f"{name:16s} {shape:>10s}  {recipe.description}")


@main.command()
@data_option
@arch_option
@img_size_option
@epochs_option
@click.option(
    "--width",
    default=TrainConfig.width,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Channel width multiplier.",
)
@click.option("--batch-size", default=TrainConfig.batch_size, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--lr",
    "learning_rate",
    default=TrainConfig.learning_rate,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Peak learning rate.",
)
@seed_option
@click.option(
    "--init",
    "init_model",
    type=click.Path(path_type=Path),
    default=None,
    help="Go on training this model (an earlier edgecnn model, or any Keras classifier) instead of a new --arch.",
)
@click.option("--new-head", is_flag=True, help="With --init: replace the model's classifier with one for the data's classes.")
@click.option(
    "--augment",
    type=click.Choice(AUGMENTATIONS),
    default=TrainConfig.augment,
    show_default=True,
    help="light: random translations; standard: random crop and scale, horizontal flips (never for digits), brightness and contrast.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default=TrainConfig.precision,
    show_default=True,
    help="bf16: mixed-precision training on CPUs with AVX512_BF16 or AMX; the saved model is float32 either way.",
)
@click.option(
    "--distribute",
    type=click.Choice(STRATEGIES),
    default=None,
    help="Train under tf.distribute: mirrored (this machine's devices) or multiworker (the workers TF_CONFIG names).",
)
@click.option(
    "--resume/--no-resume",
    default=None,
    help="Go on from the checkpoint a killed run left in --out (the default when it is of the same training), or start over.",
)
@cache_option
@trust_model_option
@out_dir_option
@json_option
def train(
    data,
    arch,
    img_size,
    epochs,
    width,
    batch_size,
    learning_rate,
    seed,
    init_model,
    new_head,
    augment,
    precision,
    distribute,
    resume,
    cache_dir,
    trust_model,
    out,
    as_json,
):
    """Train a model; writes model.keras, model.keras.json, labels.txt and train.json."""
    from ..data import load_dataset
    from ..train import fit

    if new_head and init_model is None:
        raise click.UsageError("--new-head replaces the classifier of the --init model; give --init MODEL")
    data = data or RunConfig.data
    out = out or default_out_dir(data)
    config = TrainConfig(
        arch=arch,
        epochs=epochs,
        width=width,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        augment=augment,
        precision=precision,
    )
    with quiet_stdout(as_json):
        if distribute:
            from ..train.distribute import strategy

            strategy(distribute)  # before TensorFlow runs anything else, as multiworker requires
        if init_model is None:
            dataset = load_dataset(data, image_size=img_size, seed=seed)
            result = fit(dataset, config, out, resume=resume, distribute=distribute, cache_dir=cache_dir)
        else:
            from ..importer.fine_tune import initial_model, with_head

            initial = initial_model(init_model, img_size=img_size, trust_model=trust_model)
            height, width_px, channels = initial.input_shape
            dataset = load_dataset(data, image_size=(height, width_px), channels=channels, seed=seed)
            model = with_head(initial, dataset.labels, new_head, seed=seed)
            result = fit(
                dataset, config, out, model=model, initial=initial, resume=resume, distribute=distribute, cache_dir=cache_dir
            )
    summary = {
        "model": str(result.model_path),
        "params": result.params,
        "train_accuracy": result.train_accuracy,
        "val_accuracy": result.val_accuracy,
        "val_accuracy_training_mode": result.val_accuracy_training_mode,
        "seconds": round(result.seconds, 2),
        "resumed_from_epoch": result.resumed_from_epoch,
    }
    if as_json:
        emit_json(summary)
    else:
        if result.resumed_from_epoch:
            echo(f"went on from the checkpoint of epoch {result.resumed_from_epoch} of {config.epochs}")
        echo(
            f"wrote {result.model_path} ({result.params:,} parameters); validation accuracy "
            f"{result.val_accuracy:.2%} (inference mode), {result.val_accuracy_training_mode:.2%} (training mode)"
        )


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Folded model [default: folded.keras beside MODEL].",
)
@data_option
@calib_option
@trust_model_option
@import_options
def fold(model, output, data, calib_path, trust_model, import_fields):
    """Fold BatchNorm layers into the preceding convolutions and verify the result.

    MODEL is an edgecnn .keras or any Keras classifier (imported as by `export`, which then
    writes imported.keras beside the folded model).
    """
    from ..artifact import read_sidecar
    from ..export import ExportOptions
    from ..export.pipeline import calibration_for
    from ..fold import VERIFY_SAMPLES, fold_file

    output = output or model.with_name("folded.keras")
    meta = read_sidecar(model) if model.is_file() else None
    options = ExportOptions(
        # An edgecnn model only needs images to verify the fold; an imported one may need its BatchNorm re-estimated.
        calib_size=VERIFY_SAMPLES if meta is not None else ExportOptions.calib_size,
        calib_path=calib_path,
        data=data,
        trust_model=trust_model,
        **import_fields,
    )
    if meta is not None:
        samples = calibration_for(meta, options)
        result = fold_file(model, output, meta.normalization.apply(samples.images), meta, trust_model=trust_model)
    else:
        from ..fileio import staged_folder
        from ..importer.export_step import import_model

        with staged_folder(output.parent) as stage:
            imported = import_model(model, stage, options, lambda m: calibration_for(m, options))
            pixels = imported.metadata.normalization.apply(imported.calibration.images)
            result = fold_file(imported.path, stage / output.name, pixels, imported.metadata, model=imported.model)
        echo(f"imported {imported.report['source']['format']} model -> {output.parent / imported.path.name}")
    for linear, bn in result.folded:
        echo(f"folded {bn} into {linear}")
    for bn, reason in result.kept:
        echo(f"kept {bn}: {reason}")
    echo(
        f"wrote {output}: {len(result.folded)} BatchNorm layers folded, parameters {result.params_before:,} -> "
        f"{result.params_after:,}, max relative difference {result.relative_error:.2e}"
    )


@main.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--int8", is_flag=True, help="Also write a full-integer int8 model.")
@formats_option()
@io_option
@calib_option
@calib_size_option
@calib_method_option
@onnx_format_option
@dynamic_batch_option
@data_option
@click.option(
    "--target",
    type=click.Choice(export_targets()),
    default=None,
    help="Export for a device: edgetpu checks the int8 model maps entirely and compiles it if edgetpu_compiler is installed.",
)
@rgb_option(ExportOptions.rgb)
@trust_model_option
@import_options
@int8_options
@click.option(
    "-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder [default: MODEL's folder]."
)
@json_option
def export(
    model,
    int8,
    formats,
    io,
    calib_path,
    calib_size,
    calib_method,
    onnx_format,
    dynamic_batch,
    data,
    target,
    rgb,
    trust_model,
    import_fields,
    int8_fields,
    out,
    as_json,
):
    """Export MODEL to device formats, folding BatchNorm first.

    MODEL is a .keras written by edgecnn, or any Keras image classifier: a Keras 3 or tf_keras
    .keras, an .h5 or a SavedModel folder (give --data or --calib for its images).
    """
    from ..export import export_model

    options = ExportOptions(
        formats=formats,
        int8=int8,
        io=io,
        calib_size=calib_size,
        calib_path=calib_path,
        data=data,
        calib_method=calib_method,
        onnx_format=onnx_format,
        dynamic_batch=dynamic_batch,
        target=target,
        rgb=rgb,
        trust_model=trust_model,
        **import_fields,
        **int8_fields,
    )
    with quiet_stdout(as_json):
        result = export_model(model, out, options)
    artifacts = [
        {"path": str(a.path), "format": a.metadata.format, "precision": a.metadata.precision, "size_bytes": a.path.stat().st_size}
        for a in result.artifacts
    ]
    imported = {"path": str(result.imported_path), **result.import_report} if result.imported_path else None
    steps = [step.to_dict() for step in result.int8_steps]
    if as_json:
        emit_json(
            {
                "imported": imported,
                "folded": str(result.folded_path) if result.folded_path else None,
                "optimized": str(result.optimized_path) if result.optimized_path else None,
                "int8_steps": steps,
                "artifacts": artifacts,
            }
        )
        return
    if imported:
        echo(
            f"imported {imported['source']['format']} model -> {imported['path']} "
            f"(outputs match the original within {imported['rebuilt_max_abs_difference']:.1g})"
        )
    if result.folded_path:
        echo(f"folded {result.folded_layers} BatchNorm layers -> {result.folded_path}")
    for step in result.int8_steps:
        echo(f"{step.name}: " + "; ".join(f"{fmt} {m.summary()}" for fmt, m in step.measurements.items()))
        for fmt, m in step.detail.get("not_kept", {}).items():
            echo(f"  {fmt}: the QAT file did worse (agreement {m['agreement']:.1%}), so it is converted as before")
    if result.optimized_path:
        echo(f"int8 steps' model -> {result.optimized_path}")
    for a in artifacts:
        echo(f"wrote {a['path']} ({a['format']} {a['precision']}, {a['size_bytes']:,} bytes)")


@main.command()
@click.argument("artifact", type=file_path)
@data_option
@click.option("--reference", type=file_path, default=None, help="Model to compare with (agreement, accuracy drop).")
@max_drop_option
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Interpreter threads.")
@device_option
@click.option(
    "--target",
    default=None,
    metavar="NAME|ssh://[USER@]HOST[:PORT]",
    help="Run on an ARM target and compare with the host: arm64-pi4, arm64-pi5, armv7-pi (emulated) or a board over SSH.",
)
@click.option("--python", "board_python", default="python3", show_default=True, help="Python interpreter on an ssh:// board.")
@trust_model_option
@model_facts_options
@json_option
def validate(
    artifact, data, reference, max_drop, threads, device, target, board_python, trust_model, labels_path, norm, mean, std, as_json
):
    """Top-1 accuracy of ARTIFACT on the test split; exit 1 if it drops more than --max-drop.

    ARTIFACT may come from elsewhere (a .tflite or .onnx without edgecnn metadata): give --data,
    and --labels and --norm or --mean/--std where the file does not say them.
    """
    if target:
        if reference is not None or device != "cpu":
            raise click.UsageError(
                "--target compares the target with the host; it cannot be combined with --reference or --device"
            )
        from .targets import validate_on_target

        return validate_on_target(artifact, target, board_python, data, threads, max_drop, as_json)
    from ..data import dataset_for
    from ..data.split_file import split_beside
    from ..evaluate import load_predictor
    from ..evaluate import validate as run_validation

    with quiet_stdout(as_json):
        facts = model_facts(labels_path, norm, mean, std, data)
        predictor = load_predictor(artifact, num_threads=threads, device=device, trust_model=trust_model, facts=facts)
        if reference is not None:
            reference = load_predictor(reference, trust_model=trust_model)
        test = dataset_for(predictor.metadata, data, split_beside(artifact)).test.load()
        result = run_validation(predictor, test.images, test.labels, reference=reference, max_drop=max_drop)
    if as_json:
        emit_json(result.to_dict())
    else:
        line = f"{result.name}: accuracy {result.accuracy:.2%} on {result.samples} test images ({result.backend})"
        if result.agreement is not None:
            line += (
                f"; agreement {result.agreement:.2%}, drop {result.accuracy_drop:+.2f} points vs {Path(result.reference).name}"
            )
        echo(line)
    if not result.passed:
        echo(f"Error: accuracy dropped {result.accuracy_drop:.2f} points, more than --max-drop {max_drop}", err=True)
        raise SystemExit(1)


@main.command()
@data_option
@arch_option
@img_size_option
@epochs_option
@formats_option()
@io_option
@calib_size_option
@calib_method_option
@onnx_format_option
@rgb_option(RunConfig.rgb)
@max_drop_option
@seed_option
@cache_option
@out_dir_option
@json_option
def run(
    data, arch, img_size, epochs, formats, io, calib_size, calib_method, onnx_format, rgb, max_drop, seed, cache_dir, out, as_json
):
    """Train -> fold -> export -> validate every artifact; writes report.json and report.md."""
    from ..evaluate.report import text_table
    from ..run import run as run_pipeline

    config = RunConfig(
        data=data or RunConfig.data,
        arch=arch,
        img_size=img_size,
        epochs=epochs,
        out=out,
        seed=seed,
        formats=formats,
        io=io,
        calib_size=calib_size,
        calib_method=calib_method,
        onnx_format=onnx_format,
        rgb=rgb,
        max_drop=max_drop,
        cache=cache_dir,
    )
    with quiet_stdout(as_json):
        report = run_pipeline(config)
    failed = [a["name"] for a in report["artifacts"] if not a["passed"]]
    if as_json:
        emit_json(report)
    else:
        echo(text_table(report["artifacts"]))
        echo(f"\nreport: {config.out_dir / 'report.md'} ({report['seconds']:.0f} s)")
    if failed:
        echo(f"Error: {', '.join(failed)} dropped more than {max_drop} points of accuracy", err=True)
        raise SystemExit(1)


@main.command()
@click.argument("model", type=file_path)
@click.option("--reference", type=file_path, required=True, help="The float model of the same format MODEL was quantized from.")
@data_option
@click.option(
    "--samples",
    default=DEFAULT_SAMPLES,
    show_default=True,
    type=click.IntRange(min=1, max=10_000),
    help="Test images to compare on.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also draw the SQNR per layer (PNG).",
)
@json_option
def debug(model, reference, data, samples, plot_path, as_json):
    """Where int8 goes wrong: every quantized tensor of MODEL against REFERENCE, worst first.

    Prints each layer's SQNR against the float model, the median channel's SQNR on the
    tensor's own int8 grid (low: one scale cannot hold the tensor's channels), its scale and
    ranges. Runs on the runtimes alone (.tflite or .onnx).
    """
    from .. import runtime
    from ..data import dataset_for
    from ..data.split_file import split_beside
    from ..quantize.layer_error import check_formats, damaged_layers, layer_errors, markdown_table, plot

    check_formats(model, reference)
    with quiet_stdout(as_json):
        meta = runtime.load(model).metadata
        images = dataset_for(meta, data, split_beside(model)).test.load().images
        errors = layer_errors(model, reference, images, samples)
        if plot_path:
            plot(errors, plot_path, f"{model.name} against {reference.name}")
    damaged = damaged_layers(errors)
    if as_json:
        emit_json({"model": str(model), "reference": str(reference), "damaged": damaged, "layers": [e.to_dict() for e in errors]})
        return
    echo(markdown_table(errors))
    echo(f"\ndamaged: {', '.join(damaged)}" if damaged else "\nno layer's int8 grid damages its channels")
