"""Tokenise the corpus splits into flat token shards (format: ``common.formats``).

Each split's documents are encoded in batches with the Rust batch encoder (its thread pool;
``encode_batch_fast``, which skips the character offsets the shards do not need) and
streamed to ``data/tokens/<split>/shard-NNNNN.bin``: token ids as little-endian ``token_dtype``,
``<|endoftext|>`` after every document, ``shard_tokens`` ids a shard (the last one shorter).
A document may span two shards; a shard's ``documents`` counts the EOS ids it holds.
Text that merely spells a special token inside a document is encoded as plain text, so the only
EOS ids in the shards are the separators written here. Each split's ``meta.json`` entry counts
the UTF-8 ``bytes`` of its documents' text (separators not counted), the denominator of bits per
byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from tokenizers import Tokenizer
from tqdm import tqdm

from common.errors import UserError
from common.formats import SEPARATOR, SPLITS, iter_docs, token_dtype
from corpus.write import corpus_shards


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_docs(path: Path) -> Iterator[str]:
    """``iter_docs`` with a one-line error for a shard that is not UTF-8."""
    try:
        yield from iter_docs(path)
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None


def batched(docs: Iterable[str], size: int) -> Iterator[list[str]]:
    """Lists of ``size`` documents (the last one shorter)."""
    batch: list[str] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_encoder(tokenizer_json: Path) -> Tokenizer:
    """The saved tokenizer, set to read special-token text inside documents as plain text."""
    tok = Tokenizer.from_file(str(tokenizer_json))
    tok.encode_special_tokens = True
    return tok


class _ShardWriter:
    """Writes ids into fixed-size shard files, hashing and counting as it goes."""

    def __init__(self, folder: Path, shard_tokens: int, dtype: str, eos_id: int):
        self.folder, self.capacity, self.dtype, self.eos = folder, shard_tokens, dtype, eos_id
        self.shards: list[dict] = []
        self.fh: BinaryIO | None = None
        folder.mkdir(parents=True, exist_ok=True)

    def _open(self) -> None:
        name = f"shard-{len(self.shards):05d}.bin"
        self.fh = open(self.folder / name, "wb")  # noqa: SIM115 (open across write calls)
        self.sha = hashlib.sha256()
        self.shards.append({"file": name, "tokens": 0, "documents": 0, "sha256": ""})

    def _close(self) -> None:
        assert self.fh is not None
        self.fh.close()
        self.fh = None
        self.shards[-1]["sha256"] = self.sha.hexdigest()

    def write(self, ids: np.ndarray) -> None:
        while len(ids):
            if self.fh is None:
                self._open()
            entry = self.shards[-1]
            piece = ids[: self.capacity - entry["tokens"]]
            data = piece.tobytes()
            self.fh.write(data)
            self.sha.update(data)
            entry["tokens"] += len(piece)
            entry["documents"] += int(np.count_nonzero(piece == self.eos))
            if entry["tokens"] == self.capacity:
                self._close()
            ids = ids[len(piece):]

    def finish(self) -> list[dict]:
        if self.fh is not None:
            self._close()
        return self.shards


def tokenize_split(encoder: Tokenizer, paths: list[Path], out: Path, *, batch_docs: int,
                   shard_tokens: int, eos_id: int, dtype: str, desc: str) -> dict:
    """Write one split's token shards under ``out``; return its ``meta.json`` entry."""
    writer = _ShardWriter(out, shard_tokens, dtype, eos_id)
    eos = [eos_id]
    text_bytes = 0
    with tqdm(total=sum(p.stat().st_size for p in paths), unit="B", unit_scale=True,
              desc=desc, leave=False) as bar:
        for path in paths:
            for batch in batched(read_docs(path), batch_docs):
                text_bytes += sum(len(doc.encode("utf-8")) for doc in batch)
                flat: list[int] = []
                for enc in encoder.encode_batch_fast(batch, add_special_tokens=False):
                    flat += enc.ids
                    flat += eos
                writer.write(np.asarray(flat, dtype=dtype))
            bar.update(path.stat().st_size)
    shards = writer.finish()
    return {"shards": shards, "tokens": sum(s["tokens"] for s in shards),
            "documents": sum(s["documents"] for s in shards), "bytes": text_bytes}


def tokenize_corpus(tokenizer_json: Path, vocab_size: int, corpus: Path, out: Path, *,
                    batch_docs: int, shard_tokens: int, extra_meta: dict) -> dict:
    """Tokenise every split of ``corpus`` into ``out`` (a fresh folder); return ``meta.json``."""
    encoder = load_encoder(tokenizer_json)
    eos_id = encoder.token_to_id(SEPARATOR)
    if eos_id is None:
        raise UserError(f"{tokenizer_json}: has no {SEPARATOR} token")
    dtype = token_dtype(vocab_size)
    meta = {"vocab_size": vocab_size, "eos_id": eos_id, "dtype": dtype,
            "tokenizer_sha256": sha256_file(tokenizer_json),
            **extra_meta, "splits": {}}
    for split in SPLITS:
        meta["splits"][split] = tokenize_split(
            encoder, corpus_shards(corpus, split), out / split, batch_docs=batch_docs,
            shard_tokens=shard_tokens, eos_id=eos_id, dtype=dtype, desc=f"tokenise {split}")
    return meta
