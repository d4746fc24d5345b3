"""Mixed-precision bfloat16 training on CPUs that compute it natively.

Keras' ``mixed_bfloat16`` policy computes in bfloat16 and keeps every variable in float32;
the logits layer stays float32, as Keras advises for the loss. The model is rebuilt in float32
(same weights) before its BatchNorm statistics are re-estimated and it is saved, so nothing
after training sees bfloat16.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError

#: /proc/cpuinfo flags of a CPU with bfloat16 arithmetic (without them TensorFlow emulates it, slower than float32).
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def check_bf16_supported(cpuinfo: Path = Path("/proc/cpuinfo")) -> None:
    try:
        flags = set(cpuinfo.read_text().split())
    except OSError:
        flags = set()
    if not flags & set(BF16_FLAGS):
        raise ConfigError(
            f"--precision bf16 needs a CPU with {' or '.join(BF16_FLAGS)} (this one has neither, and would "
            "emulate bfloat16 slower than float32); use --precision fp32"
        )


def with_policy(model, policy: str):
    """`model` rebuilt with every layer under the dtype `policy` (the outputs' layers in float32), same weights."""
    from ..tf import keras

    config = model.get_config()
    functional = "output_layers" in config
    last = config["layers"][-1]["config"]["name"]
    _set(config, policy, {name for name, *_ in config["output_layers"]} if functional else {last})
    rebuilt = keras().Model.from_config(config) if functional else keras().Sequential.from_config(config)
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def _set(config: dict, policy: str, float32: set) -> None:
    for layer in config["layers"]:
        inner = layer["config"]
        if "layers" in inner:  # a nested model: all of it under the policy
            _set(inner, policy, set())
        elif layer["class_name"] != "InputLayer":
            inner["dtype"] = "float32" if inner["name"] in float32 else policy
