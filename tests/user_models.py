"""Models as users bring them, built with their own tools: Keras 3, tf_keras, TF's converter, tf2onnx."""

import numpy as np
from PIL import Image

SIZE = 32


def digits_rgb():
    from edgecnn.data.digits import digits_arrays

    return digits_arrays(SIZE, 3)


def write_folder(root, images, labels, names):
    """A data folder of PNGs in one subfolder per class, as a user's data set is."""
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:04d}.png")
    return root


def keras3_mini_xception(head: str = "softmax", classes: int = 10):
    """The textbook mini-Xception, written with `import keras` (Keras 3): Rescaling inside,
    residual blocks of separable convolutions, BatchNormalization at Keras' default momentum."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(SIZE, SIZE, 3))
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(32, 5, use_bias=False)(x)
    for size in (32, 64, 128):
        residual = x
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same", use_bias=False)(residual)
        x = layers.add([x, residual])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)
    units, activation = (1, "sigmoid") if head == "sigmoid" else (classes, "softmax")
    return keras.Model(inputs, layers.Dense(units, activation=activation)(x))


def train_keras3(model, images, labels, epochs=3, binary=False):
    loss = "binary_crossentropy" if binary else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    model.fit(images, labels.astype("float32") if binary else labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def tf_keras_classifier(classes: int = 10):
    """A small tf_keras (Keras 2) classifier with a training-only noise layer and a Normalization layer inside, logits out."""
    from edgecnn.tf import keras

    k = keras()
    k.utils.set_random_seed(0)
    inputs = k.Input((SIZE, SIZE, 3))
    x = k.layers.GaussianNoise(4.0, name="noise")(inputs)
    x = k.layers.Normalization(mean=[127.5] * 3, variance=[127.5**2] * 3, name="norm")(x)
    for i, filters in enumerate((32, 64, 96)):
        x = k.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = k.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = k.layers.ReLU(name=f"relu{i}")(x)
    x = k.layers.GlobalAveragePooling2D(name="pool")(x)
    return k.Model(inputs, k.layers.Dense(classes, name="logits")(x))


def train_tf_keras(model, images, labels, epochs=12):
    from edgecnn.tf import keras

    k = keras()
    model.compile(k.optimizers.Adam(3e-3), k.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(images.astype(np.float32), labels, epochs=epochs, batch_size=32, verbose=0)
    return model


def converted_tflite(model, images=None) -> bytes:
    """TensorFlow's own converter at batch 1: float, or full-int8 with uint8 input and output."""
    from edgecnn.tf import tensorflow

    tf = tensorflow()
    spec = tf.TensorSpec((1, SIZE, SIZE, 3), tf.float32)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
    if images is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([images[i : i + 1].astype(np.float32)] for i in range(len(images)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.uint8
    return converter.convert()


def converted_onnx(model, path):
    import tf2onnx

    from edgecnn.tf import tensorflow

    tf = tensorflow()
    tf2onnx.convert.from_keras(
        model, input_signature=(tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="image"),), output_path=str(path)
    )
    return path
