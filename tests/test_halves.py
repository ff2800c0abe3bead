"""The Goldfish half-sentence figure (``tftrain.halves``) against a hand computation on a tiny
GPT-2 whose context (100 positions) is not a multiple of the padding bucket: the split, the
tokens left out, the bit sum from the model's own logits, and ``make eval TEXT= LINES=1``."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.tinymodel import build_tiny_model
from tests.util import ROOT, run_module

CONTEXT = 100  # the tiny model's n_positions: not a multiple of halves.BUCKET


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, fixtures):
    return build_tiny_model(tmp_path_factory.mktemp("halves") / "m", fixtures,
                            n_positions=CONTEXT)


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    from tftrain import runs

    return runs.load_hf_model(tiny_folder), runs.load_tokenizer(tiny_folder)


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
    """Lines longer than ``max_ids`` are scored on what is kept of them; a line whose first half
    alone fills them has no token left to score and is left out of the mean (not 0 bits)."""
    from tftrain import halves

    net, tok = tiny
    result = halves.score(net, tok, ud_lines, batch=4, max_ids=12)
    longer = [s for s in ud_lines if len(_ids(tok, s)) + 1 > 12]
    assert longer and result["truncated"] == len(longer) and result["max_ids"] == 12
    expected = []
    for line, got in zip(ud_lines, result["per_sentence_bits"], strict=True):
        ids = [tok.eos_token_id, *_ids(tok, line)][:12]
        skip = len(_ids(tok, line[:len(line) // 2]))
        if skip >= 11:
            assert got is None, line
        else:
            expected.append(_hand_bits(net, ids)[skip:].sum())
            assert got == pytest.approx(expected[-1], rel=1e-4, abs=1e-6)
    left_out = len(ud_lines) - len(expected)
    assert left_out and result["left_out"] == left_out
    assert result["sentences"] == len(expected)
    assert result["mean_bits"] == pytest.approx(np.mean(expected), rel=1e-4)


def test_a_sequence_filling_the_context_is_not_padded_past_it(tiny, ud_lines):
    """``CONTEXT + 1`` ids (what ``make eval`` passes for a block of the whole context) would be
    padded to 128 positions, past the model's 100; they are scored whole, beside a short one."""
    from tftrain import halves

    net, tok = tiny
    long = [tok.eos_token_id, *_ids(tok, " ".join(ud_lines))][:CONTEXT + 1]
    short = [tok.eos_token_id, *_ids(tok, ud_lines[0])]
    assert len(long) == CONTEXT + 1 == net.config.n_positions + 1
    got = halves.token_bits(net, [long, short], batch=2)
    assert got[0] == pytest.approx(_hand_bits(net, long), rel=1e-4, abs=1e-6)
    assert got[1] == pytest.approx(_hand_bits(net, short), rel=1e-4, abs=1e-6)


def test_lines_are_split_at_newlines_only():
    from tftrain.halves import split_lines

    assert split_lines("Аз\u2028ти\r\nа\x0bб\x1cв\x85г\n\nд") == ["Аз\u2028ти", "а\x0bб\x1cв\x85г", "", "д"]


def _make_eval_command(*variables: str, lines_env: str | None = None) -> subprocess.CompletedProcess:
    """``make -n eval TEXT=t.txt [variables]``: the command line the Makefile builds (with
    ``LINES`` in the environment when ``lines_env`` is given, as a terminal exports its height)."""
    outer_make = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "ARGS", "SIZE", "LINES", "CKPT")
    env = {k: v for k, v in os.environ.items() if k not in outer_make}
    return subprocess.run(["make", "-n", "--no-print-directory", "eval", f"PY={sys.executable}",
                           "TEXT=t.txt", *variables], cwd=ROOT, capture_output=True, text=True,
                          env=env if lines_env is None else {**env, "LINES": lines_env})


def test_make_eval_lines_is_on_only_for_1():
    for variables, on in [((), False), (("LINES=",), False), (("LINES=0",), False),
                          (("LINES=1",), True)]:
        done = _make_eval_command(*variables)
        assert done.returncode == 0, done.stderr
        command = done.stdout.strip().splitlines()[-1]
        assert "-m tftrain.evaluate" in command and ("--lines" in command) == on, variables
    done = _make_eval_command("LINES=yes")
    assert done.returncode == 2 and "-m tftrain.evaluate" not in done.stdout
    assert len(done.stderr.strip().splitlines()) == 1 and "LINES=yes" in done.stderr, done.stderr
    for height in ("24", "1"):  # a terminal's LINES in the environment is not the make variable
        done = _make_eval_command(lines_env=height)
        assert done.returncode == 0 and "--lines" not in done.stdout.strip().splitlines()[-1], done.stderr
    assert "--lines" in _make_eval_command("LINES=1", lines_env="24").stdout


def test_eval_lines_of_a_file(tiny, tiny_folder, ud_lines, tmp_path, capsys):
    """``python -m tftrain.evaluate --text --lines`` (block: the whole context, so 101 ids a
    line at most): a CRLF line, a sentence with a line separator (U+2028) inside it, and a line
    whose first half alone is longer than that, left out of the mean and counted beside
    ``truncated``, on screen and in the result file."""
    from tftrain import evaluate

    net, tok = tiny
    long = " ".join(ud_lines * 3)
    assert len(_ids(tok, long[:len(long) // 2])) > CONTEXT
    sentences = ["Аз и ти", "Това е изречение\u2028с разделител на редове.", long]
    (tmp_path / "t.txt").write_text(f"{sentences[0]}\r\n{sentences[1]}\n{long}\n", "utf-8")
    code = evaluate.main(["--config", str(ROOT / "pipelines.toml"), "--ckpt", str(tiny_folder),
                          "--text", str(tmp_path / "t.txt"), "--lines"])
    assert code == 0
    h = json.loads((tiny_folder / "eval-text-t.json").read_text("utf-8"))["halves"]
    expected = []
    for line in sentences[:2]:
        ids = [tok.eos_token_id, *_ids(tok, line)]
        expected.append(_hand_bits(net, ids)[len(_ids(tok, line[:len(line) // 2])):].sum())
    assert h["per_sentence_bits"][:2] == pytest.approx(expected, rel=1e-4)
    assert h["per_sentence_bits"][2] is None and h["max_ids"] == CONTEXT + 1
    assert (h["sentences"], h["truncated"], h["left_out"]) == (2, 1, 1)
    assert h["mean_bits"] == pytest.approx(np.mean(expected), rel=1e-4)
    assert (f"{h['mean_bits']:.2f} bits a sentence, mean over 2 lines; 1 cut at 101 ids, 1 of "
            "them left out") in capsys.readouterr().out


def test_lines_without_text_fails_in_one_line(tmp_path):
    done = run_module("tftrain.evaluate", "--config", str(tmp_path / "none.toml"), "--lines")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --lines needs --text (LINES=1 needs TEXT=): a file with one sentence a line"]
