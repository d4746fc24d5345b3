"""A sysroot from Debian packages and wheels, without dpkg's database, maintainer scripts or root.

``.deb`` files are unpacked with ``dpkg-deb`` and the two things their maintainer
scripts would have done are redone by hand (symlinks, library alternatives); wheels for
another platform go into a folder of their own with ``pip install --target``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional, Sequence

from .tools import SetupError, run_tool


def deb_field(deb: Path, name: str) -> str:
    return run_tool(["dpkg-deb", "--field", str(deb), name], f"reading {deb.name}", timeout=60).stdout.strip()


def unpack_deb(deb: Path, dest: Path) -> None:
    """``dpkg -x``: the package's files, no maintainer scripts."""
    run_tool(["dpkg-deb", "--extract", str(deb), str(dest)], f"unpacking {deb.name}", timeout=300)


def extract_from_deb(deb: Path, members: dict[str, Path]) -> None:
    """Copy single files out of a .deb (``./usr/bin/x`` -> path) without unpacking the rest."""
    wanted = dict(members)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                dest = wanted.pop(member.name, None) or wanted.pop("./" + member.name.lstrip("./"), None)
                if dest is None or not member.isfile():
                    continue
                source = tar.extractfile(member)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with open(dest, "wb") as out:
                    shutil.copyfileobj(source, out)
                dest.chmod(0o755)
                if not wanted:
                    break
    finally:
        proc.stdout.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if wanted:
        raise SetupError(f"{deb.name} has no {', '.join(sorted(wanted))}")


def relativize_symlinks(root: Path) -> int:
    """Point absolute symlinks inside `root` at `root`'s own files; returns how many changed.

    Under ``qemu -L`` an absolute link would resolve on the host (``/etc/...``), not in
    the sysroot.
    """
    changed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if not target.startswith("/"):
                continue
            os.unlink(path)
            os.symlink(os.path.relpath(os.path.join(root, target.lstrip("/")), dirpath), path)
            changed += 1
    return changed


#: Library alternatives that dpkg's maintainer scripts would register, best provider first.
ALTERNATIVES = ("libblas.so.3", "liblapack.so.3")
_PROVIDER_ORDER = ("openblas-pthread", "openblas", "blis-pthread", "blis-openmp", "atlas", "blas", "lapack")


def make_alternative_links(sysroot: Path) -> list[Path]:
    """Create ``/usr/lib/TRIPLET/libblas.so.3`` style links (update-alternatives' job); returns them."""
    made = []
    for libdir in sorted((sysroot / "usr" / "lib").glob("*-linux-gnu*")):
        for name in ALTERNATIVES:
            link = libdir / name
            if link.exists() or link.is_symlink():
                continue
            found = sorted(
                libdir.glob(f"*/{name}"),
                key=lambda p: _PROVIDER_ORDER.index(p.parent.name) if p.parent.name in _PROVIDER_ORDER else 99,
            )
            if found:
                link.symlink_to(found[0].relative_to(libdir))
                made.append(link)
    return made


def install_wheels(
    target: Path,
    requirements: Sequence[str],
    what: str,
    *,
    platform: Optional[str] = None,
    python_version: Optional[str] = None,
    deps: bool = True,
) -> None:
    """``pip install --target``, binary wheels only.

    With `platform` (a manylinux suffix such as ``aarch64``) and `python_version` ("3.11")
    the wheels are those of that platform's CPython, not the host's.
    """
    argv = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-warn-script-location",
        "--target",
        str(target),
        "--only-binary=:all:",
    ]
    if platform:
        # Older pips do not widen a manylinux tag to older glibc versions: list them.
        argv += [a for m in range(36, 16, -1) for a in ("--platform", f"manylinux_2_{m}_{platform}")]
        argv += [
            "--platform",
            f"manylinux2014_{platform}",
            "--python-version",
            python_version,
            "--implementation",
            "cp",
            "--abi",
            "cp" + python_version.replace(".", ""),
        ]
    if not deps:
        argv.append("--no-deps")
    run_tool([*argv, *requirements], what, timeout=900)


def dist_version(site: Path, name: str) -> str:
    """The version of distribution `name` installed in `site`."""
    normalized = name.replace("-", "_").lower()
    for info in site.glob("*.dist-info"):
        dist, _, version = info.name[: -len(".dist-info")].partition("-")
        if dist.lower() == normalized:
            return version
    raise SetupError(f"{name} is missing from {site}")


def requirement_name(requirement: str) -> str:
    """``"tflite-runtime==2.14.0"`` -> ``"tflite-runtime"``."""
    return re.split(r"[<>=!~; \[]", requirement, maxsplit=1)[0]
