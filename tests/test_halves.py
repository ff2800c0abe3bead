"""The Goldfish half-sentence figure (``tftrain.halves``) against a hand computation on a tiny
GPT-2: the split, the tokens left out, and the bit sum from the model's own logits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.tinymodel import build_tiny_model
from tests.util import run_module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, fixtures):
    from tftrain import runs

    folder = build_tiny_model(tmp_path_factory.mktemp("halves") / "m", fixtures)
    return runs.load_hf_model(folder), runs.load_tokenizer(folder)


@pytest.fixture(scope="module")
def ud_lines(fixtures) -> list[str]:
    conllu = fixtures / "bg_text" / "ud_bulgarian_btb" / "bg_btb-ud-dev.conllu"
    return [line[len("# text = "):] for line in conllu.read_text("utf-8").splitlines()
            if line.startswith("# text = ")][:9]


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _hand_bits(net, ids: list[int]) -> np.ndarray:
    """-log2 p(ids[i] | ids[:i]) for i >= 1, from transformers' own LM head, in float64."""
    import tensorflow as tf

    logits = net(tf.constant([ids[:-1]])).logits[0].numpy().astype(np.float64)
    top = logits.max(axis=-1, keepdims=True)
    logp = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(ids) - 1), ids[1:]] / math.log(2)


def test_split_is_at_the_middle_character_not_byte():
    from tftrain.halves import split

    assert split("България е") == ("Бълга", "рия е")  # 10 characters, 19 UTF-8 bytes
    assert split("Аз и ти") == ("Аз ", "и ти")
    assert split("а") == ("", "а")


def test_first_half_ending_in_a_space_takes_the_next_word_with_it(tiny):
    """As in Goldfish's code (their fast SentencePiece tokenizer makes a trailing space a token
    "▁", ours "Ġ"): the first half "Аз " counts one token more than "Аз", so " и" is not
    scored and " ти" is."""
    from tftrain.halves import prepare

    net, tok = tiny
    ids, skip, cut = prepare(tok, "Аз и ти", 512)
    assert ids == [tok.eos_token_id, *_ids(tok, "Аз и ти")] and not cut
    assert skip == len(_ids(tok, "Аз ")) == len(_ids(tok, "Аз")) + 1
    assert tok.decode(ids[1 + skip:]) == " ти"


def test_figure_is_the_hand_sum_of_second_half_bits(tiny, ud_lines):
    """Real sentences of different lengths, three to a batch (padding and sorting exercised),
    blank lines left out: each line's figure is the sum of its tokens' bits after the first
    half's token count, from a forward pass of that line alone."""
    from tftrain import halves

    net, tok = tiny
    lines = ["България е", "", *ud_lines, "   ", "Аз и ти"]
    result = halves.score(net, tok, lines, batch=3)
    kept = [s for s in lines if s.strip()]
    assert result["sentences"] == len(kept) == 11 and result["truncated"] == 0
    expected, counted = [], 0
    for line in kept:
        first = line[:len(line) // 2]
        ids = [tok.eos_token_id, *_ids(tok, line)]
        bits = _hand_bits(net, ids)[len(_ids(tok, first)):]
        expected.append(bits.sum())
        counted += len(bits)
    assert result["per_sentence_bits"] == pytest.approx(expected, rel=1e-4)
    assert result["mean_bits"] == pytest.approx(np.mean(expected), rel=1e-4)
    assert result["tokens_counted"] == counted


def test_long_lines_are_cut_at_max_ids(tiny, ud_lines):
    from tftrain import halves

    net, tok = tiny
    result = halves.score(net, tok, ud_lines, batch=4, max_ids=12)
    longer = [s for s in ud_lines if len(_ids(tok, s)) + 1 > 12]
    assert longer and result["truncated"] == len(longer) and result["max_ids"] == 12
    for line, got in zip(ud_lines, result["per_sentence_bits"], strict=True):
        ids = [tok.eos_token_id, *_ids(tok, line)][:12]
        skip = len(_ids(tok, line[:len(line) // 2]))
        assert got == pytest.approx(_hand_bits(net, ids)[skip:].sum(), rel=1e-4, abs=1e-6)


def test_lines_without_text_fails_in_one_line(tmp_path):
    done = run_module("tftrain.evaluate", "--config", str(tmp_path / "none.toml"), "--lines")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --lines needs --text (LINES=1 needs TEXT=): a file with one sentence a line"]
