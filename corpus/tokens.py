"""``python -m corpus.tokens``: the token shards (``data/tokens/``) of the corpus, encoded with the
tokenizer folder ``make tokenizer`` trained (``artifacts/tokenizer/``); ``make tokenizer`` runs
this step after training. Shard format: ``corpus.tokenize_shards``.

``data/tokens/`` carries the corpus's licences forward: ``ATTRIBUTION.md`` copied, and
``meta.json["licenses"]`` counted from ``docs.jsonl`` (the trainer reads these, never
``data/corpus/``). A re-run reuses the shards when ``meta.json`` records the same tokenizer,
corpus (the sha256 in its ``manifest.json``) and shard size, the shards are there at their sizes
and the attribution is unchanged; ``--force`` writes them again.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from common import config
from common.atomic import atomic_dir, atomic_write, read_record, remove_stale_temps, stage_lock
from common.errors import UserError, cli_main
from common.formats import ATTRIBUTION, TOKENS_FORMAT
from corpus.tokenize_shards import load_encoder, sha256_file, tokenize_corpus
from corpus.write import fingerprints, read_manifest


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


def reusable(folder: Path, expected: dict, attribution: bytes) -> bool:
    """Whether ``folder`` holds the token shards ``expected`` describes, with this attribution."""
    meta = read_record(folder / "meta.json")
    if not meta or any(meta.get(k) != v for k, v in expected.items()):
        return False
    if not (folder / ATTRIBUTION).is_file() or (folder / ATTRIBUTION).read_bytes() != attribution:
        return False
    item = 2 if meta["dtype"] == "<u2" else 4
    return all((folder / split / s["file"]).is_file()
               and (folder / split / s["file"]).stat().st_size == s["tokens"] * item
               for split, entry in meta["splits"].items() for s in entry["shards"])


def write_tokens(corpus: Path, tokens_dir: Path, tokenizer_json: Path, vocab: int, *,
                 corpus_sha: str, documents: int, tcfg: config.Section,
                 force: bool) -> tuple[dict, bool]:
    """Write (or reuse) the token shards and the licences with them: (meta.json, reused)."""
    expected = {"format": TOKENS_FORMAT, "vocab_size": vocab,
                "tokenizer_sha256": sha256_file(tokenizer_json), "corpus_sha256": corpus_sha,
                "shard_tokens": tcfg.token_shard_tokens}
    try:
        attribution = (corpus / ATTRIBUTION).read_bytes()
    except OSError as exc:
        raise UserError(f"{corpus / ATTRIBUTION}: cannot be read ({exc.strerror}); "
                        "run `make corpus`") from None
    if not force and reusable(tokens_dir, expected, attribution):
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
    parser = argparse.ArgumentParser(prog="python -m corpus.tokens",
                                     description=__doc__.split("\n")[0])
    config.add_config_args(parser)
    parser.add_argument("--force", action="store_true", help="write the token shards again")
    args = parser.parse_args(argv)
    cfg = config.from_args(args)
    with stage_lock(config.data_dir(cfg, ".tokenizer.lock"), "make tokenizer"):
        return run(cfg, force=args.force)


def run(cfg: config.Section, force: bool) -> dict:
    """Write (or reuse) the token shards with the trained tokenizer; their ``meta.json``."""
    corpus = config.data_dir(cfg, "corpus")
    tokens_dir = config.data_dir(cfg, "tokens")
    tokenizer_json = config.artifacts_dir(cfg, "tokenizer", "tokenizer.json")
    remove_stale_temps(tokens_dir.parent, tokens_dir.name)
    manifest, documents = read_manifest(corpus)
    if not tokenizer_json.is_file():
        raise UserError(f"{tokenizer_json}: not found (run `make tokenizer` to train one)")
    try:
        vocab = load_encoder(tokenizer_json).get_vocab_size(with_added_tokens=True)
    except Exception as exc:  # the Rust tokenizer raises plain Exception for a broken file
        raise UserError(f"{tokenizer_json}: cannot be loaded ({exc})") from None
    meta, reused = write_tokens(corpus, tokens_dir, tokenizer_json, vocab,
                                corpus_sha=fingerprints(manifest)["corpus"], documents=documents,
                                tcfg=cfg.tokenizer, force=force)
    print(f"token shards {'reused' if reused else 'written'} in {tokens_dir}: " + ", ".join(
        f"{split} {e['tokens']:,} tokens ({e['documents']:,} documents, {len(e['shards'])} shards)"
        for split, e in meta["splits"].items()))
    return meta


if __name__ == "__main__":
    cli_main(main)()
