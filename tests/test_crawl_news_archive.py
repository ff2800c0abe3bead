"""News archives through real ``scrapy crawl news`` runs against the news replay on 127.0.0.1.

The replay (``demo.replay.news.NewsReplay``) serves two years of generated Bulgarian articles:
robots.txt → sitemap index (with ``lastmod``) → a Google News sitemap, monthly urlsets (plain and
gzipped; some entries edited a year later, some with no ``lastmod``, one on another host), a
sitemap of tag and section pages and a partner's sitemap on another host, plus an RSS feed and
daily "all news" pages. Expected sets come from the server's own articles, not from the crawler.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from crawler.pipelines import iter_records
from demo.replay.articles import synthetic_articles
from demo.replay.core import Faults
from demo.replay.news import NewsReplay
from tests.util import ROOT, run_module, write_config

ARTICLES = synthetic_articles(120)  # 2024-11-01 .. 2026-09-26, one every 6 days
PATTERN = r"/news/[^/]+\.html$"


@pytest.fixture(scope="module")
def replay():
    with NewsReplay(ARTICLES) as server:
        yield server


def crawl(tmp: Path, replay: NewsReplay, *args: str, settings: dict | None = None,
          **site) -> tuple[list[dict], list[str], str]:
    """Run ``scrapy crawl news ARGS`` on data under ``tmp``: (all stored records, paths it fetched,
    the printed summary table)."""
    table = {"name": "archive", "allowed_domains": ["127.0.0.1"], "render": "never",
             "article_pattern": PATTERN, "start_urls": [replay.url("/rss.xml")],
             "sitemaps": [replay.url("/robots.txt")], **site}
    cfg = write_config(tmp, {
        "paths": {"data": str(tmp / "data")},
        "crawl": {"download_delay": 0.0, "autothrottle": False, "concurrency_per_domain": 8,
                  **(settings or {})},
    }, news=[table])
    before = len(replay.requests)
    proc = run_module("scrapy", "crawl", "news", *args, config=cfg, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p for host, p in replay.requests[before:] if host == "localhost"] == []  # off-domain
    fetched = [unquote(urlsplit(p).path) for _, p in replay.requests[before:]]
    summary = proc.stdout[proc.stdout.index("crawl summary: news"):]
    return list(iter_records(tmp / "data" / "raw" / "news")), fetched, summary


def row(summary: str, label: str) -> int | None:
    """The count on the summary table's ``label`` row; None when the row is not shown."""
    found = re.search(rf"^  {re.escape(label)} +([\d,]+)$", summary, re.M)
    return int(found.group(1).replace(",", "")) if found else None


def day(text: str) -> date:
    return date.fromisoformat(text[:10])


def expected(since: str | None = None, until: str | None = None) -> set[str]:
    """Paths of the articles a window keeps: dated by sitemap lastmod (else publication date) or
    by the feed's publication date."""
    low, high = (date.fromisoformat(since) if since else date.min,
                 date.fromisoformat(until) if until else date.max)
    keep = set()
    for a in ARTICLES:
        sitemap_day = day(a.changed if a.lastmod else a.published)
        if low <= sitemap_day <= high or low <= day(a.published) <= high:
            keep.add(f"/news/{a.slug}.html")
    return keep


def article_paths(paths: list[str]) -> list[str]:
    return [p for p in paths if re.search(PATTERN, p)]


def stored_paths(records: list[dict]) -> list[str]:
    return [urlsplit(r["url"]).path for r in records]


def test_earlier_since_adds_only_older_articles_and_refetches_none(tmp_path, replay):
    site = replay.site
    records, fetched, summary = crawl(tmp_path, replay, "-a", "since=2026-01-01",
                                      "-a", "until=2026-06-30")
    first = stored_paths(records)
    assert set(first) == expected("2026-01-01", "2026-06-30") and len(first) == len(set(first))
    assert any(a.modified for a in ARTICLES if f"/news/{a.slug}.html" in first)  # an edit counts
    assert all(r["source"] == "archive" and r["license"] and r["title"] for r in records)
    # the sitemap index was followed; months last changed before `since` were never fetched
    assert "/robots.txt" in fetched and "/sitemap.xml" in fetched
    for month, articles in site.months.items():
        path = f"/sitemaps/{month}.xml" + (".gz" if site.gzipped(month) else "")
        assert (path in fetched) == (max(a.changed for a in articles) >= "2026-01-01"), path
    assert any(p.endswith(".xml.gz") for p in fetched) and any(
        re.fullmatch(r"/sitemaps/\d{4}-\d{2}\.xml", p) for p in fetched)
    assert not [p for p in fetched if p.startswith(("/tag/", "/section/", "/archive/"))]
    assert len(article_paths(fetched)) == len(first)  # nothing fetched and thrown away
    # the summary says what the window left out
    old_months = [m for m, articles in site.months.items()
                  if max(a.changed for a in articles) < "2026-01-01"]
    assert old_months and row(summary, "sitemaps < since") == len(old_months)
    assert row(summary, "outside window") > 0 and row(summary, "pages ok") == len(first)
    assert row(summary, "over the limit") is None  # no -a limit: no row

    records, fetched, summary = crawl(tmp_path, replay, "-a", "since=2025-07-01",
                                      "-a", "until=2026-06-30")
    second = stored_paths(records)
    assert set(second) == expected("2025-07-01", "2026-06-30") and len(second) == len(set(second))
    assert set(second) > set(first)
    assert not set(article_paths(fetched)) & set(first)  # stored articles: not fetched again
    assert set(article_paths(fetched)) == set(second) - set(first)
    assert row(summary, "pages ok") == len(second) - len(first)


def test_limit_takes_new_articles_only_robots_txt_as_start_url(tmp_path, replay):
    window = expected("2025-01-01")
    records, fetched, summary = crawl(tmp_path, replay, "-a", "since=2025-01-01", "-a", "limit=7")
    first = stored_paths(records)
    assert len(first) == 7 and set(first) <= window
    assert len(article_paths(fetched)) == 7
    assert row(summary, "over the limit") > 0
    # no window: only start_urls, here a robots.txt (its Sitemap: lines); 7 more, none refetched
    records, fetched, summary = crawl(tmp_path, replay, "-a", "limit=7",
                                      start_urls=[replay.url("/robots.txt")])
    both = stored_paths(records)
    assert len(both) == 14 == len(set(both))
    assert row(summary, "already stored") == 7  # each once, though listed in two sitemaps
    assert row(summary, "outside window") is None and row(summary, "sitemaps < since") is None
    assert not set(article_paths(fetched)) & set(first) and len(article_paths(fetched)) == 7
    assert "/rss.xml" not in fetched and "/sitemap.xml" in fetched
    # a feed larger than crawl.max_page_bytes is still read (listings may be 50 MB)
    records, fetched, _ = crawl(tmp_path, replay, "-a", "limit=3",
                                settings={"max_page_bytes": 40_000},
                                start_urls=[replay.url("/rss.xml")])
    assert len(stored_paths(records)) == 17 and len(article_paths(fetched)) == 3


def test_daily_archive_pages_walked_between_since_and_until(tmp_path, replay):
    records, fetched, _ = crawl(tmp_path, replay, "-a", "since=2026-05-01",
                                "-a", "until=2026-06-15", start_urls=[], sitemaps=[],
                             archive_urls=[replay.url("/archive/{date}")])
    published = {f"/news/{a.slug}.html" for a in ARTICLES if "2026-05-01" <= a.published <= "2026-06-15"}
    assert published and set(stored_paths(records)) == published
    days = [p for p in fetched if p.startswith("/archive/")]
    assert len(days) == 46 and sorted(days)[0] == "/archive/2026-05-01"
    assert "/robots.txt" in fetched  # obeyed, but no sitemap read: this site has none configured
    assert not [p for p in fetched if p.startswith(("/sitemap", "/tag/", "/section/"))]
    for record in records:
        assert "2026-05-01" <= record["published"][:10] <= "2026-06-15"


def test_a_truncated_gzipped_sitemap_costs_only_its_own_articles(tmp_path, replay):
    month = "2026-03"  # an odd month: served as a .xml.gz file
    assert replay.site.gzipped(month)
    replay.faults = Faults(truncate_after=300, only=rf"/sitemaps/{month}\.xml\.gz$")
    try:
        records, fetched, _ = crawl(tmp_path, replay, "-a", "since=2026-01-01", start_urls=[])
    finally:
        replay.faults = Faults()
    lost = {f"/news/{a.slug}.html" for a in replay.site.months[month]}
    kept = {f"/news/{a.slug}.html" for a in ARTICLES if day(a.changed if a.lastmod else a.published)
            >= date(2026, 1, 1)}
    assert lost and set(stored_paths(records)) == kept - lost
    assert fetched.count(f"/sitemaps/{month}.xml.gz") >= 2  # retried, then given up


@pytest.mark.parametrize(("args", "message"), [
    (("since=2025-02-30",), "spider argument -a since=2025-02-30: no such date"),
    (("since=2025-13-01",), "spider argument -a since=2025-13-01: no such date"),
    (("until=1.2.2025",), "spider argument -a until=1.2.2025: not a date YYYY-MM-DD"),
    (("since=2025-06-01", "until=2025-01-31"),
     "spider arguments: -a since=2025-06-01 is after -a until=2025-01-31"),
    (("limit=-3",), "spider argument -a limit=-3: must be a whole number >= 0"),
])
def test_bad_window_is_one_line_error_before_scrapy_starts(tmp_path, args, message):
    cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}}, news=[
        {"name": "alpha", "start_urls": ["http://127.0.0.1:9/rss"], "allowed_domains": ["127.0.0.1"]}])
    proc = run_module("scrapy", "crawl", "news", *[a for arg in args for a in ("-a", arg)],
                      config=cfg, timeout=60)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {message}", proc.stderr
    assert not (tmp_path / "data").exists()


def test_make_crawl_gives_the_archive_variables_to_the_news_spider_only():
    """``make crawl SINCE= UNTIL= LIMIT= SITE=``: bgwiki rejects since/until, so they go to news
    alone, whose arguments are checked before the wiki crawl starts."""
    proc = subprocess.run(["make", "-n", "crawl", "SITE=bta", "SINCE=2025-01-01", "UNTIL=2025-06-30",
                           "LIMIT=5", "ARGS=-s LOG_LEVEL=INFO"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    calls = [shlex.split(line)[2:] for line in proc.stdout.splitlines()
             if line.startswith(".venv/bin/scrapy crawl ")]
    news = ["-a", "site=bta", "-a", "since=2025-01-01", "-a", "until=2025-06-30", "-a", "limit=5",
            "-s", "LOG_LEVEL=INFO"]
    assert calls == [["news", "--check", *news],
                     ["bgwiki", "-a", "limit=5", "-s", "LOG_LEVEL=INFO"],
                     ["news", *news]], proc.stdout


def test_make_crawl_with_a_bad_date_stops_before_the_wiki_crawl(tmp_path):
    cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}})
    proc = subprocess.run(["make", "--no-print-directory", "crawl", f"CONFIG={cfg}", "SINCE=2025-13-01"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: spider argument -a since=2025-13-01: no such date" in proc.stderr.splitlines()
    assert "crawl bgwiki" not in proc.stdout and not (tmp_path / "data").exists()


def test_archive_url_without_a_date_is_a_config_error(tmp_path):
    cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}}, news=[
        {"name": "alpha", "start_urls": [], "allowed_domains": ["127.0.0.1"],
         "archive_urls": ["http://127.0.0.1:9/archive/today"]}])
    proc = run_module("scrapy", "crawl", "news", "-a", "since=2026-01-01", config=cfg, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "archive_urls" in proc.stderr and str(cfg) in proc.stderr


def test_stopped_crawl_then_earlier_since_stores_every_article_once(tmp_path, replay):
    """A crawl stopped part-way keeps its JOBDIR (queue and seen fingerprints); the re-run with an
    earlier ``since`` must still read every listing (robots.txt, the sitemap index, urlsets) again."""
    records, fetched, _ = crawl(tmp_path, replay, "-a", "since=2026-01-01", "-a", "until=2026-06-30",
                                "-s", "CLOSESPIDER_ITEMCOUNT=2")
    first = stored_paths(records)
    jobdir = tmp_path / "data" / "jobs" / "news"
    assert (jobdir / "requests.seen").stat().st_size > 0  # the stopped run's fingerprints are kept
    assert "/sitemap.xml" in fetched and 2 <= len(first) < len(expected("2026-01-01", "2026-06-30"))
    records, fetched, summary = crawl(tmp_path, replay, "-a", "since=2025-07-01")
    second = stored_paths(records)
    assert len(second) == len(set(second)) and set(second) == expected("2025-07-01")
    assert "/robots.txt" in fetched and "/sitemap.xml" in fetched
    listings = [p for p in fetched if p.startswith("/sitemap")]
    assert len(listings) == len(set(listings))  # each listing read once in a run
    assert not set(article_paths(fetched)) & set(first)  # stored articles: not fetched again
    assert "IgnoreRequest" not in summary  # dropped leftovers are no failed fetches
    assert not (jobdir / "requests.seen").exists()  # finished: the job state is dropped
