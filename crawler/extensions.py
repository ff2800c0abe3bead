"""Extensions: the end-of-crawl summary, and the idle wait of scrapy-redis workers.

Counters the summary reads (spiders and components increment them in the crawl stats):
``pages/ok`` (stored by the pipeline), ``pages/missing`` (the site says the page does not exist),
``pages/failed`` (gave up on it), ``pages/selenium`` (stored pages rendered by Chromium),
``pages/already_stored`` (skipped: in the shards from an earlier run), ``raw/bytes``.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured

from common.atomic import atomic_write

logger = logging.getLogger(__name__)

ROWS = [("pages ok", "pages/ok"), ("pages missing", "pages/missing"), ("pages failed", "pages/failed"),
        ("via selenium", "pages/selenium"), ("already stored", "pages/already_stored"),
        ("bytes (raw JSON)", "raw/bytes")]


class CrawlSummary:
    """Prints (stdout) and logs a summary table when the spider closes; ``SUMMARY_JSON`` also saves it."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.path = crawler.settings.get("SUMMARY_JSON")
        self.started = time.monotonic()
        self.cpu_started = time.process_time()
        crawler.signals.connect(self.opened, signal=signals.spider_opened)
        crawler.signals.connect(self.closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler) -> CrawlSummary:
        return cls(crawler)

    def opened(self) -> None:
        self.started = time.monotonic()
        self.cpu_started = time.process_time()

    def closed(self, spider, reason: str) -> None:
        stats = self.crawler.stats
        elapsed = time.monotonic() - self.started
        summary = {key: stats.get_value(key, 0) for _, key in ROWS}
        summary.update(spider=spider.name, reason=reason, elapsed_s=round(elapsed, 3),
                       cpu_s=round(time.process_time() - self.cpu_started, 3),
                       pages_per_s=round(summary["pages/ok"] / elapsed, 3) if elapsed > 0 else 0.0)
        lines = [f"crawl summary: {spider.name} ({reason})"]
        lines += [f"  {label:<18}{summary[key]:>14,}" for label, key in ROWS]
        lines += [f"  {'elapsed (s)':<18}{elapsed:>14.1f}", f"  {'cpu (s)':<18}{summary['cpu_s']:>14.1f}",
                  f"  {'pages/s':<18}{summary['pages_per_s']:>14.2f}"]
        table = "\n".join(lines)
        print(table, file=sys.stdout, flush=True)
        logger.info("%s", table)
        if self.path:
            with atomic_write(self.path) as fh:
                json.dump(summary, fh, indent=1)


class RedisIdleWait:
    """With scrapy-redis: keep an idle worker open ``REDIS_IDLE_SECONDS`` after its last response.

    Another worker may still push requests to the shared queue; closing at the first empty pop
    would leave all the remaining work to one process.
    """

    def __init__(self, crawler):
        if not crawler.settings.get("REDIS_URL"):
            raise NotConfigured
        self.wait = crawler.settings.getfloat("REDIS_IDLE_SECONDS", 5.0)
        self.last = time.monotonic()
        crawler.signals.connect(self.active, signal=signals.response_received)
        crawler.signals.connect(self.active, signal=signals.spider_opened)
        crawler.signals.connect(self.idle, signal=signals.spider_idle)

    @classmethod
    def from_crawler(cls, crawler) -> RedisIdleWait:
        return cls(crawler)

    def active(self) -> None:
        self.last = time.monotonic()

    def idle(self) -> None:
        if time.monotonic() - self.last < self.wait:
            raise DontCloseSpider
