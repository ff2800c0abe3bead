"""``python -m corpus.build``: turn ``data/raw/`` into ``data/corpus/`` (``make corpus``).

The pipeline, as ``SHARD_STEPS`` and ``GLOBAL_STEPS`` below list it:

1. Per raw shard, in worker processes: every raw shard without a valid cache entry
   (``corpus/cache.py``) is read, extracted, normalised, filtered and MinHashed
   (``corpus.shard.process_shard`` runs ``corpus.steps.corpus_steps``; memory: one shard a
   worker) into the shard's entry; the other shards are reused as they are.
2. Over the whole corpus, in the parent, each step a generator over the one before:
   ``deduplicate`` reads the entries once, in the sorted shard order, so the first copy in that
   canonical order is kept, whatever ``-j`` is; ``order`` spills each kept document at once into
   buckets of a keyed hash of its id (``corpus.order_seed``; a bucket is the top of the key, so
   the buckets in turn, each sorted in memory by key and id, give the whole order) and every
   corpus shard mixes the sources in proportion; ``split`` gives each its split by URL;
   ``write`` writes the corpus shards, ``docs.jsonl``, ``manifest.json`` and ``ATTRIBUTION.md``.

The output folder is built aside and swapped in whole; the same raw data always gives
byte-identical files, built from scratch or from the cache.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import sys
from collections import Counter

from tqdm import tqdm

from common import config
from common.atomic import atomic_dir, remove_stale_temps, stage_lock
from common.errors import UserError, cli_main
from corpus import cache, dedup, filters, revisions
from corpus.extract import WIKI_SOURCE
from corpus.global_steps import Global, deduplicate, order, split, write
from corpus.read import raw_shards, read_shard
from corpus.report import text_table, write_report
from corpus.shard import ShardJob, init, process_shard, site
from corpus.stats import Stats
from corpus.steps import extract_text, normalize_text
from corpus.write import CorpusWriter

# The pipeline, in the order a document meets it. Per raw shard, in worker processes, into the
# shard's cache entry (``corpus.shard.process_shard`` runs ``corpus.steps.corpus_steps``):
SHARD_STEPS = (read_shard, extract_text, normalize_text, *filters.FILTERS, dedup.keys)
# Over the whole corpus, in the parent, each a generator over the one before:
GLOBAL_STEPS = (deduplicate, order, split, write)

BUCKET_BYTES = 64_000_000  # kept documents' texts sorted in memory at a time when writing
MAX_BUCKETS = 512  # bucket files open at once: well under the usual limit of 1024 descriptors
ENTRY_CHARS = ("filter", "kept")  # the per-shard steps' last count: the characters an entry holds


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


def _headers(jobs: list[ShardJob]) -> list[dict]:
    """Each entry's header, read once for the global steps; {} for one that cannot be read (it is
    rebuilt and said when its documents are read)."""
    headers = []
    for job in jobs:
        try:
            headers.append(cache.read_header(job.entry))
        except cache.CacheError:
            headers.append({})
    return headers


def _buckets(headers: list[dict]) -> int:
    """Bucket files for ``order``: enough for one to hold about ``BUCKET_BYTES`` of text, by the
    characters the entries hold before dedup (from their headers). An entry whose header cannot
    be read counts none; only the buckets' size in memory depends on this, never the output."""
    chars = 0
    for header in headers:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            chars += Stats.from_json(header["stats"]).chars[ENTRY_CHARS]
    return min(MAX_BUCKETS, 1 + 3 * chars // BUCKET_BYTES)  # UTF-8 Cyrillic: 2 bytes a char


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
    with atomic_dir(corpus_dir) as out:
        headers = _headers(jobs)
        run = Global(c, stats, why, out, CorpusWriter(out, c.shard_bytes), _buckets(headers),
                     revisions.newest(headers))
        stream = jobs
        for step in GLOBAL_STEPS:  # generators, the last (write) draws the documents through
            stream = step(stream, run)
        processed = sum(why.values())
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(why.items()))
        reuse = (f"corpus: {len(jobs) - processed} raw shards reused from the cache, {processed} "
                 f"processed" + (f" ({reasons})" if reasons else ""))
        shown = {k: v for k, v in c.items() if k != "workers"}
        manifest = run.writer.close(shown, {"dedup_index_bytes": run.index_bytes})
        print(text_table(stats))
        print(reuse)
        print(f"corpus: dedup index {run.index_bytes / 2**20:.1f} MiB for {run.kept:,} kept "
              f"documents ({run.index_bytes / max(run.kept, 1):,.0f} bytes each)")
        if not any(reason.startswith("out") for _, reason, _, _ in stats.rows()):
            raise UserError(f"empty corpus: every document from {raw_dir} was dropped "
                            "(see the table above); nothing was written")
        write_report(out, stats, run.writer.lengths, shown)
        for name in ("valid", "test"):
            if not manifest["splits"][name]["documents"]:
                print(f"warning: the {name} split is empty; raise corpus.{name}_ratio or add data",
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
