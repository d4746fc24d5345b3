"""Edgecnn models changed so that the float function stays and plain int8 fails: the cases the
int8 checks and repairs are tested on."""

import numpy as np

#: The issue's case: one channel of the pointwise half of these separable convs x1000, the
#: matching depthwise channel of the next one /1000.
RESCALED = (("block1_sepconv1", "block1_sepconv2"), ("block2_sepconv1", "block2_sepconv2"))


def rescaled(src, dst, scales):
    """Save a copy of the edgecnn model `src` with `scales(pair)` applied to the named pairs (or all)."""
    from edgecnn.keras_file import load_with_metadata, save_with_metadata
    from edgecnn.quantize.equalize import channel_pairs

    model, meta = load_with_metadata(src)
    for pair in channel_pairs(model):
        s = scales(pair)
        if s is not None:
            pair.scale(s)
    save_with_metadata(model, dst, meta)
    return dst


def one_channel_x1000(pair):
    if (pair.producer, pair.consumer) not in RESCALED:
        return None
    s = np.ones(len(pair.output.ranges()))
    s[0] = 1e-3  # the producer's channel divided by s: x1000
    return s


def offset_model_files(src, folder):
    """The folded digits model with one channel of block1's separable-conv branch +1000 and the same
    channel of its residual branch -1000: the sum is unchanged, and no rescaling of weights undoes it.

    Saved as a plain Keras file, as a user brings one, with unlabeled calibration images and a
    labels file: with no labelled data, quantization-aware training cannot run either.
    """
    from edgecnn.data import load_dataset
    from edgecnn.keras_file import load_with_metadata

    model, meta = load_with_metadata(src)
    for name, shift in (("block1_sepconv2", 1000.0), ("block1_residual", -1000.0)):
        bias = model.get_layer(name).weights[-1]
        values = bias.numpy()
        values[0] += shift
        bias.assign(values)
    folder.mkdir(exist_ok=True)
    model.save(folder / "offset.keras")
    np.save(folder / "calib.npy", load_dataset("digits", seed=0).train.images[:300])
    (folder / "labels.txt").write_text("\n".join(meta.labels) + "\n")
    return folder
