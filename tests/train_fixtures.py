"""A training workspace for the trainer tests: tokenizer + token shards from real Bulgarian text.

The tokenizer is a ByteLevel BPE trained here on the fake-news fixture (``tests.tinymodel``); the
shards are written by the project's own ``corpus.tokenize_shards`` from corpus shards made here.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.formats import format_docs
from tests.tinymodel import fixture_texts, train_tokenizer
from tests.util import write_config

SPLIT_DOCS = {"train": slice(0, 500), "valid": slice(500, 530), "test": slice(530, 560)}


def make_workspace(root: Path, fixtures: Path, vocab_size: int = 1000,
                   shard_tokens: int = 200_000) -> Path:
    """``root/data/tokens`` and ``root/artifacts/tokenizer``; returns ``root``."""
    from corpus.tokenize_shards import tokenize_corpus

    texts = fixture_texts(fixtures, limit=SPLIT_DOCS["test"].stop)
    tok = train_tokenizer(texts[SPLIT_DOCS["train"]], vocab_size)
    tok_dir = root / "artifacts" / "tokenizer"
    tok.save_pretrained(str(tok_dir))
    corpus = root / "data" / "corpus"
    for split, part in SPLIT_DOCS.items():
        (corpus / split).mkdir(parents=True, exist_ok=True)
        (corpus / split / "shard-00000.txt").write_text(format_docs(texts[part]), encoding="utf-8")
    tokens = root / "data" / "tokens"
    meta = tokenize_corpus(tok_dir / "tokenizer.json", len(tok), corpus, tokens, batch_docs=100,
                           shard_tokens=shard_tokens, extra_meta={})
    (tokens / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


def train_config(root: Path, **train) -> Path:
    """``root/pipelines.toml`` for the tiny model with small, fast settings (overridable)."""
    settings = dict(size="tiny", block_size=64, batch_size=8, buffer_size=256, max_steps=40,
                    lr=2e-3, min_lr=2e-4, warmup_steps=10, log_every=5, eval_every=1000,
                    checkpoint_every=1000, prompts=["България е"], sample_tokens=8,
                    precision="fp32", xla="off")
    settings.update(train)
    return write_config(root, {"paths": {"data": "data", "artifacts": "artifacts"},
                               "train": settings})


def unigram_entropy(tokens: Path, split: str = "train") -> float:
    """Entropy (nats) of the split's token frequencies: the loss of the best context-free model."""
    meta = json.loads((tokens / "meta.json").read_text(encoding="utf-8"))
    ids = np.concatenate([np.fromfile(tokens / split / s["file"], dtype=meta["dtype"])
                          for s in meta["splits"][split]["shards"]])
    p = np.bincount(ids) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
