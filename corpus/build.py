"""``python -m corpus.build``: turn ``data/raw/`` into ``data/corpus/`` (``make corpus``).

Workers take whole raw shards (read, extract, normalise, filter, MinHash) so memory is bounded
by one shard a worker; the parent takes their results in the sorted shard order and
deduplicates, splits and writes, so the output does not depend on ``-j``. The output folder is
built aside and swapped in whole; the same raw data always gives byte-identical files.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from tqdm import tqdm

from common import config
from common.atomic import atomic_dir
from common.errors import UserError, cli_main
from corpus import dedup, filters
from corpus.extract import WIKI_SOURCE, extract
from corpus.normalize import normalize
from corpus.read import raw_shards, read_shard
from corpus.report import text_table, write_report
from corpus.split import doc_id, split_of
from corpus.stats import Stats
from corpus.write import CorpusWriter

_worker: dict = {}  # per-process settings, set by _init


def _init(settings: dict) -> None:
    _worker.clear()
    _worker.update(settings)


def process_shard(path: Path, raw_dir: Path) -> tuple[list[dict], Stats]:
    """Read, extract, normalise and filter one raw shard; the kept documents with their keys."""
    cfg, selectors, licenses = _worker["corpus"], _worker["selectors"], _worker["licenses"]
    stats = Stats()
    docs = []
    name = path.relative_to(raw_dir).as_posix()
    for n, record in enumerate(read_shard(path, stats, name), 1):
        doc = process_record(record, cfg, selectors, licenses, stats, f"{name}#{n}")
        if doc is not None:
            docs.append(doc)
    return docs, stats


def process_record(record: dict, cfg: config.Section, selectors: dict[str, str],
                   licenses: dict[str, str], stats: Stats, where: str) -> dict | None:
    """One raw record through steps 2-4; None when it was dropped (counted in ``stats``)."""
    html_chars = len(record["html"])
    try:
        text = extract(record, selectors)
    except Exception as exc:  # noqa: BLE001 - one bad page must not stop the run
        stats.problem("extract", "skipped: extraction failed", where, f"{type(exc).__name__}: {exc}")
        return None
    title = str(record.get("title") or "")
    if text and title and record.get("source") == WIKI_SOURCE and text.split("\n", 1)[0] != title:
        text = title + "\n" + text
    if not text.strip():
        stats.count("extract", "dropped: no main text", html_chars)
        return None
    stats.count("extract", "kept", len(text))
    before = len(text)
    text = normalize(text)
    if not text:
        stats.count("normalize", "dropped: empty", before)
        return None
    stats.count("normalize", "removed characters", before - len(text), docs=int(before > len(text)))
    stats.count("normalize", "kept", len(text))
    text, reason, stripped = filters.apply(text, cfg)
    if reason:
        stats.count("filter", "dropped: " + reason, len(text))
        return None
    stats.count("filter", "removed boilerplate lines", stripped, docs=int(stripped > 0))
    stats.count("filter", "kept", len(text))
    url = str(record.get("canonical_url") or record.get("url") or "")
    source = str(record.get("source") or "unknown")
    exact, signature = dedup.keys(text, cfg.minhash_perm, cfg.shingle)
    return {"id": doc_id(url), "url": url, "title": title, "source": source,
            "license": str(record.get("license") or licenses.get(source, "unknown")),
            "text": text, "exact": exact, "signature": signature}


def _settings(cfg: config.Section) -> dict:
    licenses = {WIKI_SOURCE: cfg.crawl.bgwiki.license}
    licenses.update({site.name: site.license for site in cfg.crawl.news})
    return {"corpus": cfg.corpus, "licenses": licenses,
            "selectors": {site.name: site.selector for site in cfg.crawl.news if site.selector}}


def _results(shards: list[Path], raw_dir: Path, settings: dict,
             workers: int) -> Iterator[tuple[Path, list[dict], Stats]]:
    """(shard, documents, stats) for every shard, in the order given, with ``workers`` processes."""
    if workers == 1:
        _init(settings)
        for path in shards:
            yield path, *process_shard(path, raw_dir)
        return
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(workers, initializer=_init, initargs=(settings,)) as pool:
        jobs = ((path, raw_dir) for path in shards)
        for path, (docs, stats) in zip(shards, pool.imap(_star, jobs), strict=True):
            yield path, docs, stats


def _star(args: tuple[Path, Path]) -> tuple[list[dict], Stats]:
    return process_shard(*args)


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
    c = cfg.corpus
    raw_dir = config.data_dir(cfg, "raw")
    shards = raw_shards(raw_dir)
    if not shards:
        raise UserError(f"no raw shards (*/part-*.jsonl.gz) under {raw_dir}: run `make crawl` first")
    for stale in config.data_dir(cfg).glob(".corpus.tmp-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    stats = Stats()
    deduper = dedup.Deduper(c.dedup_threshold, c.minhash_perm)
    settings = {k: v for k, v in c.items() if k != "workers"}
    with atomic_dir(config.data_dir(cfg, "corpus")) as out:
        writer = CorpusWriter(out, c.shard_bytes)
        bar = tqdm(total=sum(p.stat().st_size for p in shards), unit="B", unit_scale=True,
                   desc="corpus", file=sys.stderr, disable=None)
        written = 0
        for path, docs, shard_stats in _results(shards, raw_dir, _settings(cfg), workers):
            stats.merge(shard_stats)
            for doc in docs:
                reason = deduper.check(doc["id"], doc["url"], doc["exact"], doc["signature"])
                if reason:
                    stats.count("dedup", "dropped: " + reason, len(doc["text"]))
                    continue
                split = split_of(doc["url"], c.valid_ratio, c.test_ratio, c.split_seed)
                writer.add(doc, split)
                written += 1
                stats.count("write", "out: " + split, len(doc["text"]))
            bar.update(path.stat().st_size)
            bar.set_postfix(docs=written, refresh=False)
        bar.close()
        manifest = writer.close(settings)
        print(text_table(stats))
        if not any(reason.startswith("out") for _, reason, _, _ in stats.rows()):
            raise UserError(f"empty corpus: every document from {raw_dir} was dropped "
                            "(see the table above); nothing was written")
        write_report(out, stats, writer.lengths, settings)
        for split in ("valid", "test"):
            if not manifest["splits"][split]["documents"]:
                print(f"warning: the {split} split is empty; raise corpus.{split}_ratio or add data",
                      file=sys.stderr)
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
