"""Scrapy settings, derived from the [crawl] section of pipelines.toml (env BG_CONFIG picks the file).

Behaviour is switched here, never by flags inside spiders. A bad config stops ``scrapy`` before
anything starts with one line (``error: <file>: <key>: ...``) and exit code 2.
"""

from __future__ import annotations

import os
import sys

from common import config
from common.errors import UserError
from crawler.agent import with_library

try:
    CFG = config.load()
except UserError as exc:
    print(f"error: {exc}", file=sys.stderr)
    raise SystemExit(2) from None
CRAWL = CFG.crawl

BOT_NAME = "crawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"
# `scrapy crawl` that reports a UserError (bad spider argument) in one line with exit code 2
COMMANDS_MODULE = "crawler.commands"

# Scrapy 2.19 otherwise starts a code-executing remote-control server on 127.0.0.1.
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False

# checked (placeholder, contact, reserved domains) by crawler.commands.crawl before a crawl starts
USER_AGENT = with_library(CRAWL.user_agent)
ROBOTSTXT_OBEY = CRAWL.obey_robots
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = CRAWL.concurrency_per_domain
# Scrapy 2.19 starts this many asyncio worker tasks for every callback's output (default 100);
# a page callback yields one item, so 100 tasks a page were a third of the crawler's CPU time.
CONCURRENT_ITEMS = 8
DOWNLOAD_DELAY = CRAWL.download_delay
DOWNLOAD_MAXSIZE = CRAWL.max_page_bytes
AUTOTHROTTLE_ENABLED = CRAWL.autothrottle
AUTOTHROTTLE_START_DELAY = max(CRAWL.download_delay, 0.1)
RETRY_ENABLED = True
RETRY_TIMES = CRAWL.retry_times
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
BACKOFF_MAX_SECONDS = CRAWL.backoff_max_seconds
COMPRESSION_ENABLED = True  # gzip, as API:Etiquette asks
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = os.environ.get("SCRAPY_LOG_LEVEL", "INFO")

# Where things go: raw shards per spider, resumable job state per spider (see crawler/resume.py).
RAW_DIR = str(config.data_dir(CFG, "raw"))
JOBS_DIR = str(config.data_dir(CFG, "jobs"))
RAW_SHARD_BYTES = CRAWL.shard_bytes

# the [[crawl.news]] tables, so the news spider reads the config loaded here, not a second time
NEWS_SITES = CRAWL.news
CONFIG_SOURCE = str(CFG.source)

BGWIKI_API = CRAWL.bgwiki.api
BGWIKI_TITLES = str(CRAWL.bgwiki.titles or "")
BGWIKI_BATCH = CRAWL.bgwiki.batch
BGWIKI_MAXLAG = CRAWL.bgwiki.maxlag
BGWIKI_CATEGORY = CRAWL.bgwiki.category
BGWIKI_DEPTH = CRAWL.bgwiki.depth
BGWIKI_LIMIT = CRAWL.bgwiki.limit
BGWIKI_LICENSE = CRAWL.bgwiki.license

RENDER_MIN_CHARS = CRAWL.render_min_chars
RENDER_SETTLE_SECONDS = CRAWL.render_settle_seconds
SELENIUM_POOL = CRAWL.selenium_pool
SELENIUM_TIMEOUT = CRAWL.selenium_timeout
SELENIUM_CHROMIUM = CRAWL.chromium
SELENIUM_CHROMEDRIVER = CRAWL.chromedriver

ADDONS = {"crawler.resume.JobDirAddon": 0}
DOWNLOADER_MIDDLEWARES = {
    # before RobotsTxtMiddleware (100): pages already in finished shards are never fetched again
    "crawler.resume.SkipDoneMiddleware": 50,
    # its process_response runs before RetryMiddleware's (550): wait out Retry-After, then retry
    "crawler.backoff.BackoffMiddleware": 560,
    # below HttpCompressionMiddleware (590), so it judges decompressed pages
    "crawler.middlewares.SeleniumRenderMiddleware": 585,
    # next to the downloader: every fetch's outcome, for the summary to name what failed
    "crawler.middlewares.FetchOutcomeMiddleware": 950,
}
ITEM_PIPELINES = {"crawler.pipelines.RawShardPipeline": 800}
EXTENSIONS = {"crawler.extensions.CrawlSummary": 500, "crawler.extensions.RedisIdleWait": 510}

# Scale-out: with a Redis URL several crawler processes share one frontier through scrapy-redis.
REDIS_URL = os.environ.get("REDIS_URL") or CRAWL.redis_url
if REDIS_URL:
    SCHEDULER = "scrapy_redis.scheduler.Scheduler"
    DUPEFILTER_CLASS = "scrapy_redis.dupefilter.RFPDupeFilter"
    # the default (False) flushes the shared queue when any one worker stops: duplicates, lost work
    SCHEDULER_PERSIST = True
    SCHEDULER_SERIALIZER = "crawler.redis_json"  # requests as JSON, not pickle
    # a worker whose shared queue is empty waits this long for the others' new requests
    REDIS_IDLE_SECONDS = CRAWL.redis_idle_seconds
