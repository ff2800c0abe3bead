"""Benchmark ``make tokenizer``: training time and encoding MB/s, each beside peers in the same run.

Text: the fake-news fixture (``Content``, NFC), repeated to at least 50 MB. MB = 10^6 bytes of
UTF-8 text.

- Training: ``corpus.tokenizer.train`` (the stage's trainer: batches of 1000 documents from an
  iterator, vocab 32000, min frequency 2) on the whole repeated text, beside the same trainer with
  the Rust thread pool off (``TOKENIZERS_PARALLELISM=false``).
- Encoding, ours: ``corpus.tokenize_shards.tokenize_split``, the stage's own path from a corpus
  shard file to a token shard file (batch encoder without offsets, ids into numpy, sha256), timed
  once per copy of the text; peers encode the same documents from memory: the batch encoder with
  offsets (``encode_batch``), the batch encoder on one thread, ``encode`` called per document,
  transformers' ``GPT2TokenizerFast.__call__`` and the pure-Python ``GPT2Tokenizer`` (the slow one
  on the first 100 documents only). Figures are medians over passes, taken round by round so a
  change in machine load hits every encoder; ratio = ours / peer (for the training time, below 1
  is faster).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import harness
from common.errors import UserError, cli_main
from common.formats import format_docs
from corpus.tokenize_shards import batched, load_encoder, tokenize_split
from corpus.tokenizer import save_hf, train

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BG_FIXTURES") or ROOT.parent / "shared" / "fixtures")
TEXT = FIXTURES / "bg_text" / "hack_the_fake_news" / "FN_Validation_Set.jsonl"
TARGET_MB = 50
PEER_PASSES = 3
BATCH = 1000
VOCAB = 32000
OURS = "ours: tokenize_split (file -> token shard)"
SLOW = "transformers GPT2Tokenizer (slow, Python; first 100 documents)"


def mb(docs: list[str]) -> float:
    return sum(len(d.encode("utf-8")) for d in docs) / 1e6


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def single_thread(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` run with the tokenizers thread pool switched off."""

    def run():
        old = os.environ.get("TOKENIZERS_PARALLELISM")
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        try:
            return fn()
        finally:
            if old is None:
                del os.environ["TOKENIZERS_PARALLELISM"]
            else:
                os.environ["TOKENIZERS_PARALLELISM"] = old

    return run


def figure(name: str, seconds: list[float], size_mb: float) -> dict:
    rates = [size_mb / s for s in seconds]
    return {"name": name, "passes": len(seconds), "mb_per_pass": round(size_mb, 3),
            "seconds": [round(s, 3) for s in seconds],
            "mb_per_s_median": round(statistics.median(rates), 3)}


def main() -> None:
    from transformers import GPT2Tokenizer, GPT2TokenizerFast

    console = Console(stderr=True)
    if not TEXT.is_file():
        raise UserError(f"fixture text {TEXT} not found (set BG_FIXTURES to the fixtures folder)")
    docs = [unicodedata.normalize("NFC", json.loads(line)["Content"])
            for line in TEXT.read_text(encoding="utf-8").splitlines()]
    docs = [d for d in docs if d.strip()]
    base_mb = mb(docs)
    copies = math.ceil(TARGET_MB / base_mb)
    benchmark = harness.Run()
    benchmark.machine.update(tokenizers=__import__("tokenizers").__version__,
                             transformers=__import__("transformers").__version__)
    result = {"text": {"source": "hack_the_fake_news Content (NFC)", "documents": len(docs),
                       "mb": round(base_mb, 3), "copies": copies,
                       "total_mb": round(base_mb * copies, 3)}}
    every = docs * copies

    def train_all():
        return train(batched(every, BATCH), VOCAB, 2, ["<|endoftext|>"], progress=False)

    console.print(f"training on {base_mb * copies:.1f} MB (vocab {VOCAB}) ...")
    start = time.perf_counter()
    tok = train_all()
    ours_train = time.perf_counter() - start
    peer_train = timed(single_thread(train_all))
    result["training"] = {
        "vocab_size": tok.get_vocab_size(), "mb": round(base_mb * copies, 3),
        "ours_seconds": round(ours_train, 3), "peer": "same trainer, thread pool off",
        "peer_seconds": round(peer_train, 3), "ratio": round(peer_train / ours_train, 3)}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_hf(tok, tmp / "tok")
        encoder = load_encoder(tmp / "tok" / "tokenizer.json")
        shard = tmp / "corpus" / "shard-00000.txt"
        shard.parent.mkdir()
        shard.write_text(format_docs(docs), encoding="utf-8")
        fast = GPT2TokenizerFast.from_pretrained(str(tmp / "tok"))
        slow = [GPT2Tokenizer.from_pretrained(str(tmp / "tok")) for _ in range(PEER_PASSES)]
        few = docs[:100]

        def over_batches(fn):
            return lambda: [fn(b) for b in batched(docs, BATCH)]

        batch_fast = over_batches(lambda b: encoder.encode_batch_fast(b, add_special_tokens=False))
        runs = {
            OURS: lambda: tokenize_split(
                encoder, [shard], tmp / "tokens", batch_docs=BATCH, shard_tokens=50_000_000,
                eos_id=0, dtype="<u2", desc="ours"),
            "encode_batch (with offsets)":
                over_batches(lambda b: encoder.encode_batch(b, add_special_tokens=False)),
            "encode_batch_fast, thread pool off": single_thread(batch_fast),
            "encode() per document":
                lambda: [encoder.encode(d, add_special_tokens=False) for d in docs],
            "transformers GPT2TokenizerFast(batch)":
                over_batches(lambda b: fast(b, add_special_tokens=False)),
            SLOW: lambda: slow.pop()(few, add_special_tokens=False),  # a fresh cache each pass
        }
        console.print(f"encoding: ours over {copies} copies, peers over {PEER_PASSES}, "
                      "interleaved ...")
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for i in range(copies):  # round by round, so a change in machine load hits every one
            for name, fn in runs.items():
                if name == OURS or i < PEER_PASSES:
                    seconds[name].append(timed(fn))
        encoding = [figure(name, seconds[name], mb(few) if name == SLOW else base_mb)
                    for name in runs]
    ours_rate = encoding[0]["mb_per_s_median"]
    for row in encoding:
        row["ratio_ours_to_this"] = round(ours_rate / row["mb_per_s_median"], 3)
    result["encoding"] = encoding
    tr = result["training"]
    figures = [
        {"figure": f"BPE training time, {tr['mb']:.1f} MB to vocab {VOCAB}", "value": tr["ours_seconds"],
         "unit": "s", "peer": tr["peer"], "peer_value": tr["peer_seconds"],
         "ratio": round(tr["ours_seconds"] / tr["peer_seconds"], 3), "device": "CPU"},
    ] + [{"figure": f"encoding MB/s, {OURS} (median of {encoding[0]['passes']} passes)",
          "value": ours_rate, "unit": "MB/s", "peer": f"{row['name']} (median of {row['passes']})",
          "peer_value": row["mb_per_s_median"], "ratio": row["ratio_ours_to_this"], "device": "CPU"}
         for row in encoding[1:]]

    out = benchmark.write(harness.RESULTS / "tokenizer.json", "tokenizer", figures, **result)
    table = Table("encoder", "passes", "MB/s (median)", "ours / this",
                  title=f"encoding {base_mb:.1f} MB a pass ({benchmark.machine['cpu']}, "
                        f"{benchmark.machine['cores']} cores)")
    for row in encoding:
        table.add_row(row["name"], str(row["passes"]), f"{row['mb_per_s_median']:.2f}",
                      f"{row['ratio_ours_to_this']:.2f}")
    tr = result["training"]
    Console().print(table)
    Console().print(f"training {tr['mb']:.1f} MB to vocab {tr['vocab_size']}: "
                    f"{tr['ours_seconds']:.1f} s; thread pool off {tr['peer_seconds']:.1f} s "
                    f"(ratio {tr['ratio']:.2f}). Written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    cli_main(main)()
