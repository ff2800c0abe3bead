"""Revisions in the dump import and the corpus: copies of a page in any order (the newest kept),
delete records counted apart, next month's dump storing only the changed pages, the API crawl and
the dump agreeing on the newer revision, and ``make corpus`` keeping one document a page."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from corpus.write import DOC_END
from crawler.pipelines import keys_path
from demo.replay.dump import deletion, dump_articles, write_dump
from demo.replay.pages import Page, synthetic_pages
from demo.replay.wiki import WikiReplay
from tests.crawl_util import records, scrapy_crawl
from tests.test_wikidump import setup, wikidump
from tests.util import run_module

PAGES = 30


def revised(page: Page, step: int = 1) -> Page:
    """``page`` edited: ``step`` revisions later, with a paragraph added."""
    return dataclasses.replace(page, revid=page.revid + step,
                               body=page.body + f"\nДобавен абзац от редакция номер {step} на тази статия.")


def article(page: Page) -> dict:
    return next(dump_articles([page]))


@pytest.fixture
def pages() -> list[Page]:
    pages = synthetic_pages(PAGES, paragraphs=4)
    list(dump_articles(pages))  # page and revision ids
    return pages


def summary_row(stdout: str, label: str) -> int:
    line = next(line for line in stdout.splitlines() if line.strip().startswith(label))
    return int(line.split()[-1].replace(",", ""))


def stored(data: Path) -> dict[str, list[int]]:
    """Title -> the revisions stored, in store order."""
    by_title: dict[str, list[int]] = {}
    for rec in records(data):
        by_title.setdefault(rec["title"], []).append(rec["revid"])
    return by_title


def test_copies_in_any_order_keep_the_newest_and_deletes_are_counted_apart(tmp_path, pages):
    config, data = setup(tmp_path)
    lines = [article(p) for p in pages]
    lines[2] = article(revised(pages[2], 3))       # the newest copy first, older ones later
    lines += [article(pages[2]), article(revised(pages[2], 1))]
    lines += [article(revised(pages[5], 2))]        # the oldest copy first, the newest last
    lines.insert(10, deletion("Стара статия", 77, 5))  # a page moved away from this title
    dump = write_dump(tmp_path / "dump.tar.gz", lines, per_file=10)
    done = wikidump(config, "--dump", str(dump))
    assert done.returncode == 0, done.stderr[-3000:]
    kept = stored(data)
    assert len(kept) == PAGES and "Стара статия" not in kept
    assert kept[pages[2].title] == [pages[2].revid + 3]  # the older copies after it were not stored
    assert kept[pages[5].title] == [pages[5].revid, pages[5].revid + 2]  # stored as met; the corpus keeps the newer
    assert summary_row(done.stdout, "stored") == PAGES
    assert summary_row(done.stdout, "repeated copies") == 3
    assert summary_row(done.stdout, "deleted (moves)") == 1
    assert summary_row(done.stdout, "without HTML") == 0

    again = wikidump(config, "--dump", str(dump))  # nothing newer: nothing stored
    assert again.returncode == 0, again.stderr[-3000:]
    assert stored(data) == kept and summary_row(again.stdout, "already stored") == PAGES


def test_a_titles_run_reads_past_an_older_copy(tmp_path, pages):
    config, data = setup(tmp_path)
    lines = [article(p) for p in pages] + [article(revised(pages[4], 5))]
    dump = write_dump(tmp_path / "dump.tar.gz", lines, per_file=10)
    titles = tmp_path / "titles.txt"
    titles.write_text(f"{pages[4].title}\n{pages[7].title}\n", encoding="utf-8")
    done = wikidump(config, "--dump", str(dump), "--titles", str(titles))
    assert done.returncode == 0, done.stderr[-3000:]
    assert stored(data) == {pages[4].title: [pages[4].revid, pages[4].revid + 5], pages[7].title: [pages[7].revid]}
    assert summary_row(done.stdout, "articles read") == PAGES + 1


def make_corpus(config: Path):
    """``python -m corpus.build``; the generated pages repeat their phrases more than real ones do,
    so the repetition filters are off (what is tested is which revision is kept)."""
    return run_module("corpus.build", "-j", "1", "--set", "corpus.max_top_ngram_share=[]",
                      "--set", "corpus.max_dup_ngram_share=[]", config=config, timeout=300)


def corpus_docs(data: Path) -> list[dict]:
    """The corpus's documents: ``docs.jsonl`` entries with their ``text`` from the split shards."""
    out = data / "corpus"
    entries = [json.loads(line) for line in (out / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    texts = {shard: (out / shard).read_text(encoding="utf-8").split(DOC_END)[:-1]
             for shard in {e["shard"] for e in entries}}
    seen: Counter = Counter()
    for entry in entries:
        entry["text"] = texts[entry["shard"]][seen[entry["shard"]]]
        seen[entry["shard"]] += 1
    return entries


def test_next_months_dump_updates_the_changed_pages_and_the_corpus_keeps_the_newest(tmp_path, pages):
    config, data = setup(tmp_path, shard_bytes=60_000)
    november = write_dump(tmp_path / "november.tar.gz", [article(p) for p in pages])
    first = wikidump(config, "--dump", str(november))
    assert first.returncode == 0, first.stderr[-3000:]
    raw = sorted((data / "raw" / "bgwiki").glob("part-*.jsonl.gz"))
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in raw}
    built = make_corpus(config)
    assert built.returncode == 0, built.stderr[-3000:]
    assert len(corpus_docs(data)) == PAGES

    changed = {3, 8, 21}
    december = write_dump(tmp_path / "december.tar.gz",
                          [article(revised(p) if n in changed else p) for n, p in enumerate(pages)])
    second = wikidump(config, "--dump", str(december))
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary_row(second.stdout, "updated") == len(changed)
    assert summary_row(second.stdout, "stored") == 0
    assert summary_row(second.stdout, "already stored") == PAGES - len(changed)
    now = sorted((data / "raw" / "bgwiki").glob("part-*.jsonl.gz"))
    assert {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in now if p.name in before} == before
    assert len(now) == len(raw) + 1  # the three new revisions in one new shard

    rebuilt = make_corpus(config)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert f"{len(raw)} raw shards reused from the cache, 1 processed (1 new)" in rebuilt.stdout
    assert "updated: older revision dropped" in rebuilt.stdout
    docs = corpus_docs(data)
    assert len(docs) == PAGES and Counter(d["url"] for d in docs).most_common(1)[0][1] == 1
    newer = {d["title"] for d in docs if "Добавен абзац от редакция номер 1" in d["text"]}
    assert newer == {pages[n].title for n in changed}


def test_the_api_crawl_and_the_dump_keep_the_newer_revision_either_way(tmp_path, pages):
    """The API crawl stored some pages: the dump's newer revision of one is stored, its older
    revision of another is not; the corpus then holds the newer revision of each, whichever source."""
    api_pages = [revised(pages[0], 4), pages[1]] + pages[2:6]  # the API saw page 0 edited since the dump
    with WikiReplay(api_pages) as server:
        titles = tmp_path / "titles.txt"
        titles.write_text("\n".join(p.title for p in api_pages) + "\n", encoding="utf-8")
        config, data = setup(tmp_path, server.api, titles=titles)
        crawl = scrapy_crawl(config, "bgwiki")
        assert crawl.returncode == 0, crawl.stderr[-3000:]
    lines = [article(revised(pages[1], 2) if n == 1 else p) for n, p in enumerate(pages)]  # page 1 edited since
    dump = write_dump(tmp_path / "dump.tar.gz", lines, per_file=10)
    done = wikidump(config, "--dump", str(dump))
    assert done.returncode == 0, done.stderr[-3000:]
    assert summary_row(done.stdout, "updated") == 1 and summary_row(done.stdout, "already stored") == 5
    by_title = stored(data)
    assert by_title[pages[0].title] == [pages[0].revid + 4]  # the dump's older revision not stored
    assert by_title[pages[1].title] == [pages[1].revid, pages[1].revid + 2]
    built = make_corpus(config)
    assert built.returncode == 0, built.stderr[-3000:]
    docs = {d["title"]: d["text"] for d in corpus_docs(data)}
    assert len(docs) == PAGES
    assert "редакция номер 4" in docs[pages[0].title] and "редакция номер 2" in docs[pages[1].title]


def test_keys_files_an_older_version_wrote_are_rebuilt_with_the_revisions(tmp_path, pages):
    """Shards stored by an older version have v1 keys files of the right size, without revision
    keys (its ``record_keys`` gave the two URLs only): they are read again once, so the stored
    revisions are known and next month's newer copy counts as "updated"."""
    config, data = setup(tmp_path, shard_bytes=60_000)
    first = wikidump(config, "--dump", str(write_dump(tmp_path / "november.tar.gz", [article(p) for p in pages])))
    assert first.returncode == 0, first.stderr[-3000:]
    shards = sorted((data / "raw" / "bgwiki").glob("part-*.jsonl.gz"))
    for shard in shards:
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            urls = {r[k] for r in map(json.loads, fh) for k in ("canonical_url", "url")}
        keys_path(shard).write_text(f"# bg-gpt2 done-keys v1 {shard.name} {shard.stat().st_size}\n"
                                    + "".join(f"{url}\n" for url in sorted(urls)), encoding="utf-8")
    december = write_dump(tmp_path / "december.tar.gz", [article(revised(p) if n == 3 else p)
                                                          for n, p in enumerate(pages)])
    second = wikidump(config, "--dump", str(december))
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary_row(second.stdout, "updated") == 1 and summary_row(second.stdout, "stored") == 0
    assert summary_row(second.stdout, "already stored") == PAGES - 1
    assert stored(data)[pages[3].title] == [pages[3].revid, pages[3].revid + 1]
    for shard in shards:
        header, *keys = keys_path(shard).read_text(encoding="utf-8").splitlines()
        assert header.startswith("# bg-gpt2 done-keys v2 ") and any("\t" in key for key in keys)
