"""The file formats that pass between stages, defined once.

raw shards   data/raw/<spider>/part-NNNNN.jsonl.gz   one JSON record a line (see crawler.items)
corpus       data/corpus/<split>/shard-NNNNN.txt     documents, each followed by DOC_END
tokens       data/tokens/<split>/shard-NNNNN.bin     flat little-endian token ids (uint16 when the
                                                     vocab fits, else uint32), EOS after every doc;
                                                     data/tokens/meta.json describes them

Token shards hold ``meta["shard_tokens"]`` ids each (the last of a split fewer); a document may
run on into the next shard. ``meta.json``: ``vocab_size`` (= ``len(tokenizer)``), ``eos_id``,
``dtype`` (``token_dtype(vocab_size)``), ``tokenizer_sha256`` (of tokenizer.json),
``corpus_sha256``, ``shard_tokens``, ``format`` and ``splits``: ``{split: {"shards": [{"file",
"tokens", "documents" (EOS ids in the shard), "sha256"}], "tokens", "documents"}}``,
``licenses`` (``{source: {licence: documents}}``, from the corpus's ``docs.jsonl``).
``data/tokens/ATTRIBUTION.md`` is the corpus's, copied: licences travel forward (corpus ->
tokens -> run folder), so the trainer never reads ``data/corpus/``.
Read one with ``numpy.memmap(path, dtype=meta["dtype"], mode="r")``.

The trainer cuts a split into records of ``block + 1`` ids (``count_blocks``); the token stage
counts them too, for the block size of the configured model preset (``BLOCK_SIZES``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

SPLITS = ("train", "valid", "test")
SEPARATOR = "<|endoftext|>"
ATTRIBUTION = "ATTRIBUTION.md"
TOKENS_FORMAT = 2  # of data/tokens/meta.json; 2 added "licenses", ATTRIBUTION.md and per-split "bytes"
# Tokens per training sequence of each model size preset (``train.size``) unless
# ``train.block_size`` overrides it; the rest of a preset is the trainer's (tftrain.model.PRESETS).
BLOCK_SIZES = {"tiny": 128, "small": 1024, "medium": 1024, "large": 1024, "xl": 1024}
# A document is its text, an empty line, then the separator line.
DOC_END = "\n\n" + SEPARATOR + "\n"


def format_docs(texts: Iterable[str]) -> str:
    """Join documents into corpus-shard text."""
    return "".join(text + DOC_END for text in texts)


def iter_docs(path: str | Path) -> Iterator[str]:
    """Yield the documents of one corpus shard, in order."""
    data = Path(path).read_text(encoding="utf-8")
    for chunk in data.split(DOC_END):
        if chunk:
            yield chunk


def token_dtype(vocab_size: int) -> str:
    """numpy dtype name for token shards of a vocabulary of this size."""
    return "<u2" if vocab_size <= 65535 else "<u4"


def count_blocks(meta: dict, split: str, block: int) -> int:
    """How many ``block + 1``-id training records a split of ``meta.json`` yields.

    A shard is read as fixed records of ``block`` ids, each with the first id of the next, so
    every id is a label once, no record straddles two shards, and a shard loses at most its last
    ``2 * block`` ids (see ``tftrain.data``).
    """
    return sum(max(s["tokens"] // block - 1, 0) for s in meta["splits"][split]["shards"])
