"""Build a tiny Hugging Face GPT-2 folder (TF weights + a trained tokenizer) for tests.

The tokenizer is a ByteLevel BPE trained on real Bulgarian text from the shared fixtures; the model
is a randomly initialised 2-layer ``TFGPT2LMHeadModel`` saved with ``save_pretrained`` exactly as the
trainer writes ``artifacts/runs/<run>/final/``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

FAKE_NEWS = Path("bg_text/hack_the_fake_news/FN_Validation_Set.jsonl")
EOT = "<|endoftext|>"


def fixture_texts(fixtures: Path, limit: int = 400) -> list[str]:
    """The article bodies of the first ``limit`` records of the fake-news fixture."""
    texts = []
    with open(fixtures / FAKE_NEWS, encoding="utf-8") as fh:
        for line in fh:
            body = json.loads(line).get("Content") or ""
            if body.strip():
                texts.append(body)
            if len(texts) >= limit:
                break
    return texts


def train_tokenizer(texts: list[str], vocab_size: int = 1000):
    """A ``GPT2TokenizerFast`` around a ByteLevel BPE trained on ``texts``."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOT],
                            show_progress=False)
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOT, eos_token=EOT,
                            unk_token=EOT, pad_token=EOT)
    return tok


def build_tiny_model(folder: Path, fixtures: Path, *, vocab_size: int = 1000, seed: int = 0,
                     n_layer: int = 2, n_head: int = 4, n_embd: int = 64,
                     n_positions: int = 128) -> Path:
    """Write a tiny TF GPT-2 + tokenizer HF folder to ``folder`` and return it."""
    import tensorflow as tf
    import tf_keras
    from transformers import GPT2Config, TFGPT2LMHeadModel

    tok = train_tokenizer(fixture_texts(fixtures), vocab_size)
    tf_keras.utils.set_random_seed(seed)
    config = GPT2Config(vocab_size=len(tok), n_layer=n_layer, n_head=n_head, n_embd=n_embd,
                        n_positions=n_positions, bos_token_id=tok.bos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model = TFGPT2LMHeadModel(config)
    model(tf.constant([[tok.bos_token_id, 1, 2]]))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder
