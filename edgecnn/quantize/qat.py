"""Quantization-aware training with tensorflow-model-optimization: a short fine-tune of the
float model with int8 rounding simulated, learning the float model's own logits, so that its
weights and ranges suit int8 and it stays the model it was.

tfmot takes the folded tf_keras model once each ReLU sits in the layer before it (see
fuse_relu); it splits each SeparableConv2D into its depthwise and pointwise halves itself,
and with BatchNorm folded there is nothing else to rewrite. Its activation ranges start at [-6, 6] and its input range at [0, 0], and move
by an average with decay 0.999: a short fine-tune would end with logits clipped at +-6.
One pass over the calibration images with decay 0 first sets every range to what PTQ
would measure, and training refines them from there.
"""

from __future__ import annotations

import contextlib
import time

#: Epochs of the fine-tune, and its learning rate: low, to keep a trained model where it is. On the
#: default digits model 2 epochs at 1e-4 on the labels lost 3 of 359 test images against PTQ.
DEFAULT_QAT_EPOCHS = 2
MAX_QAT_EPOCHS = 1000
LEARNING_RATE = 3e-5


def tfmot():
    """tensorflow_model_optimization, imported after TensorFlow is set up for Keras 2."""
    from ..errors import MissingDependencyError
    from ..tf import tensorflow

    tensorflow()
    try:
        import tensorflow_model_optimization
    except ImportError as exc:
        raise MissingDependencyError(
            f'tensorflow-model-optimization is not installed ({exc}); pip install "edgecnn[train]"'
        ) from None
    return tensorflow_model_optimization


@contextlib.contextmanager
def _ranges_from_one_pass():
    # tfmot has no option for the initial ranges; its range update reads this factory on every call.
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize

    def without_averaging(*args, **kwargs):
        return original(*args, **{**kwargs, "ema_decay": 0.0})

    quant_ops.MovingAvgQuantize = without_averaging
    try:
        yield
    finally:
        quant_ops.MovingAvgQuantize = original


def _set_ranges(qmodel, pixels) -> None:
    """Every activation range from one training-mode pass (dropout off) over `pixels`."""
    from ..tf import tensorflow

    dropouts = [
        getattr(layer, "layer", layer) for layer in qmodel.layers if type(getattr(layer, "layer", layer)).__name__ == "Dropout"
    ]
    rates = [d.rate for d in dropouts]
    try:
        for d in dropouts:
            d.rate = 0.0
        with _ranges_from_one_pass():
            qmodel(tensorflow().constant(pixels), training=True)  # eager, so the factory above is the one called
    finally:
        for d, rate in zip(dropouts, rates):
            d.rate = rate


#: Layers whose output a following Activation('relu') can move into.
_LINEAR = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D", "Dense")


def fuse_relu(model):
    """`model` with each Activation('relu') that alone reads a linear layer moved into that layer.

    tfmot gives a linear layer followed by a separate ReLU a no-op quantize config: its kernel
    would train without int8 rounding (in edgecnn's models the stem and three pointwise convs)
    and be quantized only afterwards. With the ReLU inside, tfmot quantizes the kernel and the
    post-ReLU output: what TFLite fuses. The function is the same (weights are copied by name).
    """
    from ..tf import keras

    config = model.get_config()
    layers = config["layers"]
    by_name = {layer["name"]: layer for layer in layers}
    consumers: dict[str, list[str]] = {}
    for layer in layers:
        for node in layer["inbound_nodes"]:
            for inbound in node:
                consumers.setdefault(inbound[0], []).append(layer["name"])
    outputs = {o[0] for o in config["output_layers"]}
    moved = {}
    for layer in list(layers):
        nodes = layer["inbound_nodes"]
        if (
            layer["class_name"] != "Activation"
            or layer["config"]["activation"] != "relu"
            or len(nodes) != 1
            or len(nodes[0]) != 1
        ):
            continue
        source = by_name[nodes[0][0][0]]
        if (
            source["class_name"] in _LINEAR
            and source["config"].get("activation") == "linear"
            and consumers[source["name"]] == [layer["name"]]
            and source["name"] not in outputs
        ):
            source["config"]["activation"] = "relu"
            layers.remove(layer)
            moved[layer["name"]] = source["name"]
    if not moved:
        return model
    for layer in layers:
        for node in layer["inbound_nodes"]:
            for inbound in node:
                inbound[0] = moved.get(inbound[0], inbound[0])
    config["output_layers"] = [[moved.get(o[0], o[0]), *o[1:]] for o in config["output_layers"]]
    fused = keras().Model.from_config(config)
    for layer in fused.layers:
        layer.set_weights(model.get_layer(layer.name).get_weights())
    return fused


def _quantize(model, preserve: str | None):
    """tfmot's QAT model; `preserve` "sparsity" or "clusters" keeps what pruning or clustering made."""
    t = tfmot()
    if preserve is None:
        return t.quantization.keras.quantize_model(model)
    schemes = {
        "sparsity": t.experimental.combine.Default8BitPrunePreserveQuantizeScheme,
        "clusters": t.experimental.combine.Default8BitClusterPreserveQuantizeScheme,
    }
    annotated = t.quantization.keras.quantize_annotate_model(model)
    return t.quantization.keras.quantize_apply(annotated, schemes[preserve]())


def _best_agreement(qmodel, teacher, data, output: str):
    """A callback that keeps the weights (ranges included) of the epoch whose validation top-1
    agrees most with the float model, counting the start as epoch 0: a fine-tune that does not
    help on held-out images is undone. On the default digits model, without it, 2 epochs lost
    1 of 359 test images against PTQ in some runs."""
    from ..tf import keras
    from .tuning import validation_top

    def top(m):
        return validation_top(m, data, output)[0]

    class BestAgreement(keras().callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.best, self.best_epoch, self._weights, self._target = None, 0, None, None

        def _measure(self, epoch):
            if len(data.val) == 0:
                return
            agreement = float((top(qmodel) == self._target).mean())
            if self.best is None or agreement > self.best:
                self.best, self.best_epoch, self._weights = agreement, epoch, qmodel.get_weights()

        def on_train_begin(self, logs=None):
            self._target = top(teacher) if len(data.val) else None
            self._measure(0)

        def on_epoch_end(self, epoch, logs=None):
            self._measure(epoch + 1)

        def on_train_end(self, logs=None):
            if self._weights is not None:
                qmodel.set_weights(self._weights)

    return BestAgreement()


def quantization_aware(model, meta, options, calibration, preserve: str | None = None):
    """A tfmot QAT copy of the float `model`, fine-tuned on the data set; returns (model, report)."""
    from ..train.onednn import trainable_form
    from .tuning import fine_tune, training_data, validation_accuracy

    started = time.perf_counter()
    data = training_data(meta, options, "--qat")
    qmodel = _quantize(fuse_relu(trainable_form(model)), preserve)
    _set_ranges(qmodel, meta.normalization.apply(calibration.images))
    before = validation_accuracy(qmodel, data, meta.output)
    # The float model's logits are the targets, not the labels: what QAT is for is agreeing with it.
    # Measured (2 epochs, 3e-5): xception-micro on shapes 64x64 agreed 99.6% with float this way,
    # 99.0% trained on the labels; the digits model 100% and 99.7%.
    best = _best_agreement(qmodel, model, data, meta.output)
    after = fine_tune(qmodel, data, meta.output, options.qat_epochs, LEARNING_RATE, callbacks=[best], teacher=model)
    return qmodel, {
        "epochs": options.qat_epochs,
        "preserves": preserve,
        "data": data.name,
        "val_accuracy_before": before,
        "val_accuracy": after,
        "best_epoch": best.best_epoch,
        "val_agreement": best.best,
        "seconds": round(time.perf_counter() - started, 1),
    }
