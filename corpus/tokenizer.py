"""``make tokenizer``: train a ByteLevel BPE tokenizer on the corpus, then write token shards.

Decisions (GPT-2's, checked by the round-trip test over the whole valid split):
- No normaliser inside the tokenizer, NFC included. The corpus stage already writes NFC text, and a
  byte-level BPE with no normaliser gives decode(encode(x)) == x for every string; an NFC step
  would silently change text that is not NFC. Code that tokenises new text (prompts) should NFC it
  first, as the corpus does: ``unicodedata.normalize("NFC", text)``.
- ``add_prefix_space`` off: the first word of a document (and of a prompt) is encoded as written;
  with it on, decoding would add a space the text never had.
- GPT-2's pre-tokenizer regex; all 256 byte symbols in the initial alphabet, so there is never an
  unknown token; the special tokens come first (``<|endoftext|>`` is id 0) and bos = eos = unk =
  ``<|endoftext|>``; ``clean_up_tokenization_spaces`` off (it would turn " ," into ",").

Writes ``artifacts/tokenizer/``: a Hugging Face folder for ``AutoTokenizer.from_pretrained``,
``training.json`` and the report (``corpus.tokenizer_report``); then ``corpus.tokens`` writes
``data/tokens/``, each atomically.

The corpus is identified by the per-shard sha256 in its ``manifest.json`` (``corpus.write``,
checked against the shard files' names and sizes, not hashed again). A re-run reuses the tokenizer
when ``training.json`` records the same settings and train split (``corpus.tokens`` reuses the
token shards by its own check); ``--force`` redoes both. ``--reuse-tokenizer`` never trains: it
tokenises with the folder already there (e.g. one trained elsewhere) after checking it.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from common import config
from common.atomic import atomic_dir, atomic_write, read_record, remove_stale_temps, stage_lock
from common.errors import UserError, cli_main
from common.formats import SEPARATOR
from corpus import tokenizer_report, tokens
from corpus.tokenize_shards import batched, read_docs, sha256_file
from corpus.tokenizer_report import TextStats, measure
from corpus.write import corpus_shards, fingerprints, read_manifest

HF_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
            "special_tokens_map.json")
FORMAT_VERSION = 1


def new_tokenizer() -> Tokenizer:
    """An untrained GPT-2-style byte-level BPE (see the module docstring)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def train(batches: Iterator[list[str]], vocab_size: int, min_frequency: int,
          special_tokens: list[str], progress: bool = True) -> Tokenizer:
    """Train from an iterator of document batches (never one giant string)."""
    tok = new_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=progress)
    tok.train_from_iterator(batches, trainer)
    return tok


def save_hf(tok: Tokenizer, folder: Path) -> None:
    """Write the five Hugging Face tokenizer files into ``folder``."""
    from transformers import GPT2TokenizerFast

    GPT2TokenizerFast(
        tokenizer_object=tok, bos_token=SEPARATOR, eos_token=SEPARATOR, unk_token=SEPARATOR,
        add_prefix_space=False, clean_up_tokenization_spaces=False,
    ).save_pretrained(str(folder))


def load_hf(folder: Path):
    """``AutoTokenizer.from_pretrained(folder)`` with one-line errors for a bad folder."""
    from transformers import AutoTokenizer

    missing = [name for name in HF_FILES if not (folder / name).is_file()]
    if missing:
        raise UserError(f"tokenizer folder {folder}: missing {', '.join(missing)} "
                        "(run `make tokenizer` without --reuse-tokenizer to train one)")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many types for a broken folder
        raise UserError(f"tokenizer folder {folder}: cannot be loaded ({exc})") from None


def valid_docs(corpus: Path) -> Iterator[str]:
    for path in corpus_shards(corpus, "valid"):
        yield from read_docs(path)


def checked_stats(hf_tok, corpus: Path, batch: int, where: Path) -> TextStats:
    """Valid-split figures; a round-trip failure fails the stage."""
    stats = measure(hf_tok, valid_docs(corpus), batch)
    if stats.roundtrip_failures:
        raise UserError(f"{where}: decode(encode(x)) != x for {stats.roundtrip_failures} of "
                        f"{stats.documents} valid documents (first: document {stats.first_failure})")
    return stats


def check_reusable(folder: Path, tcfg) -> dict:
    """The ``training.json`` of a folder given to --reuse-tokenizer, after checking the folder."""
    if not folder.is_dir():
        raise UserError(f"tokenizer folder {folder} not found (run `make tokenizer` to train one)")
    hf_tok = load_hf(folder)
    record = read_record(folder / "training.json")
    trained_for = record.get("vocab_size", len(hf_tok))
    if trained_for != tcfg.vocab_size:
        raise UserError(f"tokenizer folder {folder}: vocab size {trained_for}, config asks for "
                        f"tokenizer.vocab_size = {tcfg.vocab_size}")
    missing = set(tcfg.special_tokens) - set(hf_tok.get_vocab())
    if missing or hf_tok.eos_token != SEPARATOR:
        raise UserError(f"tokenizer folder {folder}: eos must be {SEPARATOR} and the special "
                        f"tokens {tcfg.special_tokens} present")
    return record


def valid_key(record: dict, valid_sha: str) -> dict:
    """What the valid split's round-trip check and figures in report.json hold for."""
    return {"tokenizer_sha256": record.get("tokenizer_sha256"), "valid_sha256": valid_sha}


def last_valid_stats(tok_dir: Path, key: dict) -> TextStats | None:
    """The valid-split figures of the last report when they were checked for ``key`` (this
    tokenizer, this valid split): the check passed then, so nothing is encoded again."""
    last = read_record(tok_dir / "report.json")
    try:
        if last.get("valid_checked") == key:
            return TextStats(**{f.name: last["text"]["valid"][f.name] for f in fields(TextStats)})
    except (KeyError, TypeError):  # a report of another shape: check again
        pass
    return None


def tokenizer_step(args, tcfg, corpus: Path, tok_dir: Path, train_sha: str, valid_sha: str):
    """Train (or reuse) and check the tokenizer: (HF tokenizer, training record, valid stats, reused)."""
    settings = {"format": FORMAT_VERSION, "vocab_size": tcfg.vocab_size,
                "min_frequency": tcfg.min_frequency, "special_tokens": list(tcfg.special_tokens),
                "train_sha256": train_sha}
    if args.reuse_tokenizer:
        record = check_reusable(tok_dir, tcfg)
    else:
        record = read_record(tok_dir / "training.json")
        if (args.force or {k: record.get(k) for k in settings} != settings
                or not (tok_dir / "tokenizer.json").is_file()
                or record.get("tokenizer_sha256") != sha256_file(tok_dir / "tokenizer.json")):
            record = None
    if record is not None:
        hf_tok = load_hf(tok_dir)
        # the tokenizer's sha256 is checked above (not so for --reuse-tokenizer's folder)
        last = None if args.reuse_tokenizer else last_valid_stats(tok_dir, valid_key(record, valid_sha))
        return hf_tok, record, last or checked_stats(hf_tok, corpus, tcfg.batch_docs, tok_dir), True
    train_paths = corpus_shards(corpus, "train")
    with atomic_dir(tok_dir) as tmp:
        start = time.perf_counter()
        tok = train((b for path in train_paths for b in batched(read_docs(path), tcfg.batch_docs)),
                    tcfg.vocab_size, tcfg.min_frequency, list(tcfg.special_tokens))
        seconds = time.perf_counter() - start
        save_hf(tok, tmp)
        valid = checked_stats(load_hf(tmp), corpus, tcfg.batch_docs, corpus / "valid")
        record = {**settings, "train_seconds": round(seconds, 3),
                  "tokenizer_sha256": sha256_file(tmp / "tokenizer.json")}
        with atomic_write(tmp / "training.json") as fh:
            json.dump(record, fh, indent=2)
    return load_hf(tok_dir), record, valid, False


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m corpus.tokenizer",
                                     description=__doc__.split("\n")[0])
    config.add_config_args(parser)
    parser.add_argument("--force", action="store_true", help="retrain and re-tokenise")
    parser.add_argument("--reuse-tokenizer", action="store_true",
                        help="never train: tokenise with the tokenizer folder already there")
    args = parser.parse_args(argv)
    cfg = config.from_args(args)
    with stage_lock(config.data_dir(cfg, ".tokenizer.lock"), "make tokenizer"):
        return run(args, cfg)


def run(args: argparse.Namespace, cfg: config.Section) -> dict:
    """Train (or reuse) the tokenizer, write (or reuse) the token shards, report; the report."""
    tcfg = cfg.tokenizer
    corpus = config.data_dir(cfg, "corpus")
    tok_dir = config.artifacts_dir(cfg, "tokenizer")
    tokens_dir = config.data_dir(cfg, "tokens")
    remove_stale_temps(tok_dir.parent, tok_dir.name)
    remove_stale_temps(tokens_dir.parent, tokens_dir.name)

    train_paths = corpus_shards(corpus, "train")
    if not train_paths:
        raise UserError(f"no corpus shards in {corpus / 'train'} (run `make corpus` first)")
    manifest, documents = read_manifest(corpus)
    if not any(True for path in train_paths for _ in read_docs(path)):
        raise UserError(f"{corpus / 'train'}: the train split has no documents")
    sums = fingerprints(manifest)

    hf_tok, record, valid, reused_tok = tokenizer_step(args, tcfg, corpus, tok_dir, sums["train"],
                                                       sums["valid"])
    meta, reused_tokens = tokens.write_tokens(
        corpus, tokens_dir, tok_dir / "tokenizer.json", len(hf_tok), corpus_sha=sums["corpus"],
        documents=documents, tcfg=tcfg, force=args.force)
    report = tokenizer_report.build(cfg, hf_tok, record, valid, valid_key(record, sums["valid"]),
                                    meta, {"tokenizer": reused_tok, "tokens": reused_tokens})
    tokenizer_report.write(report, tok_dir)
    return report


if __name__ == "__main__":
    cli_main(main)()
