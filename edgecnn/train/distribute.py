"""Training on several devices or machines with tf.distribute, as TensorFlow documents it.

``mirrored``: MirroredStrategy over this machine's devices. ``multiworker``:
MultiWorkerMirroredStrategy over the workers ``TF_CONFIG`` describes (one process per worker,
each started with the same command); every worker trains, and only the chief (worker 0)
writes files. edgecnn starts no processes and manages no cluster.
"""

from __future__ import annotations

import json
import os

from ..errors import ConfigError

STRATEGIES = ("mirrored", "multiworker")


_created: dict = {}


def strategy(name: str | None):
    """The tf.distribute strategy for `name` (None: TensorFlow's default, one device), made once
    per process: a caller that builds models before training calls this first."""
    from ..tf import tensorflow

    tf = tensorflow()
    if name is None:
        return tf.distribute.get_strategy()
    if name not in _created:
        _created[name] = _new(tf, name)
    return _created[name]


def _new(tf, name: str):
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        _tf_config()
        # Created before any other TensorFlow op, as the strategy requires: fit builds nothing before it.
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"unknown --distribute {name!r}; choose from {', '.join(STRATEGIES)}")


def _tf_config() -> dict:
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError(
            "--distribute multiworker needs TF_CONFIG describing the workers and this one's index, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise ConfigError(
            'TF_CONFIG is not {"cluster": {"worker": [...]}, "task": {"type": "worker", "index": N}}; fix it'
        ) from None
    if task.get("type") not in ("worker", "chief") or not isinstance(workers, list) or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG's task {task!r} is not one of its {len(workers)} workers; fix its index")
    return config


def is_chief(strategy) -> bool:
    """Whether this process writes the run's files: the only one, or worker 0 of a cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    # Worker 0 only where the cluster has no chief of its own (a TFJob with a Chief replica has).
    has_chief = "chief" in (resolver.cluster_spec().as_dict() if hasattr(resolver, "cluster_spec") else {})
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def replicas(strategy) -> int:
    return int(strategy.num_replicas_in_sync)


def task_name(strategy) -> str:
    """This process's name in its cluster ("worker-1"), or "" outside one: what keeps workers' local files apart."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return ""
    return f"{resolver.task_type}-{resolver.task_id}"
