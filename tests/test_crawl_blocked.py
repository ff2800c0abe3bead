"""``scrapy crawl news`` against sites that turn it away (402 everywhere, a bot challenge) and
mediapool's daily archive reached by a form POST, on replays on 127.0.0.1."""

from __future__ import annotations

import re

from common import config
from crawler.blocking import HINT
from demo.replay.core import ReplayServer
from demo.replay.daily import DailyReplay
from demo.replay.news import NewsReplay
from demo.replay.turned_away import Refusing
from tests.crawl_util import records, scrapy_crawl
from tests.test_crawl_news import ARTICLES, write_articles
from tests.util import ROOT, free_port, write_config

SETTINGS = {"download_delay": 0.0, "autothrottle": False, "retry_times": 1}


def blocked_sites(paywall: ReplayServer, challenge: ReplayServer) -> list[dict]:
    return [
        {"name": "dnevnik", "allowed_domains": ["127.0.0.1"], "render": "never",
         "article_pattern": r"/\d{4}/\d{2}/\d{2}/\d+_",
         "start_urls": [paywall.url("/rss/"), paywall.url("/allnews/"), paywall.url("/sitemap.xml")]},
        {"name": "offnews", "allowed_domains": ["127.0.0.1"], "render": "never",
         "article_pattern": "/news/", "start_urls": [challenge.url("/feed/")]},
    ]


def test_every_site_blocked_exits_1_naming_them(tmp_path):
    with ReplayServer(Refusing(402)) as paywall, ReplayServer(Refusing(403, challenge=True)) as wall:
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}, "crawl": SETTINGS},
                           news=blocked_sites(paywall, wall))
        proc = scrapy_crawl(cfg, "news")
    assert proc.returncode == 1, proc.stderr[-3000:]
    dnevnik = r"dnevnik: blocked \(HTTP 402 on /(rss|allnews|sitemap\.xml)/?, 3 of 3 listings\)"
    last = proc.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"error: nothing fetched: {dnevnik} and 1 more; {re.escape(HINT)}", last), last
    summary = proc.stdout[proc.stdout.index("crawl summary"):]
    assert f"blocked sites ({HINT}):" in summary
    assert re.search(rf"^    {dnevnik}$", summary, re.M), summary
    assert "    offnews: blocked (Cloudflare challenge on /feed/, 1 of 1 listings)" in summary
    assert records(tmp_path / "data", "news") == []


def test_some_site_gives_articles_exit_0_and_the_blocked_are_listed(tmp_path):
    write_articles(tmp_path / "site")
    with NewsReplay(tmp_path / "site") as news, ReplayServer(Refusing(402)) as paywall, \
            ReplayServer(Refusing(403, challenge=True)) as wall:
        good = {"name": "good", "allowed_domains": ["127.0.0.1"], "render": "never",
                "article_pattern": "/news/", "start_urls": [news.url("/rss.xml")]}
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}, "crawl": SETTINGS},
                           news=[good, *blocked_sites(paywall, wall)])
        proc = scrapy_crawl(cfg, "news")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error:" not in proc.stderr
    assert len(records(tmp_path / "data", "news")) == len(ARTICLES)
    summary = proc.stdout[proc.stdout.index("crawl summary"):]
    assert "3 of 3 listings)" in summary and "offnews: blocked (Cloudflare challenge" in summary
    assert "good: blocked" not in summary


def test_a_challenge_page_instead_of_an_article_is_not_stored(tmp_path):
    """The feed answers; its articles sit behind the challenge (a site that guards pages only).
    Under ``render = "fallback"`` the short challenge page is not rendered in Chromium (that would
    run its script): each article is asked for once, the challenge script never."""
    write_articles(tmp_path / "site")
    with NewsReplay(tmp_path / "site") as news:
        wall = Refusing(200, challenge=True)
        site = news.site
        news.sites = [lambda request: wall(request) if request.path.startswith("/news/")
                      else site(request)]
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}, "crawl": SETTINGS},
                           news=[{"name": "guarded", "allowed_domains": ["127.0.0.1"],
                                  "render": "fallback", "article_pattern": "/news/",
                                  "start_urls": [news.url("/rss.xml")]}])
        proc = scrapy_crawl(cfg, "news")
    assert sorted(wall.counts.values()) == [1] * len(ARTICLES), wall.counts  # no render, no script
    assert "Cloudflare challenge instead of the article" in proc.stderr
    assert records(tmp_path / "data", "news") == []
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert re.search(r"^    guarded: blocked \(Cloudflare challenge on /news/[^ ]+\.html, "
                     rf"{len(ARTICLES)} of {len(ARTICLES)} articles\)$", proc.stdout, re.M), proc.stdout


def test_a_200_challenge_is_a_failed_fetch_not_an_answer(tmp_path):
    """One site behind a challenge answered 200, one nobody listens on: nothing was fetched."""
    closed = free_port()
    with ReplayServer(Refusing(200, challenge=True)) as wall:
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}, "crawl": SETTINGS},
                           news=[{"name": "walled", "allowed_domains": ["127.0.0.1"], "render": "never",
                                  "article_pattern": "/news/", "start_urls": [wall.url("/feed/")]},
                                 {"name": "gone", "allowed_domains": ["127.0.0.1"], "render": "never",
                                  "article_pattern": "/news/",
                                  "start_urls": [f"http://127.0.0.1:{closed}/rss.xml"]}])
        proc = scrapy_crawl(cfg, "news")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: nothing fetched: "), proc.stderr[-3000:]
    assert f"a bot-challenge page from 127.0.0.1:{wall.port} instead of the content" in proc.stdout


def test_the_post_archive_is_walked_day_by_day(tmp_path):
    """mediapool's daily archive: a form POST to today.html with rdate=YYYY-MM-DD per day."""
    write_articles(tmp_path / "site")  # published 2026-10-12, -13 and -14
    with NewsReplay(tmp_path / "site") as news:
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}, "crawl": SETTINGS},
                           news=[{"name": "mediapool", "allowed_domains": ["127.0.0.1"],
                                  "render": "never", "article_pattern": r"/news/[^/]+\.html$",
                                  "start_urls": [],
                                  "archive_forms": [{"url": news.url("/today.html"),
                                                     "form": {"rdate": "{date}"}}]}])
        proc = scrapy_crawl(cfg, "news", "-a", "since=2026-10-11", "-a", "until=2026-10-13")
        posts = news.counts["POST /today.html"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = sorted(r["url"].rsplit("/", 1)[1] for r in records(tmp_path / "data", "news"))
    assert stored == ["01-most.html", "02-teatar.html"]  # 10-12 and 10-13; 10-14 is after until
    assert posts == 3  # 10-13, 10-12, 10-11


def test_dnevnik_shape_articles_only_dates_from_itemprop_feed_402_not_a_block(tmp_path):
    """The shipped dnevnik article_pattern against a dnevnik-shaped replay: the daily pages link
    articles and their comments pages; only articles are fetched; their dates come from
    ``itemprop="datePublished"`` (the window keeps them by it); the 402 feed alone does not make
    the site blocked."""
    write_articles(tmp_path / "site")
    shipped = next(s for s in config.load(ROOT / "pipelines.toml").crawl.news if s["name"] == "dnevnik")
    with DailyReplay(tmp_path / "site") as site:
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}, "crawl": SETTINGS},
                           news=[{"name": "dnevnik", "allowed_domains": ["127.0.0.1"],
                                  "render": "never", "article_pattern": shipped["article_pattern"],
                                  "start_urls": [site.url("/rss/")],
                                  "archive_urls": [site.url("/allnews/{date:%Y/%m/%d}/")]}])
        proc = scrapy_crawl(cfg, "news", "-a", "since=2026-10-12", "-a", "until=2026-10-13")
        served = site.paths()
    assert proc.returncode == 0, proc.stderr[-3000:]
    stored = records(tmp_path / "data", "news")
    assert sorted(r["title"] for r in stored) == sorted(ARTICLES[s][0] for s in ("01-most", "02-teatar"))
    assert all(r["published"] == f"{r['url'].split('/')[4]}-{r['url'].split('/')[5]}-"
                                 f"{r['url'].split('/')[6]}T09:00:00+03:00" for r in stored)
    assert not [p for p in served if p.endswith("/comments/")]
    assert "/rss/" in served and "blocked" not in proc.stdout[proc.stdout.index("crawl summary"):]


def test_429_counts_as_blocked_only_after_the_retries(tmp_path):
    wall = Refusing(429)
    with ReplayServer(wall) as server:
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")},
                                      "crawl": {**SETTINGS, "retry_times": 2, "backoff_max_seconds": 0.1}},
                           news=[{"name": "busy", "allowed_domains": ["127.0.0.1"], "render": "never",
                                  "article_pattern": "/news/", "start_urls": [server.url("/rss/")]}])
        proc = scrapy_crawl(cfg, "news")
    assert wall.counts["GET /rss/"] == 3  # the first answer and two retries
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "    busy: blocked (HTTP 429 on /rss/, 1 of 1 listings)" in proc.stdout
