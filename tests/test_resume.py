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
