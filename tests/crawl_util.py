"""Helpers for the crawl tests: a config for a replay API, running ``scrapy crawl``, reading shards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from crawler.pipelines import iter_records
from tests.util import ROOT, write_config


def crawl_config(tmp: Path, api: str, titles: Path | None = None, **crawl) -> Path:
    """A pipelines.toml with data under ``tmp`` and the bgwiki spider pointed at ``api``."""
    bgwiki = {"api": api}
    if titles is not None:
        bgwiki["titles"] = titles
    return write_config(tmp, {
        "paths": {"data": tmp / "data", "artifacts": tmp / "artifacts"},
        "crawl": {"download_delay": 0.0, "autothrottle": False, "concurrency_per_domain": 4, **crawl},
        "crawl.bgwiki": bgwiki,
    })


def scrapy_env(config: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    return {**env, "BG_CONFIG": str(config), "PYTHONUNBUFFERED": "1", **extra}


def scrapy_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "scrapy", "crawl", *args]


def scrapy_crawl(config: Path, *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess:
    """``scrapy crawl ARGS`` from the repo root, as a user runs it."""
    return subprocess.run(scrapy_cmd(*args), cwd=ROOT, env=scrapy_env(config, **env),
                          capture_output=True, text=True, timeout=timeout)


def records(data: Path, spider: str = "bgwiki") -> list[dict]:
    return list(iter_records(data / "raw" / spider))
