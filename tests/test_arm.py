"""ARM targets: apt's private configuration, the emulation environment, emulated and remote validation."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.artifact import Quantization
from edgecnn.cli import main
from edgecnn.errors import ConfigError, MissingDependencyError
from edgecnn.targets.arm import (
    DeviceRunError,
    EmulatedTarget,
    SetupError,
    SshTarget,
    compare,
    load_env,
    lsb_diff,
    parse_ssh_url,
    parse_target,
    setup,
    validate_remote,
)
from edgecnn.targets.arm.apt import AptRoot, AptSource, derive_sources, host_acquire_options, parse_deb822, parse_one_line
from edgecnn.targets.arm.env import cache_dir, make_alternative_links, relativize_symlinks
from edgecnn.targets.arm.payload import runtime_files, write_payload
from edgecnn.targets.arm.ssh import ssh_argv

IN_CI = os.environ.get("CI") == "true"

# --- output differences ------------------------------------------------------------------------------

Q = Quantization("int8", 0.0625, -12)


def _dequantized(q):
    return ((np.asarray(q, np.float32) - np.float32(Q.zero_point)) * np.float32(Q.scale)).astype(np.float32)


def test_lsb_diff_counts_quantization_steps():
    a = _dequantized([[-128, 0, 5, 127]])
    b = _dequantized([[-127, 0, 3, 127]])
    assert lsb_diff(a, b, Q).tolist() == [[1, 0, 2, 0]]
    assert lsb_diff(b, a, Q).tolist() == [[1, 0, 2, 0]]
    assert lsb_diff(a, b, None) is None  # a float output has no LSB


def test_lsb_diff_is_exact_over_the_whole_int8_range():
    q = np.arange(-128, 128)
    for step in (1, 2, 255):
        other = np.clip(q + step, -128, 127)
        assert (lsb_diff(_dequantized(q), _dequantized(other), Q) == np.abs(other - q)).all()


def test_compare_accuracy_agreement_and_differences():
    host = _dequantized([[10, 0, 0], [0, 10, 0], [0, 0, 10], [10, 9, 0]])
    device = _dequantized([[10, 0, 0], [0, 10, 1], [0, 0, 10], [9, 10, 0]])
    labels = np.array([0, 1, 1, 0])
    result = compare(device, host, labels, Q)
    assert result.samples == 4
    assert result.host_accuracy == 0.75 and result.accuracy == 0.5
    assert result.agreement == 0.75
    assert result.max_abs_diff_lsb == 1
    assert result.max_abs_diff == pytest.approx(Q.scale)
    assert result.differing_outputs == pytest.approx(3 / 12)
    with pytest.raises(DeviceRunError, match="shape"):
        compare(device[:3], host, labels, Q)


# --- targets -----------------------------------------------------------------------------------------


def test_target_names():
    pi5 = parse_target("arm64-pi5")
    assert isinstance(pi5, EmulatedTarget) and (pi5.arch, pi5.cpu) == ("arm64", "cortex-a76")
    assert parse_target("ARM64-PI4").cpu == "cortex-a72"
    assert parse_target("armv7-pi").arch == "armhf"
    with pytest.raises(ConfigError, match="unknown target 'pi9'.*arm64-pi4, arm64-pi5, armv7-pi"):
        parse_target("pi9")


@pytest.mark.parametrize(
    "url, host, user, port, destination",
    [
        ("ssh://pi@raspberrypi.local", "raspberrypi.local", "pi", None, "pi@raspberrypi.local"),
        ("ssh://pi@192.168.1.20:2222", "192.168.1.20", "pi", 2222, "pi@192.168.1.20"),
        ("ssh://MyBoard", "MyBoard", None, None, "MyBoard"),  # an alias of ~/.ssh/config, case kept
        ("ssh://root@[::1]:22", "::1", "root", 22, "root@::1"),
        ("ssh://pi@board/", "board", "pi", None, "pi@board"),
    ],
)
def test_ssh_urls(url, host, user, port, destination):
    target = parse_ssh_url(url)
    assert (target.host, target.user, target.port, target.destination) == (host, user, port, destination)
    assert parse_target(url) == target


@pytest.mark.parametrize(
    "url, message",
    [
        ("ssh://pi:secret@board", "password"),
        ("ssh://board:99999", "port"),
        ("ssh://board:0", "port"),
        ("ssh://board/tmp", "path"),
        ("ssh://", "not an ssh:// address"),
        ("ssh://-oProxyCommand=x@board", "user name"),
        ("ssh://bad host", "host name"),
        ("http://board", "not an ssh:// address"),
    ],
)
def test_bad_ssh_urls(url, message):
    with pytest.raises(ConfigError, match=message):
        parse_ssh_url(url)


def test_ssh_argv_is_batch_mode_and_quotes_the_remote_command(tmp_path):
    argv = ssh_argv(SshTarget("board", "pi", 2222), ["python3", "-c", "print('a b')"], tmp_path / "cfg")
    assert argv[0] == "ssh" and "BatchMode=yes" in argv and argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-F") + 1] == str(tmp_path / "cfg")
    assert argv[-3:] == ["--", "pi@board", "python3 -c 'print('\"'\"'a b'\"'\"')'"]
    assert "-p" not in ssh_argv(SshTarget("board"), ["true"])  # ~/.ssh/config decides the port


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


def test_cache_dir_and_a_missing_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGECNN_ARM_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    assert cache_dir(tmp_path / "d") == tmp_path / "d"
    with pytest.raises(SetupError, match=r"not set up .*edgecnn targets setup armhf"):
        load_env("armv7", tmp_path / "empty")
    with pytest.raises(SetupError, match="unknown ARM architecture"):
        load_env("mips")


# --- what goes to the device ----------------------------------------------------------------------------


def test_payload_is_the_runner_and_the_tensorflow_free_runtime():
    names = set(runtime_files())
    assert {
        "runner.py",
        "edgecnn/__init__.py",
        "edgecnn/errors.py",
        "edgecnn/artifact.py",
        "edgecnn/runtime/model.py",
        "edgecnn/runtime/interpreters.py",
    } <= names
    assert not any(n.startswith(("edgecnn/train", "edgecnn/export", "edgecnn/cli", "edgecnn/targets")) for n in names)


def test_runner_runs_from_its_own_copy_without_tensorflow(exported_run, digits_small, tmp_path):
    out, _ = exported_run
    runner = write_payload(tmp_path / "payload")
    np.save(tmp_path / "images.npy", digits_small.test.images[:20])
    script = textwrap.dedent(
        f"""
        import runpy, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "tf_keras", "keras", "sklearn"):
                    raise ImportError(name + " is not on this device")
        sys.meta_path.insert(0, Block())
        sys.argv = ["runner.py", "--model", {str(out / "model_int8.tflite")!r}, "--images", {str(tmp_path / "images.npy")!r},
                    "--out", {str(tmp_path / "out.npy")!r}, "--threads", "1", "--runs", "5", "--warmup", "1", "--min-seconds", "0"]
        try:
            runpy.run_path({str(runner)!r}, run_name="__main__")
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(sys.modules["edgecnn"].__file__, file=sys.stderr)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["samples"] == 20 and report["latency_ms"]["runs"] >= 5 and report["device"]["machine"]
    assert str(tmp_path / "payload") in proc.stderr.strip().splitlines()[-1]  # its own copy of edgecnn
    from edgecnn import runtime

    expected = runtime.load(out / "model_int8.tflite", num_threads=1).predict(digits_small.test.images[:20])
    assert np.array_equal(np.load(tmp_path / "out.npy"), expected)


# --- emulated validation ----------------------------------------------------------------------------------


def _environment(arch):
    """The cached emulation environment; in CI its absence is a failure, elsewhere a skip."""
    try:
        return load_env(arch)
    except SetupError as exc:
        if IN_CI:
            pytest.fail(f"CI must set up the ARM emulation ({exc})")
        pytest.skip(f"ARM emulation is not set up on this machine: {exc}")


def test_setup_is_idempotent():
    env = _environment("arm64")
    started = time.perf_counter()
    result = setup("arm64")
    assert result.cached and result.env.root == env.root
    assert time.perf_counter() - started < 5


def _validate_json(artifact, target):
    result = CliRunner().invoke(main, ["validate", str(artifact), "--data", "digits", "--target", target, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    keys = ("accuracy", "host_accuracy", "agreement", "max_abs_diff_lsb", "differing_outputs", "runtime", "seconds")
    print(f"\n{target}: {json.dumps({k: report[k] for k in keys})}")
    return report


def test_emulated_validation_runs_the_same_runtime_on_both_sides(exported_run):
    """A Pi 4 (no dot product) on the small test model: ai-edge-litert's int8 path is bit-exact with x86."""
    env = _environment("arm64")
    out, _ = exported_run
    report = _validate_json(out / "model_int8.tflite", "arm64-pi4")
    assert report["target"] == "arm64-pi4" and report["emulated"] is True and report["samples"] > 100
    assert report["runtime"] == report["host_runtime"] == env.runtime.replace("-", "_")  # like with like
    assert report["device"]["machine"] == "aarch64" and report["device"]["cpu"] == "cortex-a72"
    assert report["agreement"] == 1.0 and report["max_abs_diff_lsb"] == 0
    assert "latency_ms" not in report  # emulated timings are not latency


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """The digits int8 model as `edgecnn run` makes it: xception-nano at 32x32x1, 20 epochs."""
    from edgecnn.data import load_dataset
    from edgecnn.export import ExportOptions, export_model
    from edgecnn.train import TrainConfig, fit

    out = tmp_path_factory.mktemp("digits-default")
    fit(load_dataset("digits"), TrainConfig(verbose=0), out)
    export_model(out / "model.keras", out, ExportOptions(int8=True))
    return out / "model_int8.tflite"


@pytest.mark.slow
@pytest.mark.parametrize("target", ["arm64-pi5", "armv7-pi"])
def test_digits_model_on_arm_meets_the_floors(digits_model, target):
    """The digits int8 model on ARM kernels: top-1 agrees with the host on >= 99%, outputs within 2 LSB."""
    env = _environment(parse_target(target).arch)
    report = _validate_json(digits_model, target)
    assert report["target"] == target and report["emulated"] is True and report["samples"] > 300
    assert report["agreement"] >= 0.99
    assert report["max_abs_diff_lsb"] <= 2
    assert report["accuracy"] >= 0.97 and report["host_accuracy"] >= 0.97
    assert report["runtime"] == report["host_runtime"] and report["same_runtime"]  # like with like
    assert report["runtime"].split()[-1] == env.runtime.split()[-1]
    assert report["device"]["machine"] == env.recipe.machine
    assert "latency_ms" not in report


# --- a board over SSH: an OpenSSH server on 127.0.0.1 -----------------------------------------------------


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """sshd on 127.0.0.1 with a host key and a client key made for this run; yields its ssh config file."""
    sshd_path = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd", "/usr/bin/sshd") if os.path.exists(p)), None)
    if not sshd_path or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        if IN_CI:
            pytest.fail("CI must install openssh-server and openssh-client")
        pytest.skip("OpenSSH server or client not installed (apt-get install openssh-server openssh-client)")
    # Short paths: sshd and ssh put sockets and keys here.
    folder = Path(tempfile.mkdtemp(prefix="edgecnn-sshd-"))
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = _free_port()
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], check=False, capture_output=True, text=True).stdout.strip()
    (folder / "sshd_config").write_text(
        textwrap.dedent(f"""\
        Port {port}
        ListenAddress 127.0.0.1
        HostKey {folder}/host_key
        PidFile {folder}/sshd.pid
        AuthorizedKeysFile {folder}/authorized_keys
        PubkeyAuthentication yes
        PasswordAuthentication no
        KbdInteractiveAuthentication no
        PermitRootLogin prohibit-password
        # The test's folders are not owned the way StrictModes wants; PAM has no session here.
        StrictModes no
        UsePAM no
        LogLevel ERROR
        """)
    )
    host_key = (folder / "host_key.pub").read_text().split()
    (folder / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    (folder / "ssh_config").write_text(
        textwrap.dedent(f"""\
        Host 127.0.0.1
          IdentityFile {folder}/client_key
          IdentitiesOnly yes
          UserKnownHostsFile {folder}/known_hosts
          StrictHostKeyChecking yes
        """)
    )
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log = open(folder / "sshd.log", "w")
    proc = subprocess.Popen([sshd_path, "-D", "-e", "-f", str(folder / "sshd_config")], stdin=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.time() + 15
        while True:
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(folder / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    pytest.fail("sshd did not start listening within 15 s")
                time.sleep(0.1)
        yield {"url": f"ssh://{user}@127.0.0.1:{port}", "config": folder / "ssh_config", "port": port, "user": user}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _leftovers(before):
    """Temporary runner folders and runner processes that were not there `before`."""
    folders = {p for p in Path(tempfile.gettempdir()).glob("edgecnn-*") if (p / "runner.py").exists()} - before
    processes = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"/runner.py") and b"/edgecnn-" in a for a in args):
            processes.append(cmdline.parent.name)
    return folders, processes


def _runner_folders():
    return {p for p in Path(tempfile.gettempdir()).glob("edgecnn-*") if (p / "runner.py").exists()}


def test_remote_validation_over_ssh(sshd, exported_run, monkeypatch):
    """The full remote path: probe, upload, run with latency, results back, nothing left behind."""
    out, _ = exported_run
    monkeypatch.setenv("EDGECNN_SSH_CONFIG", str(sshd["config"]))
    before = _runner_folders()
    # The "board" is this machine; its Python is this one, with edgecnn's runtime copied over.
    args = ["validate", str(out / "model_int8.tflite"), "--data", "digits", "--target", sshd["url"], "--python", sys.executable]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["target"] == sshd["url"] and report["emulated"] is False
    assert report["agreement"] == 1.0 and report["max_abs_diff_lsb"] == 0  # same machine, same runtime
    assert report["accuracy"] == report["host_accuracy"] > 0.5
    latency = report["latency_ms"]
    assert latency["runs"] >= 100 and 0 < latency["p50"] <= latency["p90"] and latency["mean"] > 0
    device = report["device"]
    assert device["machine"] == os.uname().machine and device["cpu"] and device["os"] and device["python"]
    assert report["runtime"] == report["host_runtime"] and device["runtimes"]
    assert _leftovers(before) == (set(), [])
    text = CliRunner().invoke(main, args)
    assert text.exit_code == 0, text.output
    assert "latency on the board: p50" in text.output and "agreement 100.00%" in text.output


def test_board_with_tflite_runtime_is_compared_with_the_same_runtime(sshd, exported_run, tmp_path):
    """A 32-bit Pi OS board runs tflite-runtime 2.14: the host side then runs it too (armhf's host-site)."""
    env = _environment("armhf")
    if env.host_site is None:
        pytest.skip("the host's Python has no tflite-runtime 2.14 wheel")
    out, _ = exported_run
    board_python = tmp_path / "pi-os-python"  # this machine's Python with only tflite-runtime 2.14 and numpy < 2
    board_python.write_text(f'#!/bin/sh\nPYTHONPATH={env.host_site} exec {sys.executable} -S "$@"\n')
    board_python.chmod(0o755)
    result = validate_remote(
        out / "model_int8.tflite",
        sshd["url"],
        python=str(board_python),
        ssh_config=sshd["config"],
        runs=5,
        warmup=1,
        min_seconds=0,
    )
    assert result.runtime == result.host_runtime == "tflite_runtime 2.14.0"
    assert result.agreement == 1.0 and result.max_abs_diff_lsb == 0 and result.latency_ms["runs"] >= 5
    assert result.device["runtimes"] == {"tflite_runtime": "2.14.0"}


def test_unreachable_board_is_one_line_error(exported_run, monkeypatch, tmp_path):
    out, _ = exported_run
    (tmp_path / "empty_config").write_text("")
    monkeypatch.setenv("EDGECNN_SSH_CONFIG", str(tmp_path / "empty_config"))
    result = CliRunner().invoke(
        main, ["validate", str(out / "model_int8.tflite"), "--target", f"ssh://nobody@127.0.0.1:{_free_port()}"]
    )
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("Error: cannot reach ssh://nobody@127.0.0.1:")
    assert "Connection refused" in result.output


def test_board_without_a_runtime(sshd, exported_run, tmp_path, monkeypatch):
    out, _ = exported_run
    monkeypatch.setenv("EDGECNN_SSH_CONFIG", str(sshd["config"]))
    bare = tmp_path / "bare-python"  # a Python without site-packages: no numpy, no TFLite runtime
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    bare.chmod(0o755)
    result = CliRunner().invoke(
        main, ["validate", str(out / "model_int8.tflite"), "--target", sshd["url"], "--python", str(bare)]
    )
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "lacks numpy and flatbuffers" in result.output and "pip install" in result.output
    result = CliRunner().invoke(
        main, ["validate", str(out / "model_int8.tflite"), "--target", sshd["url"], "--python", "/nonexistent/python3"]
    )
    assert result.exit_code == 1 and "was not found on" in result.output and "--python" in result.output


def test_interrupted_remote_run_leaves_nothing_running(sshd, exported_run, digits_small):
    out, _ = exported_run
    before = _runner_folders()
    with pytest.raises(DeviceRunError, match="took longer than"):
        validate_remote(
            out / "model_int8.tflite",
            sshd["url"],
            python=sys.executable,
            ssh_config=sshd["config"],
            runs=10**9,
            min_seconds=600,
            timeout=8,
            images=digits_small.test.images[:10],
            labels=digits_small.test.labels[:10],
        )
    deadline = time.time() + 15
    while _leftovers(before) != (set(), []) and time.time() < deadline:
        time.sleep(0.2)
    assert _leftovers(before) == (set(), [])


def test_validate_target_usage_errors(exported_run):
    out, _ = exported_run
    artifact = str(out / "model_int8.tflite")
    result = CliRunner().invoke(main, ["validate", artifact, "--target", "pi9"])
    assert result.exit_code == 1 and result.output.startswith("Error: unknown target 'pi9'")
    result = CliRunner().invoke(main, ["validate", artifact, "--target", "arm64-pi5", "--reference", artifact])
    assert result.exit_code == 1 and "cannot be combined" in result.output
    result = CliRunner().invoke(main, ["validate", str(out / "model.keras"), "--target", "arm64-pi5"])
    assert result.exit_code == 1 and "not a .tflite file" in result.output


def test_targets_list_json():
    result = CliRunner().invoke(main, ["targets", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [t["target"] for t in listed["targets"]] == ["arm64-pi4", "arm64-pi5", "armv7-pi"]
    assert {t["cpu"] for t in listed["targets"]} == {"cortex-a72", "cortex-a76", "cortex-a7"}


def test_missing_runtime_on_the_board_is_a_missing_dependency():
    assert issubclass(MissingDependencyError, Exception)  # the runner's "missing-runtime" maps onto it
    from edgecnn.targets.arm.compare import parse_report

    with pytest.raises(MissingDependencyError, match="no TFLite interpreter"):
        parse_report('{"error": "no TFLite interpreter found", "kind": "missing-runtime"}', "board")
