"""The Selenium fallback with real headless Chromium and Debian's chromedriver, on 127.0.0.1.

Driver pool: JavaScript-inserted text comes back, a killed browser is replaced, a hung page times
out without wedging the pool, temporary profiles are removed. Middleware: ``render = "always"``
through a real ``scrapy crawl news``.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crawler.pipelines import iter_records
from crawler.render import RenderPool, RenderTimeout, selenium_seconds_per_page
from demo.replay import NewsReplay
from tests.test_crawl_news import ARTICLES, PARAGRAPHS, write_articles
from tests.util import run_module, write_config

pytestmark = pytest.mark.skipif(not os.access("/usr/bin/chromedriver", os.X_OK),
                                reason="Debian chromium-driver is not installed (make system)")


def browser_pids(marker: str) -> list[int]:
    """Processes whose command line names ``marker`` (a driver's temporary folder)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(
                    "utf-8", "replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site") / "articles"
    paragraphs = write_articles(folder)
    with NewsReplay(folder) as replay:
        yield replay, paragraphs


@pytest.fixture()
def hanging_server():
    """A server whose /hang never answers within the test."""
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            release.wait(30)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hang"
    release.set()
    server.shutdown()
    server.server_close()


def test_pool_renders_js_restarts_a_crashed_browser_times_pages_and_cleans_up(site):
    replay, paragraphs = site
    inserted = paragraphs["03-skrita"][-1]
    pool = RenderPool(1, timeout=20)
    try:
        page = pool.render(replay.url("/news/03-skrita.html"))
        assert inserted in page.html and page.url == replay.url("/news/03-skrita.html")
        (driver,) = pool._all
        first_tmp = driver.tmp
        pids = browser_pids(first_tmp)
        assert pids, "no Chromium process uses the driver's temporary profile"
        for pid in pids:  # the browser crashes
            os.kill(pid, signal.SIGKILL)
        page = pool.render(replay.url("/news/03-skrita.html"))
        assert inserted in page.html
        assert pool.restarts == 1
        assert not Path(first_tmp).exists()
        (driver,) = pool._all
        second_tmp = driver.tmp
        assert second_tmp != first_tmp and Path(second_tmp).is_dir()
        figure = selenium_seconds_per_page(replay.url("/news/03-skrita.html"), 3, pool)
        assert figure["renders"] == 3
        assert 0 < figure["min_s"] <= figure["median_s"] <= figure["max_s"]
    finally:
        pool.close()
    assert not Path(second_tmp).exists()
    deadline = time.monotonic() + 10
    while browser_pids(second_tmp) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert browser_pids(second_tmp) == []


def test_hung_page_times_out_and_the_pool_goes_on(site, hanging_server):
    replay, paragraphs = site
    pool = RenderPool(1, timeout=2)
    try:
        with pytest.raises(RenderTimeout):
            pool.render(hanging_server)
        page = pool.render(replay.url("/news/01-most.html"))
        assert PARAGRAPHS[0] in page.html
    finally:
        pool.close()


def test_render_always_crawl_marks_every_article_selenium(site, tmp_path):
    replay, paragraphs = site
    cfg = write_config(tmp_path, {
        "paths": {"data": str(tmp_path / "data")},
        "crawl": {"download_delay": 0.0, "autothrottle": False, "selenium_pool": 2},
    }, news=[{"name": "always", "start_urls": [replay.url("/sitemap.xml")],
              "allowed_domains": ["127.0.0.1"], "render": "always",
              "article_pattern": "/news/"}])
    proc = run_module("scrapy", "crawl", "news", config=cfg, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["url"]: r for r in iter_records(tmp_path / "data" / "raw" / "news")}
    assert set(records) == {replay.url(f"/news/{slug}.html") for slug in ARTICLES}
    assert {r["via"] for r in records.values()} == {"selenium"}
    js = records[replay.url("/news/03-skrita.html")]
    assert paragraphs["03-skrita"][-1] in js["html"]
    assert js["title"] == ARTICLES["03-skrita"][0] and js["author"] == ARTICLES["03-skrita"][1]


def test_without_a_browser_the_fallback_keeps_the_plain_page(site, tmp_path):
    replay, paragraphs = site
    cfg = write_config(tmp_path, {
        "paths": {"data": str(tmp_path / "data")},
        "crawl": {"download_delay": 0.0, "autothrottle": False,
                  "chromedriver": str(tmp_path / "no-chromedriver")},
    }, news=[{"name": "nobrowser", "start_urls": [replay.url("/rss.xml")],
              "allowed_domains": ["127.0.0.1"], "render": "fallback",
              "article_pattern": "/news/"}])
    proc = run_module("scrapy", "crawl", "news", config=cfg, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "render failed, keeping the plain page" in proc.stderr
    records = {r["url"]: r for r in iter_records(tmp_path / "data" / "raw" / "news")}
    assert set(records) == {replay.url(f"/news/{slug}.html") for slug in ARTICLES}
    assert {r["via"] for r in records.values()} == {"http"}
    assert paragraphs["03-skrita"][-1] not in records[replay.url("/news/03-skrita.html")]["html"]
