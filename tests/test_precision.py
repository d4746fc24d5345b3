"""bf16 mixed-precision training: refused where the CPU lacks it, float32 in everything saved."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.errors import ConfigError
from edgecnn.train.precision import BF16_FLAGS, check_bf16_supported, with_policy

HAS_BF16 = bool(set(Path("/proc/cpuinfo").read_text().split()) & set(BF16_FLAGS)) if Path("/proc/cpuinfo").exists() else False


def test_bf16_is_refused_on_a_cpu_without_it(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    with pytest.raises(ConfigError, match="--precision bf16 needs a CPU with avx512_bf16 or amx_bf16.*--precision fp32"):
        check_bf16_supported(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    check_bf16_supported(cpuinfo)


def test_the_policy_round_trip_keeps_weights_and_float32_logits():
    from edgecnn.nets import create_model

    model = create_model("xception-pico", (32, 32, 1), 4)
    mixed = with_policy(model, "mixed_bfloat16")
    assert mixed.get_layer("stem_conv1").compute_dtype == "bfloat16" and mixed.get_layer("stem_conv1").dtype == "float32"
    assert mixed.get_layer("logits").compute_dtype == "float32"
    back = with_policy(mixed, "float32")
    assert {layer.compute_dtype for layer in back.layers} == {"float32"}
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_allclose(back.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(mixed.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-7, atol=0)  # it did compute in bf16


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no bfloat16 arithmetic")
def test_bf16_training_saves_a_float32_model(tmp_path):
    from edgecnn.keras_file import load_keras_model

    result = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            "digits",
            "--arch",
            "xception-pico",
            "--epochs",
            "2",
            "--precision",
            "bf16",
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "train.json").read_text())["config"]["precision"] == "bf16"
    saved = load_keras_model(tmp_path / "model.keras")
    assert {layer.compute_dtype for layer in saved.layers} == {"float32"}
    assert json.loads(result.stdout)["val_accuracy"] > 0.3
