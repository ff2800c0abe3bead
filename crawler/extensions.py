"""Extensions: the end-of-crawl summary, and the idle wait of scrapy-redis workers.

Counters the summary reads (spiders and components increment them in the crawl stats):
``pages/ok`` (stored by the pipeline), ``pages/missing`` (the site says the page does not exist),
``pages/failed`` (gave up on it), ``pages/selenium`` (stored pages rendered by Chromium),
``pages/already_stored`` (skipped: in the shards from an earlier run), ``raw/bytes``; and
``fetch/ok`` / ``fetch/failed/<kind>/<host:port>`` (``crawler.middlewares.FetchOutcomeMiddleware``;
the answers to ROBOTSTXT_OBEY's robots.txt requests are ``fetch/robots``, no fetched page);
and, shown only when not zero, what the spider's arguments left out (``news/outside_window``,
``news/sitemaps_before_since``, ``<spider>/over_limit``).

A news site whose every listing turned the crawler away (``crawler.blocking``) is listed with
its evidence, e.g. ``dnevnik: blocked (HTTP 402 on /rss/, 3 of 3 listings)``. A crawl that stored
no page and got no answer at all, or whose every site was blocked, ends with one line naming the
cause (the ``crawl/failed`` stat, which ``crawler.commands.crawl`` turns into ``error: ...`` and
exit code 1); a partial failure lists its causes (and the blocked sites) and exits 0.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from urllib.parse import urlsplit

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured

from common.atomic import atomic_write
from crawler.blocking import HINT, blocked_sites, everything_blocked

logger = logging.getLogger(__name__)

ROWS = [("pages ok", "pages/ok"), ("pages missing", "pages/missing"), ("pages failed", "pages/failed"),
        ("via selenium", "pages/selenium"), ("already stored", "pages/already_stored"),
        ("bytes (raw JSON)", "raw/bytes")]
# rows shown (and saved) only when not zero, the stat named "<spider>/<name>": what the spider's
# -a since/until (news) and -a limit left out
SOMETIMES = [("outside window", "outside_window"), ("sitemaps < since", "sitemaps_before_since"),
             ("over the limit", "over_limit")]

FAILED = "fetch/failed/"


def cause_line(kind: str, host: str) -> str:
    """What a failed fetch of ``kind`` (see ``FetchOutcomeMiddleware``) from ``host`` means."""
    if kind == "dns":
        return f"could not resolve {urlsplit(f'//{host}').hostname}: no network?"
    if kind == "refused":
        return f"connection refused by {host}: is the server down or the URL wrong?"
    if kind == "timeout":
        return f"{host} did not answer in time: a slow or blocked network?"
    if kind == "challenge":
        return f"a bot-challenge page from {host} instead of the content: {HINT}"
    if kind == "http-403":
        return f"403 from {host}: set crawl.user_agent to name you and a contact"
    if kind == "http-429":
        return f"429 from {host}: too many requests; raise crawl.download_delay"
    if kind.startswith("http-"):
        return f"HTTP {kind.removeprefix('http-')} from {host}"
    return f"{kind} fetching from {host}"


def failure_causes(stats: dict) -> list[tuple[str, int]]:
    """(cause line, failed fetches) for every cause in the crawl ``stats``, the most frequent first."""
    causes = [(cause_line(*key.removeprefix(FAILED).split("/", 1)), count)
              for key, count in stats.items() if key.startswith(FAILED)]
    return sorted(causes, key=lambda cause: -cause[1])


def nothing_fetched(stats: dict) -> str | None:
    """The one line naming why a crawl that stored nothing and got no answer failed; else None."""
    causes = failure_causes(stats)
    if stats.get("pages/ok", 0) or stats.get("fetch/ok", 0) or not causes:
        return None
    more = f" (and {len(causes) - 1} other cause(s): see the summary)" if len(causes) > 1 else ""
    return f"nothing fetched: {causes[0][0]}{more}"


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
        sometimes = [(label, f"{spider.name}/{name}") for label, name in SOMETIMES]
        rows = ROWS + [(label, key) for label, key in sometimes if stats.get_value(key, 0)]
        summary = {key: stats.get_value(key, 0) for _, key in rows}
        summary.update(spider=spider.name, reason=reason, elapsed_s=round(elapsed, 3),
                       cpu_s=round(time.process_time() - self.cpu_started, 3),
                       pages_per_s=round(summary["pages/ok"] / elapsed, 3) if elapsed > 0 else 0.0)
        lines = [f"crawl summary: {spider.name} ({reason})"]
        lines += [f"  {label:<18}{summary[key]:>14,}" for label, key in rows]
        lines += [f"  {'elapsed (s)':<18}{elapsed:>14.1f}", f"  {'cpu (s)':<18}{summary['cpu_s']:>14.1f}",
                  f"  {'pages/s':<18}{summary['pages_per_s']:>14.2f}"]
        causes = failure_causes(stats.get_stats())
        if causes:
            lines.append("  failed fetches (every attempt counts):")
            lines += [f"  {count:>8,}  {line}" for line, count in causes]
        summary["failures"] = dict(causes)
        blocked = blocked_sites(stats.get_stats())
        if blocked:
            lines.append(f"  blocked sites ({HINT}):")
            lines += [f"    {line}" for line in blocked]
        summary["blocked"] = blocked
        table = "\n".join(lines)
        print(table, file=sys.stdout, flush=True)
        logger.info("%s", table)
        failed = everything_blocked(stats.get_stats()) or nothing_fetched(stats.get_stats())
        if failed:
            stats.set_value("crawl/failed", failed)
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
