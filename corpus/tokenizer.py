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

Writes ``artifacts/tokenizer/`` (a Hugging Face folder for ``AutoTokenizer.from_pretrained``, plus
``training.json`` and ``report.md``/``report.json``) and ``data/tokens/`` (see
``corpus.tokenize_shards``), each atomically. ``data/tokens/`` also carries the corpus's licences
forward: ``ATTRIBUTION.md`` copied, and ``meta.json["licenses"]`` counted from ``docs.jsonl``
(the trainer reads these, never ``data/corpus/``).

The corpus is identified by the per-shard sha256 in its ``manifest.json`` (checked against the
shard files' names and sizes, not hashed again). A re-run reuses the tokenizer when
``training.json`` records the same settings and train split, and the token shards when
``meta.json`` records the same tokenizer, corpus and shard size and the attribution is unchanged;
``--force`` redoes both. ``--reuse-tokenizer`` never trains: it tokenises with the folder already
there (e.g. one trained elsewhere) after checking it.

The report gives, as GPT-2 write-ups do, tokens and documents per split and the number of
training sequences of the trainer's block size, counted as ``common.formats.count_blocks`` cuts them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from common import config
from common.atomic import atomic_dir, atomic_write, remove_stale_temps, stage_lock
from common.errors import UserError, cli_main
from common.formats import ATTRIBUTION, BLOCK_SIZES, SEPARATOR, SPLITS, TOKENS_FORMAT, count_blocks
from corpus.tokenize_shards import batched, corpus_shards, read_docs, tokenize_corpus

HF_FILES = ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
            "special_tokens_map.json")
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_record(path: Path) -> dict:
    """A JSON record this stage wrote earlier; {} when missing or unreadable (then not reused)."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def read_manifest(corpus: Path) -> tuple[dict, int]:
    """The corpus's ``manifest.json`` and its document count, checked against the shard files on
    disk (names, sizes)."""
    path = corpus / "manifest.json"
    manifest = read_record(path)
    if not manifest:
        raise UserError(f"{path}: missing or unreadable (run `make corpus`)")
    try:
        listed = {s["path"]: (s["bytes"], s["sha256"])
                  for split in SPLITS for s in manifest["splits"][split]["shards"]}
        documents = sum(int(manifest["splits"][split]["documents"]) for split in SPLITS)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: malformed ({type(exc).__name__}: {exc}); "
                        "re-run `make corpus`") from None
    on_disk = {p.relative_to(corpus).as_posix(): p.stat().st_size
               for split in SPLITS for p in corpus_shards(corpus, split)}
    for name in sorted(set(listed) ^ set(on_disk)):
        where = "listed in manifest.json but missing" if name in listed else "not in manifest.json"
        raise UserError(f"{corpus / name}: {where}; re-run `make corpus`")
    for name, size in on_disk.items():
        if size != listed[name][0]:
            raise UserError(f"{corpus / name}: {size} bytes, manifest.json says {listed[name][0]} "
                            "(changed after the build); re-run `make corpus`")
    return manifest, documents


def fingerprints(manifest: dict) -> dict[str, str]:
    """sha256 over the names and manifest sha256 of each split's shards, and of all ("corpus")."""
    out = {}
    for split in SPLITS:
        digest = hashlib.sha256()
        for shard in sorted(manifest["splits"][split]["shards"], key=lambda s: s["path"]):
            digest.update(f"{Path(shard['path']).name}:{shard['sha256']}\n".encode())
        out[split] = digest.hexdigest()
    out["corpus"] = hashlib.sha256("".join(out[s] for s in SPLITS).encode()).hexdigest()
    return out


def licence_counts(corpus: Path, documents: int) -> dict[str, dict[str, int]]:
    """``{source: {licence: documents}}`` from ``docs.jsonl``, which must list ``documents``."""
    path = corpus / "docs.jsonl"
    counts: dict[str, Counter] = {}
    n = 0
    try:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                n += 1
                doc = json.loads(line)
                counts.setdefault(str(doc["source"]), Counter())[str(doc["license"])] += 1
    except OSError as exc:
        raise UserError(f"{path}: cannot be read ({exc.strerror}); run `make corpus`") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}:{n}: not a document record ({type(exc).__name__}: {exc})") from None
    if n != documents:
        raise UserError(f"{path}: lists {n} documents, manifest.json {documents}; "
                        "re-run `make corpus`")
    return {source: dict(sorted(c.items())) for source, c in sorted(counts.items())}


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


@dataclass
class TextStats:
    """Fertility and round-trip figures for one body of text."""

    documents: int = 0
    bytes: int = 0
    words: int = 0
    tokens: int = 0
    roundtrip_failures: int = 0
    first_failure: int = -1

    @property
    def tokens_per_word(self) -> float:
        return self.tokens / self.words if self.words else 0.0

    @property
    def bytes_per_token(self) -> float:
        return self.bytes / self.tokens if self.tokens else 0.0

    @property
    def bytes_per_word(self) -> float:
        """Tokens per word of the byte-level baseline (one token a byte)."""
        return self.bytes / self.words if self.words else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "tokens_per_word": self.tokens_per_word,
                "bytes_per_token": self.bytes_per_token,
                "baseline_tokens_per_word": self.bytes_per_word, "baseline_bytes_per_token": 1.0}


def measure(hf_tok, texts: Iterable[str], batch: int) -> TextStats:
    """Encode ``texts`` with the saved tokenizer; count tokens and check decode(encode(x)) == x."""
    stats = TextStats()
    for docs in batched(texts, batch):
        ids = hf_tok(docs, add_special_tokens=False)["input_ids"]
        for doc, doc_ids, back in zip(docs, ids, hf_tok.batch_decode(ids), strict=True):
            if back != doc:
                stats.roundtrip_failures += 1
                if stats.first_failure < 0:
                    stats.first_failure = stats.documents
            stats.documents += 1
            stats.bytes += len(doc.encode("utf-8"))
            stats.words += len(doc.split())
            stats.tokens += len(doc_ids)
    return stats


def conllu_sentences(folder: Path) -> Iterator[str]:
    """The ``# text = `` lines of the ``.conllu`` files in ``folder``."""
    for path in sorted(folder.glob("*.conllu")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("# text = "):
                yield line[len("# text = "):]


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


def block_size(cfg) -> int:
    """The trainer's block size: ``train.block_size`` or the size preset's."""
    return cfg.train.block_size or BLOCK_SIZES[cfg.train.size]


def _tokens_reusable(folder: Path, expected: dict, attribution: bytes) -> bool:
    meta = read_record(folder / "meta.json")
    if not meta or any(meta.get(k) != v for k, v in expected.items()):
        return False
    if not (folder / ATTRIBUTION).is_file() or (folder / ATTRIBUTION).read_bytes() != attribution:
        return False
    item = 2 if meta["dtype"] == "<u2" else 4
    return all((folder / split / s["file"]).is_file()
               and (folder / split / s["file"]).stat().st_size == s["tokens"] * item
               for split, entry in meta["splits"].items() for s in entry["shards"])


def report_rows(report: dict) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """The summary, fertility and token-total tables as rows of strings."""
    tr = report["training"]
    seconds = tr["train_seconds"]
    checked = report["text"]["valid"]["documents"]
    summary = [
        ["vocab size (len(tokenizer))", f"{report['vocab_size']:,} (asked {tr['vocab_size']:,})"],
        ["eos = bos = unk id", str(report["eos_id"])],
        ["training time", "unknown (trained elsewhere)" if seconds is None else
         f"{seconds:.1f} s" + (" (earlier run, reused)" if report["reused"]["tokenizer"] else "")],
        ["token shards", "reused" if report["reused"]["tokens"] else "written"],
        ["round-trip decode(encode(x)) == x",
         f"pass on all {checked:,} valid documents" if checked else "no valid documents to check"],
        ["licences (documents)", "; ".join(f"{source}: {lic} ({n:,})"
                                           for source, by in report["licenses"].items()
                                           for lic, n in by.items())],
    ]
    fert = []
    for name, stats in report["text"].items():
        if stats is None:
            fert.append([name, "skipped: " + report["heldout_note"], "", "", "", "", ""])
            continue
        fails = stats["roundtrip_failures"]
        fert.append([name, f"{stats['documents']:,}", f"{stats['tokens']:,}",
                     f"{stats['tokens_per_word']:.3f}", f"{stats['baseline_tokens_per_word']:.3f}",
                     f"{stats['bytes_per_token']:.3f}", f"{fails} failed" if fails else "exact"])
    totals = [[split, f"{e['documents']:,}", f"{e['tokens']:,}", str(e["shards"]),
               f"{e['sequences']:,}"] for split, e in report["splits"].items()]
    return summary, fert, totals


FERT_HEAD = ["text", "documents", "tokens", "tokens/word", "byte-level tokens/word", "bytes/token",
             "round-trip"]


def total_head(report: dict) -> list[str]:
    return ["split", "documents", "tokens", "shards",
            f"training sequences of {report['block_size']}"]


def render_markdown(report: dict) -> str:
    summary, fert, totals = report_rows(report)

    def table(head, rows):
        return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                         + ["| " + " | ".join(r) + " |" for r in rows])

    return "\n\n".join([
        "# Tokenizer report", table(["", ""], summary),
        "## Fertility (byte-level baseline: one token a byte, bytes/token = 1)",
        table(FERT_HEAD, fert), "## Token shards", table(total_head(report), totals)]) + "\n"


def print_report(report: dict) -> None:
    console = Console(width=None if sys.stdout.isatty() else 120)
    for title, head, rows in zip(("tokenizer", "fertility", "token shards"),
                                 (["", ""], FERT_HEAD, total_head(report)), report_rows(report),
                                 strict=True):
        table = Table(*head, title=title, show_header=title != "tokenizer")
        for row in rows:
            table.add_row(*row)
        console.print(table)


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


def tokens_step(args, tcfg, corpus: Path, tokens_dir: Path, tokenizer_json: Path, vocab: int,
                corpus_sha: str, documents: int) -> tuple[dict, bool]:
    """Write (or reuse) the token shards and the licences with them: (meta.json, reused)."""
    expected = {"format": TOKENS_FORMAT, "vocab_size": vocab,
                "tokenizer_sha256": sha256_file(tokenizer_json), "corpus_sha256": corpus_sha,
                "shard_tokens": tcfg.token_shard_tokens}
    try:
        attribution = (corpus / ATTRIBUTION).read_bytes()
    except OSError as exc:
        raise UserError(f"{corpus / ATTRIBUTION}: cannot be read ({exc.strerror}); "
                        "run `make corpus`") from None
    if not args.force and _tokens_reusable(tokens_dir, expected, attribution):
        return read_record(tokens_dir / "meta.json"), True
    licenses = licence_counts(corpus, documents)
    with atomic_dir(tokens_dir) as tmp:
        meta = tokenize_corpus(
            tokenizer_json, vocab, corpus, tmp, batch_docs=tcfg.batch_docs,
            shard_tokens=tcfg.token_shard_tokens,
            extra_meta={**{k: expected[k] for k in ("format", "corpus_sha256", "shard_tokens")},
                        "licenses": licenses})
        (tmp / ATTRIBUTION).write_bytes(attribution)
        with atomic_write(tmp / "meta.json") as fh:
            json.dump(meta, fh, indent=2, ensure_ascii=False)
    return meta, False


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
    vocab = len(hf_tok)
    meta, reused_tokens = tokens_step(args, tcfg, corpus, tokens_dir, tok_dir / "tokenizer.json",
                                      vocab, sums["corpus"], documents)

    heldout = tcfg.heldout_dir
    have_heldout = bool(heldout) and Path(heldout).is_dir()
    bs = block_size(cfg)
    report = {
        "vocab_size": vocab, "eos_id": meta["eos_id"], "dtype": meta["dtype"],
        "training": {k: record.get(k) for k in ("vocab_size", "min_frequency", "special_tokens",
                                                  "train_seconds")},
        "reused": {"tokenizer": reused_tok, "tokens": reused_tokens},
        "text": {"valid": valid.as_dict(),
                 "ud_bulgarian_btb": measure(hf_tok, conllu_sentences(Path(heldout)),
                                             tcfg.batch_docs).as_dict() if have_heldout else None},
        "heldout_note": "" if have_heldout else
        f"folder {heldout or '(tokenizer.heldout_dir empty)'} not found",
        "valid_checked": valid_key(record, sums["valid"]),
        "block_size": bs,
        "licenses": meta["licenses"],
        "splits": {split: {"documents": e["documents"], "tokens": e["tokens"],
                           "shards": len(e["shards"]),
                           "sequences": count_blocks(meta, split, bs)}
                   for split, e in meta["splits"].items()},
    }
    with atomic_write(tok_dir / "report.json") as fh:
        json.dump(report, fh, indent=2)
    with atomic_write(tok_dir / "report.md") as fh:
        fh.write(render_markdown(report))
    print_report(report)
    return report


if __name__ == "__main__":
    cli_main(main)()
