"""Polite backoff: wait and retry on 429/503 and on MediaWiki ``maxlag``/``ratelimited`` errors.

API:Etiquette asks a client that gets one of these to pause, honouring ``Retry-After`` (MediaWiki
sends it with maxlag errors too), and try again. While a wait is on, the engine is paused so no
new request starts; the waiting happens on the event loop, never blocking it. After
``RETRY_TIMES`` waits for one request the response is passed on (RetryMiddleware and the
spider's errback see it). Waits grow 2, 4, 8 ... seconds when the server names none, capped by
``BACKOFF_MAX_SECONDS``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time

from scrapy import Request
from scrapy.http import Response

logger = logging.getLogger(__name__)

API_ERRORS = {"maxlag", "ratelimited"}
STATUSES = {429, 503}


def retry_after(value: bytes | None, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), else ``default``."""
    if not value:
        return default
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, email.utils.parsedate_to_datetime(text).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


def api_error_code(response: Response) -> str | None:
    """The MediaWiki ``error.code`` of a JSON API answer, when it is one of the backoff errors."""
    if b'"error"' not in response.body[:200]:
        return None
    try:
        code = json.loads(response.body).get("error", {}).get("code")
    except (ValueError, AttributeError):
        return None
    return code if code in API_ERRORS else None


class BackoffMiddleware:
    """Downloader middleware: pause the crawl for the server's Retry-After, then retry the request."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.max_times = crawler.settings.getint("RETRY_TIMES")
        self.max_wait = crawler.settings.getfloat("BACKOFF_MAX_SECONDS", 120.0)
        self.waiting = 0

    @classmethod
    def from_crawler(cls, crawler) -> BackoffMiddleware:
        return cls(crawler)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        reason = None
        if response.status in STATUSES:
            reason = str(response.status)
        elif request.url.split("?")[0].endswith("api.php"):
            reason = api_error_code(response)
        if reason is None:
            return response
        times = request.meta.get("backoff_times", 0) + 1
        stats = self.crawler.stats
        if times > self.max_times:
            stats.inc_value("backoff/gave_up")
            logger.error("backoff: gave up on %s after %d waits (%s)", request.url, times - 1, reason)
            request.meta["dont_retry"] = True  # RetryMiddleware would only retry it again, unpaused
            return response
        wait = min(retry_after(response.headers.get("Retry-After"), 2.0 ** times), self.max_wait)
        stats.inc_value(f"backoff/{reason}")
        stats.inc_value("backoff/seconds", wait)
        logger.warning("backoff: %s from %s, waiting %.1f s (try %d of %d)", reason, request.url, wait,
                       times, self.max_times)
        await self._pause(wait)
        return request.replace(dont_filter=True, meta={**request.meta, "backoff_times": times})

    async def _pause(self, seconds: float) -> None:
        engine = self.crawler.engine
        self.waiting += 1
        engine.pause()
        try:
            await asyncio.sleep(seconds)
        finally:
            self.waiting -= 1
            if not self.waiting:
                engine.unpause()
