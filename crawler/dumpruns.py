"""Wikimedia's Enterprise dump runs: which file to import, its STATS checksum and room on disk.

A runs listing (``.../enterprise_html/runs/``) holds ``YYYYMMDD/`` folders; each holds
``<wiki>-NS0-<date>-ENTERPRISE-HTML.json.tar.gz`` and ``<wiki>-NS0-<date>-ENTERPRISE-STATS.json``
(``{"wiki": ..., "md5sum": "<hex of the .tar.gz>", "date_modified": ...}``). Here:

* ``fetch_stats``: the run's md5 (None when the run has no STATS file);
* ``verify``: a finished download against it; a mismatch sets the file aside as ``<name>.bad``
  (neither imported nor resumed from) and is a ``ChecksumError``; the outcome is kept in the
  download's ``<name>.json`` so an unchanged file is not hashed again;
* ``check_room``: free disk space against what is still to download plus what the import writes
  (``RAW_PER_DUMP`` of the dump's size, measured) plus ``crawl.bgwiki.dump_keep_free``;
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
# raw-shard bytes the import writes per byte of dump (gzip of both), measured on the generated
# dump (README, "All of Wikipedia"); tests/test_wikidump_runs.py checks it is not too low
RAW_PER_DUMP = 1.1  # measured 1.05 (3,000 generated pages: 2,137,573 dump bytes, 2,234,656 written)
CHUNK = 1 << 20


class ChecksumError(UserError):
    """The downloaded dump does not match its run's STATS file."""


def stats_url(dump_url: str) -> str | None:
    """The STATS file beside a dump in its run folder; None for a file not named as Wikimedia does."""
    match = NAME_RE.match(Path(urlsplit(dump_url).path).name)
    return urljoin(dump_url, STATS_NAME.format(**match.groupdict())) if match else None


def fetch_stats(url: str, agent: str, timeout: float = 60) -> str | None:
    """The md5 hex in the STATS file at ``url``; None when the run has none (HTTP 404)."""
    try:
        with download.request(url, agent, timeout=timeout) as response:
            data = response.read(1 << 20)
    except UserError as exc:
        if "HTTP 404" in str(exc):
            return None
        raise
    try:
        md5 = json.loads(data)["md5sum"]
    except (ValueError, KeyError, TypeError):
        md5 = None
    if not isinstance(md5, str) or not re.fullmatch(r"[0-9a-f]{32}", md5.lower()):
        raise UserError(f"{url}: not a STATS file (no md5sum of 32 hex digits)")
    return md5.lower()


def md5_of(path: Path, progress: bool | None = None) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh, tqdm(total=path.stat().st_size, unit="B", unit_scale=True, unit_divisor=1024,
                                      desc=f"md5 {path.name}", disable=None if progress is None else not progress
                                      ) as bar:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def verify(path: Path, expected: str | None, progress: bool | None = None) -> str:
    """Check a finished download against its run's md5 (``expected``; None: the run has no STATS
    file); one line saying what was checked. A mismatch sets the file aside: ChecksumError."""
    meta = download.read_meta(path) or {}
    if expected is None:
        download.update_meta(path, md5=None)
        return f"notice: the run has no STATS file: {path.name} is imported without an md5 check"
    if meta.get("md5") == expected:
        return f"md5 of {path.name} checked earlier: {expected}"
    got = md5_of(path, progress)
    if got != expected:
        bad = path.with_name(path.name + ".bad")
        os.replace(path, bad)
        download.meta_path(path).unlink(missing_ok=True)
        raise ChecksumError(f"{path}: md5 {got} does not match the run's STATS file ({expected}); set aside "
                            f"as {bad.name}, nothing imported; run again to download it afresh")
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
        partial.with_name(partial.name + ".json").unlink(missing_ok=True)
        notes.append(f"removed the unfinished download of an older run: {partial} ({size:,} bytes)")
    return notes


def _existing(folder: Path) -> Path:
    while not folder.exists():
        folder = folder.parent
    return folder


def check_room(size: int, to_download: int, downloads: Path, raw: Path, keep_free: int, freed: int = 0
               ) -> tuple[int, int]:
    """(free bytes, needed bytes) on the disk of ``downloads``; UserError when too little.

    ``to_download``: bytes still to fetch; the import writes about ``RAW_PER_DUMP`` × ``size`` into
    ``raw`` (counted on its own disk when that is another one); ``freed``: bytes about to be deleted there.
    """
    needs: dict[int, list] = {}  # device -> [folder, bytes needed, bytes freed]
    for folder, need, gone in ((downloads, to_download, freed), (raw, int(size * RAW_PER_DUMP), 0)):
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
                            f"{int(size * RAW_PER_DUMP):,}, crawl.bgwiki.dump_keep_free {keep_free:,})")
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
