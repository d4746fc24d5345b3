"""Debian packages for a foreign architecture through apt with a private configuration.

Nothing here touches the host's apt state: the sources, lists, package cache and an
empty dpkg status file live under one folder of our own, and apt reads none of the
host's ``apt.conf.d`` hooks. Only the mirror (and its keyring) is taken from the host's
sources, so a machine behind a local mirror keeps using it. Packages are only
downloaded (``--download-only``); maintainer scripts never run.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence
from urllib.parse import urlsplit

from ...errors import EdgecnnError

#: Debian release of the sysroots: Raspberry Pi OS 12 is based on it, with Python 3.11.
RELEASE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY = "http://deb.debian.org/debian-security"
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
HOST_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))

#: Host apt options worth keeping (proxies, timeouts, snapshot mirrors' date checks).
_CARRIED_OPTIONS = re.compile(r"^Acquire::(https?|ftp)::|^Acquire::(Check-Valid-Until|Check-Date|Retries|ForceIPv4|ForceIPv6)\b")


class AptError(EdgecnnError):
    """apt could not fetch what a sysroot needs."""


@dataclass(frozen=True)
class AptSource:
    """One deb822 source entry (a one-line ``deb`` entry converts to one of these)."""

    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...] = ("main",)
    signed_by: Optional[str] = None
    types: tuple[str, ...] = ("deb",)
    enabled: bool = True

    def render(self) -> str:
        lines = [
            f"Types: {' '.join(self.types)}",
            f"URIs: {' '.join(self.uris)}",
            f"Suites: {' '.join(self.suites)}",
            f"Components: {' '.join(self.components)}",
        ]
        if self.signed_by:
            value = self.signed_by.rstrip("\n").split("\n")
            # A multi-line value (an inline key) continues on lines that start with a space.
            first = f" {value[0]}" if value[0] else ""
            lines.append("Signed-By:" + first + "".join(f"\n {v.strip() or '.'}" for v in value[1:]))
        return "\n".join(lines) + "\n"


def parse_one_line(text: str) -> list[AptSource]:
    """Entries of a one-line-style ``sources.list``."""
    sources = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        options: dict[str, str] = {}
        match = re.match(r"^(deb|deb-src)\s+\[([^\]]*)\]\s+(.*)$", line)
        if match:
            kind, opts, rest = match.groups()
            for item in opts.split():
                key, _, value = item.partition("=")
                options[key.lower()] = value
        else:
            kind, _, rest = line.partition(" ")
            if kind not in ("deb", "deb-src"):
                continue
        words = rest.split()
        if len(words) < 2:
            continue
        sources.append(
            AptSource(
                uris=(words[0],),
                suites=(words[1],),
                components=tuple(words[2:]),
                signed_by=options.get("signed-by"),
                types=(kind,),
            )
        )
    return sources


def parse_deb822(text: str) -> list[AptSource]:
    """Entries of a deb822-style ``.sources`` file."""
    sources = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for raw in paragraph.splitlines():
            if raw.startswith("#"):
                continue
            if raw[:1] in (" ", "\t") and key:
                fields[key] += "\n" + ("" if raw.strip() == "." else raw.strip())
                continue
            name, sep, value = raw.partition(":")
            if not sep:
                continue
            key = name.strip().lower()
            fields[key] = value.strip()
        if not fields.get("uris") or not fields.get("suites"):
            continue
        sources.append(
            AptSource(
                uris=tuple(fields["uris"].split()),
                suites=tuple(fields["suites"].split()),
                components=tuple(fields.get("components", "").split()),
                signed_by=fields.get("signed-by") or None,
                types=tuple(fields.get("types", "deb").split()),
                enabled=fields.get("enabled", "yes").lower() not in ("no", "false", "0"),
            )
        )
    return sources


def host_sources(paths: Sequence[Path] = HOST_SOURCES) -> list[AptSource]:
    """The host's enabled apt sources (``sources.list`` and ``sources.list.d/*.{list,sources}``)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".list", ".sources"))
        elif path.is_file():
            files.append(path)
    found: list[AptSource] = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        found += parse_deb822(text) if path.suffix == ".sources" else parse_one_line(text)
    return [s for s in found if s.enabled]


def _archive_kind(uri: str) -> Optional[str]:
    """'debian' or 'debian-security' for a URI of a Debian archive (or a mirror, proxy or snapshot of one)."""
    parts = [p for p in urlsplit(uri).path.split("/") if p]
    if "debian-security" in parts:
        return "debian-security"
    if "debian" in parts:
        return "debian"
    return None


def derive_sources(
    host: Iterable[AptSource],
    release: str = RELEASE,
    suites: Sequence[str] = ("", "-updates", "-security"),
    keyring: str = DEFAULT_KEYRING,
) -> list[AptSource]:
    """Sources for `release` on the host's Debian mirrors (deb.debian.org if it has none).

    `suites` are suffixes of `release`: ``""`` (the release), ``"-updates"``, ``"-backports"``
    come from the main archive, ``"-security"`` from the security archive. Entries of other
    vendors (Ubuntu, third-party repositories) are never used.
    """
    mirrors: dict[str, tuple[str, Optional[str]]] = {}
    for source in host:
        if "deb" not in source.types:
            continue
        for uri in source.uris:
            kind = _archive_kind(uri)
            if kind and kind not in mirrors:
                mirrors[kind] = (uri.rstrip("/"), source.signed_by)
    default_key = keyring if Path(keyring).is_file() else None
    result = []
    for kind, default in (("debian", DEFAULT_MIRROR), ("debian-security", DEFAULT_SECURITY)):
        wanted = [release + s for s in suites if (s == "-security") == (kind == "debian-security")]
        if not wanted:
            continue
        uri, signed_by = mirrors.get(kind, (default, None))
        result.append(AptSource(uris=(uri,), suites=tuple(wanted), components=("main",), signed_by=signed_by or default_key))
    return result


def host_acquire_options(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[str]:
    """``Key "value";`` lines of the host's apt configuration to carry over (proxies, date checks)."""
    try:
        dump = run(["apt-config", "dump"], capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line for line in dump.splitlines() if _CARRIED_OPTIONS.match(line) and line.rstrip().endswith(";")]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class AptRoot:
    """A private apt state for one architecture: ``root/{etc,state,cache,log}``."""

    root: Path
    arch: str
    sources: tuple[AptSource, ...]
    carried: tuple[str, ...] = field(default=())

    @property
    def config_path(self) -> Path:
        return self.root / "etc" / "apt.conf"

    @property
    def archives(self) -> Path:
        return self.root / "cache" / "archives"

    def config_text(self) -> str:
        r = self.root
        options = {
            "Dir::Etc::main": "/dev/null",
            "Dir::Etc::parts": r / "etc" / "apt.conf.d",
            "Dir::Etc::sourcelist": r / "etc" / "sources.list",
            "Dir::Etc::sourceparts": r / "etc" / "sources.list.d",
            "Dir::Etc::preferences": r / "etc" / "preferences",
            "Dir::Etc::preferencesparts": r / "etc" / "preferences.d",
            "Dir::State": r / "state",
            "Dir::State::lists": r / "state" / "lists",
            "Dir::State::status": r / "state" / "status",
            "Dir::State::extended_states": r / "state" / "extended_states",
            "Dir::Cache": r / "cache",
            "Dir::Cache::archives": self.archives,
            # No binary caches, compressed lists: the cache folder stays small.
            "Dir::Cache::pkgcache": "",
            "Dir::Cache::srcpkgcache": "",
            "Acquire::GzipIndexes": "true",
            "Dir::Log": r / "log",
            "APT::Architecture": self.arch,
            "APT::Install-Recommends": "false",
            "APT::Install-Suggests": "false",
            "Acquire::Languages": "none",
        }
        lines = [f"{key} {_quote(str(value))};" for key, value in options.items()]
        lines.append(f"APT::Architectures {{ {_quote(self.arch)}; }};")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            # The download sandbox user cannot enter a private cache under /root; stay root.
            lines.append('APT::Sandbox::User "root";')
        lines += list(self.carried)
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        for sub in (
            "etc/apt.conf.d",
            "etc/sources.list.d",
            "etc/preferences.d",
            "state/lists/partial",
            "cache/archives/partial",
            "log",
        ):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "etc" / "sources.list").write_text("")
        (self.root / "etc" / "sources.list.d" / "debian.sources").write_text("\n".join(s.render() for s in self.sources))
        status = self.root / "state" / "status"
        if not status.exists():
            status.write_text("")
        self.config_path.write_text(self.config_text())

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APT_")}
        env.update(APT_CONFIG=str(self.config_path), DEBIAN_FRONTEND="noninteractive", LC_ALL="C")
        return env

    def _apt(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                ["apt-get", "-q", *args], env=self.env(), check=False, capture_output=True, text=True, timeout=timeout
            )
        except FileNotFoundError:
            raise AptError("apt-get is not installed; ARM emulation needs a Debian or Ubuntu host") from None
        except subprocess.TimeoutExpired:
            raise AptError(f"apt-get {args[0]} took longer than {timeout:.0f} s; check the network and the mirror") from None

    def update(self, retries: int = 2) -> list[str]:
        """Fetch the package lists; returns apt's warnings (a list that failed to download is one)."""
        self.write()
        for _ in range(retries + 1):
            proc = self._apt("update", timeout=600)
            problems = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith(("E:", "W:", "Err:"))]
            if proc.returncode == 0:
                return problems
        if not any((self.root / "state" / "lists").glob("*_Packages*")):
            raise AptError(f"apt-get update failed for {self.arch}: {_last(problems or [proc.stderr])}")
        return problems  # some lists are usable; resolving the packages decides

    def download(self, packages: Sequence[str]) -> list[Path]:
        """Download `packages` and their dependencies for an empty system; returns the .deb files."""
        for old in self.archives.glob("*.deb"):
            old.unlink()
        proc = self._apt("install", "--download-only", "--yes", "--no-install-recommends", *packages)
        if proc.returncode != 0:
            raise AptError(f"apt could not download {' '.join(packages)} for {self.arch}: {_last([proc.stderr, proc.stdout])}")
        return sorted(self.archives.glob("*.deb"))

    def download_only(self, packages: Sequence[str]) -> list[Path]:
        """Download exactly `packages` (no dependencies), e.g. one statically linked tool."""
        for old in self.archives.glob("*.deb"):
            old.unlink()
        try:
            proc = subprocess.run(
                ["apt-get", "-q", "download", *packages],
                env=self.env(),
                cwd=self.archives,
                check=False,
                capture_output=True,
                text=True,
                timeout=600,
            )
        except FileNotFoundError:
            raise AptError("apt-get is not installed; ARM emulation needs a Debian or Ubuntu host") from None
        if proc.returncode != 0:
            raise AptError(f"apt could not download {' '.join(packages)}: {_last([proc.stderr, proc.stdout])}")
        return sorted(self.archives.glob("*.deb"))


def _last(texts: Sequence[str]) -> str:
    lines = [line.strip() for text in texts for line in (text or "").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(("E:", "Err:"))]
    return (errors or lines or ["no output"])[-1]
