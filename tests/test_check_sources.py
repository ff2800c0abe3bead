"""``python -m crawler.check`` (``make check-sources``) against replays that answer as the real
sources do: a wiki with a maxlag spell, a dumps mirror, a good news site, mediapool's POST archive, a site that
answers 402 to everything, one behind a bot challenge, a feed moved to another host, a site whose
article layout changed, a host nobody listens on, a feed and archive that are gone (404) and a site
answering 503."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from common import config
from crawler.arguments import Site
from crawler.blocking import HINT
from crawler.check import Finding, Renderer, news_row, sitemap_evidence, wiki_row
from crawler.polite import Client
from demo.replay.articles import Article
from demo.replay.core import ReplayServer
from demo.replay.dump import DumpMirror
from demo.replay.news import NewsReplay
from demo.replay.pages import synthetic_pages
from demo.replay.turned_away import Refusing
from demo.replay.wiki import WikiReplay
from tests.test_crawl_news import PARAGRAPHS
from tests.test_wikidump_runs import mirror
from tests.util import TEST_AGENT, free_port, run_module, write_config

YESTERDAY = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()


def news_articles() -> list[Article]:
    return [Article(f"statiya-{n}", f"Статия номер {n}", "Петър Петров", YESTERDAY, "Общество",
                    False, PARAGRAPHS) for n in range(3)]


def rows(stdout: str) -> dict[str, dict[str, str]]:
    """The printed table's rows by source."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return {r["source"]: r for r in (dict(zip(header, (c.strip() for c in line.strip("|").split(" | ")),
                                               strict=True)) for line in lines[1:])}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("check")
    closed = free_port()
    with WikiReplay(synthetic_pages(3), maxlag_faults=1) as wiki, \
            NewsReplay(news_articles()) as news, \
            ReplayServer(Refusing(402)) as paywall, \
            ReplayServer(Refusing(403, challenge=True)) as challenge, \
            ReplayServer(Refusing(503)) as down, \
            ReplayServer(mirror(tmp)[0]) as dumps:
        def site(name: str, *feeds: str, **more) -> dict:
            return {"name": name, "allowed_domains": ["127.0.0.1"], "render": "fallback",
                    "start_urls": list(feeds), **more}

        cfg = write_config(tmp, {
            "paths": {"data": str(tmp / "data")},
            "crawl": {"download_delay": 0.0, "selenium_pool": 1, "render_min_chars": 400},
            "crawl.bgwiki": {"api": wiki.api, "dump": dumps.url(DumpMirror.prefix)},
        }, news=[
            site("good", news.url("/rss.xml"), article_pattern=r"/news/.+\.html$",
                 archive_urls=[news.url("/archive/{date}")]),
            site("pool", news.url("/rss.xml"), article_pattern=r"/news/.+\.html$",
                 archive_forms=[{"url": news.url("/today.html"), "form": {"rdate": "{date}"}}]),
            site("dnevnik", paywall.url("/rss/"), article_pattern=r"/news/",
                 archive_urls=[paywall.url("/allnews/{date:%Y/%m/%d}/")]),
            site("offnews", challenge.url("/feed/"), article_pattern=r"/news/"),
            site("moved", news.url("/moved/rss.xml"), article_pattern=r"/news/"),
            site("changed", news.url("/changed/rss.xml"), article_pattern=r"/changed/"),
            site("gone", f"http://127.0.0.1:{closed}/rss.xml"),
            site("feed404", news.url("/old/rss.xml"), article_pattern=r"/news/",
                 archive_urls=[news.url("/old/archive/{date}")]),
            site("down", down.url("/rss/"), article_pattern=r"/news/"),
        ])
        proc = run_module("crawler.check", "--config", str(cfg), timeout=300)
        one = run_module("crawler.check", "--config", str(cfg), "--site", "pool", timeout=120)
        served = {"news": dict(news.counts), "wiki": dict(wiki.wiki.counts),
                  "paywall": dict(paywall.sites[0].counts), "dumps": len(dumps.requests)}
        served["alone"] = {"bgwiki": len(wiki.requests), "dnevnik": len(paywall.requests),
                           "offnews": len(challenge.requests), "down": len(down.requests)}
    return {"proc": proc, "rows": rows(proc.stdout), "one": one, "served": served,
            "news": news, "closed": closed, "config": cfg}


def test_every_source_has_a_row_with_at_most_ten_requests(checked):
    assert list(checked["rows"]) == ["bgwiki", "bgwiki dump", "good", "pool", "dnevnik", "offnews", "moved",
                                     "changed", "gone", "feed404", "down"], checked["proc"].stdout
    for name, row in checked["rows"].items():
        requests = (checked["served"]["dumps"] if name == "bgwiki dump"  # counted at the mirror
                    else int(row["tried"].rsplit("(", 1)[1].split()[0]))
        assert 1 <= requests <= 10, row
        if name in checked["served"]["alone"]:  # a server of its own: the count is what it saw
            assert requests == checked["served"]["alone"][name], row


def test_the_wiki_answers_and_maxlag_is_waited_out(checked):
    row = checked["rows"]["bgwiki"]
    assert row["result"] == "ok", row
    assert "siteinfo 200: Уикипедия" in row["evidence"] and "characters of HTML" in row["evidence"]
    assert "a maxlag answer waited out" in row["evidence"]
    assert checked["served"]["wiki"]["fault=maxlag"] == 1
    assert checked["served"]["wiki"].get("without-maxlag", 0) == 0


def test_the_dump_row_names_the_newest_run_and_its_checksum(checked):
    row = checked["rows"]["bgwiki dump"]
    assert row["result"] == "ok", row
    assert "20261101" in row["evidence"] and "md5" in row["evidence"].lower(), row


def test_a_working_news_site_and_the_post_archive_are_ok(checked):
    good, pool = checked["rows"]["good"], checked["rows"]["pool"]
    assert good["result"] == "ok" and pool["result"] == "ok", (good, pool)
    assert "feed /rss.xml: 4 items, 3 article links" in good["evidence"]
    assert "newest lastmod" in good["evidence"]
    assert f"archive {YESTERDAY}: 3 article links" in good["evidence"]
    assert f"archive {YESTERDAY}: 3 article links" in pool["evidence"]
    assert "yesterday's archive (POST)" in pool["tried"]
    assert checked["served"]["news"]["POST /today.html"] == 2  # the full run and --site pool
    assert "characters (plain HTML), main text by trafilatura" in good["evidence"]
    assert checked["one"].returncode == 0, checked["one"].stderr
    assert list(rows(checked["one"].stdout)) == ["pool"]


def test_refusals_and_challenges_are_blocked(checked):
    dnevnik, offnews = checked["rows"]["dnevnik"], checked["rows"]["offnews"]
    assert dnevnik["result"] == "blocked" and offnews["result"] == "blocked"
    assert "HTTP 402 on /robots.txt, 3 of 3 listings" in dnevnik["evidence"]
    assert "Cloudflare challenge on /robots.txt, 2 of 2 listings" in offnews["evidence"]
    assert dnevnik["fix"] == HINT == offnews["fix"]
    assert checked["served"]["paywall"]["GET /rss/"] == 1  # asked once, not hammered


def test_a_feed_moved_to_another_host(checked):
    row = checked["rows"]["moved"]
    port = checked["news"].port
    assert row["result"] == "moved", row
    assert f"301 /moved/rss.xml -> http://localhost:{port}/rss.xml" in row["evidence"]
    assert f"http://localhost:{port}/rss.xml" in row["fix"]
    assert ("localhost", "/rss.xml") not in checked["news"].requests  # not followed


def test_a_changed_layout_stays_short_after_rendering(checked):
    row = checked["rows"]["changed"]
    assert row["result"] == "changed", row
    assert "rendered in Chromium" in row["evidence"] and "under crawl.render_min_chars=400" in row["evidence"]


def test_an_unreachable_host(checked):
    row = checked["rows"]["gone"]
    assert row["result"] == "unreachable", row
    assert f"connection refused by 127.0.0.1:{checked['closed']}" in row["evidence"]


def test_a_feed_and_archive_that_are_gone_or_down(checked):
    gone, down = checked["rows"]["feed404"], checked["rows"]["down"]
    assert gone["result"] == "changed", gone
    assert "HTTP 404 on /old/rss.xml: the URL is gone" in gone["evidence"]
    assert f"HTTP 404 on /old/archive/{YESTERDAY}: the URL is gone" in gone["evidence"]
    assert "current feed" in gone["fix"]
    assert down["result"] == "unreachable", down
    assert "HTTP 503 on /rss/" in down["evidence"]


def test_exit_1_with_one_line_per_broken_source(checked):
    proc = checked["proc"]
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["dnevnik", "offnews", "moved", "changed", "gone",
                                                         "feed404", "down"]
    assert lines[0] == f"dnevnik: blocked: {HINT}"


def test_an_unknown_source_is_one_line(checked):
    proc = run_module("crawler.check", "--config", str(checked["config"]), "--site", "nope", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: unknown source 'nope' (configured: bgwiki, dump, good, pool, "
                                   "dnevnik, offnews, moved, changed, gone, feed404, down)")


def test_the_client_keeps_the_delay_and_obeys_robots_txt():
    """Lower bounds only: each request reaches the server at least the delay after the last."""
    seen: list[float] = []
    with NewsReplay(news_articles()) as news:
        site = news.site
        news.sites = [lambda request: seen.append(time.monotonic()) or site(request)]
        client = Client(TEST_AGENT, delay=0.3)
        answers = [client.fetch(news.url("/rss.xml")) for _ in range(2)]
        draft = client.fetch(news.url("/news/drafts/statiya-0.html"))
    assert [a.status for a in answers] == [200, 200] and client.requests == 3  # robots.txt first
    assert draft.error == "robots.txt disallows /news/drafts/statiya-0.html" and len(seen) == 3
    assert all(later - earlier >= 0.3 for earlier, later in zip(seen, seen[1:], strict=False))


def test_a_gzipped_sitemap_is_read_and_a_missing_one_is_evidence():
    """A ``.xml.gz`` sitemap (served without Content-Encoding) is gunzipped; a 404 one is named."""
    january = [Article(f"yanuari-{n}", f"Януари {n}", "Петър Петров", "2026-01-15", "Общество",
                       False, PARAGRAPHS) for n in range(2)]
    found = Finding("site")
    with NewsReplay(january) as news:
        client = Client(TEST_AGENT, delay=0.0)
        sitemap_evidence(found, client, news.url("/sitemaps/2026-01.xml.gz"))
        sitemap_evidence(found, client, news.url("/sitemaps/none.xml"))
    assert found.evidence == ["sitemap /sitemaps/2026-01.xml.gz: a sitemap of 3, newest lastmod 2026-01-15",
                              "sitemap /sitemaps/none.xml: HTTP 404"], found.evidence


def test_a_render_waits_the_delay_and_is_counted(tmp_path):
    """The Chromium render of an article is one more request: at least the delay after the plain
    fetch of the same host, counted by the client (lower bound only)."""
    seen: list[tuple[float, str]] = []
    with NewsReplay(news_articles()) as news:
        site = news.site
        news.sites = [lambda request: seen.append((time.monotonic(), request.path)) or site(request)]
        cfg = config.load(write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")},
                                                  "crawl": {"download_delay": 0.5}}))
        client = Client(TEST_AGENT, delay=0.5)
        render = Renderer(cfg, client)
        try:
            url = news.url("/news/statiya-0.html")
            assert client.fetch(url).ok
            html = render(url)
        finally:
            render.close()
    assert "Статия номер 0" in html
    fetches = [t for t, path in seen if path == "/news/statiya-0.html"]
    assert len(fetches) == 2 and fetches[1] - fetches[0] >= 0.5, seen
    assert client.requests == 3  # robots.txt, the plain fetch, the render


def test_a_wiki_api_that_refuses_is_blocked(tmp_path):
    with ReplayServer(Refusing(402)) as paywall:
        cfg = config.load(write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")},
                                                  "crawl.bgwiki": {"api": paywall.url("/w/api.php")}}))
        row = wiki_row(cfg, Client(TEST_AGENT, delay=0.0))
    assert row["result"] == "blocked" and "HTTP 402 on the API" in row["evidence"], row
    assert row["fix"] == HINT


def test_only_robots_txt_refused_is_evidence_not_a_block(tmp_path):
    """As the crawl judges: a site is blocked when every listing was refused, not one of them."""
    with NewsReplay(news_articles()) as news:
        site, refuse = news.site, Refusing(403)
        news.sites = [lambda request: refuse(request) if request.path == "/robots.txt" else site(request)]
        cfg = config.load(write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}}, news=[{
            "name": "half", "allowed_domains": ["127.0.0.1"], "render": "never",
            "start_urls": [news.url("/rss.xml")], "article_pattern": r"/news/.+\.html$"}]))
        row = news_row(Site(cfg.crawl.news[0]), cfg, Client(TEST_AGENT, delay=0.0), str)
    assert row["result"] == "ok", row
    assert "refused: HTTP 403 on /robots.txt, 1 of 2 listings" in row["evidence"], row
