"""Training under tf.distribute: two MultiWorkerMirroredStrategy workers on 127.0.0.1."""

import json
import os
import socket
import subprocess
import sys

import pytest
from click.testing import CliRunner

from edgecnn.cli import main
from edgecnn.errors import ConfigError
from edgecnn.train.distribute import _tf_config, is_chief


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_tf_config_is_checked_before_anything_trains(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="needs TF_CONFIG"):
        _tf_config()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG is not"):
        _tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ConfigError, match="not one of its 1 workers"):
        _tf_config()
    result = CliRunner().invoke(main, ["train", "--data", "digits", "--distribute", "multiworker"])
    assert result.exit_code == 1 and result.output.startswith("Error: TF_CONFIG's task") and "\n" == result.output[-1:]


def test_the_chief_is_the_only_process_or_worker_0():
    class Resolver:
        def __init__(self, task_type, task_id):
            self.task_type, self.task_id = task_type, task_id

    class Strategy:
        def __init__(self, resolver):
            self.cluster_resolver = resolver

    assert is_chief(object())
    assert is_chief(Strategy(Resolver("worker", 0))) and not is_chief(Strategy(Resolver("worker", 1)))
    assert is_chief(Strategy(Resolver("chief", 0)))

    class WithChief(Resolver):
        def cluster_spec(self):
            class Spec:
                def as_dict(self):
                    return {"chief": ["a:1"], "worker": ["b:1", "c:1"]}

            return Spec()

    assert not is_chief(Strategy(WithChief("worker", 0))) and is_chief(Strategy(WithChief("chief", 0)))


@pytest.mark.slow
def test_two_workers_train_the_digits_model_like_one_process_and_only_the_chief_writes(default_digits_run, tmp_path):
    single, _ = default_digits_run
    out = tmp_path / "digits"
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
        }
        command = [sys.executable, "-m", "edgecnn", "train", "--data", "digits", "--distribute", "multiworker"]
        processes.append(
            subprocess.Popen(
                [*command, "--out", str(out), "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    outputs = [p.communicate(timeout=900) for p in processes]
    for p, (_, stderr) in zip(processes, outputs):
        assert p.returncode == 0, stderr[-2000:]
    assert [path.relative_to(out).as_posix() for path in out.rglob("model.keras")] == ["model.keras"]
    assert sorted(path.name for path in out.iterdir()) == ["labels.txt", "model.keras", "model.keras.json", "train.json"]
    report = json.loads((out / "train.json").read_text())
    assert report["distribute"] == {"strategy": "multiworker", "replicas": 2}
    reference = json.loads((single / "train.json").read_text())
    distributed, alone = report["accuracy"]["val_inference_mode"], reference["accuracy"]["val_inference_mode"]
    assert abs(distributed - alone) <= 0.01, (distributed, alone)
    assert len(report["history"]["loss"]) == reference["config"]["epochs"]
