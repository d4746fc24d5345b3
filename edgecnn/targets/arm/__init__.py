"""ARM targets: validate int8 models on ARM kernels, emulated or on a real board over SSH.

    from edgecnn.targets import arm
    arm.setup("arm64")                                        # once; cached
    result = arm.validate_emulated("model_int8.tflite", "arm64-pi5")
    result = arm.validate_remote("model_int8.tflite", "ssh://pi@raspberrypi.local")
    print(result.agreement, result.max_abs_diff_lsb)

Emulation uses qemu's user-mode emulators, a Debian sysroot and ARM wheels, all set up
in a cache folder by :func:`setup` (``edgecnn targets setup arm64|armhf``). A board needs
Python with numpy, flatbuffers and ai-edge-litert or tflite-runtime; edgecnn's runtime
is copied over for each run and removed afterwards.
"""

from .compare import Comparison, compare, lsb_diff
from .emulate import validate_emulated
from .env import ARCHES, ArmEnv, SetupResult, cache_dir, load_env, setup, status
from .protocol import DeviceRunError
from .ssh import validate_remote
from .targets import EMULATED_TARGETS, EmulatedTarget, SshTarget, parse_ssh_url, parse_target
from .tools import SetupError
from .validation import TargetValidation


def validate_on(artifact, target, **options) -> TargetValidation:
    """Validate on an emulated target name or an ``ssh://`` board."""
    parsed = parse_target(target) if isinstance(target, str) else target
    if isinstance(parsed, SshTarget):
        return validate_remote(artifact, parsed, **options)
    options.pop("python", None)
    options.pop("runs", None)
    options.pop("warmup", None)
    return validate_emulated(artifact, parsed, **options)


__all__ = [
    "ARCHES",
    "ArmEnv",
    "Comparison",
    "DeviceRunError",
    "EMULATED_TARGETS",
    "EmulatedTarget",
    "SetupError",
    "SetupResult",
    "SshTarget",
    "TargetValidation",
    "cache_dir",
    "compare",
    "load_env",
    "lsb_diff",
    "parse_ssh_url",
    "parse_target",
    "setup",
    "status",
    "validate_emulated",
    "validate_on",
    "validate_remote",
]
