"""Resumable, streamed download of one big file (a Wikimedia dump) into a local folder.

    path = fetch(url, folder, user_agent)

The bytes go to ``<name>.partial``; ``<name>.partial.json`` beside it records the server's size,
ETag and Last-Modified before the first byte is written. A re-run after Ctrl-C or ``kill -9``
asks only for the rest (``Range`` with ``If-Range``); when the size, ETag or Last-Modified no
longer match, or the server answers with the whole file, the partial file starts over. The
finished file is renamed to ``<name>`` (its ``<name>.json`` kept), so a file under its own name is
always whole, and a later run that finds it unchanged on the server (or cannot reach the server)
downloads nothing.

One connection at a time (Wikimedia's dumps allow two per IP); a second process on the same file
is refused. A dropped or stalled connection is resumed in-process a few times before giving up.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import Request, urlopen

from tqdm import tqdm

from common.atomic import atomic_write
from common.errors import UserError

CHUNK = 1 << 20
ATTEMPTS = 4  # connections tried in one run before giving up (each continues where the last stopped)


class DownloadError(UserError):
    """The download could not finish; what is on disk is kept for the next run."""


@dataclass(frozen=True)
class Remote:
    """What the server says about the file: its identity for resuming."""

    url: str
    size: int | None
    etag: str
    last_modified: str


def request(url: str, agent: str, method: str = "GET", headers: dict[str, str] | None = None,
             timeout: float = 60):
    """``urlopen`` with the contact User-Agent; HTTP and network errors as one-line UserErrors (a
    DownloadError for the network and the server's own errors, 5xx: what a later try may not meet)."""
    req = Request(url, method=method, headers={"User-Agent": agent, **(headers or {})})
    try:
        return urlopen(req, timeout=timeout)
    except HTTPError as exc:
        if exc.code >= 500:  # maintenance (502/503) or a failing server: as unreachable
            raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason} (the server's error; try again later)"
                                ) from None
        hint = "; set crawl.user_agent to name you and a contact" if exc.code == 403 else ""  # Wikimedia's policy
        raise UserError(f"{url}: HTTP {exc.code} {exc.reason}{hint}") from None
    except (URLError, OSError, HTTPException) as exc:
        raise DownloadError(f"{url}: {getattr(exc, 'reason', exc)} (network down?)") from None


def read(url: str, agent: str, limit: int = 1 << 20, timeout: float = 60) -> bytes:
    """GET ``url``: its body's first ``limit`` bytes; a connection dropped short is a DownloadError."""
    with request(url, agent, timeout=timeout) as response:
        try:
            data = response.read(limit)
        except (OSError, HTTPException) as exc:
            raise DownloadError(f"{url}: {exc} (network down?)") from None
        if len(data) < limit and response.length:  # http.client returns what came before the drop
            raise DownloadError(f"{url}: the connection dropped after {len(data):,} bytes (network down?)")
    return data


def remote(url: str, agent: str, timeout: float = 60) -> Remote:
    """HEAD the file: size, ETag, Last-Modified; an HTML page (a listing, a portal) is no dump file."""
    with request(url, agent, "HEAD", timeout=timeout) as response:
        if response.headers.get_content_type() == "text/html":
            raise UserError(f"{url}: not a dump file (the server answers text/html)")
        length = response.headers.get("Content-Length")
        return Remote(url, int(length) if length and length.isdigit() else None,
                      response.headers.get("ETag", ""), response.headers.get("Last-Modified", ""))


def newest(listing: str, pattern: str, agent: str, tries: int = 4, timeout: float = 60, delay: float = 0.0
           ) -> Remote:
    """The file ``pattern.format(date=...)`` of the newest run in a runs listing that has one
    (its HEAD, for ``fetch``).

    ``listing`` is an index page of ``YYYYMMDD/`` folders (like Wikimedia's
    ``other/enterprise_html/runs/``); a run still being written may lack the file, so up to
    ``tries`` runs are checked from the newest down, ``delay`` seconds after each request.
    """
    page = read(listing, agent, 1 << 24, timeout).decode("utf-8", "replace")
    dates = sorted(set(re.findall(r'href="(?:[^"]*/)?(\d{8})/"', page)), reverse=True)
    if not dates:
        raise UserError(f"{listing}: no YYYYMMDD/ run folders listed")
    for date in dates[:tries]:
        url = urljoin(listing, f"{date}/{pattern.format(date=date)}")
        time.sleep(delay)
        try:
            return remote(url, agent, timeout)
        except UserError as exc:
            if "HTTP 404" not in str(exc):
                raise
    raise UserError(f"{listing}: none of the newest {min(tries, len(dates))} runs has "
                    f"{pattern.format(date='YYYYMMDD')}")


def _meta(path: Path) -> dict | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(path: Path, meta: dict) -> None:
    with atomic_write(path) as fh:
        json.dump(meta, fh)


def _same(meta: dict | None, info: Remote) -> bool:
    """Whether the server's answer recorded in ``meta`` is ``info`` (other keys aside; the size
    too when the server gives one, else the ETag or Last-Modified must be there to tell)."""
    wanted = {k: v for k, v in asdict(info).items() if k != "size" or v is not None}
    if info.size is None and not (info.etag or info.last_modified):
        return False
    return meta is not None and {k: meta.get(k) for k in wanted} == wanted


def _whole(final: Path, info: Remote) -> bool:
    """Whether ``final`` is the finished download of ``info``: its size the server's, or, when the
    server gives none, the size recorded when it was finished."""
    meta = _meta(meta_path(final))
    size = info.size if info.size is not None else (meta or {}).get("size")
    return final.is_file() and _same(meta, info) and final.stat().st_size == size


def meta_path(final: Path) -> Path:
    """``<name>.json`` beside a finished download: what the server said, and later checks."""
    return final.with_name(final.name + ".json")


def read_meta(final: Path) -> dict | None:
    return _meta(meta_path(final))


def update_meta(final: Path, **values) -> None:
    """Add ``values`` to a finished download's ``<name>.json`` (kept while the file is unchanged)."""
    _write_meta(meta_path(final), {**(read_meta(final) or {}), **values})


def missing_bytes(folder: Path, info: Remote) -> int:
    """Bytes ``fetch`` would still download for ``info`` into ``folder`` (0: whole and unchanged)."""
    name = Path(urlsplit(info.url).path).name
    final, partial = folder / name, folder / f"{name}.partial"
    if _whole(final, info):
        return 0
    have = partial.stat().st_size if partial.is_file() and _same(_meta(meta_path(partial)), info) else 0
    return max((info.size or 0) - have, 0)


def fetch(url: str, folder: Path, agent: str, timeout: float = 60, progress: bool | None = None,
          info: Remote | None = None) -> Path:
    """Download ``url`` into ``folder`` (resuming what an earlier run left); the finished file's
    path. ``info``: its HEAD when the caller has just made it (``newest``)."""
    name = Path(urlsplit(url).path).name
    if not name:
        raise UserError(f"{url}: not a file URL (no file name in its path)")
    final, partial = folder / name, folder / f"{name}.partial"
    final_meta, partial_meta = meta_path(final), meta_path(partial)
    try:
        info = info or remote(url, agent, timeout)
    except DownloadError:
        kept = _meta(final_meta)
        if not (final.is_file() and kept and kept["url"] == url and kept["size"] == final.stat().st_size):
            raise
        print(f"warning: {url} unreachable; using the whole copy downloaded earlier, {final}", file=sys.stderr)
        return final
    if _whole(final, info):
        return final  # downloaded by an earlier run, unchanged on the server
    folder.mkdir(parents=True, exist_ok=True)
    with open(partial, "ab") as out:
        try:
            fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{partial}: another process is downloading this file") from None
        if not _same(_meta(partial_meta), info) or (info.size is not None and out.tell() > info.size):
            out.seek(0)  # a different file on the server (or none begun): start over
            out.truncate()
            _write_meta(partial_meta, asdict(info))
        _stream(info, out, agent, timeout, progress)
        out.flush()
        os.fsync(out.fileno())
        if info.size is None:  # what was received is the size later runs compare against
            _write_meta(partial_meta, {**asdict(info), "size": out.tell()})
        os.replace(partial_meta, final_meta)
        os.replace(partial, final)
    return final


def _stream(info: Remote, out, agent: str, timeout: float, progress: bool | None) -> None:
    """Append the missing bytes to ``out``; several connections if one drops."""
    name = Path(urlsplit(info.url).path).name
    with tqdm(total=info.size, initial=out.tell(), unit="B", unit_scale=True, unit_divisor=1024,
              desc=f"download {name}", disable=None if progress is None else not progress) as bar:
        for attempt in range(ATTEMPTS):
            if info.size is not None and out.tell() >= info.size:
                return
            try:
                _one_connection(info, out, agent, timeout, bar)
            except (OSError, HTTPException, DownloadError) as exc:
                if attempt == ATTEMPTS - 1:
                    raise DownloadError(f"{info.url}: gave up after {ATTEMPTS} connections at byte "
                                        f"{out.tell():,} ({exc}); run again to resume") from None
                time.sleep(min(0.5 * 2 ** attempt, 10))
                continue
            if info.size is None:
                return  # no length announced: the connection's end is the file's end
    if info.size is not None and out.tell() != info.size:
        raise DownloadError(f"{info.url}: got {out.tell():,} of {info.size:,} bytes; run again to resume")


def _one_connection(info: Remote, out, agent: str, timeout: float, bar: tqdm) -> None:
    offset = out.tell()
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        strong = info.etag if not info.etag.startswith("W/") else ""  # If-Range ignores weak ETags
        if strong or info.last_modified:
            headers["If-Range"] = strong or info.last_modified
    with request(info.url, agent, headers=headers, timeout=timeout) as response:
        if offset and not (response.status == 206 and _range_start(response) == offset):
            out.seek(0)  # the server sent the whole (possibly changed) file: take it from byte 0
            out.truncate()
            bar.reset(total=info.size)
        while chunk := response.read1(CHUNK):
            out.write(chunk)
            out.flush()  # on disk (the OS's) as it arrives: a kill -9 loses nothing received
            bar.update(len(chunk))


def _range_start(response) -> int | None:
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None
