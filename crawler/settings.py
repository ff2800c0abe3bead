"""Scrapy settings, derived from the [crawl] section of pipelines.toml (env BG_CONFIG picks the file).

Behaviour is switched here, never by flags inside spiders.
"""

from __future__ import annotations

import os

from common import config

CFG = config.load()
CRAWL = CFG.crawl

BOT_NAME = "crawler"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

# Scrapy 2.19 otherwise starts a code-executing remote-control server on 127.0.0.1.
REMOTE_CONTROL_ENABLED = False
TELNETCONSOLE_ENABLED = False

USER_AGENT = CRAWL.user_agent
ROBOTSTXT_OBEY = CRAWL.obey_robots
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = CRAWL.concurrency_per_domain
DOWNLOAD_DELAY = CRAWL.download_delay
DOWNLOAD_MAXSIZE = CRAWL.max_page_bytes
AUTOTHROTTLE_ENABLED = CRAWL.autothrottle
AUTOTHROTTLE_START_DELAY = max(CRAWL.download_delay, 0.1)
RETRY_ENABLED = True
RETRY_TIMES = CRAWL.retry_times
RETRY_HTTP_CODES = [429, 500, 502, 503, 504, 522, 524, 408]
COMPRESSION_ENABLED = True  # gzip, as API:Etiquette asks
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = os.environ.get("SCRAPY_LOG_LEVEL", "INFO")

REDIS_URL = os.environ.get("REDIS_URL") or CRAWL.redis_url
