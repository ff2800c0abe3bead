"""The half-sentence figure the Goldfish models publish (Chang et al. 2024, "Goldfish: Monolingual
Language Models for 350 Languages"), for ``make eval TEXT=file.txt LINES=1``.

Per line of a one-sentence-a-line file, as their FLORES code does it
(github.com/tylerachang/goldfish, ``eval_code/flores_eval_goldfish.py`` and
``flores_eval_othermodels.py``, ``ONLY_SECOND_HALF = True``; read 2026-12):

1. the line, stripped, is tokenised whole without special tokens and one start token is put
   before it (theirs: ``[CLS]``, which their models saw before every sequence; ours:
   ``<|endoftext|>``, which the trainer's model saw before every document); at most
   ``MAX_IDS`` ids are kept (their ``MAX_SEQ_LEN``, start token included);
2. every token's surprisal in bits given the start token and the tokens before it;
3. the first half is ``line[:len(line) // 2]`` (characters); it is tokenised on its own and, if it
   tokenises to ``n`` tokens, the first ``n`` tokens of the whole line are not counted;
4. the rest is summed: the line's figure. The published figure is the mean over lines.

A line whose first half alone fills the ``MAX_IDS`` ids has nothing of its second half left to
score; it is left out of the mean (theirs would count it as 0 bits) and counted as ``left_out``.

So the split is a token count, not a character position, and it follows their tokenizers'
habits, which ours shares. When the middle falls inside a word, the half word alone usually
takes more tokens than the whole word takes in the line, so the first token(s) after it are not
counted either. When the first half ends in a space, that space alone is a token (theirs, a
SentencePiece model loaded by ``AutoTokenizer`` as ``AlbertTokenizerFast``, whose normaliser
does not strip it: ``▁``; our ByteLevel BPE: ``Ġ``), while in the whole line it belongs to the
next word (`` и``), so the second half's first word is not counted. The second half's leading
space, when the middle falls just before it, is part of its first token and counted, in both.
We keep all of this as their code does, so the figures compare. A ByteLevel BPE has no unknown
token, so their rule scoring unknown tokens at log2(vocabulary) never applies here.
"""

from __future__ import annotations

import math

import numpy as np

from common.errors import UserError

MAX_IDS = 512
BUCKET = 32  # sentences are padded to a multiple of this: few shapes, few traces


def split_lines(text: str) -> list[str]:
    """The lines of a one-sentence-a-line file: split at ``\\n`` only, a trailing ``\\r``
    dropped (``str.splitlines`` would also split a sentence at U+2028, ``\\x0b``, ``\\x1c``...)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def split(line: str) -> tuple[str, str]:
    """``line`` cut at its middle character (the first half is the shorter one)."""
    middle = len(line) // 2
    return line[:middle], line[middle:]


def encode(tokenizer, text: str) -> list[int]:
    """Ids of ``text`` without special tokens (a literal ``<|endoftext|>`` stays text)."""
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True,
                     verbose=False)["input_ids"]


def prepare(tokenizer, line: str, max_ids: int) -> tuple[list[int], int, bool]:
    """``(ids, skip, cut)``: the start token and the line's ids (at most ``max_ids``), how many
    of the line's first tokens are not counted, and whether ids were cut off."""
    ids = [tokenizer.eos_token_id, *encode(tokenizer, line)]
    skip = len(encode(tokenizer, split(line)[0]))
    return ids[:max_ids], skip, len(ids) > max_ids


def token_bits(net, sequences: list[list[int]], batch: int) -> list[np.ndarray]:
    """Surprisal in bits of every id after the first of each sequence, given the ids before it.

    Sequences are padded at the end (GPT-2 attends only backwards, so padding changes nothing
    before it) to a multiple of ``BUCKET``, at most the model's context ``n_positions``, and run
    ``batch`` at a time.
    """
    import tensorflow as tf

    from tftrain import model

    @tf.function(reduce_retracing=True)
    def losses(x, y):
        return tf.reshape(model.token_losses(net, x, y, training=False), tf.shape(y))

    out: list[np.ndarray] = [np.empty(0)] * len(sequences)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch):
        group = order[start:start + batch]
        width = min(-(-max(len(sequences[i]) - 1 for i in group) // BUCKET) * BUCKET,
                    net.config.n_positions)
        ids = np.zeros((len(group), width + 1), dtype=np.int32)
        for row, i in enumerate(group):
            ids[row, :len(sequences[i])] = sequences[i]
        nats = losses(tf.constant(ids[:, :-1]), tf.constant(ids[:, 1:])).numpy()
        for row, i in enumerate(group):
            out[i] = nats[row, :len(sequences[i]) - 1] / math.log(2)
    return out


def score(net, tokenizer, lines: list[str], batch: int, max_ids: int = MAX_IDS) -> dict:
    """The mean over ``lines`` (stripped; blank ones left out) of the bits of each line's second
    half given its first, and what it was computed from. A line cut at ``max_ids`` with nothing
    of its second half left is left out of the mean (``left_out``; its bits: None)."""
    lines = [s for s in (line.strip() for line in lines) if s]
    if not lines:
        raise UserError("no non-blank line to score")
    prepared = [prepare(tokenizer, line, max_ids) for line in lines]
    bits = token_bits(net, [ids for ids, _, _ in prepared], batch)
    counted = [max(len(b) - skip, 0) for b, (_, skip, _) in zip(bits, prepared, strict=True)]
    per_line = [None if cut and not n else float(b[skip:].sum())
                for b, (_, skip, cut), n in zip(bits, prepared, counted, strict=True)]
    kept = [b for b in per_line if b is not None]
    if not kept:
        raise UserError(f"no line to score: every line's first half alone fills the {max_ids} ids "
                        "the model takes")
    return {"mean_bits": float(np.mean(kept)), "sentences": len(kept),
            "tokens_counted": sum(counted),
            "truncated": sum(cut for _, _, cut in prepared),
            "left_out": len(per_line) - len(kept), "max_ids": max_ids,
            "per_sentence_bits": per_line}
