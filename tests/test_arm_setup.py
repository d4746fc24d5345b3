"""ARM emulation setup: apt with a private configuration, the sysroot's fix-ups, the cached environment."""

import json
import os
import subprocess
import time

import pytest
from arm_environment import environment
from click.testing import CliRunner

import edgecnn.targets.arm.env as arm_env
from edgecnn.cli import main
from edgecnn.targets.arm import ArmEnv, SetupError, cache_dir, load_env, setup
from edgecnn.targets.arm.apt import AptRoot, AptSource, derive_sources, host_acquire_options, parse_deb822, parse_one_line
from edgecnn.targets.arm.sysroot import make_alternative_links, relativize_symlinks

# --- apt with a private configuration ------------------------------------------------------------------

HOST_LIST = """
# a comment
deb http://ftp.de.debian.org/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/other.gpg] https://packages.example.com/apt stable main
deb-src http://ftp.de.debian.org/debian bookworm main
"""

HOST_DEB822 = """
Types: deb
URIs: http://snapshot.debian.org/archive/debian/20250520T000000Z
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 abc
 -----END PGP PUBLIC KEY BLOCK-----

Enabled: no
Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
"""


def test_parse_host_sources():
    one_line = parse_one_line(HOST_LIST)
    assert [(s.types, s.uris[0], s.suites, s.components) for s in one_line] == [
        (("deb",), "http://ftp.de.debian.org/debian", ("bookworm",), ("main", "contrib")),
        (("deb",), "https://packages.example.com/apt", ("stable",), ("main",)),
        (("deb-src",), "http://ftp.de.debian.org/debian", ("bookworm",), ("main",)),
    ]
    assert one_line[1].signed_by == "/usr/share/keyrings/other.gpg"
    deb822 = parse_deb822(HOST_DEB822)
    assert [s.enabled for s in deb822] == [True, True, False]
    assert deb822[0].suites == ("bookworm", "bookworm-updates")
    assert deb822[1].signed_by.splitlines()[0] == "" and "abc" in deb822[1].signed_by
    rendered = deb822[1].render()
    assert parse_deb822(rendered)[0].signed_by == deb822[1].signed_by  # an inline key survives a round trip


def test_derived_sources_keep_the_mirror_and_drop_other_vendors():
    host = parse_deb822(HOST_DEB822) + parse_one_line(HOST_LIST)
    main_archive, security = derive_sources(host, release="bookworm", suites=("", "-updates", "-security"))
    assert main_archive.uris == ("http://snapshot.debian.org/archive/debian/20250520T000000Z",)
    assert main_archive.suites == ("bookworm", "bookworm-updates") and main_archive.components == ("main",)
    assert main_archive.signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"
    assert security.uris == ("http://deb.debian.org/debian-security",) and security.suites == ("bookworm-security",)
    (backports,) = derive_sources(parse_one_line(HOST_LIST), suites=("-backports",))
    assert backports.uris == ("http://ftp.de.debian.org/debian",) and backports.suites == ("bookworm-backports",)
    # No Debian mirror on the host (another vendor's system): deb.debian.org.
    (default,) = derive_sources([AptSource(("http://archive.ubuntu.com/ubuntu",), ("noble",))], suites=("",))
    assert default.uris == ("http://deb.debian.org/debian",)


def test_private_apt_config_points_everything_at_its_own_folder(tmp_path):
    sources = tuple(derive_sources([], suites=("", "-security")))
    carried = ('Acquire::http::Proxy "http://proxy:3128";',)
    root = AptRoot(tmp_path / "apt", "armhf", sources, carried)
    root.write()
    text = root.config_path.read_text()
    for key in ("Dir::State::status", "Dir::State::lists", "Dir::Cache::archives", "Dir::Etc::sourceparts", "Dir::Etc::parts"):
        line = next(row for row in text.splitlines() if row.startswith(key + " "))
        assert str(tmp_path / "apt") in line, line  # nothing of the host's apt state
    assert 'Dir::Etc::main "/dev/null";' in text  # no host apt.conf, no host hooks
    assert 'APT::Architecture "armhf";' in text and 'APT::Architectures { "armhf"; };' in text
    assert carried[0] in text
    assert (tmp_path / "apt/state/status").read_text() == ""  # an empty system: every dependency is fetched
    written = parse_deb822((tmp_path / "apt/etc/sources.list.d/debian.sources").read_text())
    assert [s.suites for s in written] == [("bookworm",), ("bookworm-security",)]
    assert root.env()["APT_CONFIG"] == str(root.config_path)


def test_host_acquire_options_carry_only_network_settings():
    dump = "\n".join(
        [
            'Acquire::http::Proxy "http://proxy:3128";',
            'Acquire::Check-Valid-Until "false";',
            'DPkg::Post-Invoke:: "rm -f /var/cache/apt/archives/*.deb";',
            'Dir::State::status "/var/lib/dpkg/status";',
            'Acquire::Languages "none";',
        ]
    )

    def fake(*a, **k):
        return subprocess.CompletedProcess(a, 0, dump, "")

    assert host_acquire_options(run=fake) == ['Acquire::http::Proxy "http://proxy:3128";', 'Acquire::Check-Valid-Until "false";']


# --- the sysroot's fix-ups -------------------------------------------------------------------------------


def test_absolute_symlinks_point_into_the_sysroot(tmp_path):
    root = tmp_path / "sysroot"
    (root / "etc/python3.11").mkdir(parents=True)
    (root / "etc/python3.11/sitecustomize.py").write_text("x = 1\n")
    (root / "usr/lib/python3.11").mkdir(parents=True)
    link = root / "usr/lib/python3.11/sitecustomize.py"
    link.symlink_to("/etc/python3.11/sitecustomize.py")
    (root / "usr/lib/rel").symlink_to("python3.11")
    assert relativize_symlinks(root) == 1
    assert os.readlink(link) == "../../../etc/python3.11/sitecustomize.py"
    assert link.read_text() == "x = 1\n" and os.readlink(root / "usr/lib/rel") == "python3.11"


def test_blas_and_lapack_alternatives_are_linked(tmp_path):
    libdir = tmp_path / "usr/lib/arm-linux-gnueabihf"
    for sub, name in (("blas", "libblas.so.3"), ("lapack", "liblapack.so.3"), ("openblas-pthread", "libblas.so.3")):
        (libdir / sub).mkdir(parents=True, exist_ok=True)
        (libdir / sub / name).write_bytes(b"\x7fELF")
    made = make_alternative_links(tmp_path)
    assert sorted(p.name for p in made) == ["libblas.so.3", "liblapack.so.3"]
    assert os.readlink(libdir / "libblas.so.3") == "openblas-pthread/libblas.so.3"
    assert os.readlink(libdir / "liblapack.so.3") == "lapack/liblapack.so.3"
    assert make_alternative_links(tmp_path) == []  # idempotent


# --- the environment and its setup ----------------------------------------------------------------------


def test_cache_dir_and_a_missing_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECNN_ARM_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert cache_dir(tmp_path / "d") == tmp_path / "d"
    with pytest.raises(SetupError, match=r"not set up .*edgecnn targets setup armhf"):
        load_env("armv7", tmp_path / "empty")
    with pytest.raises(SetupError, match="unknown ARM architecture"):
        load_env("mips")


def test_setup_is_idempotent():
    env = environment("arm64")
    started = time.perf_counter()
    result = setup("arm64")
    assert result.cached and result.env.root == env.root
    assert time.perf_counter() - started < 5


def test_setup_progress_is_shown_on_stderr(tmp_path, monkeypatch):
    """The library logs its progress; `edgecnn targets setup` shows it on stderr, before a failure's one line."""

    def offline(*args):
        raise SetupError("the mirror is offline")

    monkeypatch.setattr(arm_env, "host_arch", lambda: "amd64")
    monkeypatch.setattr(arm_env, "_apt_root", offline)
    result = CliRunner().invoke(main, ["targets", "setup", "arm64", "--cache", str(tmp_path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "qemu: fetching qemu-user from bookworm-backports (amd64)",
        "Error: the mirror is offline",
    ]


def test_setup_problems_are_warnings_and_in_the_result(tmp_path, monkeypatch):
    """What an environment was built despite is a warning (one line on the CLI's stderr) and part of the result."""
    built = ArmEnv("arm64", tmp_path / "arm64", tmp_path / "qemu-aarch64", "10.0", "ai-edge-litert 2.3.0", None, ())
    monkeypatch.setattr(arm_env, "setup_qemu", lambda cache: (tmp_path, "10.0", True))
    monkeypatch.setattr(arm_env, "_build", lambda *args: (built, ["bookworm-updates did not download"]))
    with pytest.warns(UserWarning, match="^bookworm-updates did not download$"):
        result = setup("arm64", tmp_path)
    assert result.warnings == ("bookworm-updates did not download",) and not result.cached
    cli = CliRunner().invoke(main, ["targets", "setup", "arm64", "--cache", str(tmp_path), "--json"])
    assert cli.exit_code == 0, cli.output
    assert cli.stderr == "Warning: bookworm-updates did not download\n"
    assert json.loads(cli.stdout)["warnings"] == ["bookworm-updates did not download"]
