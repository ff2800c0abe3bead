"""``python -m corpus.build``: turn ``data/raw/`` into ``data/corpus/`` (``make corpus``).

1. Every raw shard without a valid cache entry (``corpus/cache.py``) goes to a worker that
   reads, extracts, normalises, filters and MinHashes it (``corpus/steps.py``; memory: one shard
   a worker) and writes the shard's entry; the other shards are reused as they are.
2. The parent reads the entries in the sorted shard order and deduplicates, so the first copy in
   that canonical order is kept, whatever ``-j`` is.
3. The survivors are written in the order of a keyed hash of their id (``corpus.order_seed``),
   so every corpus shard mixes the sources in proportion: their texts are spilled from the
   entries into buckets of that hash, and each bucket is sorted in memory and written.

The output folder is built aside and swapped in whole; the same raw data always gives
byte-identical files, built from scratch or from the cache.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from array import array
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from tqdm import tqdm

from common import config
from common.atomic import atomic_dir, remove_stale_temps, stage_lock
from common.errors import UserError, cli_main
from corpus import cache, dedup, filters, revisions
from corpus.extract import WIKI_SOURCE
from corpus.read import raw_shards
from corpus.report import text_table, write_report
from corpus.shard import ShardJob, init, process_shard, site
from corpus.split import order_key, split_of
from corpus.stats import Stats
from corpus.write import CorpusWriter

BUCKET_BYTES = 64_000_000  # survivors' texts sorted in memory at a time when writing
MAX_BUCKETS = 512  # bucket files open at once: well under the usual limit of 1024 descriptors


def _settings(cfg: config.Section) -> dict:
    licences = {WIKI_SOURCE: cfg.crawl.bgwiki.license}
    licences.update({site.name: site.license for site in cfg.crawl.news})
    return {"corpus": cfg.corpus, "licences": licences,
            "selectors": {site.name: site.selector for site in cfg.crawl.news if site.selector}}


def _stale(jobs: list[ShardJob]) -> tuple[list[ShardJob], Counter]:
    """The jobs whose cache entry cannot be reused, and why (counted); entries that cannot be
    read or are of another format are said, one line a kind of fault."""
    todo, why = [], Counter()
    ignored: dict[str, list[ShardJob]] = {}
    for job in jobs:
        if not job.entry.exists():
            reason = "new"
        else:
            try:
                reason = cache.why_stale(cache.read_header(job.entry), job.identity, site)
            except cache.CacheError as exc:
                ignored.setdefault(str(exc), []).append(job)
                reason = "unreadable"
        if reason:
            todo.append(job)
            why[reason] += 1
    for fault, bad in ignored.items():
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        print(f"corpus cache: ignoring {bad[0].entry} ({bad[0].name}){more}: {fault}; rebuilding",
              file=sys.stderr)
    return todo, why


def _process(todo: list[ShardJob], settings: dict, workers: int) -> None:
    """Process the shards of ``todo`` with ``workers`` processes; the documents go to the cache
    entries, only the shard's name comes back, so no result waits in the parent."""
    bar = tqdm(total=sum(job.path.stat().st_size for job in todo), unit="B", unit_scale=True,
               desc="corpus: extract", file=sys.stderr, disable=None)
    if workers == 1 or len(todo) <= 1:
        for job in todo:
            process_shard(job)
            bar.update(job.path.stat().st_size)
    else:
        sizes = {job.name: job.path.stat().st_size for job in todo}
        ctx = multiprocessing.get_context("forkserver")
        with ctx.Pool(workers, initializer=init, initargs=(settings,)) as pool:
            for name in pool.imap_unordered(_named, todo):
                bar.update(sizes[name])
    bar.close()


def _named(job: ShardJob) -> str:
    process_shard(job)
    return job.name


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


class Survivors(NamedTuple):
    """The documents dedup kept, in canonical order: write-order key, shard number, position."""

    keys: array
    shards: array
    positions: array


def _dedup(jobs: list[ShardJob], cfg: config.Section, stats: Stats,
           why: Counter) -> tuple[Survivors, int, int]:
    """Deduplicate every entry in canonical order; the survivors, their characters and the bytes
    the dedup index held at the end.

    An entry found unreadable here is rebuilt and counted in ``why``.
    """
    deduper = dedup.Deduper(cfg.dedup_threshold, cfg.minhash_perm)
    kept = Survivors(array("Q"), array("I"), array("I"))
    chars = 0
    newest = revisions.newest(job.entry for job in jobs)
    for number, job in enumerate(tqdm(jobs, desc="corpus: dedup", unit="shard", file=sys.stderr,
                                      disable=None)):
        shard_stats, docs = _entry(job, why)
        stats.merge(shard_stats)
        for position, doc in enumerate(docs):
            if revisions.older(doc, newest):
                stats.count("dedup", revisions.UPDATED, len(doc["text"]))
                continue
            reason = deduper.check(doc["url"], doc["exact"], doc["signature"])
            if reason:
                stats.count("dedup", "dropped: " + reason, len(doc["text"]))
                continue
            kept.keys.append(order_key(doc["id"], cfg.order_seed))
            kept.shards.append(number)
            kept.positions.append(position)
            chars += len(doc["text"])
    return kept, chars, deduper.index_bytes


def _spill(jobs: list[ShardJob], kept: Survivors, folder: Path, buckets: int) -> list[Path]:
    """Write the survivors to ``buckets`` files by their order key (bucket = top of the key)."""
    folder.mkdir()
    paths = [folder / f"bucket-{b:04d}.jsonl" for b in range(buckets)]
    files = [open(p, "w", encoding="utf-8") for p in paths]  # noqa: SIM115 - closed below
    try:
        at = 0
        for number, job in enumerate(jobs):
            wanted = {}
            while at < len(kept.keys) and kept.shards[at] == number:
                wanted[kept.positions[at]] = kept.keys[at]
                at += 1
            if wanted:
                _spill_entry(job, wanted, files)
    finally:
        for fh in files:
            fh.close()
    return paths


def _spill_entry(job: ShardJob, wanted: dict[int, int], files: list) -> None:
    """The documents of one entry at the positions in ``wanted`` (position -> order key)."""
    try:
        for position, doc in enumerate(cache.read_docs(job.entry)):
            key = wanted.get(position)
            if key is not None:
                doc = {k: doc[k] for k in ("id", "url", "title", "source", "licence", "text")}
                files[key * len(files) >> 64].write(json.dumps([key, doc], ensure_ascii=False) + "\n")
    except cache.CacheError as exc:
        raise UserError(f"{job.entry} ({job.name}): {exc}; the cache changed during this run, "
                        "run again") from None


def _write(paths: list[Path], writer: CorpusWriter, cfg: config.Section, stats: Stats,
           total: int) -> None:
    """Each bucket sorted by order key (then id), written to the corpus shards."""
    bar = tqdm(total=total, desc="corpus: write", unit="doc", file=sys.stderr, disable=None)
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            rows = sorted((json.loads(line) for line in fh), key=lambda row: (row[0], row[1]["id"]))
        path.unlink()
        for _, doc in rows:
            split = split_of(doc["url"], cfg.valid_ratio, cfg.test_ratio, cfg.split_seed)
            writer.add(doc, split)
            stats.count("write", "out: " + split, len(doc["text"]))
        bar.update(len(rows))
    bar.close()


def check(cfg: config.Section) -> None:
    """Settings that are valid one by one but not together."""
    c = cfg.corpus
    if c.valid_ratio + c.test_ratio >= 1:
        raise UserError(f"{cfg.source}: corpus.valid_ratio + corpus.test_ratio must be < 1, "
                        f"got {c.valid_ratio:g} + {c.test_ratio:g}")
    filters.detector(c.lang)


def build(cfg: config.Section, workers: int) -> Stats:
    """The whole corpus step; returns the run's stats (also written to report.md)."""
    check(cfg)
    with stage_lock(config.data_dir(cfg, ".corpus.lock"), "make corpus"):
        return _build(cfg, workers)


def _build(cfg: config.Section, workers: int) -> Stats:
    c = cfg.corpus
    raw_dir = config.data_dir(cfg, "raw")
    shards = raw_shards(raw_dir)
    if not shards:
        raise UserError(f"no raw shards (*/part-*.jsonl.gz) under {raw_dir}: run `make crawl` first")
    corpus_dir = config.data_dir(cfg, "corpus")
    remove_stale_temps(corpus_dir.parent, corpus_dir.name)  # what a killed run left
    cache_dir = config.data_dir(cfg, "cache", "corpus")
    remove_stale_temps(cache_dir)
    settings = _settings(cfg)
    init(settings)
    shaping = cache.settings_hash(c)
    jobs = []
    for path in shards:
        name = path.relative_to(raw_dir).as_posix()
        jobs.append(ShardJob(path, name, cache.entry_path(cache_dir, name),
                             cache.identity(path, name, shaping)))
    todo, why = _stale(jobs)
    _process(todo, settings, workers)
    stats = Stats()
    kept, chars, index_bytes = _dedup(jobs, c, stats, why)
    processed = sum(why.values())
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
    reuse = (f"corpus: {len(jobs) - processed} raw shards reused from the cache, {processed} "
             f"processed" + (f" ({reasons})" if reasons else ""))
    with atomic_dir(corpus_dir) as out:
        writer = CorpusWriter(out, c.shard_bytes)
        buckets = min(MAX_BUCKETS, 1 + 3 * chars // BUCKET_BYTES)  # UTF-8 Cyrillic: 2 bytes a char
        paths = _spill(jobs, kept, out / ".spill", buckets)
        _write(paths, writer, c, stats, len(kept.keys))
        (out / ".spill").rmdir()
        shown = {k: v for k, v in c.items() if k != "workers"}
        manifest = writer.close(shown, {"dedup_index_bytes": index_bytes})
        print(text_table(stats))
        print(reuse)
        print(f"corpus: dedup index {index_bytes / 2**20:.1f} MiB for {len(kept.keys):,} kept "
              f"documents ({index_bytes / max(len(kept.keys), 1):,.0f} bytes each)")
        if not any(reason.startswith("out") for _, reason, _, _ in stats.rows()):
            raise UserError(f"empty corpus: every document from {raw_dir} was dropped "
                            "(see the table above); nothing was written")
        write_report(out, stats, writer.lengths, shown)
        for split in ("valid", "test"):
            if not manifest["splits"][split]["documents"]:
                print(f"warning: the {split} split is empty; raise corpus.{split}_ratio or add data",
                      file=sys.stderr)
    current = {job.entry for job in jobs}
    for entry in cache_dir.glob("*.jsonl.gz"):  # entries of raw shards that are gone
        if entry not in current:
            entry.unlink()
    return stats


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m corpus.build", description=__doc__.split("\n")[0])
    config.add_config_args(parser)
    parser.add_argument("-j", "--jobs", type=int, default=None,
                        help="worker processes (default: corpus.workers)")
    args = parser.parse_args(argv)
    cfg = config.from_args(args)
    workers = args.jobs if args.jobs is not None else cfg.corpus.workers
    if workers < 1:
        raise UserError(f"-j must be at least 1, got {workers}")
    build(cfg, workers)
    print(f"corpus written to {config.data_dir(cfg, 'corpus')}")


if __name__ == "__main__":
    main()
