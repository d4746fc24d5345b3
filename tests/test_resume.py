"""Resumable training: a run killed with SIGKILL goes on from its last checkpointed epoch."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgecnn.errors import ConfigError
from edgecnn.train.resume import FOLDER, checkpoint_for

TRAINING = {"config": {"epochs": 3, "seed": 0}, "dataset": ["digits", 0, [32, 32, 1]], "model": ["m", 10, "ab"]}


def test_a_checkpoint_of_the_same_training_is_resumed_and_another_is_replaced(tmp_path):
    first = checkpoint_for(tmp_path, TRAINING, resume=None)
    (first.folder / "history.json").write_text(json.dumps({"loss": [1.0, 0.5]}))
    assert checkpoint_for(tmp_path, TRAINING, resume=None).history == {"loss": [1.0, 0.5]}
    assert checkpoint_for(tmp_path, TRAINING, resume=True).history == {"loss": [1.0, 0.5]}

    other = {**TRAINING, "config": {"epochs": 4, "seed": 0}}
    with pytest.raises(ConfigError, match=r"another training \(config differ\).*--no-resume"):
        checkpoint_for(tmp_path, other, resume=True)
    with pytest.warns(UserWarning, match="starting over"):
        assert checkpoint_for(tmp_path, other, resume=None).history == {}
    assert json.loads((tmp_path / FOLDER / "training.json").read_text()) == other
    assert checkpoint_for(tmp_path, other, resume=False).history == {}


def test_a_worker_refuses_the_checkpoint_its_chief_refuses_instead_of_waiting_for_it(tmp_path):
    checkpoint_for(tmp_path, TRAINING, resume=None)
    other = {**TRAINING, "config": {"epochs": 4, "seed": 0}}
    with pytest.raises(ConfigError, match="another training"):
        checkpoint_for(tmp_path, other, resume=True, writer=False)
    follower = checkpoint_for(tmp_path, TRAINING, resume=True, writer=False)
    assert not follower.writer and (tmp_path / FOLDER / "training.json").is_file()
    # Where the chief's folder is not visible (another host), the worker follows the chief.
    assert not checkpoint_for(tmp_path / "elsewhere", other, resume=True, writer=False).writer


def test_resume_without_a_checkpoint_and_a_damaged_one_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no training checkpoint .* to resume"):
        checkpoint_for(tmp_path, TRAINING, resume=True)
    checkpoint_for(tmp_path, TRAINING, resume=None)
    (tmp_path / FOLDER / "training.json").write_text("{not json")
    with pytest.raises(ConfigError, match="another training"):
        checkpoint_for(tmp_path, TRAINING, resume=True)


def _train(out, *args):
    command = [sys.executable, "-m", "edgecnn", "train", "--data", "digits", "--epochs", "6", "--out", str(out), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _epochs_done(out) -> int:
    try:
        return len(json.loads((out / FOLDER / "history.json").read_text())["loss"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_a_killed_training_goes_on_from_its_last_epoch_and_writes_what_a_clean_run_does(tmp_path):
    killed = tmp_path / "killed"
    process = _train(killed)
    deadline = time.monotonic() + 300
    while _epochs_done(killed) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.communicate()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "model.keras").exists() and (killed / FOLDER / "state").is_dir()

    resumed = _train(killed)
    stdout, stderr = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, stderr
    report = json.loads((killed / "train.json").read_text())
    # The history is written just before each epoch's checkpoint: 3 epochs in it mean 2 or 3 saved.
    assert report["resumed_from_epoch"] >= 2 and f"epoch {report['resumed_from_epoch']} of 6" in stdout
    assert len(report["history"]["loss"]) == 6 and not (killed / FOLDER).exists()

    clean = tmp_path / "clean"
    run = _train(clean)
    run.communicate(timeout=600)
    assert run.returncode == 0
    assert sorted(p.name for p in killed.iterdir()) == sorted(p.name for p in clean.iterdir())
    clean_report = json.loads((clean / "train.json").read_text())
    assert clean_report["resumed_from_epoch"] == 0
    assert report["accuracy"]["val_inference_mode"] >= clean_report["accuracy"]["val_inference_mode"] - 0.01


@pytest.mark.slow
def test_a_run_whose_export_fails_keeps_the_training_checkpoint_and_goes_on_from_it(tmp_path, monkeypatch):
    from edgecnn.run import RunConfig, run

    config = RunConfig(data="digits", arch="xception-pico", img_size=16, epochs=2, out=tmp_path / "run", bench=False)

    def broken(*args, **kwargs):
        raise ConfigError("the export broke")

    monkeypatch.setattr("edgecnn.export.export_model", broken)
    with pytest.raises(ConfigError, match="export broke"):
        run(config)
    assert (tmp_path / "run" / FOLDER / "training.json").is_file()
    monkeypatch.undo()
    run(config)
    report = json.loads((tmp_path / "run" / "train.json").read_text())
    assert report["resumed_from_epoch"] == 2 and len(report["history"]["loss"]) == 2
    assert not (tmp_path / "run" / FOLDER).exists()
