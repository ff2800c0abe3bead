"""Per-raw-shard results kept between runs, so a run redoes only the shards that changed.

``data/cache/corpus/<hash of the shard name>.jsonl.gz`` holds one raw shard's extracted,
normalised and filtered documents with their dedup keys, and its step counts. Its header names
what made it: the raw shard (name, size, mtime, gzip trailer), the settings that shape
per-shard output (every ``[corpus]`` key except those used only after it, ``AFTER_SHARD``), the
code (a hash of the source of ``CODE`` and the versions of ``LIBRARIES``) and, per source met in
the shard, that site's selector and licence, so a site's change redoes only the shards holding
its pages. An entry is written atomically; one that does not match, or cannot be read whole, is
never trusted.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import sys
import unicodedata
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from common.atomic import atomic_write
from common.config import Section

FORMAT = 1
# [corpus] keys that act after the per-shard steps: changing them reuses every entry.
AFTER_SHARD = {"workers", "shard_bytes", "dedup_threshold", "valid_ratio", "test_ratio",
               "split_seed", "order_seed"}
# Modules and libraries that shape per-shard output: any change to them redoes every shard.
CODE = ("common.formats", "corpus.cache", "corpus.dedup", "corpus.document", "corpus.extract",
        "corpus.filters", "corpus.news_extract", "corpus.normalize", "corpus.read", "corpus.revisions",
        "corpus.shard", "corpus.split", "corpus.stats", "corpus.steps", "corpus.wiki_extract")
# (lxml-html-clean: readability-lxml's cleaner; soupsieve: BeautifulSoup's CSS selectors;
# charset-normalizer, courlan, htmldate, justext: trafilatura's own)
LIBRARIES = ("beautifulsoup4", "charset-normalizer", "courlan", "datasketch", "ftfy", "htmldate",
             "justext", "lingua-language-detector", "lxml", "lxml-html-clean", "numpy",
             "readability-lxml", "regex", "soupsieve", "trafilatura")


class CacheError(Exception):
    """An entry that cannot be used (unreadable, truncated, another format)."""


@functools.cache
def code_version() -> str:
    """Hash of the per-shard code, the libraries' versions and Python's (its ``unicodedata``
    drives NFC)."""
    digest = hashlib.sha256(f"{sys.version}\0{unicodedata.unidata_version}\0".encode())
    for name in CODE:
        digest.update(name.encode() + b"\0" + Path(importlib.util.find_spec(name).origin).read_bytes())
    for dist in LIBRARIES:  # the METADATA file whole: its Version line is what matters
        digest.update(f"{dist}\0{importlib.metadata.distribution(dist).read_text('METADATA')}".encode())
    return digest.hexdigest()


def settings_hash(corpus: Section) -> str:
    """Hash of the ``[corpus]`` settings that shape per-shard output."""
    shaping = {k: v for k, v in sorted(corpus.items()) if k not in AFTER_SHARD}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def site_hash(selector: str, licence: str | None) -> str:
    """Hash of one source's settings (its news selector and licence)."""
    return hashlib.sha256(json.dumps([selector, licence]).encode()).hexdigest()[:16]


def entry_path(cache_dir: Path, shard_name: str) -> Path:
    return cache_dir / (hashlib.sha256(shard_name.encode()).hexdigest()[:24] + ".jsonl.gz")


def identity(path: Path, shard_name: str, settings: str) -> dict:
    """What an entry for this raw shard must have been made from (site settings apart).

    The raw shard is known by its size, mtime and last 8 bytes (gzip's CRC-32 and length of the
    uncompressed data), so a rewrite that keeps the size and mtime is still seen, unread.
    """
    st = path.stat()
    with open(path, "rb") as fh:
        fh.seek(max(st.st_size - 8, 0))
        trailer = fh.read(8).hex()
    return {"format": FORMAT, "shard": shard_name, "raw": [st.st_size, st.st_mtime_ns, trailer],
            "settings": settings, "code": code_version()}


def read_header(path: Path) -> dict:
    """The header line of an entry; CacheError when there is none or it is not one."""
    try:
        with gzip.open(path, "rb") as fh:
            header = json.loads(fh.readline())
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"unreadable ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CacheError("another cache format")
    return header


def why_stale(header: dict, expected: dict, site: Callable[[str], str]) -> str | None:
    """Why an entry with ``header`` cannot stand for ``expected``; None when it can."""
    for field, why in (("shard", "another shard"), ("raw", "raw shard changed"),
                       ("code", "code changed"), ("settings", "settings changed")):
        if header.get(field) != expected[field]:
            return why
    used = header.get("sites")
    if not isinstance(used, dict) or any(site(s) != h for s, h in used.items()):
        return "site settings changed"
    return None


def write_entry(path: Path, header: dict, docs: list[dict]) -> None:
    """Write an entry atomically: header (with ``documents``) then one line per document."""
    header = {**header, "documents": len(docs)}
    with atomic_write(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=1,
                                                       mtime=0) as gz:
        gz.write(_line(header))
        for doc in docs:
            gz.write(_line({**doc, "exact": doc["exact"].hex(),
                            "signature": base64.b64encode(doc["signature"]).decode()}))


def read_docs(path: Path) -> Iterator[dict]:
    """The documents of a whole, valid entry, in shard order; CacheError otherwise.

    Every line is checked as it is read and the count at the end, so a caller that must not act
    on a partial entry reads it into a list first.
    """
    n = 0
    try:
        with gzip.open(path, "rb") as fh:
            header = json.loads(fh.readline())
            for line in fh:
                doc = json.loads(line)
                n += 1
                doc["exact"] = bytes.fromhex(doc["exact"])
                doc["signature"] = base64.b64decode(doc["signature"], validate=True)
                yield doc
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, KeyError,
            TypeError) as exc:
        raise CacheError(f"unreadable at document {n + 1} ({type(exc).__name__})") from None
    if not isinstance(header, dict) or header.get("documents") != n:
        raise CacheError(f"{n} documents where the header says {header.get('documents')}")


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")
