"""A run's checkpoints and its identity (``run.json``), for resuming by re-running.

A checkpoint holds the model, the optimiser (moments, its iteration = the schedule position), the
step counter and the tf.data iterator (position, shuffle buffer, RNG state), plus the dropout RNG
state inside the model. ``tf.train.CheckpointManager`` writes ``ckpt-N.*`` first (TF writes the
shards under temporary names and renames them) and only then rewrites the ``checkpoint`` index,
itself by write-then-rename; a save killed half-way leaves the index naming the previous one.

``run.json`` records what must not change across a resume (tokenizer, vocab, architecture, the
data settings baked into the saved iterator) and is checked before TensorFlow starts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from common.atomic import atomic_write
from common.errors import UserError

# [train] keys a resumed run must keep: they shape the model or the saved data iterator.
FROZEN = ("block_size", "batch_size", "accumulate", "buffer_size", "seed", "replicas")


def latest(run: Path) -> str | None:
    """Path prefix of the newest complete checkpoint of a run, or None (no TF needed)."""
    index = run / "checkpoints" / "checkpoint"
    if not index.is_file():
        return None
    for line in index.read_text(encoding="utf-8").splitlines():
        if line.startswith("model_checkpoint_path:"):
            name = line.split(":", 1)[1].strip().strip('"')
            path = run / "checkpoints" / name
            return str(path) if Path(str(path) + ".index").is_file() else None
    return None


def saved_step(run: Path) -> int:
    """The step of the newest checkpoint, read without restoring it."""
    import tensorflow as tf

    return int(tf.train.load_variable(latest(run), "step/.ATTRIBUTES/VARIABLE_VALUE"))


def check_identity(run: Path, identity: dict) -> bool:
    """True when ``run`` has a checkpoint to resume; raise when it was made for other settings."""
    path = run / "run.json"
    if latest(run) is None or not path.is_file():
        return False
    saved = json.loads(path.read_text(encoding="utf-8"))
    if (saved["vocab_size"], saved["tokenizer_sha256"]) != (identity["vocab_size"],
                                                            identity["tokenizer_sha256"]):
        raise UserError(f"{run}: checkpoints were trained with another tokenizer "
                        f"(vocab {saved['vocab_size']}, now {identity['vocab_size']}); "
                        "use another --run or restore the tokenizer")
    for key in ("model", "data"):
        for name, value in identity[key].items():
            if saved[key].get(name) != value:
                raise UserError(f"{run}: resuming needs the same {name} "
                                f"({saved[key].get(name)!r}, now {value!r}); "
                                "use another --run for new settings")
    return True


def remove_partial(run: Path) -> list[str]:
    """Delete what a save killed half-way left (``ckpt-N_temp/``); returns the names removed."""
    removed = []
    for temp in (run / "checkpoints").glob("ckpt-*_temp"):
        shutil.rmtree(temp, ignore_errors=True)
        removed.append(temp.name)
    return removed


def write_identity(run: Path, identity: dict) -> None:
    with atomic_write(run / "run.json") as fh:
        json.dump(identity, fh, indent=2)


def manager(run: Path, keep: int, **objects):
    """``(tf.train.Checkpoint, tf.train.CheckpointManager)`` over ``objects`` in ``run/checkpoints``."""
    import tensorflow as tf

    ckpt = tf.train.Checkpoint(**objects)
    return ckpt, tf.train.CheckpointManager(ckpt, str(run / "checkpoints"), max_to_keep=keep,
                                            step_counter=objects.get("step"))
