"""``SeleniumRenderMiddleware``: render article pages through headless Chromium when asked to.

A request's ``meta["render"]`` (set by the spider from the site's ``render`` setting) decides:
``always`` renders instead of the plain download; ``fallback`` renders when the plain 200 HTML
response has less article text than ``RENDER_MIN_CHARS`` (trafilatura's main-text extraction, so
menus, "most read" lists, cookie notices and comments do not count) and is not a bot-challenge
page (``crawler.blocking``: rendering one would run its script, posing as a browser); ``never`` or no key: nothing.
Rendered responses carry the flag ``"selenium"``. WebDriver calls run in a thread pool of
``SELENIUM_POOL`` threads (one per driver), never on the reactor thread. Before each render the
middleware waits out the download slot's delay (AutoThrottle's included) and marks the slot as
just used, so browser fetches and plain fetches share one per-domain pace. A page that cannot be
rendered keeps its plain response (``fallback``) or is downloaded plainly (``always``).
Browsers are recorded in the spider's job folder (``JOBS_DIR/<spider>``) while they run, and a
new crawl of any spider first ends those a killed crawl left in any job folder
(``crawler.render.reap_orphans``; a live crawl's browsers are left alone).

``FetchOutcomeMiddleware`` (next to the downloader) counts every fetch's outcome in the crawl
stats, ``fetch/ok`` or ``fetch/failed/<kind>/<host:port>`` (robots.txt answers ``fetch/robots``;
a challenge page answered below 400 is ``fetch/failed/challenge/<host:port>``),
for the summary to name the causes.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import trafilatura
from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
    IgnoreRequest,
)
from scrapy.http import HtmlResponse, Request, Response
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet import error as net_error
from twisted.internet import threads
from twisted.internet.defer import DeferredSemaphore
from twisted.internet.task import deferLater
from twisted.python.threadpool import ThreadPool

from common.config import SCHEMA
from crawler.blocking import challenge, headers_of
from crawler.render import RenderError, RenderPool, reap_orphans

_DEFAULTS = SCHEMA["crawl"]


def article_chars(html: str) -> int:
    """Characters of main article text in ``html`` (boilerplate and comments left out)."""
    text = trafilatura.extract(html, include_comments=False, include_tables=False,
                               favor_precision=True, deduplicate=False)
    return len(text or "")


class SeleniumRenderMiddleware:
    """Downloader middleware: the Selenium fallback (see the module docstring)."""

    def __init__(self, crawler: Crawler):
        s = crawler.settings
        self.crawler = crawler
        self.min_chars = s.getint("RENDER_MIN_CHARS", _DEFAULTS["render_min_chars"].default)
        self.size = s.getint("SELENIUM_POOL", _DEFAULTS["selenium_pool"].default)
        self.timeout = s.getfloat("SELENIUM_TIMEOUT", _DEFAULTS["selenium_timeout"].default)
        self.settle = s.getfloat("RENDER_SETTLE_SECONDS", _DEFAULTS["render_settle_seconds"].default)
        self.chromium = s.get("SELENIUM_CHROMIUM", _DEFAULTS["chromium"].default)
        self.chromedriver = s.get("SELENIUM_CHROMEDRIVER", _DEFAULTS["chromedriver"].default)
        self.user_agent = s.get("USER_AGENT", "")
        jobs = s.get("JOBS_DIR")
        self.registry = Path(jobs) / crawler.spidercls.name if jobs else None
        for folder in sorted(Path(jobs).glob("*/")) if jobs else ():  # every spider's job folder
            reap_orphans(folder)
        self.pool: RenderPool | None = None
        self.threads: ThreadPool | None = None
        self._free = DeferredSemaphore(self.size)
        self._next_at: dict[str, float] = {}  # slot key -> monotonic time the next render may start
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SeleniumRenderMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request, spider: Spider | None = None
                              ) -> Response | None:
        if request.meta.get("render") != "always" or request.meta.get("render_failed"):
            return None
        return await self._render(request)

    async def process_response(self, request: Request, response: Response,
                               spider: Spider | None = None) -> Response:
        if (request.meta.get("render") != "fallback" or "selenium" in response.flags
                or response.status != 200 or not isinstance(response, HtmlResponse)):
            return response
        if challenge(response.body, headers_of(response)):  # rendering would run its script
            return response
        chars = await maybe_deferred_to_future(threads.deferToThread(article_chars, response.text))
        if chars >= self.min_chars:
            return response
        self.crawler.stats.inc_value("selenium/fallback_short_text")
        return await self._render(request) or response

    async def _render(self, request: Request) -> Response | None:
        stats = self.crawler.stats
        # at most one render per driver: acquire() in a worker thread then never waits
        await maybe_deferred_to_future(self._free.acquire())
        try:
            pool = self._pool()
            # a started browser first, then the per-domain wait: the wait ends at the fetch
            lease = await self._in_thread(pool.acquire)
            try:
                await self._wait_for_slot(request)
                page = await self._in_thread(pool.render, request.url, lease)
            finally:
                pool.release(lease)
                stats.set_value("selenium/driver_restarts", pool.restarts)
        except RenderError as exc:
            stats.inc_value("selenium/failed")
            self.crawler.spider.logger.warning("render failed, keeping the plain page: %s", exc)
            request.meta["render_failed"] = True
            return None
        finally:
            self._free.release()
        stats.inc_value("selenium/rendered")
        stats.inc_value("selenium/seconds", page.seconds)
        stats.inc_value("selenium/late_content_wait_seconds", page.waited)
        request.meta["render_s"] = round(page.seconds, 3)
        return HtmlResponse(page.url, status=200, body=page.html.encode("utf-8"), encoding="utf-8",
                            request=request, flags=["selenium"])

    async def _in_thread(self, func, *args):
        """Run a blocking WebDriver call in the Selenium worker threads."""
        from twisted.internet import reactor

        return await maybe_deferred_to_future(
            threads.deferToThreadPool(reactor, self._threads(), func, *args))

    async def _wait_for_slot(self, request: Request) -> None:
        """Keep the per-domain delay between this render and every other fetch of the domain."""
        downloader = self.crawler.engine.downloader
        key = downloader.get_slot_key(request)
        slot = downloader.slots.get(key)
        delay = slot.download_delay() if slot else self.crawler.settings.getfloat("DOWNLOAD_DELAY")
        now = time.monotonic()
        start = max(now, self._next_at.get(key, 0.0), (slot.lastseen + delay) if slot else 0.0)
        self._next_at[key] = start + delay
        if start > now:
            from twisted.internet import reactor

            await maybe_deferred_to_future(deferLater(reactor, start - now))
        if slot is not None:
            slot.lastseen = max(slot.lastseen, time.monotonic())

    def _threads(self) -> ThreadPool:
        if self.threads is None:
            self.threads = ThreadPool(minthreads=0, maxthreads=self.size, name="selenium")
            self.threads.start()
        return self.threads

    def _pool(self) -> RenderPool:
        if self.pool is None:
            self.pool = RenderPool(self.size, chromium=self.chromium,
                                   chromedriver=self.chromedriver, timeout=self.timeout,
                                   user_agent=self.user_agent, min_chars=self.min_chars,
                                   settle=self.settle, registry=self.registry)
        return self.pool

    async def spider_closed(self, spider: Spider) -> None:
        """Quit every browser (in a thread), then stop the worker threads."""
        try:
            if self.pool is not None:
                await maybe_deferred_to_future(threads.deferToThread(self.pool.close))
        finally:
            if self.threads is not None:
                self.threads.stop()


# What a fetch that raised ran into: (exception types, kind in the stats key).
_FAILURE_KINDS = (
    ((CannotResolveHostError, net_error.DNSLookupError), "dns"),
    ((DownloadConnectionRefusedError, net_error.ConnectionRefusedError), "refused"),
    ((DownloadTimeoutError, net_error.TimeoutError, net_error.TCPTimedOutError), "timeout"),
)


def failure_kind(exc: BaseException) -> str:
    """``dns``, ``refused``, ``timeout`` or the exception's class name."""
    for types, kind in _FAILURE_KINDS:
        if isinstance(exc, types):
            return kind
    return type(exc).__name__


class FetchOutcomeMiddleware:
    """Downloader middleware: ``fetch/ok`` for an answer below 400 that is not a challenge page,
    else ``fetch/failed/<http-NNN, challenge or failure_kind>/<host:port>``; every attempt counts (retries too),
    a request a middleware ignored (IgnoreRequest) none. The answer to Scrapy's own robots.txt
    request (``ROBOTSTXT_OBEY``), whatever its status, is ``fetch/robots`` only: a site that
    serves robots.txt but refuses every page got nothing fetched (one that cannot be reached at
    all still counts as failed). A spider's robots.txt (a start URL) answered 404 is a site
    without one: ``fetch/ok``."""

    def __init__(self, crawler: Crawler):
        self.stats = crawler.stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FetchOutcomeMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response,
                         spider: Spider | None = None) -> Response:
        url = urlsplit(request.url)
        if url.path == "/robots.txt" and request.callback is NO_CALLBACK:  # RobotsTxtMiddleware's
            self.stats.inc_value("fetch/robots")
        elif response.status < 400 and challenge(response.body, headers_of(response)):
            self.stats.inc_value(f"fetch/failed/challenge/{url.netloc}")
        elif response.status < 400 or (response.status == 404 and url.path == "/robots.txt"):
            self.stats.inc_value("fetch/ok")
        else:
            self.stats.inc_value(f"fetch/failed/http-{response.status}/{url.netloc}")
        return response

    def process_exception(self, request: Request, exception: Exception,
                          spider: Spider | None = None) -> None:
        if isinstance(exception, IgnoreRequest):  # not fetched (stored, robots.txt): counted there
            return
        self.stats.inc_value(f"fetch/failed/{failure_kind(exception)}/{urlsplit(request.url).netloc}")
