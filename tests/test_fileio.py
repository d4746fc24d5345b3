"""Atomic writes: groups of files appear together, with the mode the umask implies."""

import os
import signal
import stat

import pytest

from edgecnn import fileio
from edgecnn.artifact import ArtifactMetadata, read_sidecar, sidecar_path, write_model


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_take_the_mode_the_umask_implies(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = fileio.write_bytes(tmp_path / "model.tflite", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_a_failed_group_write_leaves_the_previous_files(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "b.json"
    fileio.write_files({a: b"old a", b: b"old b"})
    with pytest.raises(RuntimeError):
        with fileio.atomic_paths(a, b) as (ta, tb):
            ta.write_bytes(b"new a")
            raise RuntimeError("disk full")
    assert (a.read_bytes(), b.read_bytes()) == (b"old a", b"old b")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.json"]  # no temporary files left


def test_an_interrupt_during_the_moves_waits_until_the_group_is_in_place(tmp_path, monkeypatch):
    a, b = tmp_path / "model.onnx", tmp_path / "model.onnx.json"
    fileio.write_files({a: b"old", b: b"old"})
    replace = os.replace

    def interrupted_replace(src, dst):
        replace(src, dst)
        os.kill(os.getpid(), signal.SIGINT)  # arrives after the first file has moved

    monkeypatch.setattr(fileio.os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_files({a: b"new", b: b"new"})
    assert (a.read_bytes(), b.read_bytes()) == (b"new", b"new")


def _meta(fmt):
    return ArtifactMetadata(fmt, "int8", ("a", "b"), (8, 8, 1))


def test_every_model_file_has_its_own_sidecar(tmp_path):
    tflite, onnx = tmp_path / "model_int8.tflite", tmp_path / "model_int8.onnx"
    write_model(tflite, b"tflite", _meta("tflite"))
    write_model(onnx, b"onnx", _meta("onnx"))
    assert sidecar_path(tflite).name == "model_int8.tflite.json" != sidecar_path(onnx).name
    assert read_sidecar(tflite).format == "tflite" and read_sidecar(onnx).format == "onnx"


def test_a_legacy_sidecar_is_read_only_for_the_format_it_names(tmp_path):
    (tmp_path / "model_int8.json").write_text(_meta("onnx").to_json())
    assert read_sidecar(tmp_path / "model_int8.onnx").format == "onnx"
    assert read_sidecar(tmp_path / "model_int8.tflite") is None


def test_a_failed_stage_leaves_only_the_files_marked_to_keep(tmp_path):
    out = tmp_path / "export"
    with pytest.raises(RuntimeError):
        with fileio.staged_folder(out) as run_stage:
            with fileio.staged_folder(run_stage) as stage:  # an export staged inside a run
                (stage / "model_int8.tflite").write_bytes(b"model")
                (stage / "check.json").write_bytes(b"{}")
                assert fileio.keep_on_failure(stage / "check.json") == out / "check.json"
                raise RuntimeError("refused")
    assert sorted(p.name for p in out.iterdir()) == ["check.json"]


def test_a_failed_stage_removes_the_folder_it_made(tmp_path):
    with pytest.raises(RuntimeError):
        with fileio.staged_folder(tmp_path / "new") as stage:
            (stage / "model.tflite").write_bytes(b"model")
            raise RuntimeError("disk full")
    assert not (tmp_path / "new").exists()
