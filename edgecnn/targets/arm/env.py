"""The ARM emulation environment: qemu's user-mode emulators, Debian sysroots, ARM wheels.

Everything lives in one cache folder (``$EDGECNN_ARM_CACHE``, else
``~/.cache/edgecnn/arm``) and comes from Debian packages and PyPI wheels only:

- ``qemu/``: ``qemu-aarch64`` and ``qemu-arm`` from bookworm-backports' ``qemu-user``
  (10.x, statically linked; bookworm's 7.2 crashes in ai-edge-litert's CPU detection);
- ``arm64/``, ``armhf/``: a ``sysroot/`` unpacked from Debian's ``python3.11`` and its
  dependencies, and ``site/`` with the ARM wheels of the TFLite runtime; ``armhf/host-site/``
  holds the x86-64 build of the same runtime for the host side of a comparison.

Programs run as ``qemu-aarch64 -L SYSROOT -cpu CPU SYSROOT/usr/bin/python3.11 ...``: no
chroot, no binfmt_misc, no root. Setting up is idempotent: a finished environment is
described by ``ready.json`` and is reused until what it should contain changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

from .apt import RELEASE, AptRoot, derive_sources, host_acquire_options, host_sources
from .sysroot import (
    deb_field,
    dist_version,
    extract_from_deb,
    install_wheels,
    make_alternative_links,
    relativize_symlinks,
    requirement_name,
    unpack_deb,
)
from .tools import SetupError, run_tool

CACHE_ENV = "EDGECNN_ARM_CACHE"
#: Bumped when the layout or the recipe of an environment changes: older caches rebuild.
LAYOUT = 1
PYTHON_VERSION = "3.11"
QEMU_PACKAGE = "qemu-user"
QEMU_SUITE = f"{RELEASE}-backports"
#: tflite-runtime's last release; the only TFLite runtime with armv7l wheels. Needs numpy < 2.
TFLITE_RUNTIME = "tflite-runtime==2.14.0"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchRecipe:
    """What one Debian architecture's environment is made of."""

    arch: str  # Debian architecture
    machine: str  # what platform.machine() says on the device
    qemu: str  # emulator binary
    triplet: str
    debs: tuple[str, ...]  # Debian packages of the sysroot (dependencies follow)
    wheel_platform: str  # manylinux platform suffix of the wheels
    #: Wheels of the runtime, None = ai-edge-litert of the host's version (and its dependencies).
    wheels: Optional[tuple[str, ...]]
    #: For the host side: the same runtime in an isolated folder, when the host's differs.
    host_reference: Optional[tuple[str, ...]] = None
    #: The interpreter module the runner must find.
    runtime_module: str = "ai_edge_litert"


ARCHES: dict[str, ArchRecipe] = {
    "arm64": ArchRecipe(
        arch="arm64",
        machine="aarch64",
        qemu="qemu-aarch64",
        triplet="aarch64-linux-gnu",
        debs=("python3.11", "libstdc++6"),
        wheel_platform="aarch64",
        wheels=None,
    ),
    "armhf": ArchRecipe(
        arch="armhf",
        machine="armv7l",
        qemu="qemu-arm",
        triplet="arm-linux-gnueabihf",
        # PyPI has no armv7l numpy: Debian's (1.24) matches tflite-runtime's numpy < 2.
        debs=("python3.11", "libstdc++6", "python3-numpy"),
        wheel_platform="armv7l",
        wheels=(TFLITE_RUNTIME, "flatbuffers"),
        host_reference=(TFLITE_RUNTIME, "numpy<2", "flatbuffers"),
        runtime_module="tflite_runtime",
    ),
}
ALIASES = {"aarch64": "arm64", "armv7": "armhf", "armv7l": "armhf", "arm": "armhf"}


def arch_recipe(name: str) -> ArchRecipe:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in ARCHES:
        raise SetupError(f"unknown ARM architecture {name!r}; choose from {', '.join(ARCHES)}")
    return ARCHES[key]


def cache_dir(override: Optional[os.PathLike] = None) -> Path:
    """The cache folder: `override`, else ``$EDGECNN_ARM_CACHE``, else ``~/.cache/edgecnn/arm``."""
    if override:
        return Path(override).expanduser().absolute()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser().absolute()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser().absolute() / "edgecnn" / "arm"


@dataclass(frozen=True)
class ArmEnv:
    """A finished environment for one architecture (read from its ``ready.json``)."""

    arch: str
    root: Path
    qemu: Path
    qemu_version: str
    runtime: str  # "ai-edge-litert 2.3.0", "tflite-runtime 2.14.0"
    host_runtime: Optional[str]  # runtime of host-site, when there is one
    packages: tuple[str, ...]  # "name version" of every Debian package in the sysroot

    @property
    def recipe(self) -> ArchRecipe:
        return ARCHES[self.arch]

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def site(self) -> Path:
        return self.root / "site"

    @property
    def host_site(self) -> Optional[Path]:
        return self.root / "host-site" if self.host_runtime else None

    @property
    def python(self) -> Path:
        return self.sysroot / "usr" / "bin" / f"python{PYTHON_VERSION}"

    def command(self, cpu: str, *args: str) -> list[str]:
        """argv that runs the sysroot's Python under emulation of `cpu`."""
        return [str(self.qemu), "-L", str(self.sysroot), "-cpu", cpu, str(self.python), "-s", *args]

    def environ(self, pythonpath: Sequence[os.PathLike]) -> dict[str, str]:
        """Environment for the emulated Python: nothing of the host's Python or loader leaks in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LD_", "QEMU_", "VIRTUAL_ENV", "CONDA"))}
        env.update(
            PYTHONPATH=os.pathsep.join(str(p) for p in [*pythonpath, self.site]),
            PYTHONNOUSERSITE="1",
        )
        return env

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "root": str(self.root),
            "qemu": str(self.qemu),
            "qemu_version": self.qemu_version,
            "sysroot": str(self.sysroot),
            "python": str(self.python),
            "runtime": self.runtime,
            "host_runtime": self.host_runtime,
            "packages": len(self.packages),
        }


@dataclass(frozen=True)
class SetupResult:
    env: ArmEnv
    cached: bool
    seconds: float
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {**self.env.to_dict(), "cached": self.cached, "seconds": round(self.seconds, 2), "warnings": list(self.warnings)}


def host_litert_version() -> Optional[str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return None


def _wheels(recipe: ArchRecipe) -> tuple[str, ...]:
    """Requirements of the ARM side's runtime."""
    if recipe.wheels is not None:
        return recipe.wheels
    version = host_litert_version()
    # Same version as the host, so a difference is the architecture's and not the release's.
    return (f"ai-edge-litert=={version}" if version else "ai-edge-litert",)


def _spec(recipe: ArchRecipe) -> dict:
    wheels = _wheels(recipe)
    return {
        "layout": LAYOUT,
        "arch": recipe.arch,
        "release": RELEASE,
        "debs": list(recipe.debs),
        "wheels": list(wheels),
        "host_reference": list(recipe.host_reference or ()),
        "host_python": f"cp{sys.version_info.major}{sys.version_info.minor}",
    }


@contextlib.contextmanager
def _locked(cache: Path) -> Iterator[None]:
    """One setup at a time per cache folder (parallel test workers, two shells)."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_json(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict) -> None:
    from ...fileio import write_json

    write_json(path, obj)


def host_arch() -> str:
    proc = run_tool(["dpkg", "--print-architecture"], "finding the host's Debian architecture", timeout=30)
    return proc.stdout.strip()


def _apt_root(cache: Path, name: str, arch: str, suites: Sequence[str]) -> AptRoot:
    sources = derive_sources(host_sources(), suites=suites)
    return AptRoot(cache / "apt" / name, arch, tuple(sources), tuple(host_acquire_options()))


def setup_qemu(cache: Path) -> tuple[Path, str, bool]:
    """(folder with qemu-aarch64 and qemu-arm, version, cached)."""
    folder = cache / "qemu"
    ready = _read_json(folder / "ready.json")
    binaries = [ARCHES[a].qemu for a in ARCHES]
    if ready and ready.get("layout") == LAYOUT and all((folder / "bin" / b).is_file() for b in binaries):
        return folder / "bin", ready["version"], True
    arch = host_arch()
    logger.info("qemu: fetching %s from %s (%s)", QEMU_PACKAGE, QEMU_SUITE, arch)
    apt = _apt_root(cache, f"host-{arch}", arch, ("-backports",))
    apt.update()
    debs = apt.download_only([f"{QEMU_PACKAGE}/{QEMU_SUITE}"])
    if len(debs) != 1:
        raise SetupError(f"expected one {QEMU_PACKAGE} package, apt downloaded {len(debs)}")
    version = deb_field(debs[0], "Version")
    shutil.rmtree(folder / "bin", ignore_errors=True)
    extract_from_deb(debs[0], {f"./usr/bin/{b}": folder / "bin" / b for b in binaries})
    debs[0].unlink()
    _write_json(folder / "ready.json", {"layout": LAYOUT, "package": QEMU_PACKAGE, "version": version})
    return folder / "bin", version, False


def _smoke_test(env: ArmEnv) -> None:
    """Import the runtime under emulation: a broken sysroot fails here, at setup."""
    code = f"import numpy, flatbuffers, {env.recipe.runtime_module}.interpreter; print(numpy.__version__)"
    cpu = "cortex-a72" if env.arch == "arm64" else "cortex-a7"
    run_tool(
        env.command(cpu, "-c", code),
        f"starting Python with {env.runtime} under {env.qemu.name}",
        timeout=600,
        env=env.environ([]),
    )
    if env.host_site:
        host_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        host_env["PYTHONPATH"] = str(env.host_site)
        run_tool([sys.executable, "-S", "-s", "-c", code], f"loading the host's {env.host_runtime}", timeout=300, env=host_env)


def _build(recipe: ArchRecipe, cache: Path, qemu_dir: Path, qemu_version: str, spec: dict) -> tuple[ArmEnv, list[str]]:
    """The environment, and the problems it was built despite."""
    final = cache / recipe.arch
    partial = cache / f"{recipe.arch}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)

    apt = _apt_root(cache, recipe.arch, recipe.arch, ("", "-updates", "-security"))
    logger.info("%s: updating the package lists (%s)", recipe.arch, RELEASE)
    # A list that failed (a mirror mid-sync) is survivable: the other suites still resolve.
    problems = [p[3:].strip() for p in apt.update() if p.startswith("E: Failed to fetch")]
    debs = apt.download(recipe.debs)
    logger.info("%s: unpacking %d Debian packages", recipe.arch, len(debs))
    sysroot = partial / "sysroot"
    packages = []
    for deb in debs:
        unpack_deb(deb, sysroot)
        packages.append(f"{deb_field(deb, 'Package')} {deb_field(deb, 'Version')}")
    for deb in debs:
        deb.unlink()
    relativize_symlinks(sysroot)
    make_alternative_links(sysroot)
    if not (sysroot / "usr" / "bin" / f"python{PYTHON_VERSION}").is_file():
        raise SetupError(f"the {recipe.arch} sysroot has no python{PYTHON_VERSION}")

    wheels, deps = spec["wheels"], recipe.wheels is None  # ai-edge-litert brings its own dependencies
    logger.info("%s: installing %s for %s", recipe.arch, ", ".join(wheels), recipe.wheel_platform)
    install_wheels(
        partial / "site",
        wheels,
        f"downloading {' '.join(wheels)} for {recipe.wheel_platform}",
        platform=recipe.wheel_platform,
        python_version=PYTHON_VERSION,
        deps=deps,
    )
    runtime_name = requirement_name(wheels[0])
    runtime = f"{runtime_name} {dist_version(partial / 'site', runtime_name)}"

    host_runtime = None
    if recipe.host_reference:
        logger.info("%s: installing %s for the host side", recipe.arch, ", ".join(recipe.host_reference))
        try:
            install_wheels(partial / "host-site", recipe.host_reference, "installing the host's reference runtime", deps=False)
            host_runtime = f"{runtime_name} {dist_version(partial / 'host-site', runtime_name)}"
        except SetupError as exc:
            # E.g. a host Python newer than the runtime's wheels: the host side then runs its own runtime.
            shutil.rmtree(partial / "host-site", ignore_errors=True)
            problems.append(f"no {runtime_name} for the host's Python ({exc}); comparisons will use the host's runtime")

    ready = {
        **spec,
        "qemu_version": qemu_version,
        "runtime": runtime,
        "host_runtime": host_runtime,
        "packages": packages,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    env = ArmEnv(recipe.arch, partial, qemu_dir / recipe.qemu, qemu_version, runtime, host_runtime, tuple(packages))
    logger.info("%s: checking that %s starts under %s", recipe.arch, runtime, recipe.qemu)
    _smoke_test(env)
    _write_json(partial / "ready.json", ready)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    return load_env(recipe.arch, cache, check_host=False), problems


def setup(arch: str, cache: Optional[os.PathLike] = None, force: bool = False) -> SetupResult:
    """Build (or reuse) the emulation environment of `arch` ("arm64" or "armhf").

    Progress goes to this module's logger; problems the environment was built despite are
    warnings, and in the result.
    """
    recipe = arch_recipe(arch)
    cache = cache_dir(cache)
    started = time.perf_counter()
    with _locked(cache):
        qemu_dir, qemu_version, _ = setup_qemu(cache)
        spec = _spec(recipe)
        ready = _read_json(cache / recipe.arch / "ready.json")
        if not force and ready and {k: ready.get(k) for k in spec} == spec and ready.get("qemu_version") == qemu_version:
            try:
                return SetupResult(load_env(recipe.arch, cache, check_host=False), True, time.perf_counter() - started)
            except SetupError:
                pass  # damaged: rebuild
        env, problems = _build(recipe, cache, qemu_dir, qemu_version, spec)
    for problem in problems:
        warnings.warn(problem, stacklevel=2)
    return SetupResult(env, False, time.perf_counter() - started, tuple(problems))


def load_env(arch: str, cache: Optional[os.PathLike] = None, check_host: bool = True) -> ArmEnv:
    """The finished environment of `arch`; SetupError saying what to run when it is missing or stale."""
    recipe = arch_recipe(arch)
    cache = cache_dir(cache)
    hint = f"run `edgecnn targets setup {recipe.arch}`"
    root = cache / recipe.arch
    ready = _read_json(root / "ready.json")
    if not ready:
        raise SetupError(
            f"the {recipe.arch} emulation environment is not set up in {cache}; {hint} (Debian packages and PyPI wheels, about a minute)"
        )
    if ready.get("layout") != LAYOUT:
        raise SetupError(f"the {recipe.arch} emulation environment in {cache} is from an older edgecnn; {hint}")
    qemu = cache / "qemu" / "bin" / recipe.qemu
    env = ArmEnv(
        recipe.arch,
        root,
        qemu,
        ready.get("qemu_version", "?"),
        ready["runtime"],
        ready.get("host_runtime"),
        tuple(ready.get("packages", ())),
    )
    missing = [p for p in (qemu, env.python, env.site) if not p.exists()]
    if missing:
        raise SetupError(f"the {recipe.arch} emulation environment is incomplete ({missing[0]} is missing); {hint}")
    if check_host:
        if recipe.wheels is None:
            host = host_litert_version()
            arm = env.runtime.split()[-1]
            if host and host != arm:
                raise SetupError(
                    f"the {recipe.arch} environment has ai-edge-litert {arm} but the host has {host}; {hint} "
                    "so both sides run the same version"
                )
        if env.host_site and ready.get("host_python") != f"cp{sys.version_info.major}{sys.version_info.minor}":
            env = ArmEnv(env.arch, env.root, env.qemu, env.qemu_version, env.runtime, None, env.packages)
    return env


def status(cache: Optional[os.PathLike] = None) -> dict[str, Optional[dict]]:
    """arch -> its environment's description, or None when it is not set up."""
    out: dict[str, Optional[dict]] = {}
    for arch in ARCHES:
        try:
            out[arch] = load_env(arch, cache, check_host=False).to_dict()
        except SetupError:
            out[arch] = None
    return out
