"""Where a model runs: ``cpu`` or a Coral Edge TPU (``edgetpu``, ``edgetpu:usb:0``, ``edgetpu:pci``).

The Edge TPU runs models compiled by ``edgetpu_compiler`` through the TFLite delegate in
``libedgetpu`` (Coral's runtime package ``libedgetpu1-std``), loaded with the interpreter
backend's ``load_delegate``.
"""

from __future__ import annotations

import ctypes
import platform
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import ConfigError, EdgecnnError, MissingDependencyError, first_line

#: The delegate library on each system, as Coral names it.
EDGETPU_LIBRARIES = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
#: The op edgetpu_compiler puts in a compiled model.
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
RUNTIME_HINT = (
    "install the Edge TPU runtime: on Debian, Ubuntu or Raspberry Pi OS add Coral's apt repository and "
    "`sudo apt-get install libedgetpu1-std`; on macOS or Windows use the runtime from "
    "https://coral.ai/docs/accelerator/get-started/"
)

_DEVICE = re.compile(r"^(cpu|edgetpu)(?::(usb|pci)(?::(\d+))?|:(\d+))?$")


class DeviceError(EdgecnnError):
    """The requested accelerator is not attached or not usable."""


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" | "edgetpu"
    #: libedgetpu's device string: "usb", "usb:0", "pci:1", ":0" (the first Edge TPU of any kind); None: any.
    address: Optional[str] = None

    def __str__(self) -> str:
        return self.kind if self.address is None else f"{self.kind}:{self.address.lstrip(':')}"

    @property
    def is_edgetpu(self) -> bool:
        return self.kind == "edgetpu"


CPU = Device("cpu")


def parse_device(text: Optional[str]) -> Device:
    """``None``/"cpu" -> CPU; "edgetpu", "edgetpu:usb", "edgetpu:usb:0", "edgetpu:pci:1", "edgetpu:0"."""
    if text is None or isinstance(text, Device):
        return text or CPU
    m = _DEVICE.match(str(text).strip().lower())
    if not m or (m.group(1) == "cpu" and (m.group(2) or m.group(4))):
        raise ConfigError(f"unknown device {text!r}; use cpu, edgetpu, edgetpu:usb, edgetpu:usb:0 or edgetpu:pci:0")
    if m.group(1) == "cpu":
        return CPU
    if m.group(2):
        address = m.group(2) + (f":{m.group(3)}" if m.group(3) else "")
    else:
        address = f":{m.group(4)}" if m.group(4) else None
    return Device("edgetpu", address)


def edgetpu_library(system: Optional[str] = None) -> str:
    return EDGETPU_LIBRARIES.get(system or platform.system(), EDGETPU_LIBRARIES["Linux"])


def load_edgetpu_delegate(device: Device, library: Optional[str] = None):
    """The Edge TPU delegate for `device`; clear errors when the library or the device is missing."""
    from .interpreters import load_delegate

    library = library or edgetpu_library()
    try:
        ctypes.CDLL(library)
    except OSError as exc:
        raise MissingDependencyError(
            f"the Edge TPU runtime library {library} could not be loaded ({exc}); {RUNTIME_HINT}"
        ) from None
    options = {"device": device.address} if device.address else {}
    try:
        return load_delegate(library, options)
    except (ValueError, RuntimeError, OSError) as exc:
        first = first_line(exc)
        which = f"at {device.address.lstrip(':')}" if device.address else "attached"
        raise DeviceError(
            f"{library} loaded but found no Edge TPU {which} ({first}): plug in the Coral USB Accelerator "
            "(`lsusb` lists 1a6e:089a or 18d1:9302) or check the PCIe driver (/dev/apex_0), make sure your user may "
            "access it (Coral's udev rules, the plugdev group), and that no other process holds it"
        ) from None


def is_compiled_for_edgetpu(model) -> bool:
    """Whether a parsed TFLite model holds an edgetpu_compiler custom op."""
    return any(code.custom_code == EDGETPU_CUSTOM_OP for code in model.operator_codes)
