"""Resuming a crawl: the same command after Ctrl-C or ``kill -9`` continues where it stopped.

Two layers. Scrapy's ``JOBDIR`` (``data/jobs/<spider>``) keeps the request queue and the seen
fingerprints over a graceful stop (Ctrl-C once, reason ``shutdown``). After a kill that state is
not trustworthy (pops and fingerprints were buffered, not written), so a ``RUNNING`` marker is
written at start and removed at every clean close: a JOBDIR still marked at the next start is
thrown away and the spider starts over. The authority on what is done is always the finished raw
shards (``crawler.pipelines.done_keys``): ``SkipDoneMiddleware`` never fetches those pages again,
and the pipeline never stores a page twice. Listings the news spider reads again on every run
(robots.txt, feeds, sitemaps) bypass the seen fingerprints, and those a stopped run left queued are
dropped (``meta["run"]``). A crawl that finished drops its JOBDIR, so deleting
the raw shards and running again crawls afresh. With Redis (scrapy-redis) there is no JOBDIR:
the shared queue and dupefilter live in Redis.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest

from crawler.pipelines import done_keys

logger = logging.getLogger(__name__)

MARKER = "RUNNING"
JOB_FILES = ("requests.seen", "requests.queue", "spider.state", MARKER)  # what Scrapy keeps in a JOBDIR


def clear(jobdir: Path) -> None:
    """Remove Scrapy's job state from ``jobdir`` (only its own files: JOBDIR may be user-chosen)."""
    for name in JOB_FILES:
        path = jobdir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


class JobDirAddon:
    """Add-on: JOBDIR = ``JOBS_DIR/<spider>`` unless set or Redis is on; drops a killed run's JOBDIR."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.jobdir: Path | None = None
        self.reason = ""

    @classmethod
    def from_crawler(cls, crawler) -> JobDirAddon:
        return cls(crawler)

    def update_settings(self, settings) -> None:
        if settings.get("REDIS_URL"):
            return
        if not settings.get("JOBDIR"):
            settings.set("JOBDIR", str(Path(settings["JOBS_DIR"]) / self.crawler.spidercls.name), "addon")
        self.jobdir = Path(settings["JOBDIR"])
        if (self.jobdir / MARKER).exists():
            logger.warning("%s was left by a crawl that did not stop cleanly: starting over from the "
                           "raw shards (nothing stored is fetched again)", self.jobdir)
            clear(self.jobdir)
        self.crawler.signals.connect(self.opened, signal=signals.spider_opened)
        self.crawler.signals.connect(self.closed, signal=signals.spider_closed)
        self.crawler.signals.connect(self.stopped, signal=signals.engine_stopped)

    def opened(self) -> None:
        self.jobdir.mkdir(parents=True, exist_ok=True)
        (self.jobdir / MARKER).write_text(f"{os.getpid()}\n")

    def closed(self, reason: str) -> None:
        self.reason = reason
        (self.jobdir / MARKER).unlink(missing_ok=True)
        if reason != "finished":
            logger.info("stopped (%s): run the same command again to resume from %s", reason, self.jobdir)

    def stopped(self) -> None:
        # after every spider_closed handler (SpiderState writes into JOBDIR in its own)
        if self.reason == "finished":
            clear(self.jobdir)
            with contextlib.suppress(OSError):
                self.jobdir.rmdir()  # only when nothing else is in it


class SkipDoneMiddleware:
    """Downloader middleware: ignore requests for pages already in the spider's finished shards.

    A request matches by its URL or by ``meta["canonical_url"]`` when the spider knows it. A
    request whose ``meta["run"]`` is not the spider's ``run_id`` was left in the JOBDIR queue by a
    stopped run and is ignored too: the spider marks so what it requests afresh on every run
    (not with Redis, whose shared queue holds every worker's requests).
    """

    def __init__(self, crawler):
        self.crawler = crawler
        self.done: set[str] = set()
        self.own_queue = not crawler.settings.get("REDIS_URL")
        crawler.signals.connect(self.load, signal=signals.spider_opened)

    @classmethod
    def from_crawler(cls, crawler) -> SkipDoneMiddleware:
        return cls(crawler)

    def load(self, spider) -> None:
        # spider_opened comes after the pipelines opened, i.e. after leftover shards were recovered
        self.done = done_keys(Path(self.crawler.settings["RAW_DIR"]) / spider.name)

    def process_request(self, request: Request) -> None:
        run = request.meta.get("run")
        if self.own_queue and run is not None and run != getattr(self.crawler.spider, "run_id", None):
            self.crawler.stats.inc_value("resume/left_by_stopped_run")
            raise IgnoreRequest(f"left by a stopped run, requested again: {request.url}")
        if request.url in self.done or request.meta.get("canonical_url") in self.done:
            self.crawler.stats.inc_value("pages/already_stored")
            raise IgnoreRequest(f"already stored: {request.meta.get('canonical_url') or request.url}")
