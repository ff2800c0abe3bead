"""Token shards -> ``tf.data``: packed blocks, a seeded shuffle buffer, batches.

A shard is a flat run of ids with EOS between documents, so documents are already packed. It is
read as fixed records of ``block`` ids; each record is zipped with the first id of the next, giving
``block + 1`` ids: inputs ``[:-1]``, labels ``[1:]``. Every id is a label once and no block
straddles two shards (a shard loses at most its last ``2 * block`` ids).

The training pipeline is pure TF ops (no Python generator), so its iterator is checkpointable:
``tf.train.Checkpoint(data=iterator)`` saves the position, the shuffle buffer and the shuffle
RNG, and a resumed run reads exactly the batches an uninterrupted one would. The alternative,
skipping ``step * batch`` blocks after a restart, is exact too but costs a re-read of the data
so far; the checkpoint costs the buffer's bytes on disk (printed before training). Under a
multi-replica strategy TF cannot checkpoint the distributed iterator, and the trainer falls back
to skipping (``skip_steps``).

``input_context`` (from ``strategy.distribute_datasets_from_function``, which leaves sharding to
us) shards the input per worker (``shard_policy``): by file when there are at least as many files
as workers (FILE), else by block (DATA). The stream repeats forever and the trainer runs a fixed
number of steps, so every worker runs the same steps whatever its share of the blocks (unequal
step counts would abort the collectives).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.errors import UserError
from common.formats import SPLITS, token_dtype
from common.formats import count_blocks as count_blocks  # the rule is shared with the token stage

CYCLE = 2  # shard files read at once (interleaved)


def load_meta(tokens: Path, vocab_size: int) -> dict:
    """``meta.json`` checked against the tokenizer and the shard files on disk."""
    path = tokens / "meta.json"
    if not path.is_file():
        raise UserError(f"{path}: token shards not found; run `make tokenizer` first")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
        splits = meta["splits"]
        dtype = meta["dtype"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: malformed meta.json ({exc})") from None
    if meta.get("vocab_size") != vocab_size:
        raise UserError(f"{path}: shards were written for vocab {meta.get('vocab_size')}, "
                        f"the tokenizer has {vocab_size}; re-run `make tokenizer`")
    if dtype != token_dtype(vocab_size):
        raise UserError(f"{path}: dtype {dtype!r}, expected {token_dtype(vocab_size)!r}")
    itemsize = np.dtype(dtype).itemsize
    for split in SPLITS:
        entry = splits.get(split)
        if not entry or not entry.get("shards"):
            raise UserError(f"{path}: split {split!r} has no shards")
        for shard in entry["shards"]:
            file = tokens / split / shard["file"]
            if not file.is_file():
                raise UserError(f"{file}: token shard missing")
            if file.stat().st_size != shard["tokens"] * itemsize:
                raise UserError(f"{file}: {file.stat().st_size} bytes, meta.json says "
                                f"{shard['tokens']} tokens of {itemsize} bytes")
    return meta


def files(tokens: Path, meta: dict, split: str) -> list[tuple[str, int]]:
    """``(path, tokens)`` of each shard of a split, in order."""
    return [(str(tokens / split / s["file"]), s["tokens"]) for s in meta["splits"][split]["shards"]]


def bytes_per_token(tokens: Path, meta: dict, split: str) -> float:
    """UTF-8 bytes of the split's document text (separators spell none) per token id (separators
    counted).

    The training loss's bits per byte are its nats / ln 2 / this (a batch is a random sample of the
    split); evaluation counts the exact bytes of what it scores (``token_bytes``). Token folders
    written before ``meta.json`` had ``bytes`` fail with a one-line error.
    """
    entry = meta["splits"][split]
    if not entry.get("bytes"):
        raise UserError(f"{tokens / 'meta.json'}: split {split!r} has no \"bytes\" (written "
                        "before bits per byte were reported); re-run `make tokenizer`")
    return entry["bytes"] / entry["tokens"]


def token_bytes(tokenizer) -> np.ndarray:
    """UTF-8 bytes each id spells (int32, indexed by id): a ByteLevel token's string has one
    character per byte; special tokens (the end-of-document separator) spell none. Summed over
    the labels scored, it is the exact byte count bits per byte divide by."""
    special = set(tokenizer.all_special_ids)
    return np.array([0 if i in special else len(tokenizer.convert_ids_to_tokens(i))
                     for i in range(len(tokenizer))], dtype=np.int32)


def buffer_bytes(buffer_size: int, block: int, dtype: str) -> int:
    """Bytes the shuffle buffer holds when full (records keep the shard's dtype)."""
    return buffer_size * (block + 1) * np.dtype(dtype).itemsize


def _decode_dtype(dtype: str):
    import tensorflow as tf

    # decode_raw has no uint32; ids < 2**31 have the same bits as int32
    return tf.uint16 if np.dtype(dtype).itemsize == 2 else tf.int32


def _names(shards: list[tuple[str, int]], block: int, dtype: str):
    """A dataset of ``(path, tail bytes)``: the tail (< one record) is read as a footer."""
    import tensorflow as tf

    size = np.dtype(dtype).itemsize
    tails = np.array([n % block * size for _, n in shards], dtype=np.int64)
    return tf.data.Dataset.from_tensor_slices(([p for p, _ in shards], tails))


def _shard_blocks(path, tail, block: int, dtype: str):
    import tensorflow as tf

    out = _decode_dtype(dtype)
    itemsize = np.dtype(dtype).itemsize
    records = tf.data.FixedLengthRecordDataset(path, block * itemsize, footer_bytes=tail)
    pairs = tf.data.Dataset.zip((records, records.skip(1)))
    return pairs.map(lambda a, b: tf.concat(
        [tf.io.decode_raw(a, out), tf.io.decode_raw(b, out)[:1]], axis=0))


def _split(batch):
    import tensorflow as tf

    batch = tf.cast(batch, tf.int32)
    return batch[:, :-1], batch[:, 1:]


def shard_policy(files: int, pipelines: int) -> str:
    """How ``pipelines`` input workers split the shards: ``FILE`` (each reads its own files) when
    every worker gets a file, else ``DATA`` (each reads every file and keeps every n-th block);
    TF's own FILE policy fails outright with fewer files than workers."""
    return "FILE" if files >= pipelines else "DATA"


def train_dataset(shards: list[tuple[str, int]], dtype: str, block: int, batch: int, buffer_size: int,
                  seed: int, input_context=None, skip_steps: int = 0):
    """Endless shuffled ``(inputs, labels)`` batches; each pass over the data reshuffles.

    ``batch`` is the per-replica batch (times ``accumulate``). Steps per epoch are counted from
    ``meta.json`` by the caller, so every worker runs the same number of steps. ``skip_steps``
    drops the batches of that many global steps (resuming without an iterator checkpoint).
    """
    per_step = 1
    if input_context:
        per_step = input_context.num_replicas_in_sync // input_context.num_input_pipelines
    names = _names(shards, block, dtype)
    blocks_shard = None
    if input_context and input_context.num_input_pipelines > 1:
        n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
        if shard_policy(len(shards), n) == "FILE":
            names = names.shard(n, i)
        else:
            blocks_shard = (n, i)
    names = names.shuffle(len(shards), seed=seed, reshuffle_each_iteration=True)
    blocks = names.interleave(lambda p, tail: _shard_blocks(p, tail, block, dtype),
                              cycle_length=min(CYCLE, len(shards)))
    if blocks_shard:
        blocks = blocks.shard(*blocks_shard)
    blocks = blocks.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True).repeat()
    batches = blocks.batch(batch, drop_remainder=True).skip(skip_steps * per_step)
    return batches.map(_split).prefetch(2)


def eval_dataset(shards: list[tuple[str, int]], dtype: str, block: int, batch: int):
    """Every block of a split once, in order, as ``(inputs, labels)`` (last batch may be short)."""
    blocks = _names(shards, block, dtype).flat_map(lambda p, tail: _shard_blocks(p, tail, block, dtype))
    return blocks.batch(batch).map(_split).prefetch(2)
