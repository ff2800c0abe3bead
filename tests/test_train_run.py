"""The trainer end to end on real Bulgarian text (tiny GPT-2, CPU): ``python -m tftrain.train``.

Every run is a subprocess, as a user runs it; runs that do not depend on each other run two at a
time (the machine has 2 cores).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.train_fixtures import make_workspace, train_config, unigram_entropy
from tests.util import ROOT, run_module

TRAIN = "tftrain.train"


def _start(config: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", TRAIN, "--config", str(config), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def _records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


def _weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "final" / "model.safetensors"))


@pytest.fixture(scope="module")
def ws(tmp_path_factory, fixtures) -> Path:
    return make_workspace(tmp_path_factory.mktemp("train"), fixtures)


@pytest.fixture(scope="module")
def main_run(ws) -> Path:
    """120 steps of 2 accumulated micro-batches of 8 blocks; then ``make eval``."""
    config = train_config(ws, batch_size=8, accumulate=2, max_steps=120, lr=1e-3,
                          warmup_steps=20, eval_every=60, checkpoint_every=40, keep_checkpoints=2,
                          log_every=10, buffer_budget_mb=0.01)
    out = _finish(_start(config))
    (ws / "main_run.out").write_text(out, encoding="utf-8")  # for the log-shape test
    assert "parameters" in out and "memory estimate" in out
    assert "shuffle buffer: 256 blocks = 0.03 MB" in out  # 256 x 65 ids x 2 bytes
    assert "warning: the shuffle buffer" in out  # over buffer_budget_mb
    evaluated = run_module("tftrain.evaluate", "--config", str(config), "--ckpt",
                           str(ws / "artifacts" / "runs" / "tiny"))
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    return ws / "artifacts" / "runs" / "tiny"


def test_loss_falls_below_unigram_baseline(main_run, ws):
    """The validation loss ends below the entropy of the training tokens' unigram distribution:
    the model has learnt context, not only token frequencies."""
    baseline = unigram_entropy(ws / "data" / "tokens")
    valid = _records(main_run, "valid")
    assert [r["step"] for r in valid] == [60, 120]
    assert valid[-1]["loss"] < baseline, (valid, baseline)
    train = _records(main_run, "train")
    assert train[-1]["loss"] < train[0]["loss"] - 0.5
    assert all(r["grad_norm"] > 0 and r["tokens_per_s"] > 0 for r in train)
    assert train[0]["lr"] < train[1]["lr"] and train[-1]["lr"] < max(r["lr"] for r in train)


def test_run_folder_and_final_model(main_run):
    from transformers import AutoTokenizer

    final = main_run / "final"
    tok = AutoTokenizer.from_pretrained(str(final))
    config = json.loads((final / "config.json").read_text())
    assert config["vocab_size"] == len(tok) and config["n_layer"] == 2
    assert config["eos_token_id"] == tok.eos_token_id
    card = (final / "README.md").read_text()
    valid = _records(main_run, "valid")[-1]
    assert f"perplexity {valid['perplexity']:.2f}" in card and "| train |" in card
    assert (main_run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((main_run / "tb").glob("events.out.tfevents.*"))
    ckpts = sorted(p.name for p in (main_run / "checkpoints").glob("ckpt-*.index"))
    assert ckpts == ["ckpt-120.index", "ckpt-80.index"]  # keep_checkpoints = 2
    samples = _records(main_run, "samples")
    assert samples and samples[-1]["texts"][0].startswith("България е")


def test_eval_reports_test_loss_and_perplexity(main_run, ws):
    """``make eval`` on the run folder loads final/ with TFAutoModelForCausalLM and reads the
    whole test split: every block's 64 labels."""
    result = json.loads((main_run / "eval-test.json").read_text())
    meta = json.loads((ws / "data" / "tokens" / "meta.json").read_text())
    blocks = sum(s["tokens"] // 64 - 1 for s in meta["splits"]["test"]["shards"])
    assert result["tokens"] == blocks * 64
    assert result["perplexity"] == pytest.approx(math.exp(result["loss"]))
    assert result["loss"] < math.log(1000)  # better than uniform over the vocabulary


def _bytes_per_token(ws: Path, split: str) -> float:
    entry = json.loads((ws / "data" / "tokens" / "meta.json").read_text())["splits"][split]
    return entry["bytes"] / entry["tokens"]


def test_token_meta_counts_the_utf8_bytes_of_each_split(ws):
    """``meta.json`` ``bytes``: the UTF-8 bytes of the documents tokenised (separators not)."""
    from common.formats import iter_docs

    meta = json.loads((ws / "data" / "tokens" / "meta.json").read_text())
    for split, entry in meta["splits"].items():
        docs = list(iter_docs(ws / "data" / "corpus" / split / "shard-00000.txt"))
        assert entry["bytes"] == sum(len(d.encode("utf-8")) for d in docs) > 2 * len(docs)


def _label_bytes(ws: Path, split: str, block: int, blocks: int | None = None) -> int:
    """UTF-8 bytes the labels of a split's first ``blocks`` blocks (all: None) spell, the blocks
    cut per shard as ``tftrain.data`` cuts them: ids ``[k * block, (k + 1) * block]``."""
    from tftrain import data, runs

    table = data.token_bytes(runs.load_tokenizer(ws / "artifacts" / "tokenizer"))
    meta = json.loads((ws / "data" / "tokens" / "meta.json").read_text())
    labels = []
    for shard in meta["splits"][split]["shards"]:
        ids = np.fromfile(ws / "data" / "tokens" / split / shard["file"], dtype=meta["dtype"])
        labels += [ids[k * block + 1:(k + 1) * block + 1] for k in range(len(ids) // block - 1)]
    return int(sum(table[chunk].sum() for chunk in labels[:blocks]))


def test_bits_per_byte_in_metrics_eval_and_card(main_run, ws):
    """bits/byte = nats / ln 2 / bytes: for the training loss with the train split's bytes a
    token; for validation and ``eval-test.json`` with the bytes the scored labels spell; in the
    model card and summary."""
    for r in _records(main_run, "train"):
        expected = r["loss"] / math.log(2) / _bytes_per_token(ws, "train")
        assert r["bits_per_byte"] == pytest.approx(expected, rel=1e-9), r
    whole_valid = _label_bytes(ws, "valid", 64)
    for r in _records(main_run, "valid"):
        assert r["bytes"] == whole_valid, r  # eval_tokens (1 M) holds the whole split here
        assert r["bits_per_byte"] == pytest.approx(
            r["loss"] * r["tokens"] / math.log(2) / r["bytes"], rel=1e-9), r
    result = json.loads((main_run / "eval-test.json").read_text())
    assert result["bytes"] == _label_bytes(ws, "test", 64)
    assert result["bits_per_byte"] == pytest.approx(
        result["loss"] * result["tokens"] / math.log(2) / result["bytes"], rel=1e-9)
    assert 0.5 < result["bits_per_byte"] < 8  # Cyrillic: 2 bytes a letter; 8 = a byte guessed
    valid = _records(main_run, "valid")[-1]
    assert f"{valid['bits_per_byte']:.4f} bits per byte (the whole valid split)" in \
        (main_run / "final" / "README.md").read_text()
    assert re.search(rf"validation bits/byte +│ +{valid['bits_per_byte']:.4f}",
                     (ws / "main_run.out").read_text())


def test_progress_outside_a_terminal_is_one_line_every_log_every_steps(main_run, ws):
    """Piped stdout (CI, nohup, the demo's logs): no progress-bar line per step, one summary line
    per ``log_every`` (10) steps with loss, bits/byte, lr, tokens/s and ETA; no start-up noise."""
    out = (ws / "main_run.out").read_text()
    lines = re.findall(r"^step +(\d+)/120  loss [\d.]+  bits/byte [\d.]+  lr [\d.e+-]+  "
                       r"tokens/s [\d,]+  ETA \d", out, re.M)
    assert [int(s) for s in lines] == list(range(10, 130, 10))
    valid = re.findall(r"^step (\d+): validation loss [\d.]+, perplexity [\d.]+, [\d.]+ bits/byte",
                       out, re.M)
    assert valid == ["60", "120"], out
    assert "ETA:" not in out and "[====" not in out
    assert len(out.splitlines()) < 60, out  # a bar's "\r" redraws arrive here as lines
    for noise in ("cuInit", "oneDNN", "TensorFlow and JAX classes are deprecated",
                  "absl::InitializeLog"):
        assert noise not in out


def _make_eval(config: Path, ckpt: Path, text: Path, *more: str) -> subprocess.CompletedProcess:
    """``make eval CKPT=ckpt TEXT=text [more]``: the command line the Makefile builds (``make
    -n``, so its ``setup`` prerequisite installs nothing), run as make runs it."""
    # under `make test ARGS=...` the outer make's flags and variables are in the environment
    outer_make = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "ARGS", "SIZE", "LINES")
    dry = subprocess.run(["make", "-n", "--no-print-directory", "eval", f"PY={sys.executable}",
                          f"CONFIG={config}", f"CKPT={ckpt}", f"TEXT={text}", *more], cwd=ROOT,
                         env={k: v for k, v in os.environ.items() if k not in outer_make},
                         capture_output=True, text=True, check=True)
    command = dry.stdout.strip().splitlines()[-1]
    assert command.startswith(f"{sys.executable} -m tftrain.evaluate ") and \
        f'--text "{text}"' in command, command
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "BG_CONFIG": str(config)}
    return subprocess.run(["bash", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_validation_budget_and_eval_of_any_text(main_run, ws, fixtures, tmp_path):
    """``train.eval_tokens`` caps validation at whole batches; ``make eval TEXT=`` scores every
    token of a text the model never saw (UD Bulgarian treebank sentences) over its own bytes,
    and the same characters shuffled score far worse (scored in this process by the function
    the command calls, shown to give the command's figures on the UD text: one TF start-up)."""
    import random

    from tftrain import data, evaluate, runs

    net = runs.load_hf_model(main_run / "final")
    import tensorflow as tf

    tokens = ws / "data" / "tokens"
    meta = data.load_meta(tokens, net.config.vocab_size)
    tok = runs.load_tokenizer(main_run / "final")
    ev = evaluate.Evaluator(net, tf.distribute.get_strategy(), 64, 8, data.token_bytes(tok))
    part, whole = ev.split(tokens, meta, "valid", 1000), ev.split(tokens, meta, "valid")
    assert part["tokens"] == 2 * 8 * 64 and not part["whole"] and whole["whole"]
    # the budget's bytes are those its own labels spell, not the split's average times its tokens
    assert part["bytes"] == _label_bytes(ws, "valid", 64, 2 * 8) < whole["bytes"]
    assert whole["loss"] == pytest.approx(_records(main_run, "valid")[-1]["loss"], rel=1e-5)

    conllu = fixtures / "bg_text" / "ud_bulgarian_btb" / "bg_btb-ud-test.conllu"
    sentences = [line[len("# text = "):] for line in conllu.read_text("utf-8").splitlines()
                 if line.startswith("# text = ")][:300]
    text = "\n".join(sentences) + "\n"
    (tmp_path / "ud.txt").write_text(text, encoding="utf-8")
    done = _make_eval(train_config(ws, batch_size=8), main_run, tmp_path / "ud.txt")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bits/byte" in done.stdout and not done.stderr.strip(), done.stderr
    ud = json.loads((main_run / "eval-text-ud.json").read_text())
    assert ud["bytes"] == len(text.encode("utf-8")) and ud["block_size"] == 64
    assert ud["tokens"] == len(tok(text, add_special_tokens=False)["input_ids"])
    assert ud["bits_per_byte"] == pytest.approx(
        ud["loss"] * ud["tokens"] / math.log(2) / ud["bytes"], rel=1e-9)

    here = evaluate.score_text(ev, tok, text)
    assert here["tokens"] == ud["tokens"] and here["loss"] == pytest.approx(ud["loss"], rel=1e-5)
    letters = list(text)
    random.Random(0).shuffle(letters)
    shuffled = evaluate.score_text(ev, tok, "".join(letters))
    assert ud["bits_per_byte"] < shuffled["bits_per_byte"] - 0.5, (ud, shuffled)


def test_half_sentence_figure_of_ud_sentences(main_run, ws, fixtures, tmp_path):
    """``make eval TEXT= LINES=1``: the Goldfish figure (mean bits of each line's second half
    given its first) of UD Bulgarian sentences the model never saw, beside bits per byte; it is
    finite, and far lower than for the same sentences with each second half's letters shuffled
    (scored in this process by the function the command calls, shown to give its figure)."""
    import random

    from tftrain import halves, runs

    conllu = fixtures / "bg_text" / "ud_bulgarian_btb" / "bg_btb-ud-test.conllu"
    sentences = [line[len("# text = "):] for line in conllu.read_text("utf-8").splitlines()
                 if line.startswith("# text = ") and len(line) < 120][:200]
    (tmp_path / "ud-lines.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
    done = _make_eval(train_config(ws, batch_size=8), main_run, tmp_path / "ud-lines.txt",
                      "LINES=1")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((main_run / "eval-text-ud-lines.json").read_text())
    h = result["halves"]
    assert h["sentences"] == 200 and h["truncated"] == 0 and h["max_ids"] == 65  # block 64
    assert math.isfinite(h["mean_bits"]) and h["mean_bits"] > 0 and result["bits_per_byte"] > 0
    assert f"{h['mean_bits']:.2f} bits a sentence, mean over 200 lines" in done.stdout

    net, tok = runs.load_hf_model(main_run / "final"), runs.load_tokenizer(main_run / "final")
    here = halves.score(net, tok, sentences, 8, 65)
    assert here["mean_bits"] == pytest.approx(h["mean_bits"], rel=1e-5)
    rng = random.Random(0)
    shuffled = []
    for line in sentences:
        first, second = halves.split(line)
        letters = list(second)
        rng.shuffle(letters)
        shuffled.append(first + "".join(letters))
    other = halves.score(net, tok, shuffled, 8, 65)
    print("half-sentence bits: real", h["mean_bits"], "shuffled", other["mean_bits"])
    assert h["mean_bits"] < 0.8 * other["mean_bits"], (h["mean_bits"], other["mean_bits"])


def test_token_folder_without_bytes_fails_in_one_line(ws, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(ws / "artifacts" / "tokenizer", old / "artifacts" / "tokenizer")
    shutil.copytree(ws / "data" / "tokens", old / "data" / "tokens")
    meta_path = old / "data" / "tokens" / "meta.json"
    meta = json.loads(meta_path.read_text())
    for entry in meta["splits"].values():
        del entry["bytes"]
    meta_path.write_text(json.dumps(meta))
    line = _fails(train_config(old))
    assert "no \"bytes\"" in line and "make tokenizer" in line
    assert not (old / "artifacts" / "runs").exists()


def _final_valid_losses(ws: Path, config: Path, runs: dict[str, tuple[str, str]]) -> dict:
    """Train each ``name: (precision, xla)`` run, two at a time; their last validation losses."""
    losses, names = {}, list(runs)
    for pair in (names[i:i + 2] for i in range(0, len(names), 2)):
        procs = {n: _start(config, "--run", n, "--set", f'train.precision="{runs[n][0]}"',
                           "--set", f'train.xla="{runs[n][1]}"') for n in pair}
        for name, proc in procs.items():
            assert f"precision {runs[name][0]}, XLA {runs[name][1]}" in _finish(proc)
            losses[name] = _records(ws / "artifacts" / "runs" / name, "valid")[-1]["loss"]
    print("final validation loss", losses)
    return losses


def test_fp32_and_bf16_reach_the_same_validation_loss(ws):
    """Same data, seed and 60 steps in fp32 and mixed_bfloat16 (float32 weights, bf16 matmuls),
    at batch 3 with 4 heads (no batch = heads constraint).

    Tolerance 0.05 nats (~1% of the loss): bf16 keeps 8 mantissa bits (relative rounding 2**-9,
    0.2% per op), so the two runs take slightly different steps; here they differed by 0.0003
    nats after 60 steps (loss ~6.15), so 0.05 leaves room for other CPUs' bf16 kernels. A broken
    mixed path (labels cast through 16 bits, a 16-bit softmax, no float32 master weights) stalls
    near the initial ln(1000) = 6.9 or diverges: ten times the tolerance or more.
    """
    config = train_config(ws, max_steps=60, batch_size=3, n_head=4, lr=1e-3, eval_every=1000,
                          checkpoint_every=1000)
    losses = _final_valid_losses(ws, config, {p: (p, "off") for p in ("fp32", "bf16")})
    assert losses["fp32"] < math.log(1000) - 0.5
    assert abs(losses["fp32"] - losses["bf16"]) < 0.05, losses


def test_xla_step_trains_like_the_plain_step(ws):
    """``train.xla = "on"`` on one device compiles the whole step (backward, clipping, AdamW;
    under fp16 the dynamic loss scaling too) as one XLA program. Same data, seed and 40 steps as
    without XLA: the validation losses agree within 0.02 nats (fp32; XLA fuses and reorders float
    operations, so the runs are not bit-identical: 1e-8 apart here) and 0.05 for fp16 (3e-6 apart
    here; the bf16 test's reasoning). A step whose update did not happen stays near ln(1000)."""
    config = train_config(ws, max_steps=40, lr=1e-3, eval_every=1000, checkpoint_every=1000)
    losses = _final_valid_losses(ws, config, {"plain": ("fp32", "off"), "xla": ("fp32", "on"),
                                              "xla-fp16": ("fp16", "on")})
    assert losses["plain"] < math.log(1000) - 0.5
    assert abs(losses["xla"] - losses["plain"]) < 0.02, losses
    assert abs(losses["xla-fp16"] - losses["plain"]) < 0.05, losses


def _kill_after_first_checkpoint(proc: subprocess.Popen, run: Path) -> None:
    """SIGKILL a training run as soon as its first checkpoint is listed."""
    index = run / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 300
    while not (index.is_file() and "ckpt-" in index.read_text()) and proc.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "final").exists()


def test_memory_light_path_trains_and_resumes(ws):
    """recompute + Adafactor (the settings for big models on small cards): the run is killed
    after its first checkpoint, resumes with the factored optimiser state, and learns; each
    process prints and records its measured memory peak after its first step."""
    config = train_config(ws, max_steps=40, checkpoint_every=10, lr=0.1, recompute=True,
                          dropout=0.0, optimizer="adafactor")
    run = ws / "artifacts" / "runs" / "light"
    _kill_after_first_checkpoint(_start(config, "--run", "light"), run)
    out = _finish(_start(config, "--run", "light"))
    assert "resuming run light from ckpt-" in out and "adafactor" in out and "recompute" in out
    assert "memory after the first step:" in out
    peaks = _records(run, "memory")  # one per process: the killed run's and the resumed one's
    assert [p["step"] % 10 for p in peaks] == [1, 1] and peaks[0]["step"] == 1, peaks
    assert all(p["peak_gib"] > 0 and p["what"] == "process peak RSS" for p in peaks)
    assert _records(run, "valid")[-1]["loss"] < math.log(1000) - 0.5


def test_kill_and_resume_gives_the_same_weights(ws):
    """deterministic = true, dropout 0.1: a run killed with SIGKILL after its first checkpoint and
    re-run with the same command ends bit-identical to an uninterrupted run. A half-written save
    left beside the checkpoints (what a kill during a save leaves) is ignored."""
    config = train_config(ws, max_steps=40, checkpoint_every=10, deterministic=True,
                          dropout=0.1)
    runs = ws / "artifacts" / "runs"
    whole = _start(config, "--run", "whole")
    _kill_after_first_checkpoint(_start(config, "--run", "killed"), runs / "killed")
    ckpts = runs / "killed" / "checkpoints"
    (ckpts / "ckpt-999_temp").mkdir()
    (ckpts / "ckpt-999_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"\0" * 99)
    (ckpts / "ckpt-999.data-00000-of-00001").write_bytes(b"\0" * 99)
    resumed = _finish(_start(config, "--run", "killed"))
    assert "resuming run killed from ckpt-" in resumed
    assert not (ckpts / "ckpt-999_temp").exists()
    _finish(whole)
    a, b = _weights(runs / "whole"), _weights(runs / "killed")
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert [r["step"] for r in _records(runs / "killed", "train")] == list(range(5, 45, 5))


def _fails(config: Path, *args: str) -> str:
    proc = run_module(TRAIN, "--config", str(config), *args)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_bad_inputs_fail_in_one_line_and_write_nothing(ws, main_run, tmp_path, fixtures):
    config = train_config(ws, max_steps=5)
    assert "train.size" in _fails(config, "--set", 'train.size="huge"')
    assert "train.lr" in _fails(config, "--set", "train.lr=-1")
    assert "n_positions=256" in _fails(config, "--set", "train.block_size=512")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "tokenizer not found" in _fails(train_config(empty))
    shutil.copytree(ws / "artifacts" / "tokenizer", empty / "artifacts" / "tokenizer")
    assert "token shards not found" in _fails(train_config(empty))
    tokens = empty / "data" / "tokens"
    shutil.copytree(ws / "data" / "tokens", tokens)
    meta = json.loads((tokens / "meta.json").read_text())
    meta["splits"]["valid"]["shards"][0]["tokens"] = 0
    (tokens / "valid" / "shard-00000.bin").write_bytes(b"")
    (tokens / "meta.json").write_text(json.dumps(meta))
    assert "valid" in _fails(train_config(empty))
    assert not (empty / "artifacts" / "runs").exists()
    assert not (ws / "artifacts" / "runs" / "huge").exists()

    other = make_workspace(tmp_path / "other", fixtures, vocab_size=1100)
    shutil.copytree(main_run, other / "artifacts" / "runs" / "tiny")
    before = _tree(other / "artifacts" / "runs" / "tiny")
    assert "another tokenizer" in _fails(train_config(other, max_steps=200))
    assert _tree(other / "artifacts" / "runs" / "tiny") == before
