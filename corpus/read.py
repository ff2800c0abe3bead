"""Step 1: stream raw shards (``data/raw/<spider>/part-NNNNN.jsonl.gz``) record by record.

A truncated or corrupt gzip file, a line that is not JSON or a record without HTML or URL is
counted with its file and line, and reading goes on; nothing holds more than one line in memory.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

from corpus.stats import Stats

STEP = "read"


def raw_shards(raw_dir: Path) -> list[Path]:
    """Every raw shard under ``raw_dir``, sorted (the run's stable order); temp files skipped."""
    if not raw_dir.is_dir():
        return []
    return sorted(p for p in raw_dir.glob("*/*.jsonl.gz")
                  if p.is_file() and not p.name.startswith(".") and not p.parent.name.startswith("."))


def read_shard(path: Path, stats: Stats, name: str | None = None) -> Iterator[dict]:
    """Yield the good records of one shard in order, counting records and bad input in ``stats``.

    ``name`` is how problems name the file (default: the path as given).
    """
    name = name or str(path)
    line_no = 0
    try:
        with gzip.open(path, "rb") as fh:
            for line_no, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                record = _parse(line, stats, f"{name}:{line_no}")
                if record is not None:
                    yield record
    except (EOFError, OSError, zlib.error) as exc:
        stats.problem(STEP, "skipped: corrupt file (rest of it)", f"{name}:{line_no + 1}",
                      f"{type(exc).__name__}: {exc}; the rest of the file was skipped")


def _parse(line: bytes, stats: Stats, where: str) -> dict | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        stats.problem(STEP, "skipped: bad JSON line", where, str(exc))
        return None
    if not isinstance(record, dict) or not isinstance(record.get("html"), str):
        stats.problem(STEP, "skipped: record without html", where, "no 'html' string field")
        return None
    if not (record.get("canonical_url") or record.get("url")):  # every document keeps its URL
        stats.problem(STEP, "skipped: record without url", where, "no 'url' or 'canonical_url'")
        return None
    stats.count(STEP, "in (HTML characters)", len(record["html"]))
    return record


def write_shard(path: Path, records: list[dict]) -> None:
    """Write records as a raw shard (the inverse of ``read_shard``; for tests, benches, demos)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
