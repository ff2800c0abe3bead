"""Wikimedia's Enterprise dump runs: which file to import, its STATS checksum and room on disk.

A runs listing (``.../enterprise_html/runs/``) holds ``YYYYMMDD/`` folders; each holds
``<wiki>-NS0-<date>-ENTERPRISE-HTML.json.tar.gz`` and ``<wiki>-NS0-<date>-ENTERPRISE-STATS.json``
(``{"wiki": ..., "md5sum": "<hex of the .tar.gz>", "date_modified": ...}``). Here:

* ``fetch_stats``: the run's md5 (``md5sum``; else the one 32-hex value under a key naming md5),
  or None and why (the run has no STATS file, or its STATS file names no md5);
* ``verify``: a finished download against it; a mismatch sets the file aside as ``<name>.bad``
  (neither imported nor resumed from) and is a ``ChecksumError``; the outcome is kept in the
  download's ``<name>.json`` so an unchanged file is not hashed again;
* ``check_room``: free disk space against what is still to download plus what the import still
  writes (``to_import``: ``RAW_PER_DUMP`` of the dump's size, measured, less the shards its import
  already wrote, as ``begin_import`` noted) plus ``crawl.bgwiki.dump_keep_free``;
* ``older_partials``: unfinished downloads of older runs, removed once a newer run is taken;
* ``newest_on_disk``: the newest complete, checked download (used when the listing is unreachable).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from tqdm import tqdm

from common.atomic import atomic_write
from common.errors import UserError
from crawler import download

DUMP_NAME = "bgwiki-NS0-{date}-ENTERPRISE-HTML.json.tar.gz"
NAME_RE = re.compile(r"^(?P<wiki>[a-z0-9_]+)-NS0-(?P<date>\d{8})-ENTERPRISE-HTML\.json\.tar\.gz$")
STATS_NAME = "{wiki}-NS0-{date}-ENTERPRISE-STATS.json"
NO_STATS = "the run has no STATS file"
IMPORT_MARK = ".wikidump-import.json"  # in the raw folder: which dump's import writes which shards
SHARD_FILE = re.compile(r"^\.?part-(\d+)\.")  # a raw shard, open or finished, or its keys file
# raw-shard bytes the import writes per byte of dump (gzip of both), measured on the generated
# dump (README, "All of Wikipedia"); tests/test_wikidump_runs.py checks it is not too low
RAW_PER_DUMP = 1.65  # measured 1.59 (3,000 generated pages: 2,328,900 dump bytes, 3,704,260 written)
CHUNK = 1 << 20


class ChecksumError(UserError):
    """The downloaded dump does not match its run's STATS file."""


def stats_url(dump_url: str) -> str | None:
    """The STATS file beside a dump in its run folder; None for a file not named as Wikimedia does."""
    match = NAME_RE.match(Path(urlsplit(dump_url).path).name)
    return urljoin(dump_url, STATS_NAME.format(**match.groupdict())) if match else None


def fetch_stats(url: str, agent: str, timeout: float = 60) -> tuple[str | None, str]:
    """(md5 hex, "") from the STATS file at ``url``; (None, why) when the run has none (HTTP 404)
    or its STATS file names no md5. An answer that is no JSON object (an HTML page) is a UserError."""
    try:
        data = download.read(url, agent, timeout=timeout)
    except UserError as exc:
        if "HTTP 404" in str(exc):
            return None, NO_STATS
        raise
    try:
        stats = json.loads(data)
    except ValueError:
        stats = None
    if not isinstance(stats, dict):
        raise UserError(f"{url}: not a STATS file (no JSON object)")
    named = [stats["md5sum"]] if "md5sum" in stats else [v for k, v in stats.items() if "md5" in k.lower()]
    if len(named) == 1 and isinstance(named[0], str) and re.fullmatch(r"[0-9a-f]{32}", named[0].lower()):
        return named[0].lower(), ""
    return None, f"the run's STATS file names no md5 (keys: {', '.join(sorted(stats)[:8])})"


def md5_of(path: Path, progress: bool | None = None) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=f"md5 {path.name}", disable=None if progress is None else not progress
                                      ) as bar:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify(path: Path, expected: str | None, progress: bool | None = None, why: str = NO_STATS) -> str:
    """Check a finished download against its run's md5 (``expected``; None: there is none, ``why``);
    one line saying what was checked. A mismatch sets the file aside: ChecksumError."""
    meta = download.read_meta(path) or {}
    if expected is None:
        download.update_meta(path, md5=None)
        return f"notice: {why}: {path.name} is imported without an md5 check"
    if meta.get("md5") == expected:
        return f"md5 of {path.name} checked earlier: {expected}"
    got = md5_of(path, progress)
    if got != expected:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        download.meta_path(path).unlink(missing_ok=True)
        raise ChecksumError(f"{path}: md5 {got} does not match the run's STATS file ({expected}); set aside "
                            f"as {bad.name} (delete it, or import it anyway with --dump {bad}), nothing "
                            "imported; run again to download it afresh")
    download.update_meta(path, md5=got)
    return f"md5 of {path.name} matches the run's STATS file: {got}"


def save_stats(folder: Path, url: str, md5: str | None) -> None:
    """Keep the run's md5 beside the download (what an offline re-run checks against)."""
    if md5 is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_write(folder / Path(urlsplit(url).path).name) as fh:
            json.dump({"md5sum": md5, "url": url}, fh)


def saved_stats(folder: Path, dump_url: str) -> str | None:
    """The md5 of the STATS file ``save_stats`` kept for this dump (None: none kept)."""
    url = stats_url(dump_url)
    try:
        return json.loads((folder / Path(urlsplit(url).path).name).read_text(encoding="utf-8"))["md5sum"]
    except (TypeError, OSError, ValueError, KeyError):
        return None


def run_date(path: Path) -> str:
    """The run date (YYYYMMDD) in a dump file's name (a ``.partial`` too); empty when none."""
    match = NAME_RE.match(path.name.removesuffix(".partial"))
    return match.group("date") if match else ""


def older_partials(folder: Path, name: str) -> list[Path]:
    """Unfinished downloads in ``folder`` of runs older than the dump file ``name``."""
    date = run_date(Path(name))
    if not date or not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(DUMP_NAME.format(date="*") + ".partial") if "" < run_date(p) < date)


def remove(partials: list[Path]) -> list[str]:
    """Delete ``partials`` (and their ``.json``); a line for the summary about each."""
    notes = []
    for partial in partials:
        size = partial.stat().st_size
        partial.unlink()
        download.meta_path(partial).unlink(missing_ok=True)
        notes.append(f"removed the unfinished download of an older run: {partial} ({size:,} bytes)")
    return notes


def _existing(folder: Path) -> Path:
    while not folder.exists():
        folder = folder.parent
    return folder


def _marked(raw: Path) -> dict:
    try:
        mark = json.loads((raw / IMPORT_MARK).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return mark if isinstance(mark, dict) and isinstance(mark.get("after_shard"), int) else {}


def _shard_bytes(raw: Path, after: int) -> int:
    """Bytes of the raw shards (open or finished, with their keys files) numbered above ``after``."""
    total = 0
    for path in raw.iterdir() if raw.is_dir() else []:
        if (match := SHARD_FILE.match(path.name)) and int(match.group(1)) > after:
            try:
                total += path.stat().st_size
            except FileNotFoundError:  # an open shard renamed meanwhile: counted under its new name
                continue
    return total


def begin_import(raw: Path, dump: Path) -> None:
    """Note in ``raw`` that the import of ``dump`` writes the shards numbered above those there now,
    unless its import began before (a stopped run, a re-run): ``to_import`` counts what they hold."""
    key = {"dump": dump.name, "size": dump.stat().st_size}
    if {k: _marked(raw).get(k) for k in key} != key:
        after = max((int(m.group(1)) for p in (raw.iterdir() if raw.is_dir() else [])
                     if (m := SHARD_FILE.match(p.name))), default=0)
        with atomic_write(raw / IMPORT_MARK) as fh:
            json.dump({**key, "after_shard": after}, fh)


def to_import(raw: Path, name: str, size: int) -> int:
    """Bytes the import of the dump ``name`` (``size`` bytes) still writes into ``raw``: about
    ``RAW_PER_DUMP`` × ``size``, less what its import already wrote there (a shard another
    writer added since that import began counts as the import's)."""
    mark = _marked(raw)
    written = _shard_bytes(raw, mark["after_shard"]) if (mark.get("dump"), mark.get("size")) == (name, size) else 0
    return max(int(size * RAW_PER_DUMP) - written, 0)


def check_room(to_download: int, to_import: int, downloads: Path, raw: Path, keep_free: int, freed: int = 0
               ) -> tuple[int, int]:
    """(free bytes, needed bytes) on the disk of ``downloads``; UserError when too little.

    ``to_download``: bytes still to fetch; ``to_import``: bytes the import still writes into
    ``raw`` (counted on its own disk when that is another one); ``freed``: bytes about to be deleted there.
    """
    needs: dict[int, list] = {}  # device -> [folder, bytes needed, bytes freed]
    for folder, need, gone in ((downloads, to_download, freed), (raw, to_import, 0)):
        where = _existing(folder)
        entry = needs.setdefault(where.stat().st_dev, [where, keep_free, 0])
        entry[1] += need
        entry[2] += gone
    answers = []
    for where, need, gone in needs.values():
        free = shutil.disk_usage(where).free + gone
        if free < need:
            raise UserError(f"not enough disk space for the dump: {free:,} bytes free on {where}, {need:,} needed "
                            f"(the dump {to_download:,} still to download, its import about "
                            f"{to_import:,} more, crawl.bgwiki.dump_keep_free {keep_free:,})")
        answers.append((free, need))
    return answers[0]


def newest_on_disk(folder: Path) -> Path | None:
    """The newest complete download in ``folder`` whose check ran (md5 matched, or no STATS file)."""
    found = []
    for path in folder.glob(DUMP_NAME.format(date="*")) if folder.is_dir() else []:
        meta = download.read_meta(path)
        if meta and "md5" in meta and meta.get("size") == path.stat().st_size and NAME_RE.match(path.name):
            found.append((run_date(path), path))
    return max(found)[1] if found else None
