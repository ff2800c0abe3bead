"""The ``tf.distribute`` strategy of a run (``train.strategy``) and which worker writes the run.

``auto`` picks TPUStrategy when ``train.tpu`` is set, MultiWorkerMirroredStrategy when
``TF_CONFIG`` is set, MirroredStrategy on several local GPUs, else one device;
``one``/``mirrored``/``multiworker``/``tpu`` force a choice. Every replica takes ``batch_size`` x
``accumulate`` blocks a step (global batch = that x replicas) and the learning rate stays as
configured for the global batch. TPU: ``train.tpu`` is a TPU name, a ``grpc://`` address or
``local`` (TPU VM); minimal and untested here (no TPU), with the token shards on storage the TPU
host reads.

``batch_size`` is per replica, so the global batch grows with the replicas; ``lr`` is used as
configured for that global batch (no automatic scaling): when adding replicas, scale ``lr``
yourself (linearly or by the square root of the batch growth, re-checking warmup) or lower
``batch_size``/``accumulate`` to keep the global batch. Multi-worker: start the same command on every machine with its own ``TF_CONFIG``;
each worker reads its share of the token shards (FILE sharding with at least as many shard files
as workers, DATA otherwise) and all run the same number of steps. The chief (task ``chief``, else
``worker`` 0) alone writes the run folder; the others write to a temporary folder deleted at the
end. All resume from the chief's checkpoints, so the run folder must be on storage every worker
reads (the same path).

Security: TensorFlow's worker gRPC servers listen on all interfaces, unauthenticated and
unencrypted; anyone who reaches a port can run graphs on that worker. Keep workers on a private
network (a VPC/VLAN, or bind the cluster to private addresses and firewall the ports to the
workers' addresses only), never on the open internet.
"""

from __future__ import annotations

import json
import os

from common.errors import UserError


def check_strategy(train: dict) -> None:
    """Fail fast, before TensorFlow starts, on a TPU strategy without a TPU or a bad TF_CONFIG."""
    if train["strategy"] == "tpu" and not train["tpu"]:
        raise UserError('train.strategy="tpu" needs train.tpu (a TPU name, a grpc:// address or '
                        '"local")')
    if not os.environ.get("TF_CONFIG"):
        return
    try:
        spec = json.loads(os.environ["TF_CONFIG"])
        spec["cluster"].items()
        spec["task"]["type"], int(spec["task"]["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"TF_CONFIG: malformed ({type(exc).__name__}: {exc}); expected "
                        '{"cluster": {"worker": ["host:port", ...]}, '
                        '"task": {"type": "worker", "index": 0}}') from None


def make_strategy(train: dict):
    """The strategy ``train.strategy`` names (after ``check_strategy``; before any other TF op)."""
    import tensorflow as tf

    choice = train["strategy"]
    if choice == "auto":
        choice = ("tpu" if train["tpu"] else "multiworker" if os.environ.get("TF_CONFIG")
                  else "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one")
    if choice == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=train["tpu"])
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if choice == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if choice == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    """True on the worker that writes the run folder: ``chief``, else ``worker`` 0, else alone."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


def describe_workers(strategy) -> tuple[int, str]:
    """``(workers in the cluster, "task_type task_id")``; ``(1, "")`` outside a cluster."""
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict() if resolver and resolver.task_type else {}
    workers = len(spec.get("chief", [])) + len(spec.get("worker", []))
    return (workers, f"{resolver.task_type} {resolver.task_id}") if workers > 1 else (1, "")
