"""One raw shard through steps 1-4 and the dedup keys, into its cache entry (in a worker).

Everything that shapes a cache entry's content lives in modules listed in ``cache.CODE``
(this one included), so changing any of them redoes every shard.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from corpus import cache, dedup, revisions
from corpus.document import Document
from corpus.read import read_shard
from corpus.stats import Stats
from corpus.steps import Pipeline, corpus_steps

_worker: dict = {}  # per-process settings, set by init


class ShardJob(NamedTuple):
    """One raw shard: its file, its name under raw/, its cache entry and what made that entry."""

    path: Path
    name: str
    entry: Path
    identity: dict


def init(settings: dict) -> None:
    """Set this process up: ``settings`` holds ``corpus`` (the section), ``licences`` and
    ``selectors`` (by source)."""
    _worker.clear()
    _worker.update(settings)
    _worker["steps"] = corpus_steps(settings["corpus"], settings["selectors"])


def site(source: str) -> str:
    """Hash of the settings of one source (see ``cache.site_hash``)."""
    return cache.site_hash(_worker["selectors"].get(source, ""), _worker["licences"].get(source))


def process_shard(job: ShardJob) -> None:
    """Run one raw shard through the steps and write its cache entry."""
    cfg = _worker["corpus"]
    stats = Stats()
    pipeline = Pipeline(_worker["steps"], stats)
    docs, sources, revids = [], set(), {}
    for n, record in enumerate(read_shard(job.path, stats, job.name), 1):
        doc = Document.from_record(record, _worker["licences"], f"{job.name}#{n}")
        sources.add(doc.source)
        revisions.note(revids, doc.url, record.get("revid"))
        if pipeline(doc) is None:
            continue
        exact, signature = dedup.keys(doc.text, cfg.minhash_perm, cfg.shingle,
                                       doc.lower_words())
        docs.append({"id": doc.id, "url": doc.url, "title": doc.title, "source": doc.source,
                     "licence": doc.licence, "text": doc.text, "revid": record.get("revid"),
                     "exact": exact, "signature": signature})
    header = {**job.identity, "sites": {s: site(s) for s in sorted(sources)},
              "stats": stats.to_json(), "revisions": revids}
    cache.write_entry(job.entry, header, docs)
