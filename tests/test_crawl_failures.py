"""A crawl that gets nothing says why in one line and exits 1; a partial failure exits 0 and lists
its causes in the summary. Real ``scrapy crawl`` runs against 127.0.0.1 only."""

from __future__ import annotations

from scrapy.exceptions import CannotResolveHostError
from scrapy.http import Request, Response
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.test import get_crawler

from crawler.extensions import cause_line, failure_causes, nothing_fetched
from crawler.middlewares import FetchOutcomeMiddleware
from demo.replay.core import HTML
from demo.replay.core import Request as ReplayRequest
from demo.replay.core import Response as ReplayResponse
from demo.replay.news import NewsReplay
from demo.replay.pages import synthetic_pages
from demo.replay.wiki import GENERIC_AGENTS, WikiReplay
from tests.crawl_util import crawl_config, records, scrapy_crawl
from tests.test_crawl_news import ARTICLES, write_articles
from tests.util import free_port, write_config


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_a_closed_port_ends_with_one_line_and_exit_1(tmp_path):
    port = free_port()  # nothing listens there: every connection is refused
    titles = tmp_path / "titles.txt"
    titles.write_text("Рила\nПирин\n", encoding="utf-8")
    config = crawl_config(tmp_path, f"http://127.0.0.1:{port}/w/api.php", titles, retry_times=1)
    proc = scrapy_crawl(config, "bgwiki")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert last_line(proc.stderr) == (f"error: nothing fetched: connection refused by 127.0.0.1:{port}: "
                                      "is the server down or the URL wrong?")
    assert "pages ok" in proc.stdout and f"connection refused by 127.0.0.1:{port}" in proc.stdout
    assert records(tmp_path / "data") == []


def test_an_api_answering_403_names_the_user_agent(tmp_path):
    pages = synthetic_pages(3)
    with WikiReplay(pages) as server:
        titles = tmp_path / "titles.txt"
        titles.write_text("\n".join(p.title for p in pages) + "\n", encoding="utf-8")
        # a generic agent: the replay, like Wikimedia, answers 403 to every request
        config = crawl_config(tmp_path, server.api, titles, user_agent="Scrapy/2.19 (+https://scrapy.org)")
        proc = scrapy_crawl(config, "bgwiki")
        refused = server.wiki.counts["refused-agent"]
    assert proc.returncode == 1, proc.stderr[-3000:]
    host = server.api.split("/")[2]
    assert last_line(proc.stderr) == (f"error: nothing fetched: 403 from {host}: set crawl.user_agent "
                                      "to name you and a contact")
    assert refused >= 1 and records(tmp_path / "data") == []


def test_a_news_site_refusing_the_agent_but_serving_robots_txt_names_the_user_agent(tmp_path):
    """Like a CDN that blocks generic User-Agents: robots.txt answers 200 to anyone, every feed and
    article 403. The robots.txt answer is no fetched page: the crawl still got nothing."""
    write_articles(tmp_path / "site")
    with NewsReplay(tmp_path / "site") as replay:
        site = replay.site

        def blocking(request: ReplayRequest) -> ReplayResponse | None:
            if request.path != "/robots.txt" and GENERIC_AGENTS.match(request.headers.get("User-Agent", "")):
                return ReplayResponse(403, b"Access denied", HTML)
            return site(request)

        replay.sites = [blocking]
        cfg = write_config(tmp_path, {
            "paths": {"data": str(tmp_path / "data")},
            "crawl": {"download_delay": 0.0, "autothrottle": False, "retry_times": 1,
                      "user_agent": "Scrapy/2.19 (+https://scrapy.org)"},
        }, news=[{"name": "blocked", "allowed_domains": ["127.0.0.1"], "render": "never",
                  "article_pattern": "/news/", "start_urls": [replay.url("/rss.xml"), replay.url("/")]}])
        proc = scrapy_crawl(cfg, "news")
        served = replay.paths()
    assert "/robots.txt" in served and "/rss.xml" in served  # robots.txt was fetched and answered
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert last_line(proc.stderr) == (f"error: nothing fetched: 403 from {replay.url().split('/')[2]}: "
                                      "set crawl.user_agent to name you and a contact")
    assert records(tmp_path / "data", "news") == []


def test_a_partial_failure_exits_0_and_lists_the_failures(tmp_path):
    write_articles(tmp_path / "site")
    dead = free_port()
    with NewsReplay(tmp_path / "site") as replay:
        cfg = write_config(tmp_path, {
            "paths": {"data": str(tmp_path / "data")},
            "crawl": {"download_delay": 0.0, "autothrottle": False, "retry_times": 1},
        }, news=[{"name": "half", "allowed_domains": ["127.0.0.1"], "render": "never",
                  "article_pattern": "/news/",
                  "start_urls": [replay.url("/rss.xml"), f"http://127.0.0.1:{dead}/rss.xml"]}])
        proc = scrapy_crawl(cfg, "news")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "error: nothing fetched" not in proc.stderr
    assert len(records(tmp_path / "data", "news")) == len(ARTICLES)
    summary = proc.stdout[proc.stdout.index("crawl summary"):]
    assert "failed fetches" in summary and f"connection refused by 127.0.0.1:{dead}" in summary


def test_causes_are_named_from_the_stats():
    stats = {"pages/ok": 0, "fetch/failed/dns/bg.wikipedia.org": 6, "fetch/failed/http-503/x.bg:8080": 2}
    assert cause_line("dns", "bg.wikipedia.org:443") == "could not resolve bg.wikipedia.org: no network?"
    assert failure_causes(stats) == [("could not resolve bg.wikipedia.org: no network?", 6),
                                     ("HTTP 503 from x.bg:8080", 2)]
    assert nothing_fetched(stats) == ("nothing fetched: could not resolve bg.wikipedia.org: no network? "
                                      "(and 1 other cause(s): see the summary)")
    assert nothing_fetched({**stats, "fetch/ok": 1}) is None  # something answered: a partial failure
    assert nothing_fetched({**stats, "pages/ok": 3}) is None
    assert nothing_fetched({"pages/ok": 0}) is None  # nothing asked, nothing failed


def test_fetch_outcomes_by_cause_and_host():
    crawler = get_crawler()
    outcomes = FetchOutcomeMiddleware(crawler)
    for url, status in (("http://a.bg/robots.txt", 404), ("http://a.bg/x", 200), ("http://a.bg/y", 403),
                        ("http://a.bg:8080/y", 403), ("http://a.bg/z", 301)):  # a spider's requests
        outcomes.process_response(Request(url), Response(url, status=status))
    for url, status in (("http://a.bg/robots.txt", 404), ("http://c.bg/robots.txt", 200),
                        ("http://d.bg/robots.txt", 403)):  # ROBOTSTXT_OBEY's: no page fetched either way
        outcomes.process_response(Request(url, callback=NO_CALLBACK), Response(url, status=status))
    outcomes.process_exception(Request("http://b.bg/"), CannotResolveHostError("b.bg"))
    stats = crawler.stats.get_stats()
    assert {k: v for k, v in stats.items() if k.startswith("fetch/")} == {
        "fetch/robots": 3, "fetch/ok": 3, "fetch/failed/http-403/a.bg": 1, "fetch/failed/http-403/a.bg:8080": 1,
        "fetch/failed/dns/b.bg": 1}
