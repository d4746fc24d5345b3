"""Resumable training: tf_keras' BackupAndRestore checkpoints the model and optimizer after every
epoch into a folder inside the run's output, and a run that finds a checkpoint of the same
training goes on from its last epoch. The folder goes once the run's files have landed.
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..fileio import write_json

#: The checkpoint folder's name inside the output folder.
FOLDER = ".train-checkpoint"
_TRAINING = "training.json"
_HISTORY = "history.json"


@dataclass
class Checkpoint:
    folder: Path
    #: Per-epoch logs of the epochs run so far, across resumes (truncated to the restored epoch).
    history: dict = field(default_factory=dict)
    #: The epoch training restarted from (0 for a fresh start), known once training has begun.
    resumed_from: int = 0
    #: Whether this process keeps the folder's files (False for the other workers of a cluster).
    writer: bool = True

    def callbacks(self, epochs: int) -> list:
        """Callbacks for model.fit: the history writer first, so a kill between the two
        leaves a history one epoch ahead of the weights, never behind (it is cut back)."""
        from ..tf import keras

        checkpoint = self

        class History(keras().callbacks.Callback):
            def on_train_begin(self, logs=None):
                checkpoint.resumed_from = epochs  # unless an epoch begins below

            def on_epoch_begin(self, epoch, logs=None):
                if checkpoint.resumed_from == epochs:  # the first epoch this run trains
                    checkpoint.resumed_from = epoch
                    checkpoint.history = {k: v[:epoch] for k, v in checkpoint.history.items()}

            def on_epoch_end(self, epoch, logs=None):
                for key, value in (logs or {}).items():
                    checkpoint.history.setdefault(key, []).append(float(value))
                if checkpoint.writer:
                    write_json(checkpoint.folder / _HISTORY, checkpoint.history)

            def on_train_end(self, logs=None):
                checkpoint.history = {k: v[:epochs] for k, v in checkpoint.history.items()}

        backup = keras().callbacks.BackupAndRestore(str(self.folder / "state"), delete_checkpoint=False)
        return [History(), backup]

    def remove(self) -> None:
        if self.writer:
            shutil.rmtree(self.folder, ignore_errors=True)


def checkpoint_for(out_dir: Path, training: dict, resume: bool | None, writer: bool = True) -> Checkpoint:
    """The checkpoint folder for a training described by `training` (JSON-able), in `out_dir`.

    `resume` None goes on from a checkpoint of the same training and starts over (with a
    warning) from one of another; True insists on going on; False starts over. Only the
    `writer` (the chief of a cluster) decides and changes files; the other workers follow it.
    """
    folder = Path(out_dir) / FOLDER
    training = json.loads(json.dumps(training))  # as it reads back: tuples as lists
    found = _read(folder / _TRAINING)
    if not writer:
        # A worker that sees the chief's folder refuses what the chief refuses, instead of
        # waiting forever in training for a chief that has stopped.
        if resume and found is not None and found != training:
            raise ConfigError(f"the checkpoint in {folder} is of another training; run with the same options on every worker")
        return Checkpoint(folder, _history(folder), writer=False)
    if resume and found is None:
        raise ConfigError(f"there is no training checkpoint in {folder} to resume; run without --resume to start")
    if found is not None and found != training:
        differs = sorted(k for k in {*found, *training} if found.get(k) != training.get(k))
        if resume:
            raise ConfigError(
                f"the checkpoint in {folder} is of another training ({', '.join(differs)} differ); "
                "run with the same options, or with --no-resume to start over"
            )
        if resume is None:
            warnings.warn(
                f"starting over: the checkpoint in {folder} is of another training ({', '.join(differs)} differ)", stacklevel=3
            )
        found = None
    if found is None or resume is False:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / _TRAINING, training)
        return Checkpoint(folder)
    return Checkpoint(folder, _history(folder))


def remove_checkpoint(out_dir: Path) -> None:
    """Remove the checkpoint of a training whose files have landed in `out_dir`."""
    shutil.rmtree(Path(out_dir) / FOLDER, ignore_errors=True)


def _history(folder: Path) -> dict:
    found = _read(folder / _HISTORY)
    return found if found and "unreadable" not in found else {}  # a damaged history: the epochs from now on


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"unreadable": str(path)}  # a damaged checkpoint counts as another training's
