"""ARM targets by name (emulated boards) and ``ssh://`` addresses (real boards)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Union
from urllib.parse import unquote, urlsplit

from ...errors import ConfigError


@dataclass(frozen=True)
class EmulatedTarget:
    """A board emulated in user mode: its Debian architecture and the CPU qemu emulates."""

    name: str
    arch: str  # "arm64" | "armhf" (an environment of edgecnn.targets.arm.env)
    cpu: str  # qemu -cpu model; the runtime picks its kernels from this CPU's features
    board: str

    @property
    def label(self) -> str:
        return self.name


#: The emulated boards. A Pi 4's Cortex-A72 lacks the dot-product instructions a Pi 5's
#: Cortex-A76 has, so int8 kernels differ between them; 32-bit Pi OS runs armv7 code.
EMULATED_TARGETS: dict[str, EmulatedTarget] = {
    t.name: t
    for t in (
        EmulatedTarget("arm64-pi4", "arm64", "cortex-a72", "Raspberry Pi 4, 64-bit OS (Cortex-A72, no dot product)"),
        EmulatedTarget("arm64-pi5", "arm64", "cortex-a76", "Raspberry Pi 5, 64-bit OS (Cortex-A76, dot product)"),
        EmulatedTarget("armv7-pi", "armhf", "cortex-a7", "Raspberry Pi, 32-bit Pi OS (armv7, Cortex-A7 NEON)"),
    )
}


@dataclass(frozen=True)
class SshTarget:
    """A real board reached with the system's OpenSSH client (``~/.ssh/config`` applies)."""

    host: str
    user: Optional[str] = None
    port: Optional[int] = None

    @property
    def destination(self) -> str:
        """What ssh takes as its destination argument (the port goes in ``-p``)."""
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"ssh://{user}{host}{port}"

    @property
    def name(self) -> str:
        return self.label


Target = Union[EmulatedTarget, SshTarget]
_HOST = re.compile(r"^[A-Za-z0-9._%-]+$")


def parse_ssh_url(text: str) -> SshTarget:
    """``ssh://[user@]host[:port]`` -> SshTarget; ConfigError quoting the value otherwise."""
    example = "ssh://pi@raspberrypi.local or ssh://pi@192.168.1.20:2222"
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ConfigError(f"{text!r} contains a control character; use e.g. {example}")
    try:
        parts = urlsplit(text.strip())
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for ssh://[::1
        raise ConfigError(f"{text!r} is not a valid ssh:// address ({exc}); use e.g. {example}") from None
    if parts.scheme != "ssh" or not parts.netloc:
        raise ConfigError(f"{text!r} is not an ssh:// address; use e.g. {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{text!r} has a path or query; an ssh target is only ssh://[user@]host[:port]")
    if parts.password is not None:
        raise ConfigError(f"{text!r} contains a password; use key authentication (ssh-copy-id) instead")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{text!r} has an invalid port; use a number from 1 to 65535") from None
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{text!r} has port {port}; use a number from 1 to 65535")
    host = parts.hostname or ""
    bracketed = "[" in parts.netloc
    if not host or (not bracketed and not _HOST.match(host)):
        raise ConfigError(f"{text!r} has no valid host name; use e.g. {example}")
    user = unquote(parts.username) if parts.username else None
    if user is not None and (not user or user.startswith("-") or any(c.isspace() for c in user)):
        raise ConfigError(f"{text!r} has an invalid user name {user!r}")
    if host.startswith("-"):
        raise ConfigError(f"{text!r} has an invalid host name {host!r}")
    # urlsplit lowercases the host; keep the spelling given (ssh config Host patterns are case-sensitive).
    netloc_host = parts.netloc.rpartition("@")[2]
    if not bracketed:
        original = netloc_host.rsplit(":", 1)[0] if port is not None or netloc_host.endswith(":") else netloc_host
        host = original or host
    return SshTarget(host=host, user=user, port=port)


def parse_target(text: str) -> Target:
    """A target name (``arm64-pi5``...) or an ``ssh://`` address; ConfigError listing the choices."""
    value = (text or "").strip()
    if value.lower().startswith("ssh:"):
        return parse_ssh_url(value)
    target = EMULATED_TARGETS.get(value.lower())
    if target is None:
        raise ConfigError(
            f"unknown target {text!r}; choose {', '.join(EMULATED_TARGETS)} (emulated) or ssh://user@host[:port] (a board)"
        )
    return target
