"""``RawShardPipeline``: raw page records into ``data/raw/<spider>/part-NNNNN.jsonl.gz`` shards.

How a shard is written so that ``kill -9`` loses no item and duplicates none:

* An open shard is ``.part-NNNNN.jsonl.gz.partial`` (hidden: readers glob ``part-*.jsonl.gz``),
  held with an exclusive ``flock``. Every record is appended and the gzip stream sync-flushed,
  so everything written survives the process being killed. The writer is ISA-L's (``isal.igzip``,
  level ``GZIP_LEVEL``): a standard gzip stream, several times faster than zlib's level 6 at a
  somewhat larger size.
* The dump import (``RawStore(threaded=True)``) hands compression to a thread instead
  (``isal.igzip_threaded``): records go in blocks of ``THREADED_BLOCK`` bytes (an eighth of a
  smaller shard), each compressed and sync-flushed by the thread, so a kill loses the last few
  blocks (the import stores them again on its next run) and the partial is salvaged as above.
* At ``RAW_SHARD_BYTES`` (uncompressed) or at the end the gzip trailer is written, the file is
  fsynced and renamed to ``part-NNNNN.jsonl.gz``: a shard under its final name is complete.
* On start, a partial nobody holds (its writer died) is salvaged: its complete records become the
  finished shard of the same number, a truncated last line is dropped.
* The canonical URLs and URLs in finished shards are the done-set: items already there are
  dropped (and ``crawler.resume.SkipDoneMiddleware`` does not fetch them again). A wiki page's
  revision is a done-key too (``<canonical URL>\t<revid>``), so a newer revision of a stored
  page can be told from the same one (``RawStore.revision``; the dump import stores it).
* Beside each finished shard, ``part-NNNNN.keys`` holds its done-keys (a header naming the shard
  and its size, then one key a line), written atomically before the shard gets its final name. A
  crawl start reads only these; a shard without one (written by an older version) or whose size
  no longer matches is read once and its keys file written.

Shard numbers are claimed under a folder lock, so several processes may share one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import json
import logging
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
from isal import igzip, igzip_threaded
from scrapy.exceptions import DropItem
from tqdm import tqdm

from common.atomic import atomic_write
from crawler.items import RawPage

logger = logging.getLogger(__name__)

SHARD_RE = re.compile(r"^\.?part-(\d{5,})\.jsonl\.gz(\.partial)?$")
FIELDS = list(RawPage.fields)
GZIP_LEVEL = 3  # ISA-L's levels are 0-3; 3 compresses best, still about 4x zlib level 6's speed
THREADED_BLOCK = 1 << 20  # bytes of records the threaded writer compresses (and sync-flushes) at a time


def shard_path(folder: Path, number: int) -> Path:
    return folder / f"part-{number:05d}.jsonl.gz"


def partial_path(folder: Path, number: int) -> Path:
    return folder / f".part-{number:05d}.jsonl.gz.partial"


def finished_shards(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("part-*.jsonl.gz") if SHARD_RE.match(p.name))


def iter_records(folder: str | os.PathLike) -> Iterator[dict]:
    """Every record of the finished shards of ``folder``, shard by shard."""
    for path in finished_shards(Path(folder)):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)


def record_keys(record: dict) -> set[str]:
    """The keys that identify a page as done: its canonical URL, the URL fetched and, for a page
    with a revision id, ``<canonical URL>\t<revid>`` (URLs hold no tab)."""
    keys = {k for k in (record.get("canonical_url"), record.get("url")) if k}
    if isinstance(record.get("revid"), int) and record.get("canonical_url"):
        keys.add(f"{record['canonical_url']}\t{record['revid']}")
    return keys


KEYS_HEADER = "# bg-gpt2 done-keys v2"  # v2: with revision keys (v1 files are rebuilt once)


def keys_path(shard: Path) -> Path:
    """``part-NNNNN.keys`` beside ``part-NNNNN.jsonl.gz``."""
    return shard.with_name(shard.name.removesuffix(".jsonl.gz") + ".keys")


def write_keys(shard: Path, keys: Iterable[str], shard_size: int) -> None:
    """Write the keys file of ``shard`` (``shard_size``: its size in bytes once finished)."""
    with atomic_write(keys_path(shard), newline="") as fh:
        fh.write(f"{KEYS_HEADER} {shard.name} {shard_size}\n")
        fh.writelines(f"{key}\n" for key in sorted(keys) if "\n" not in key)  # URLs have none


def read_keys(shard: Path) -> set[str] | None:
    """The keys in ``shard``'s keys file; None when it is missing or not for this shard as it is."""
    try:
        with open(keys_path(shard), encoding="utf-8", newline="") as fh:
            header = fh.readline()
            if header != f"{KEYS_HEADER} {shard.name} {shard.stat().st_size}\n":
                return None
            keys = set(fh.read().split("\n"))
    except FileNotFoundError:
        return None
    keys.discard("")
    return keys


def shard_keys(shard: Path) -> set[str]:
    """The keys of every record in ``shard``, read from the records (a damaged shard: the
    records before the damage)."""
    keys: set[str] = set()
    try:
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            for line in fh:
                keys |= record_keys(json.loads(line))
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        logger.warning("%s is damaged (%s): keys taken from its readable records only", shard, exc)
        keys = set()
        for line in salvage(shard.read_bytes()):
            keys |= record_keys(json.loads(line))
    return keys


_done_cache: dict[Path, tuple[tuple, set[str], dict[str, int]]] = {}


def done_keys(folder: str | os.PathLike) -> set[str]:
    """Keys of every page in the finished shards of ``folder`` (revision keys apart: see
    ``stored_revisions``), from their keys files (a missing or stale one is rebuilt from its shard,
    once); cached while the shard listing is unchanged."""
    return set(_index(Path(folder))[1])


def stored_revisions(folder: str | os.PathLike) -> dict[str, int]:
    """Canonical URL -> highest revision id stored in ``folder``'s finished shards (the cached
    mapping itself: read it, do not change it)."""
    return _index(Path(folder))[2]


def _index(folder: Path) -> tuple[tuple, set[str], dict[str, int]]:
    shards = finished_shards(folder) if folder.is_dir() else []
    signature = tuple((p.name, p.stat().st_size) for p in shards)
    cached = _done_cache.get(folder)
    if cached is None or cached[0] != signature:
        keys: set[str] = set()
        newest: dict[str, int] = {}
        missing = []
        for shard in shards:
            stored = read_keys(shard)
            if stored is None:
                missing.append(shard)
            else:
                _split(stored, keys, newest)
        if missing:
            logger.info("writing keys files for %d shard(s) in %s (once: later starts read only those)",
                        len(missing), folder)
        for shard in tqdm(missing, desc="keys files", unit="shard", disable=None):
            size = shard.stat().st_size
            rebuilt = shard_keys(shard)
            write_keys(shard, rebuilt, size)
            _split(rebuilt, keys, newest)
        cached = _done_cache[folder] = (signature, keys, newest)
    return cached


def _split(done: Iterable[str], keys: set[str], newest: dict[str, int]) -> None:
    """Add done-keys (one shard's): page keys to ``keys``, revision keys to ``newest`` (the highest)."""
    for key in done:
        url, tab, revid = key.partition("\t")
        if not tab:
            keys.add(key)
        elif revid.isdigit() and int(revid) > newest.get(url, -1):
            newest[url] = int(revid)


def salvage(data: bytes) -> list[bytes]:
    """The complete JSON lines of a (possibly truncated) sync-flushed gzip stream."""
    inflater = zlib.decompressobj(wbits=31)
    text = b""
    for start in range(0, len(data), 1 << 16):
        chunk = data[start:start + (1 << 16)]
        saved = inflater.copy()
        try:
            text += inflater.decompress(chunk)
        except zlib.error:  # damaged bytes: keep what decodes before them, byte by byte
            for byte in range(len(chunk)):
                try:
                    text += saved.decompress(chunk[byte:byte + 1])
                except zlib.error:
                    break
            break
    lines = []
    for line in text.split(b"\n")[:-1]:  # the last piece has no newline: cut short or empty
        try:
            json.loads(line)
        except ValueError:
            continue
        lines.append(line + b"\n")
    return lines


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    with open(folder / ".shards.lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def recover(folder: Path) -> tuple[int, int]:
    """Finish every partial shard whose writer is gone: (shards recovered, records salvaged)."""
    shards = records = 0
    with folder_lock(folder):
        for partial in sorted(folder.glob(".part-*.jsonl.gz.partial")):
            number = int(SHARD_RE.match(partial.name).group(1))
            with open(partial, "rb") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live writer in another process
                final = shard_path(folder, number)
                if not final.exists():  # else: killed between rename and unlink; final is whole
                    lines = salvage(fh.read())
                    if lines:
                        with atomic_write(final, "wb") as out, gzip.GzipFile(
                                fileobj=out, mode="wb", mtime=0) as gz:
                            gz.write(b"".join(lines))
                        keys = set().union(*(record_keys(json.loads(line)) for line in lines))
                        write_keys(final, keys, final.stat().st_size)
                        shards += 1
                        records += len(lines)
                partial.unlink()
    return shards, records


class ShardWriter:
    """Appends encoded records to the current partial shard; rotates it by size. Finishing a
    shard writes its keys file first, then gives the shard its final name. ``threaded``: compress
    in a thread, block by block, instead of sync-flushing every record (see the module docstring)."""

    def __init__(self, folder: Path, shard_bytes: int, threaded: bool = False):
        self.folder = folder
        self.shard_bytes = shard_bytes
        self.threaded = threaded
        self.file = None
        self.gzip: igzip.IGzipFile | igzip_threaded.FlushableBufferedWriter | None = None
        self.number = 0
        self.size = 0
        self.keys: set[str] = set()
        self.finished: list[Path] = []

    def _open(self) -> None:
        with folder_lock(self.folder):
            numbers = [int(m.group(1)) for p in self.folder.iterdir() if (m := SHARD_RE.match(p.name))]
            self.number = max(numbers, default=0) + 1
            fd = os.open(partial_path(self.folder, self.number), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
        self.file = os.fdopen(fd, "wb", buffering=0 if self.threaded else -1)  # the thread's blocks go to the OS
        if self.threaded:
            block = max(1 << 12, min(THREADED_BLOCK, self.shard_bytes // 8))
            self.gzip = igzip_threaded.open(self.file, "wb", compresslevel=GZIP_LEVEL, threads=1, block_size=block)
        else:
            self.gzip = igzip.IGzipFile(fileobj=self.file, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)
        self.size = 0
        self.keys = set()

    def write(self, line: bytes, keys: Iterable[str] | None = None) -> None:
        """Append one encoded record; ``keys``: its done-keys (read from ``line`` when not given)."""
        if self.gzip is None:
            self._open()
        self.keys.update(record_keys(json.loads(line)) if keys is None else keys)
        self.gzip.write(line)
        if not self.threaded:
            self.gzip.flush()  # Z_SYNC_FLUSH + write(): the record survives a kill from here on
        self.size += len(line)
        if self.size >= self.shard_bytes:
            self.close()

    def close(self) -> None:
        """Finish the open shard: gzip trailer, fsync, rename to its final name."""
        if self.gzip is None:
            return
        self.gzip.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        partial = partial_path(self.folder, self.number)
        final = shard_path(self.folder, self.number)
        if self.size:
            write_keys(final, self.keys, os.fstat(self.file.fileno()).st_size)
            os.replace(partial, final)
            self.finished.append(final)
        else:
            partial.unlink()
        self.file.close()  # releases the flock
        self.gzip = self.file = None


def encode(item) -> dict:
    """A RawPage (or dict) as the record dict: every field, ``fetched_at`` filled in."""
    record = {name: item.get(name) for name in FIELDS}
    if not record["fetched_at"]:
        record["fetched_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return record


class RawStore:
    """One source's raw shards open for appending (the spiders' pipeline and the dump import):
    what a stopped writer left is recovered first, then each new record is stored once.
    ``threaded``: compression in a thread (the dump import; see ``ShardWriter``)."""

    def __init__(self, folder: Path, shard_bytes: int, threaded: bool = False):
        folder.mkdir(parents=True, exist_ok=True)
        self.recovered_shards, self.recovered = recover(folder)
        self.done = done_keys(folder)
        self.stored_revisions = stored_revisions(folder)
        self.new_revisions: dict[str, int] = {}  # stored by this store
        self.writer = ShardWriter(folder, shard_bytes, threaded)

    def has(self, keys: set[str]) -> bool:
        """Whether a record with these done-keys is stored already."""
        return not keys.isdisjoint(self.done)

    def revision(self, canonical_url: str) -> int | None:
        """The highest revision id stored for this page (None: none stored with one)."""
        found = (self.new_revisions.get(canonical_url), self.stored_revisions.get(canonical_url))
        return max((revid for revid in found if revid is not None), default=None)

    def store(self, record: dict, keys: set[str]) -> int:
        """Append ``record`` (with its done-keys ``keys``); the bytes of its line."""
        line = orjson.dumps(record) + b"\n"  # UTF-8, compact: the bytes json.dumps(ensure_ascii=False) gave
        self.writer.write(line, keys)
        _split(keys, self.done, self.new_revisions)
        return len(line)

    def close(self) -> int:
        """Finish the open shard; the shards this store wrote."""
        self.writer.close()
        return len(self.writer.finished)


class RawShardPipeline:
    """Item pipeline: each new page once into the spider's raw shards (see the module docstring)."""

    def __init__(self, crawler):
        self.crawler = crawler
        self.root = Path(crawler.settings["RAW_DIR"])
        self.shard_bytes = crawler.settings.getint("RAW_SHARD_BYTES")
        self.store: RawStore | None = None

    @classmethod
    def from_crawler(cls, crawler) -> RawShardPipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        folder = self.root / self.crawler.spider.name
        self.store = RawStore(folder, self.shard_bytes)
        if self.store.recovered_shards:
            logger.warning("recovered %d records into %d shard(s) a stopped crawl left in %s",
                           self.store.recovered, self.store.recovered_shards, folder)

    def process_item(self, item):
        record = encode(item)
        keys = record_keys(record)
        stats = self.crawler.stats
        if self.store.has(keys):
            stats.inc_value("pages/duplicate_dropped")
            raise DropItem(f"already stored: {record['canonical_url'] or record['url']}", log_level="DEBUG")
        stats.inc_value("raw/bytes", self.store.store(record, keys))
        stats.inc_value("pages/ok")
        if record["via"] == "selenium":
            stats.inc_value("pages/selenium")
        return item

    def close_spider(self) -> None:
        if self.store is not None:
            self.crawler.stats.set_value("raw/shards_written", self.store.close())
