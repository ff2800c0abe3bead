"""The Selenium fallback with real headless Chromium and Debian's chromedriver, on 127.0.0.1.

Driver pool: JavaScript-inserted text comes back, a killed browser is replaced, a hung page times
out without wedging the pool, temporary profiles are removed. Middleware: ``render = "always"``
through a real ``scrapy crawl news``; a crawl killed with ``kill -9`` leaves no browser running
once the next one starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from crawler.pipelines import iter_records
from crawler.render import RenderPool, RenderTimeout, _group, selenium_seconds_per_page
from demo.replay.news import NewsReplay
from tests.crawl_util import scrapy_cmd, scrapy_env
from tests.test_crawl_news import ARTICLES, PARAGRAPHS, write_articles
from tests.util import ROOT, run_module, unavailable, write_config


@pytest.fixture(autouse=True)
def _chromedriver() -> None:
    if not os.access("/usr/bin/chromedriver", os.X_OK):
        unavailable("Debian chromium-driver (/usr/bin/chromedriver)", "`make system` installs it")


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


# Articles a script inserts after the load event: by a 150 ms timer, or from a slow JSON API.
LATE = {
    "04-kasen-taymer": ("timeout", "Читалището отвори врати след ремонта"),
    "05-kasen-fetch": ("fetch", "Нова линия на градския транспорт"),
}
LATE_PARAGRAPHS = [
    "Сградата на читалището беше обновена изцяло през последните месеци. Библиотеката получи "
    "нови рафтове, а залата за репетиции вече има по-добра акустика и удобни столове.",
    "Децата от школата по народни танци първи изнесоха концерт на обновената сцена. "
    "Родителите и съседите напълниха залата още половин час преди началото.",
    "Настоятелството благодари на доброволците, които помагаха при пренасянето на книгите "
    "и подреждането на старите снимки от архива в новата витрина във фоайето.",
    "Следващата седмица читалището ще покани местни автори за вечер на четенето, а през "
    "зимата ще започнат безплатни курсове по компютърна грамотност за възрастни.",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site") / "articles"
    paragraphs = write_articles(folder)
    for slug, (mode, title) in LATE.items():
        paragraphs[slug] = [*LATE_PARAGRAPHS, f"Този абзац пристига късно ({mode}) на {slug}."]
        (folder / f"{slug}.txt").write_text(
            f"title: {title}\nauthor: Елена Георгиева\npublished: 2026-10-15\nsection: Общество\n"
            f"js: {mode}\n\n" + "\n\n".join(paragraphs[slug]) + "\n", encoding="utf-8")
    # the article API answers in NewsSite.api_seconds (1 s), longer than the settle time: only
    # waiting for the request in flight gets its text
    with NewsReplay(folder) as replay:
        yield replay, paragraphs


def news_config(tmp_path: Path, start: str, render: str, **crawl) -> Path:
    """A config crawling the replay's articles from ``start`` with ``render`` mode."""
    return write_config(tmp_path, {
        "paths": {"data": str(tmp_path / "data")},
        "crawl": {"download_delay": 0.0, "autothrottle": False, **crawl},
    }, news=[{"name": "demo", "start_urls": [start], "allowed_domains": ["127.0.0.1"],
              "render": render, "article_pattern": "/news/"}])


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


def test_late_content_by_timer_and_by_fetch_is_waited_for(site):
    replay, paragraphs = site
    with urllib.request.urlopen(replay.url("/news/05-kasen-fetch.html")) as plain:
        assert paragraphs["05-kasen-fetch"][-1] not in plain.read().decode()
    pool = RenderPool(1, timeout=20)
    eager = RenderPool(1, timeout=20, min_chars=0)  # "done" as soon as the DOM is parsed
    try:
        for slug in LATE:
            page = pool.render(replay.url(f"/news/{slug}.html"))
            assert paragraphs[slug][-1] in page.html, slug
            assert 0 < page.waited <= page.seconds
        # a page that stays short is returned once loaded, quiet and unchanged for the settle time
        short = pool.render(replay.url("/news/no-such-article.html"))
        assert "404" in short.html and pool.settle <= short.waited < pool.timeout
        # without the wait the fetched article is lost: that is what the wait is for
        assert paragraphs["05-kasen-fetch"][-1] not in eager.render(replay.url("/news/05-kasen-fetch.html")).html
    finally:
        pool.close()
        eager.close()


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
    cfg = news_config(tmp_path, replay.url("/sitemap.xml"), "always", selenium_pool=2)
    proc = run_module("scrapy", "crawl", "news", config=cfg, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = {r["url"]: r for r in iter_records(tmp_path / "data" / "raw" / "news")}
    assert set(records) == {replay.url(f"/news/{slug}.html") for slug in [*ARTICLES, *LATE]}
    assert {r["via"] for r in records.values()} == {"selenium"}
    assert all(r["render_s"] > 0 for r in records.values())
    for slug in LATE:  # inserted after the load event, by a timer and by fetch()
        assert paragraphs[slug][-1] in records[replay.url(f"/news/{slug}.html")]["html"]
    js = records[replay.url("/news/03-skrita.html")]
    assert paragraphs["03-skrita"][-1] in js["html"]
    assert js["title"] == ARTICLES["03-skrita"][0] and js["author"] == ARTICLES["03-skrita"][1]


def test_without_a_browser_the_fallback_keeps_the_plain_page(site, tmp_path):
    replay, paragraphs = site
    cfg = news_config(tmp_path, replay.url("/rss.xml"), "fallback",
                      chromedriver=str(tmp_path / "no-chromedriver"))
    proc = run_module("scrapy", "crawl", "news", config=cfg, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "render failed, keeping the plain page" in proc.stderr
    records = {r["url"]: r for r in iter_records(tmp_path / "data" / "raw" / "news")}
    assert set(records) == {replay.url(f"/news/{slug}.html") for slug in [*ARTICLES, *LATE]}
    assert {r["via"] for r in records.values()} == {"http"}
    assert paragraphs["03-skrita"][-1] not in records[replay.url("/news/03-skrita.html")]["html"]


def test_kill_9_leaves_no_browser_once_the_next_crawl_starts(site, tmp_path):
    replay, paragraphs = site
    cfg = news_config(tmp_path, replay.url("/sitemap.xml"), "always", selenium_pool=1)
    jobs = tmp_path / "data" / "jobs" / "news"
    proc = subprocess.Popen(scrapy_cmd("news"), cwd=ROOT, env=scrapy_env(cfg),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(jobs.glob("browser-*.json")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGSTOP)  # frozen while its browser runs, then killed: no handler runs
    (record_path,) = jobs.glob("browser-*.json")
    record = json.loads(record_path.read_text())
    proc.kill()
    proc.communicate()
    orphans = browser_pids(record["tmp"])
    assert orphans, "the killed crawl left no browser: nothing to test"
    assert record["pgid"] in [os.getpgid(pid) for pid in orphans]

    again = subprocess.run(scrapy_cmd("news"), cwd=ROOT, env=scrapy_env(cfg), capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "browser process(es) a stopped crawl left running" in again.stderr
    assert [pid for pid in orphans if Path(f"/proc/{pid}").exists()
            and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"] == []
    assert _group(record["pgid"]) == []  # chromedriver too (it names the folder only in TMPDIR)
    assert not Path(record["tmp"]).exists() and not record_path.exists()
    assert {r["url"] for r in iter_records(tmp_path / "data" / "raw" / "news")} == {
        replay.url(f"/news/{slug}.html") for slug in [*ARTICLES, *LATE]}
    assert not list(jobs.glob("browser-*.json"))  # the clean run's own browser was unrecorded
