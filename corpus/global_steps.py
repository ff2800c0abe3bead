"""The steps over the whole corpus (``corpus.build``'s ``GLOBAL_STEPS``), in the parent, each a
generator over the one before: ``deduplicate`` (each cache entry read once), ``order``, ``split``
and ``write``. What they share is a ``Global``.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from common import config
from corpus import cache, dedup, revisions
from corpus.shard import ShardJob, process_shard
from corpus.split import order_key, split_of
from corpus.stats import Stats
from corpus.write import CorpusWriter


@dataclass
class Global:
    """What the global steps share: settings, counts, the output folder and its writer."""

    cfg: config.Section  # the [corpus] table
    stats: Stats
    why: Counter  # raw shards processed in this run, by reason
    out: Path
    writer: CorpusWriter
    buckets: int
    newest: dict[str, int]  # page URL -> its highest revision id (corpus.revisions.newest)
    kept: int = 0
    index_bytes: int = 0


def deduplicate(jobs: Iterable[ShardJob], run: Global) -> Iterator[dict]:
    """The documents of every entry, read once in canonical order, that are no copy of an
    earlier one; an entry found unreadable here is rebuilt and counted in ``run.why``."""
    deduper = dedup.Deduper(run.cfg.dedup_threshold, run.cfg.minhash_perm)
    for job in tqdm(jobs, desc="corpus: dedup", unit="shard", file=sys.stderr, disable=None):
        shard_stats, docs = _entry(job, run.why)
        run.stats.merge(shard_stats)
        for doc in docs:
            if revisions.older(doc, run.newest):
                run.stats.count("dedup", revisions.UPDATED, len(doc["text"]))
                continue
            reason = deduper.check(doc["url"], doc["exact"], doc["signature"])
            if reason:
                run.stats.count("dedup", "dropped: " + reason, len(doc["text"]))
                continue
            run.kept += 1
            yield {k: doc[k] for k in ("id", "url", "title", "source", "licence", "text")}
    run.index_bytes = deduper.index_bytes


def _entry(job: ShardJob, why: Counter) -> tuple[Stats, list[dict]]:
    """A shard's counts and documents, read whole; an unreadable entry is said, rebuilt here
    (counted in ``why``) and read again."""
    try:
        return _read_entry(job)
    except (cache.CacheError, KeyError, TypeError, ValueError) as exc:
        print(f"corpus cache: ignoring {job.entry} ({job.name}): {exc}; rebuilding it",
              file=sys.stderr)
    process_shard(job)
    why["unreadable"] += 1
    return _read_entry(job)


def _read_entry(job: ShardJob) -> tuple[Stats, list[dict]]:
    return Stats.from_json(cache.read_header(job.entry)["stats"]), list(cache.read_docs(job.entry))


def order(docs: Iterable[dict], run: Global) -> Iterator[dict]:
    """``docs`` in the order of their keyed hash (then id): spilled to ``run.buckets`` files by
    the top of the key as they come, then each bucket sorted in memory."""
    folder = run.out / ".spill"
    folder.mkdir()
    paths = [folder / f"bucket-{b:04d}.jsonl" for b in range(run.buckets)]
    files = [open(p, "w", encoding="utf-8") for p in paths]  # noqa: SIM115 - closed below
    try:
        for doc in docs:
            key = order_key(doc["id"], run.cfg.order_seed)
            files[key * len(files) >> 64].write(json.dumps([key, doc], ensure_ascii=False) + "\n")
    finally:
        for fh in files:
            fh.close()
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            rows = sorted((json.loads(line) for line in fh), key=lambda row: (row[0], row[1]["id"]))
        path.unlink()
        for _, doc in rows:
            yield doc
    folder.rmdir()


def split(docs: Iterable[dict], run: Global) -> Iterator[tuple[dict, str]]:
    """Each document with its split (by URL: ``corpus.valid_ratio``, ``test_ratio``)."""
    c = run.cfg
    for doc in docs:
        yield doc, split_of(doc["url"], c.valid_ratio, c.test_ratio, c.split_seed)


def write(docs: Iterable[tuple[dict, str]], run: Global) -> None:
    """Write each document to its split's corpus shards (the sink that draws the rest through)."""
    for doc, where in tqdm(docs, desc="corpus: write", unit="doc", file=sys.stderr, disable=None):
        run.writer.add(doc, where)
        run.stats.count("write", "out: " + where, len(doc["text"]))
