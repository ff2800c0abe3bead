"""The tokenizer stage's figures and report: fertility and round trip (``measure``), and
``artifacts/tokenizer/report.json``, ``report.md`` and the tables printed.

As GPT-2 write-ups do, the report gives tokens and documents per split and the number of training
sequences of the trainer's block size, counted as ``common.formats.count_blocks`` cuts them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common import markdown
from common.atomic import atomic_write
from common.formats import BLOCK_SIZES, count_blocks
from corpus.tokenize_shards import batched


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


def block_size(cfg) -> int:
    """The trainer's block size: ``train.block_size`` or the size preset's."""
    return cfg.train.block_size or BLOCK_SIZES[cfg.train.size]


def build(cfg, hf_tok, record: dict, valid: TextStats, valid_checked: dict, meta: dict,
          reused: dict[str, bool]) -> dict:
    """``report.json``: the tokenizer, its figures on the valid split and the held-out UD text,
    the licences and the token shards (``meta``)."""
    heldout = cfg.tokenizer.heldout_dir
    have_heldout = bool(heldout) and Path(heldout).is_dir()
    bs = block_size(cfg)
    return {
        "vocab_size": len(hf_tok), "eos_id": meta["eos_id"], "dtype": meta["dtype"],
        "training": {k: record.get(k) for k in ("vocab_size", "min_frequency", "special_tokens",
                                                  "train_seconds")},
        "reused": reused,
        "text": {"valid": valid.as_dict(),
                 "ud_bulgarian_btb": measure(hf_tok, conllu_sentences(Path(heldout)),
                                             cfg.tokenizer.batch_docs).as_dict()
                 if have_heldout else None},
        "heldout_note": "" if have_heldout else
        f"folder {heldout or '(tokenizer.heldout_dir empty)'} not found",
        "valid_checked": valid_checked,
        "block_size": bs,
        "licenses": meta["licenses"],
        "splits": {split: {"documents": e["documents"], "tokens": e["tokens"],
                           "shards": len(e["shards"]),
                           "sequences": count_blocks(meta, split, bs)}
                   for split, e in meta["splits"].items()},
    }


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
    return "\n\n".join([
        "# Tokenizer report", "\n".join(markdown.table(["", ""], summary)),
        "## Fertility (byte-level baseline: one token a byte, bytes/token = 1)",
        "\n".join(markdown.table(FERT_HEAD, fert)), "## Token shards",
        "\n".join(markdown.table(total_head(report), totals))]) + "\n"


def print_report(report: dict) -> None:
    console = Console(width=None if sys.stdout.isatty() else 120)
    for title, head, rows in zip(("tokenizer", "fertility", "token shards"),
                                 (["", ""], FERT_HEAD, total_head(report)), report_rows(report),
                                 strict=True):
        table = Table(*head, title=title, show_header=title != "tokenizer")
        for row in rows:
            table.add_row(*row)
        console.print(table)


def write(report: dict, tok_dir: Path) -> None:
    """``report.json`` and ``report.md`` into ``tok_dir``, and the tables on stdout."""
    with atomic_write(tok_dir / "report.json") as fh:
        json.dump(report, fh, indent=2)
    with atomic_write(tok_dir / "report.md") as fh:
        fh.write(render_markdown(report))
    print_report(report)
