"""A board over SSH: ssh:// addresses, the ssh command line, and remote validation against a local sshd."""

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

import pytest
from arm_environment import IN_CI, environment
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.errors import ConfigError
from edgecnn.targets.arm import DeviceRunError, SshTarget, parse_ssh_url, parse_target, validate_remote
from edgecnn.targets.arm.ssh import ssh_argv

# --- addresses and the ssh command line -----------------------------------------------------------------


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


def _runner_folders():
    return {p for p in Path(tempfile.gettempdir()).glob("edgecnn-*") if (p / "runner.py").exists()}


def _leftovers(before):
    """Temporary runner folders that were not there `before`, and runner processes."""
    folders = _runner_folders() - before
    processes = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"/runner.py") and b"/edgecnn-" in a for a in args):
            processes.append(cmdline.parent.name)
    return folders, processes


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
    env = environment("armhf")
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
