"""One replay server on 127.0.0.1 for the tests, the demo and the benchmarks.

The core is a threaded HTTP/1.1 server (``ReplayServer``) that answers GET, HEAD and POST from
*sites* — callables taking a ``Request`` and returning a ``Response``, or None for "not mine" —
and from ``files``, a mapping of paths to bytes or to a file on disk. It gzips bodies when the
client asks, and serves files like a download server: ``Accept-Ranges``, ``ETag``,
``Last-Modified``, ``Range: bytes=N-`` answered with 206 (416 past the end) and ``If-Range``.
``requests`` lists every (host, path) served and ``counts`` tallies ``"GET /path"``.

It can be as hard as the real thing: ``Faults`` (switchable while it runs, per path regex) slows
every body to ``rate`` bytes/s, stalls a body after ``stall_after`` bytes (the connection stays
open, silent, so a test can kill a download part-way), or truncates it after ``truncate_after``
bytes (the connection drops short of its Content-Length).

A new shape takes a few lines; e.g. a dump mirror with a runs listing and a resumable, slow file::

    def listing(req: Request) -> Response | None:
        if req.path == "/runs/":
            return Response(200, b'<a href="20261101/">20261101/</a>', "text/html")
        return None                                        # not mine: the next site, then 404

    with ReplayServer(listing, files={"/runs/20261101/dump.tar.gz": tar_path},
                      faults=Faults(rate=2_000_000, only=r"\\.tar\\.gz$")) as srv:
        url = srv.url("/runs/20261101/dump.tar.gz")         # Range, ETag, 206 and 416 included
        srv.faults.stall_after = 100_000                   # later bodies stop after 100 kB

Two shapes live here:

- ``WikiReplay``: the MediaWiki Action API (``Wiki``) — ``action=query`` (title resolution with
  ``normalized``/``redirects``/``missing``/``invalid``, ``list=categorymembers`` with
  continuation) and ``action=parse`` in the ``formatversion=2`` JSON shapes, by GET or POST. Like
  Wikimedia it refuses generic User-Agents (403), refuses more than 50 titles a request, serves a
  robots.txt that disallows ``/w/``, and can inject a ``maxlag`` error and a 429 with
  Retry-After. Pages come from a folder of ``*.txt`` files or ``synthetic_pages``, rendered into
  parser output shaped like bg.wikipedia's (infobox, contents, reference marks, edit links,
  „Бележки“, „Външни препратки“, navbox).
- ``NewsReplay``: a news site (``NewsSite``) of article files or generated articles
  (``synthetic_articles``: years of them, some edited later), described in ``NewsSite``'s
  docstring: robots.txt, RSS, a sitemap index with ``lastmod`` over plain and gzipped monthly
  sitemaps, tag, section, daily archive and article pages with real boilerplate, a
  JavaScript-only article, the shared fixtures' legacy-encoded feeds and pages.

Site files (both shapes) are a header of ``key: value`` lines, a blank line, then the body.

    python -m demo.replay wiki --site demo/site/wiki --port 8765
    python -m demo.replay news --site demo/site/news --port 8766 [--fixtures ../shared/fixtures]
"""

from __future__ import annotations

import argparse
import base64
import codecs
import gzip
import html
import json
import mimetypes
import re
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from email.message import Message
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from lxml import etree

from common.errors import UserError, cli_main

# -- the core -----------------------------------------------------------------------------------


@dataclass
class Request:
    """One request as a site sees it."""

    method: str
    path: str  # percent-decoded, without the query
    params: dict[str, str]  # query string and form body, last value wins
    headers: Message
    base: str  # scheme://host:port as the client addressed the server


@dataclass
class Response:
    """What a site answers. ``ranged``: served like a file (Range, ETag), never gzipped."""

    status: int = 200
    body: bytes | Path = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    ranged: bool = False


@dataclass
class Faults:
    """Real servers' manners; the attributes may be changed while the server runs."""

    rate: float = 0.0  # bytes/s for each body (0: as fast as possible)
    stall_after: int | None = None  # send this many body bytes, then hold the connection silent
    truncate_after: int | None = None  # send this many body bytes, then drop the connection
    only: str = ""  # a regex: apply to matching paths only ("" = every path)

    def applies(self, path: str) -> bool:
        return not self.only or re.search(self.only, path) is not None


class Tally(Counter):
    """A thread-safe counter of what the server saw."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def add(self, key: str, n: int = 1) -> None:
        with self.lock:
            self[key] += n


Site = Callable[[Request], "Response | None"]
NOT_FOUND = Response(404, b"Not Found")
GZIP_MIN = 200  # smaller bodies go uncompressed, as on real servers
CHUNK = 16 * 1024


def read_site_file(path: Path, required: Iterable[str] = ()) -> tuple[dict[str, str], str]:
    """A site file's ``key: value`` header (keys lower-cased) and body; UserError naming the fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"site file {path}: not UTF-8 (bad byte at offset {exc.start})") from None
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    fields: dict[str, str] = {}
    for n, line in enumerate(head.splitlines(), 1):
        key, colon, value = line.partition(":")
        if not colon:
            raise UserError(f"site file {path}:{n}: expected 'key: value', got {line!r}")
        fields[key.strip().lower()] = value.strip()
    missing = [k for k in required if not fields.get(k)]
    if missing:
        raise UserError(f"site file {path}: missing {', '.join(missing)}")
    return fields, body.strip()


def _range(header: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` inclusive of one ``bytes=`` range; None for none or several; (-1, -1) if
    it cannot be satisfied."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header)
    if not m or not (m.group(1) or m.group(2)):
        return None
    if not m.group(1):  # the last N bytes
        return (max(size - int(m.group(2)), 0), size - 1) if int(m.group(2)) and size else (-1, -1)
    start, end = int(m.group(1)), int(m.group(2)) if m.group(2) else size - 1
    return (start, min(end, size - 1)) if start < size and start <= end else (-1, -1)


class _Handler(BaseHTTPRequestHandler):
    server_version = "replay/2.0"
    protocol_version = "HTTP/1.1"
    replay: ReplayServer

    def log_message(self, format, *args) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length).decode("utf-8", "replace") if length else "")

    def _serve(self, form: str = "") -> None:
        replay = self.replay
        parts = urlsplit(self.path)
        host = self.headers.get("Host", "")
        with replay.counts.lock:
            replay.requests.append((host.split(":")[0], self.path))
            replay.counts[f"{self.command} {parts.path}"] += 1
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        params.update({k: v[-1] for k, v in parse_qs(form, keep_blank_values=True).items()})
        request = Request(self.command, unquote(parts.path), params, self.headers, f"http://{host}")
        try:
            self._send(replay.respond(request), request.path)
        except (BrokenPipeError, ConnectionResetError):  # the client went away: as real servers do
            self.close_connection = True

    def _send(self, response: Response, path: str) -> None:
        body, headers = response.body, dict(response.headers)
        status, start, length = response.status, 0, None
        if response.ranged or isinstance(body, Path):
            if isinstance(body, Path):
                size, stamp, crc = body.stat().st_size, body.stat().st_mtime, 0
            else:
                size, stamp, crc = len(body), self.replay.started, zlib.crc32(body)
            tag = f'"{size:x}-{int(stamp * 1000):x}-{crc:x}"'
            headers.update({"Accept-Ranges": "bytes", "ETag": tag, "Last-Modified": format_datetime(
                datetime.fromtimestamp(stamp, UTC), usegmt=True)})
            wanted = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            span = _range(wanted, size) if wanted and (not if_range or if_range in (
                tag, headers["Last-Modified"])) else None
            length = size
            if span == (-1, -1):
                status, length, body = 416, 0, b""
                headers["Content-Range"] = f"bytes */{size}"
            elif span is not None and status == 200:
                status, start, length = 206, span[0], span[1] - span[0] + 1
                headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
        elif "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > GZIP_MIN \
                and "gzip" not in response.content_type:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            body = compressor.compress(body) + compressor.flush()
            headers["Content-Encoding"] = "gzip"
            self.replay.counts.add("gzip")
        if length is None:
            length = len(body)
        self.send_response(status)
        self.send_header("Content-Type", response.content_type)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD" and length:
            self._write(self._chunks(body, start, length), path)

    @staticmethod
    def _chunks(body: bytes | Path, start: int, length: int) -> Iterator[bytes]:
        if isinstance(body, bytes):
            for offset in range(start, start + length, CHUNK):
                yield body[offset:min(offset + CHUNK, start + length)]
            return
        with body.open("rb") as f:
            f.seek(start)
            while length > 0:
                chunk = f.read(min(CHUNK, length))
                if not chunk:
                    return
                length -= len(chunk)
                yield chunk

    def _write(self, chunks: Iterator[bytes], path: str) -> None:
        faults = self.replay.faults
        hard = faults.applies(path)
        sent, begun = 0, time.monotonic()
        for chunk in chunks:
            rate, stall, cut = (faults.rate, faults.stall_after, faults.truncate_after) if hard \
                else (0.0, None, None)
            stop = min((n for n in (stall, cut) if n is not None), default=None)
            if stop is not None and sent + len(chunk) >= stop:
                self._paced(chunk[:max(stop - sent, 0)], rate, sent, begun)
                self.wfile.flush()
                if stop == stall:
                    self.replay.counts.add("stalled")
                    self.replay.released.wait()
                else:
                    self.replay.counts.add("truncated")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._paced(chunk, rate, sent, begun)
            sent += len(chunk)

    def _paced(self, data: bytes, rate: float, sent: int, begun: float) -> None:
        """Write ``data``; at ``rate`` bytes/s (``sent`` body bytes gone since ``begun``) each piece
        (a tenth of a second's worth) waits until the body's pace allows it, so small bodies are
        slowed too."""
        if not rate:
            self.wfile.write(data)
            return
        step = max(1, min(CHUNK, int(rate / 10)))
        for offset in range(0, len(data), step):
            piece = data[offset:offset + step]
            due = begun + (sent + offset + len(piece)) / rate
            time.sleep(max(0.0, due - time.monotonic()))
            self.wfile.write(piece)
            self.wfile.flush()


class ReplayServer:
    """Sites and files served from a background thread: ``with ReplayServer(site) as srv: srv.url()``.

    ``sites`` are asked in order; the first Response wins; ``files`` (path → bytes or Path) are
    served with Range support before them; anything else gets ``not_found``.
    """

    not_found = NOT_FOUND

    def __init__(self, *sites: Site, files: Mapping[str, bytes | Path] | None = None,
                 port: int = 0, host: str = "127.0.0.1", faults: Faults | None = None,
                 counts: Tally | None = None):
        self.sites = list(sites)
        self.files = dict(files or {})
        self.faults = faults or Faults()
        self.counts = counts if counts is not None else Tally()
        self.requests: list[tuple[str, str]] = []  # (host, path as sent), in order
        self.released = threading.Event()  # set on exit: stalled bodies end
        self.started = time.time()  # Last-Modified of in-memory files
        handler = type("Handler", (_Handler,), {"replay": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def respond(self, request: Request) -> Response:
        if request.path in self.files:
            body = self.files[request.path]
            ctype, encoding = mimetypes.guess_type(request.path)
            ctype = "application/gzip" if encoding == "gzip" else ctype or "application/octet-stream"
            return Response(200, body, ctype, ranged=True)
        for site in self.sites:
            response = site(request)
            if response is not None:
                return response
        return self.not_found

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base + path

    def paths(self, host: str = "127.0.0.1") -> list[str]:
        """Paths requested through ``host``, in order."""
        return [p for h, p in self.requests if h == host]

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def serve_until_interrupted(self, banner: str) -> None:
        """Serve in the foreground (the command line), until Ctrl-C."""
        print(banner + " (Ctrl-C stops)", flush=True)
        try:
            self.httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self.released.set()
            self.httpd.server_close()


# -- the MediaWiki Action API -------------------------------------------------------------------

WIKI_ROBOTS_TXT = """# Like every Wikimedia wiki's robots.txt: /w/ (index.php, api.php) is not for search crawlers.
User-agent: *
Allow: /w/api.php?action=mobileview&
Allow: /w/load.php?
Disallow: /w/
Disallow: /api/
Disallow: /trap/
Disallow: /wiki/Специални:
"""
GENERIC_AGENTS = re.compile(r"^(python-requests|python-urllib|httpx|aiohttp|curl|Scrapy)/", re.I)
CATEGORY_NS = "Категория"


@dataclass
class Page:
    """One wiki page: canonical title, categories, redirects to it, and wikitext-ish body or HTML."""

    title: str
    body: str = ""
    categories: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    html: str | None = None  # ready ``mw-parser-output`` HTML (e.g. a real page) instead of body
    pageid: int = 0
    revid: int = 0

    @property
    def ns(self) -> int:
        return 14 if self.title.startswith(CATEGORY_NS + ":") else 0




def load_site(folder: str | Path) -> list[Page]:
    """Every ``*.txt`` wiki page of a site folder (``title:``, ``categories:`` and ``redirects:``
    ``|``-separated), in name order."""
    folder = Path(folder)
    if not any(folder.glob("*.txt")) and (folder / "wiki").is_dir():
        folder = folder / "wiki"  # a whole demo site folder: its wiki/ part
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise UserError(f"no *.txt pages in site folder {folder}")
    pages = []
    for path in files:
        meta, body = read_site_file(path, required=("title",))
        categories, redirects = ([v.strip() for v in meta.get(key, "").split("|") if v.strip()]
                                 for key in ("categories", "redirects"))
        pages.append(Page(meta["title"], body, categories, redirects))
    return pages


def _canon(title: str) -> str:
    title = " ".join(title.replace("_", " ").split())
    return title[:1].upper() + title[1:]


def number_pages(pages: Iterable[Page]) -> Iterator[Page]:
    """``pages``, each given a page id and revision id where it has none (by its place)."""
    for number, page in enumerate(pages, 1):
        page.pageid = page.pageid or 1000 + number
        page.revid = page.revid or 9_000_000 + 37 * number
        yield page


def _href(title: str) -> str:
    return "/wiki/" + quote(title.replace(" ", "_"))


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    text = re.sub(r"'''(.+?)'''", r"<b>\1</b>", text)

    def link(m: re.Match) -> str:
        target, _, label = m.group(1).partition("|")
        return f'<a href="{_href(_canon(target))}" title="{_canon(target)}">{label or target}</a>'

    return re.sub(r"\[\[(.+?)\]\]", link, text)


class Renderer:
    """Turns a page body into parser output shaped like bg.wikipedia's ``action=parse`` text."""

    def __init__(self, pages: list[Page]):
        self.by_category: dict[str, list[str]] = {}
        for page in pages:
            for cat in page.categories:
                self.by_category.setdefault(cat, []).append(page.title)

    def render(self, page: Page) -> str:
        if page.html is not None:
            return page.html
        sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
        for line in page.body.splitlines():
            m = re.fullmatch(r"(={2,4})\s*(.+?)\s*\1\s*", line)
            if m:
                sections.append((len(m.group(1)), m.group(2), []))
            elif line.strip():
                sections[-1][2].append(line.strip())
        notes: list[str] = []
        out = ['<div class="mw-content-ltr mw-parser-output" lang="bg" dir="ltr">', self._infobox(page)]
        out += self._paragraphs(sections[0][2], notes, page)
        if len(sections) > 1:
            out.append(self._toc(sections[1:]))
        for number, (level, heading, lines) in enumerate(sections[1:], 1):
            out.append(self._heading(level, heading, number, page.title))
            out += self._paragraphs(lines, notes, page)
        number = len(sections)
        out.append(self._heading(2, "Бележки", number, page.title))
        out.append('<div class="reflist"><div class="mw-references-wrap"><ol class="references">')
        out += [f'<li id="cite_note-{i}"><span class="mw-cite-backlink"><b><a href="#cite_ref-{i}">↑'
                f'</a></b></span> <span class="reference-text">{note}</span></li>'
                for i, note in enumerate(notes, 1)]
        out.append("</ol></div></div>")
        out.append(self._heading(2, "Външни препратки", number + 1, page.title))
        slug = quote(page.title.replace(" ", "_"))
        out.append(f'<ul><li><a rel="nofollow" class="external text" href="https://www.example.bg/'
                   f'encyclopedia/{slug}">„{html.escape(page.title)}“ в Енциклопедия България</a></li>'
                   f'<li><a rel="nofollow" class="external text" href="https://archive.example.org/'
                   f'bg/{slug}">Архивни материали за {html.escape(page.title)}</a></li></ul>')
        out.append(self._navbox(page))
        out.append(f"<!--\nNewPP limit report\nParsed by mw-replay\nCPU time usage: 0.{page.pageid % 97:03d}"
                   " seconds\n-->\n</div>")
        return "\n".join(out)

    def _paragraphs(self, lines: list[str], notes: list[str], page: Page) -> list[str]:
        out: list[str] = []
        items: list[str] = []
        for line in lines:
            if line.startswith("*"):
                items.append(f"<li>{_inline(line.lstrip('* '))}</li>")
                continue
            if items:
                out.append("<ul>" + "".join(items) + "</ul>")
                items = []
            text = _inline(line)
            if len(notes) < 8 and (len(out) + len(notes)) % 2 == 0:
                notes.append(f"{html.escape(page.title)}. — В: Енциклопедия България. Т. {len(notes) + 1}. "
                             f"София, Издателство на БАН, 1978, с. {100 + 7 * len(notes)}.")
                n = len(notes)
                mark = (f'<sup id="cite_ref-{n}" class="reference"><a href="#cite_note-{n}">'
                        f'<span class="cite-bracket">&#91;</span>{n}<span class="cite-bracket">&#93;'
                        f"</span></a></sup>")
                text = re.sub(r"([.!?])(\s|$)", lambda m, mark=mark: m.group(1) + mark + m.group(2),
                              text, count=1)
            out.append(f"<p>{text}\n</p>")
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
        return out

    @staticmethod
    def _infobox(page: Page) -> str:
        name = html.escape(page.title)
        rows = "".join(f'<tr><th scope="row" class="infobox-label">Категория</th>'
                       f'<td class="infobox-data"><a href="{_href(CATEGORY_NS + ":" + c)}">{html.escape(c)}'
                       f"</a></td></tr>" for c in page.categories[:3])
        return (f'<table class="infobox infobox-table" style="width:22em"><tbody><tr><th colspan="2" '
                f'class="infobox-above">{name}</th></tr><tr><td colspan="2" class="infobox-image">'
                f'<span class="mw-default-size" typeof="mw:File/Frameless"><a href="/wiki/Файл:{quote(page.title)}.jpg"'
                f' class="mw-file-description"><img src="//upload.wikimedia.org/wikipedia/commons/thumb/'
                f'{page.pageid}.jpg" decoding="async" width="250" height="180" class="mw-file-element">'
                f'</a></span><div class="infobox-caption">{name}</div></td></tr>{rows}</tbody></table>')

    @staticmethod
    def _toc(sections: list[tuple[int, str, list[str]]]) -> str:
        items = []
        for number, (level, heading, _) in enumerate(sections, 1):
            items.append(f'<li class="toclevel-{level - 1} tocsection-{number}"><a href="#'
                         f'{quote(heading.replace(" ", "_"))}"><span class="tocnumber">{number}</span> '
                         f'<span class="toctext">{html.escape(heading)}</span></a></li>')
        return ('<div id="toc" class="toc" role="navigation" aria-labelledby="mw-toc-heading">'
                '<input type="checkbox" role="button" id="toctogglecheckbox" class="toctogglecheckbox" '
                'style="display:none"><div class="toctitle" lang="bg" dir="ltr"><h2 id="mw-toc-heading">'
                'Съдържание</h2><span class="toctogglespan"><label class="toctogglelabel" '
                f'for="toctogglecheckbox"></label></span></div><ul>{"".join(items)}</ul></div>')

    @staticmethod
    def _heading(level: int, heading: str, number: int, title: str) -> str:
        anchor = html.escape(heading.replace(" ", "_"))
        edit = (f'<span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="/w/index.php?'
                f'title={quote(title.replace(" ", "_"))}&amp;action=edit&amp;section={number}" title="Редактиране '
                f'на раздел: {html.escape(heading)}"><span>редактиране</span></a><span '
                f'class="mw-editsection-bracket">]</span></span>')
        return (f'<div class="mw-heading mw-heading{level}"><h{level} id="{anchor}">{html.escape(heading)}'
                f"</h{level}>{edit}</div>")

    def _navbox(self, page: Page) -> str:
        if not page.categories:
            return ""
        cat = page.categories[0]
        links = " • ".join(f'<a href="{_href(t)}" title="{html.escape(t)}">{html.escape(t)}</a>'
                           for t in self.by_category.get(cat, [])[:30])
        return (f'<div role="navigation" class="navbox" aria-labelledby="{html.escape(cat)}" '
                f'style="padding:3px"><table class="nowraplinks navbox-inner" style="border-spacing:0">'
                f'<tbody><tr><th scope="col" class="navbox-title" colspan="2">{html.escape(cat)}</th></tr>'
                f'<tr><td class="navbox-list-with-group navbox-list navbox-odd"><div style="padding:0 0.25em">'
                f"{links}</div></td></tr></tbody></table></div>")


class Wiki:
    """The replayed wiki's state: pages, lookups, fault switches and request counters."""

    def __init__(self, pages: list[Page], *, maxlag_faults: int = 0, ratelimit_faults: int = 0,
                 retry_after: int = 1, delay: float = 0.0, broken: tuple[str, ...] = ()):
        self.pages: dict[int, Page] = {}
        self.by_title: dict[str, Page] = {}
        self.redirects: dict[str, str] = {}
        for page in number_pages(pages):
            self.pages[page.pageid] = page
            self.by_title[page.title] = page
        for page in pages:
            for source in page.redirects:
                self.redirects[_canon(source)] = page.title
        self.renderer = Renderer(pages)
        self.maxlag_faults = maxlag_faults
        self.ratelimit_faults = ratelimit_faults
        self.retry_after = retry_after
        self.delay = delay
        self.broken = set(broken)  # titles whose parse always fails (an internal API error)
        self.counts = Tally()
        self.lock = self.counts.lock
        self.batch_sizes: list[int] = []
        self.agents: set[str] = set()
        self.parse_cache: dict[int, bytes] = {}

    def count(self, key: str) -> None:
        self.counts.add(key)

    def take_fault(self, name: str) -> bool:
        with self.lock:
            left = getattr(self, name)
            if left > 0:
                setattr(self, name, left - 1)
                return True
            return False

    def query_titles(self, titles: list[str]) -> dict:
        normalized, redirects, pages, seen = [], [], [], set()
        for raw in titles:
            if re.search(r"[#<>\[\]|{}]", raw) or not raw.strip():
                pages.append({"title": raw, "invalidreason": "The requested page title contains "
                              "invalid characters.", "invalid": True})
                continue
            title = _canon(raw)
            if title != raw:
                normalized.append({"fromencoded": False, "from": raw, "to": title})
            if title in self.redirects:
                redirects.append({"from": title, "to": self.redirects[title]})
                title = self.redirects[title]
            if title in seen:
                continue
            seen.add(title)
            page = self.by_title.get(title)
            if page is None:
                ns = 14 if title.startswith(CATEGORY_NS + ":") else 0
                pages.append({"ns": ns, "title": title, "missing": True})
            else:
                pages.append({"pageid": page.pageid, "ns": page.ns, "title": page.title})
        query: dict = {}
        if normalized:
            query["normalized"] = normalized
        if redirects:
            query["redirects"] = redirects
        query["pages"] = pages
        return {"batchcomplete": True, "query": query}

    def category_members(self, params: dict[str, str]) -> dict:
        category = _canon(params.get("cmtitle", ""))
        name = category.partition(":")[2]
        types = params.get("cmtype", "page|subcat").split("|")
        members = [p for p in self.pages.values() if name in p.categories
                   and (("subcat" in types and p.ns == 14) or ("page" in types and p.ns == 0))]
        members.sort(key=lambda p: p.pageid)
        limit = 500 if params.get("cmlimit") == "max" else min(int(params.get("cmlimit", "10")), 500)
        start = int(params.get("cmcontinue", "0").rpartition("|")[2] or 0)
        chunk = [p for p in members if p.pageid >= start][:limit]
        out: dict = {"batchcomplete": True, "query": {"categorymembers": [
            {"pageid": p.pageid, "ns": p.ns, "title": p.title} for p in chunk]}}
        rest = [p for p in members if p.pageid >= start][limit:]
        if rest:
            out["continue"] = {"cmcontinue": f"page|{rest[0].pageid}|{rest[0].pageid}", "continue": "-||"}
        return out

    def parse(self, params: dict[str, str]) -> dict | bytes:
        if "pageid" in params:
            try:
                page = self.pages.get(int(params["pageid"]))
            except ValueError:
                page = None
            if page is None:
                return {"error": {"code": "nosuchpageid", "info": f"There is no page with ID {params['pageid']}."}}
        else:
            page = self.by_title.get(self.redirects.get(_canon(params.get("page", "")), _canon(params.get("page", ""))))
            if page is None:
                return {"error": {"code": "missingtitle", "info": "The page you specified doesn't exist."}}
        self.count(f"parse {page.title}")  # which pages a crawl fetched, retries included
        if page.title in self.broken:
            return {"error": {"code": "internal_api_error_DBQueryError", "info": "[replay] A database "
                              "query error has occurred.", "errorclass": "Wikimedia\\Rdbms\\DBQueryError"}}
        cached = self.parse_cache.get(page.pageid)
        if cached is None:
            parse = {"title": page.title, "pageid": page.pageid, "revid": page.revid,
                     "displaytitle": f'<span class="mw-page-title-main">{html.escape(page.title)}</span>',
                     "text": self.renderer.render(page),
                     "categories": [{"sortkey": "", "category": c.replace(" ", "_")} for c in page.categories]}
            cached = json.dumps({"parse": parse}, ensure_ascii=False).encode("utf-8")
            self.parse_cache[page.pageid] = cached
        return cached

    def api(self, params: dict[str, str]) -> tuple[int, dict[str, str], dict | bytes]:
        """One API call: (status, extra headers, JSON payload or encoded JSON)."""
        action = params.get("action", "")
        self.count(f"action={action}")
        if "maxlag" not in params:
            self.count("without-maxlag")  # API:Etiquette: every bot request should carry maxlag
        if params.get("maxlag") and self.take_fault("maxlag_faults"):
            self.count("fault=maxlag")
            lag = int(params["maxlag"]) + 2
            return 200, {"Retry-After": str(self.retry_after), "X-Database-Lag": str(lag)}, {
                "error": {"code": "maxlag", "info": f"Waiting for 10.64.48.42: {lag} seconds lagged.",
                          "host": "10.64.48.42", "lag": lag, "type": "db",
                          "docref": "See https://bg.wikipedia.org/w/api.php for API usage."},
                "servedby": "mw-replay"}
        if action == "query" and "titles" in params:
            titles = params["titles"].split("|")
            with self.lock:
                self.batch_sizes.append(len(titles))
            if len(titles) > 50:
                return 200, {}, {"error": {"code": "toomanyvalues", "info": 'Too many values supplied for '
                                           'parameter "titles". The limit is 50.', "limit": 50}}
            return 200, {}, self.query_titles(titles)
        if action == "query" and params.get("list") == "categorymembers":
            return 200, {}, self.category_members(params)
        if action == "parse":
            return 200, {}, self.parse(params)
        return 200, {}, {"error": {"code": "badvalue", "info": f"Unrecognized value for parameter "
                                   f'"action": {action}.'}}

    def __call__(self, request: Request) -> Response | None:
        """The site: ``/robots.txt`` and ``/w/api.php``."""
        agent = request.headers.get("User-Agent", "")
        with self.lock:
            self.agents.add(agent)
        if request.path == "/robots.txt":
            return Response(200, WIKI_ROBOTS_TXT.encode())
        if request.path != "/w/api.php":
            return None
        if not agent or GENERIC_AGENTS.match(agent) or "(" not in agent:
            self.count("refused-agent")
            return Response(403, b"Please set a user-agent and respect our robot policy "
                            b"https://w.wiki/4wJS.")
        if self.delay:
            time.sleep(self.delay)
        if self.take_fault("ratelimit_faults"):
            self.count("fault=429")
            return Response(429, b"Too many requests.", headers={"Retry-After": str(self.retry_after)})
        status, headers, payload = self.api(request.params)
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        return Response(status, body, "application/json; charset=utf-8", headers)


_SUBJECTS = ["Селището", "Реката", "Планината", "Крепостта", "Манастирът", "Учените", "Жителите",
             "Летописецът", "Старият мост", "Градината", "Общината", "Библиотеката"]
_VERBS = ["се споменава за пръв път", "е описан подробно", "се развива бързо", "привлича посетители",
          "е обявен за паметник на културата", "е възстановен след войната", "се изучава от векове",
          "играе важна роля в стопанството"]
_TAILS = ["през Средновековието", "в началото на XX век", "според местните предания",
          "в документите на Търновското царство", "след Освобождението", "в наши дни",
          "в края на XIX век", "по време на Възраждането"]


def _sentence(n: int, k: int) -> str:
    return (f"{_SUBJECTS[(n + k) % len(_SUBJECTS)]} {_VERBS[(n * 3 + k) % len(_VERBS)]} "
            f"{_TAILS[(n + 5 * k) % len(_TAILS)]}, отбелязва изследване № {n * 31 + k}.")


def synthetic_pages(count: int, paragraphs: int = 6, category: str = "Населени места") -> list[Page]:
    """``count`` generated Bulgarian pages (our own sentences), each with two redirects."""
    pages = []
    for n in range(count):
        body = []
        for p in range(paragraphs):
            if p and p % 2 == 0:
                body.append(f"== Раздел {p // 2} ==")
            body.append(" ".join(_sentence(n, p * 10 + k) for k in range(6)))
        pages.append(Page(f"Статия {n:05d}", "\n".join(body), [category, f"Група {n % 10}"],
                          [f"Статия {n:05d} (пренасочване)", f"статия_{n:05d}_стара"]))
    return pages


class WikiReplay(ReplayServer):
    """The replay API in a background thread: ``with WikiReplay(pages) as srv: srv.api``.

    ``wiki_options`` go to ``Wiki`` (faults, delay, broken titles); ``srv.wiki`` counts calls.
    """

    def __init__(self, pages: list[Page], port: int = 0, **wiki_options):
        self.wiki = Wiki(pages, **wiki_options)
        super().__init__(self.wiki, port=port, counts=self.wiki.counts)

    @property
    def api(self) -> str:
        return self.base + "/w/api.php"


# -- the news site ------------------------------------------------------------------------------

SITE_NAME = "Демо новини"
HTML = "text/html; charset=utf-8"
LEGACY_FOLDERS = ("windows-1251-bulgarian", "iso-8859-5-bulgarian")
_BG_MONTHS = ("януари", "февруари", "март", "април", "май", "юни", "юли", "август",
              "септември", "октомври", "ноември", "декември")


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    author: str
    published: str  # YYYY-MM-DD
    section: str
    js: bool
    paragraphs: list[str]
    tags: tuple[str, ...] = ()
    modified: str = ""  # YYYY-MM-DD of a later edit, "" if never edited
    lastmod: bool = True  # the sitemaps give its <lastmod> (else only its news publication date)
    # "js: timeout" / "js: fetch": the text arrives after the load event, by a 150 ms timer or
    # from /news/<slug>.json (as real sites insert articles); "" for plain or inline-script pages
    late: str = ""

    @property
    def changed(self) -> str:
        return self.modified or self.published


def parse_article(path: Path) -> Article:
    """Read one article file; UserError naming the file and the fault."""
    fields, body = read_site_file(path, required=("title", "author", "published", "section"))
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["published"]):
        raise UserError(f"article {path}: published must be YYYY-MM-DD, got "
                        f"{fields['published']!r}")
    js = fields.get("js", "false").lower()
    if js not in ("true", "false", "timeout", "fetch"):
        raise UserError(f"article {path}: js must be true, false, timeout or fetch, got {js!r}")
    paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
    if not paragraphs:
        raise UserError(f"article {path}: no paragraphs after the header")
    return Article(path.stem, fields["title"], fields["author"], fields["published"],
                   fields["section"], js != "false", paragraphs,
                   late=js if js in ("timeout", "fetch") else "")


def load_articles(folder: Path) -> list[Article]:
    files = sorted(Path(folder).glob("*.txt"))
    if not files:
        raise UserError(f"no article files (*.txt) in {folder}")
    return sorted((parse_article(f) for f in files), key=lambda a: (a.published, a.slug),
                  reverse=True)


def slugify(title: str) -> str:
    return re.sub(r"\W+", "-", title.lower()).strip("-")[:60] or "item"


_PLACES = ["Ясеново", "Брезник", "Каменица", "Горно поле", "Старосел", "Дъбрава", "Пясъчник",
           "Белица", "Здравец", "Речица"]
_NEWS_SUBJECTS = ["Общинският съвет", "Кметът", "Местните жители", "Учениците", "Търговците",
                  "Лекарите", "Туристическият съюз", "Читалището", "Спортният клуб", "Пожарникарите"]
_NEWS_VERBS = ["обсъдиха нов план за", "поискаха повече средства за", "представиха резултатите от",
               "започнаха подготовка за", "отчетоха напредък по", "поставиха въпроса за"]
_NEWS_OBJECTS = ["ремонта на главната улица", "новата детска градина", "есенния панаир",
                 "водопровода в старата махала", "градския транспорт", "зимното почистване",
                 "реставрацията на читалището", "пазара за местни продукти"]
_NEWS_SECTIONS = ["Общество", "Икономика", "Култура", "Спорт", "Регионални"]
_NEWS_TAGS = ["транспорт", "образование", "бюджет", "фестивал", "футбол", "времето",
              "здравеопазване", "туризъм"]
_NEWS_AUTHORS = ["Веселина Крумова", "Огнян Дамянов", "Теодора Русева", "Благой Стаматов"]


def synthetic_articles(count: int, first: str = "2024-11-01", every_days: int = 6) -> list[Article]:
    """``count`` generated Bulgarian articles (our own sentences), one every ``every_days`` from
    ``first``, newest first: every 9th edited about a year later (if that is not past the newest),
    every 7th with no sitemap ``<lastmod>``, two tags each."""
    start = datetime.fromisoformat(first)
    last = start + timedelta(days=every_days * (count - 1))
    articles = []
    for n in range(count):
        day = start + timedelta(days=every_days * n)
        edited = day + timedelta(days=380)
        place = _PLACES[n % len(_PLACES)]
        paragraphs = [" ".join(
            f"{_NEWS_SUBJECTS[(n + p + k) % len(_NEWS_SUBJECTS)]} в {place} "
            f"{_NEWS_VERBS[(n * 5 + p + k) % len(_NEWS_VERBS)]} "
            f"{_NEWS_OBJECTS[(n * 3 + 2 * p + k) % len(_NEWS_OBJECTS)]}, съобщи "
            f"{_NEWS_AUTHORS[(n + k) % len(_NEWS_AUTHORS)].split()[0]} на събрание № {n * 7 + p}."
            for k in range(4)) for p in range(3)]
        articles.append(Article(
            f"{day:%Y-%m-%d}-novina-{n:04d}",
            f"{_NEWS_SUBJECTS[n % len(_NEWS_SUBJECTS)]} в {place} и "
            f"{_NEWS_OBJECTS[n % len(_NEWS_OBJECTS)]} (№ {n})",
            _NEWS_AUTHORS[n % len(_NEWS_AUTHORS)], f"{day:%Y-%m-%d}",
            _NEWS_SECTIONS[n % len(_NEWS_SECTIONS)], False, paragraphs,
            tags=(_NEWS_TAGS[n % len(_NEWS_TAGS)], _NEWS_TAGS[(n * 3 + 1) % len(_NEWS_TAGS)]),
            modified=f"{edited:%Y-%m-%d}" if n % 9 == 4 and edited <= last else "",
            lastmod=n % 7 != 3))
    return sorted(articles, key=lambda a: (a.published, a.slug), reverse=True)


@dataclass(frozen=True)
class LegacyItem:
    title: str
    description: str
    slug: str


class LegacyFeed:
    """A real legacy-encoded feed whose item links are rewritten to this server, bytes kept."""

    def __init__(self, path: Path):
        self.path = path
        self.raw = path.read_bytes()
        root = etree.fromstring(self.raw, etree.XMLParser(recover=True, resolve_entities=False))
        self.encoding = etree.ElementTree(root).docinfo.encoding
        self.is_cp1251 = codecs.lookup(self.encoding).name == "cp1251"
        self.items: list[LegacyItem] = []
        self.links: list[str] = []
        for el in root.iter():
            if not isinstance(el.tag, str) or etree.QName(el).localname not in ("item", "entry"):
                continue
            link, title, description = "", "", ""
            for child in el:
                name = etree.QName(child).localname if isinstance(child.tag, str) else ""
                if name == "link" and not link:
                    link = child.get("href") or (child.text or "").strip()
                elif name == "title" and not title:
                    title = " ".join((child.text or "").split())
                elif name in ("description", "summary", "content") and not description:
                    description = re.sub(r"<[^>]+>", " ", child.text or "")
            if link and title:
                self.items.append(LegacyItem(title, " ".join(description.split()),
                                             slugify(title)))
                self.links.append(link)

    def render(self, item_base: str) -> bytes:
        body = self.raw
        order = sorted(range(len(self.items)), key=lambda n: -len(self.links[n]))  # prefixes last
        for n in order:
            link, item = self.links[n], self.items[n]
            new = f"{item_base}/{n}/{item.slug}".encode(self.encoding, "xmlcharrefreplace")
            for form in {link, html.escape(link, quote=False)}:
                body = body.replace(form.encode(self.encoding), new)
        return body


class NewsSite:
    """Every page of a news site, built on request, shaped like a real Bulgarian news site's.

    - ``/robots.txt``: disallows ``/news/drafts/``, names ``/sitemap.xml``;
    - ``/sitemap.xml``: a sitemap index with ``<lastmod>``: the Google News sitemap
      ``/sitemaps/news.xml`` (the newest two days' articles only), one urlset per month of
      publication ``/sitemaps/YYYY-MM.xml`` (gzipped files ``.xml.gz`` for odd months) whose
      entries carry ``<lastmod>`` (an edit date when the article was edited later, and none at all
      for articles with ``lastmod=False``: those give only ``news:publication_date``), the tag
      and section pages ``/sitemaps/tags.xml``, a partner's sitemap on another host and, with
      fixtures, ``/sitemaps/real.xml.gz``; each monthly urlset also lists its first article on
      another host (``http://localhost:<port>``, a mirror domain a polite crawler leaves alone);
    - ``/rss.xml`` (every article), ``/``, ``/section/<name>``, ``/tag/<name>`` and a daily "all
      news" page ``/archive/YYYY-MM-DD`` (with a link to the day before): listings, never articles;
    - articles ``/news/<slug>.html`` with a menu, "most read", cookie notice, tags, comments and
      footer, rel=canonical, og:/article: meta tags and JSON-LD; ``js`` articles are inserted by
      inline JavaScript, so only a browser sees them. Pages also link to
      ``http://localhost:<port>/...`` (another host, same server) and to a draft under
      ``/news/drafts/``: a polite crawler fetches neither.

    With ``fixtures`` (the shared real-fixtures folder) it also serves, rewritten in memory only,
    the legacy RSS feeds as ``/legacy/<encoding folder>/<file>`` in their original bytes, item
    links pointing at ``/legacy/item/<encoding folder>/<file>/<n>/<slug from the title>``
    (Cyrillic, in the feed's encoding; those pages answer only when the slug was decoded right),
    keeping their legacy encoding: windows-1251 under a wrong ``charset=utf-8`` header (the XML
    prolog or meta tag is right), ISO-8859-5 with no charset in the header (pages: none at all);
    and the real Bulgarian article pages ``/real/<file>``, listed in ``/sitemaps/real.xml.gz``.
    """

    api_seconds = 1.0  # the article API of "js: fetch" pages answers this slowly

    def __init__(self, articles: list[Article], fixtures: Path | None = None):
        self.articles = articles
        self.by_slug = {a.slug: a for a in articles}
        self.sections = sorted({a.section for a in articles})
        self.tags = sorted({t for a in articles for t in a.tags})
        self.months: dict[str, list[Article]] = {}
        for a in articles:
            self.months.setdefault(a.published[:7], []).append(a)
        self.legacy: dict[str, LegacyFeed] = {}
        self.real: dict[str, Path] = {}
        if fixtures is not None:
            for folder in LEGACY_FOLDERS:
                for path in sorted((fixtures / "rss_legacy_encodings" / folder).glob("*.xml")):
                    self.legacy[f"{folder}/{path.name}"] = LegacyFeed(path)
            for path in sorted((fixtures / "news_html" / "htmldate_test_set").glob("*.html")):
                self.real[path.name] = path

    # -- routing ---------------------------------------------------------------------------

    def __call__(self, request: Request) -> Response | None:
        base, path = request.base, request.path
        other = f"http://localhost:{urlsplit(base).port}"
        if path == "/robots.txt":
            return Response(200, f"User-agent: *\nDisallow: /news/drafts/\nSitemap: {base}/sitemap.xml\n"
                            .encode())
        if path == "/rss.xml":
            return Response(200, self.rss(base, other), "application/rss+xml; charset=utf-8")
        if path == "/sitemap.xml":
            return Response(200, self.sitemap_index(base), "application/xml")
        if path == "/sitemaps/news.xml":
            newest = self.articles[0].published if self.articles else ""
            return Response(200, self.urlset(base, [a for a in self.articles if _days_between(
                a.published, newest) < 2]), "application/xml")
        m = re.fullmatch(r"/sitemaps/(\d{4}-\d{2})\.xml(\.gz)?", path)
        if m and m.group(1) in self.months and bool(m.group(2)) == self.gzipped(m.group(1)):
            month = self.months[m.group(1)]
            body = self.urlset(base, month, mirror=(f"http://localhost:{urlsplit(base).port}",
                                                    month[0]))
            return (Response(200, gzip.compress(body), "application/x-gzip") if m.group(2)
                    else Response(200, body, "application/xml"))
        if path == "/sitemaps/tags.xml":
            return Response(200, self.listing_urlset(base), "application/xml")
        if path == "/sitemaps/real.xml.gz" and self.real:
            return Response(200, gzip.compress(_urlset(
                f"<url><loc>{base}/real/{quote(name)}</loc></url>" for name in self.real)),
                "application/x-gzip")
        if path == "/" or path.startswith("/section/"):
            section = path.removeprefix("/section/") if path != "/" else None
            if section is not None and section not in self.sections:
                return self.not_found
            return Response(200, self.listing_page(base, other, section or "Последни новини", [
                a for a in self.articles if section is None or a.section == section]), HTML)
        if path.startswith("/tag/") and path[5:] in self.tags:
            return Response(200, self.listing_page(base, other, f"Етикет: {path[5:]}", [
                a for a in self.articles if path[5:] in a.tags]), HTML)
        m = re.fullmatch(r"/archive/(\d{4}-\d{2}-\d{2})", path)
        if m and _is_date(m.group(1)):
            return Response(200, self.day_page(base, other, m.group(1)), HTML)
        m = re.fullmatch(r"/news/([^/]+)\.json", path)
        if m and m.group(1) in self.by_slug and self.by_slug[m.group(1)].late == "fetch":
            time.sleep(self.api_seconds)
            return Response(200, json.dumps(self.by_slug[m.group(1)].paragraphs,
                                            ensure_ascii=False).encode(), "application/json")
        m = re.fullmatch(r"/news/(drafts/)?([^/]+)\.html", path)
        if m and m.group(2) in self.by_slug:
            return Response(200, self.article_page(base, other, self.by_slug[m.group(2)],
                                                   draft=bool(m.group(1))), HTML)
        if path.startswith("/legacy/"):
            return self.legacy_response(base, path)
        if path.startswith("/real/") and path[6:] in self.real:
            return Response(200, self.real[path[6:]].read_bytes(), HTML)
        return None

    not_found = Response(404, "<html><body><h1>404 Няма такава страница</h1></body></html>".encode(),
                         "text/html; charset=utf-8")

    # -- feeds and sitemaps -------------------------------------------------------------------

    def rss(self, base: str, other: str) -> bytes:
        items = []
        for a in self.articles:
            items.append(
                f"<item><title>{html.escape(a.title)}</title>"
                f"<link>{base}/news/{quote(a.slug)}.html?utm_source=rss</link>"
                f"<guid isPermaLink=\"false\">demo-{html.escape(a.slug)}</guid>"
                f"<pubDate>{_rfc822(a.published)}</pubDate>"
                f"<dc:creator>{html.escape(a.author)}</dc:creator>"
                f"<category>{html.escape(a.section)}</category>"
                f"<description>{html.escape(a.paragraphs[0][:200])}</description></item>")
        if self.articles:  # a partner's story: another host, which a crawler must not follow
            items.append(f"<item><title>Партньорска новина</title>"
                         f"<link>{other}/news/{quote(self.articles[-1].slug)}.html</link></item>")
        return (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
                f'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
                f"<title>{SITE_NAME}</title><link>{base}/</link><language>bg</language>"
                f"<description>Последни новини</description>{''.join(items)}</channel></rss>"
                ).encode()

    @staticmethod
    def gzipped(month: str) -> bool:
        """Odd months' sitemaps are ``.xml.gz`` files."""
        return int(month[5:]) % 2 == 1

    def sitemap_index(self, base: str) -> bytes:
        newest = max((a.changed for a in self.articles), default="")
        maps = [(f"{base}/sitemaps/news.xml", newest)]
        maps += [(f"{base}/sitemaps/{month}.xml{'.gz' if self.gzipped(month) else ''}",
                  max(a.changed for a in articles)) for month, articles in sorted(self.months.items())]
        maps.append((f"{base}/sitemaps/tags.xml", newest))
        maps.append((f"http://localhost:{urlsplit(base).port}/sitemaps/partner.xml", newest))
        if self.real:
            maps.append((f"{base}/sitemaps/real.xml.gz", ""))
        entries = "".join(f"<sitemap><loc>{loc}</loc>" + (f"<lastmod>{day}T09:00:00+03:00</lastmod>"
                                                          if day else "") + "</sitemap>"
                          for loc, day in maps)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns='
                f'"http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>').encode()

    def urlset(self, base: str, articles: Iterable[Article],
               mirror: tuple[str, Article] | None = None) -> bytes:
        """The articles' urlset; ``mirror`` (another base, an article): that one there too."""
        rows = []
        for where, a in [(base, a) for a in articles] + ([mirror] if mirror else []):
            lastmod = f"<lastmod>{a.changed}T09:00:00+03:00</lastmod>" if a.lastmod else ""
            rows.append(f"<url><loc>{where}/news/{quote(a.slug)}.html</loc>{lastmod}"
                        f"<news:news><news:publication><news:name>{SITE_NAME}</news:name>"
                        "<news:language>bg</news:language></news:publication>"
                        f"<news:publication_date>{a.published}</news:publication_date>"
                        f"<news:title>{html.escape(a.title)}</news:title></news:news></url>")
        return _urlset(rows)

    def listing_urlset(self, base: str) -> bytes:
        newest = max((a.changed for a in self.articles), default="2026-01-01")
        return _urlset(f"<url><loc>{base}/{kind}/{quote(name)}</loc><lastmod>{newest}</lastmod>"
                       "<changefreq>daily</changefreq></url>"
                       for kind, names in (("section", self.sections), ("tag", self.tags))
                       for name in names)

    # -- HTML pages -----------------------------------------------------------------------------

    def _chrome(self, base: str, other: str, title: str, main: str, head: str = "",
                current: Article | None = None) -> bytes:
        menu = "".join(f'<li><a href="{base}/section/{quote(s)}">{html.escape(s)}</a></li>'
                       for s in self.sections)
        most_read = "".join(
            f'<li><a href="{base}/news/{quote(a.slug)}.html">{html.escape(a.title)}</a></li>'
            for a in self.articles[:5] if a is not current)
        page = f"""<!DOCTYPE html>
<html lang="bg">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} | {SITE_NAME}</title>
{head}
</head>
<body>
<header class="site-header">
  <a class="logo" href="{base}/">{SITE_NAME}</a>
  <nav class="main-menu"><ul><li><a href="{base}/">Начало</a></li>{menu}</ul></nav>
  <form class="search" action="{base}/search"><input name="q" placeholder="Търсене"></form>
</header>
<div id="cookie-notice" class="cookie-notice">Този сайт използва бисквитки, за да подобри
вашето преживяване. Продължавайки, вие се съгласявате с <a href="{base}/cookies">политиката
за бисквитки</a>. <button>Приемам</button></div>
<div class="layout">
<main>{main}</main>
<aside class="sidebar">
  <section class="most-read"><h3>Най-четени</h3><ol>{most_read}</ol></section>
  <section class="partners"><h3>От партньорите</h3><ul>
    <li><a href="{other}/news/{quote(self.articles[-1].slug)}.html">Още новини от мрежата</a></li>
  </ul></section>
  <section class="newsletter"><h3>Бюлетин</h3><p>Абонирайте се за нашия бюлетин и получавайте
  най-важното всяка сутрин.</p></section>
</aside>
</div>
<footer class="site-footer"><p>© 2026 {SITE_NAME}. Всички права запазени.</p>
<ul><li><a href="{base}/about">За нас</a></li><li><a href="{base}/contacts">Контакти</a></li>
<li><a href="{base}/rss.xml">RSS</a></li><li><a href="{base}/cookies">Бисквитки</a></li></ul>
</footer>
</body>
</html>
"""
        return page.encode("utf-8")

    def listing_page(self, base: str, other: str, heading: str, shown: list[Article],
                     more: str = "") -> bytes:
        """A section, tag or day listing: article cards (and a draft preview link)."""
        cards = "".join(
            f'<article class="card"><h2><a href="{base}/news/{quote(a.slug)}.html">'
            f'{html.escape(a.title)}</a></h2><p class="lead">{html.escape(a.paragraphs[0][:160])}'
            f'…</p><span class="date">{_bg_date(a.published)}</span>'
            + "".join(f' <a class="tag" href="{base}/tag/{quote(t)}">#{html.escape(t)}</a>'
                      for t in a.tags) + "</article>" for a in shown)
        draft = (f'<p class="preview"><a href="{base}/news/drafts/{quote(shown[0].slug)}.html">'
                 "Предварителен преглед</a></p>" if shown else "")
        return self._chrome(base, other, heading, f'<h1>{html.escape(heading)}</h1><div '
                            f'class="cards">{cards or "<p>Няма новини.</p>"}</div>{draft}{more}')

    def day_page(self, base: str, other: str, day: str) -> bytes:
        """The daily "all news" page, with a link to the day before."""
        before = (datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat()
        return self.listing_page(base, other, f"Всички новини от {_bg_date(day)}",
                                 [a for a in self.articles if a.published == day],
                                 f'<p class="older"><a href="{base}/archive/{before}">По-стари '
                                 "новини</a></p>")

    def article_page(self, base: str, other: str, a: Article, draft: bool = False) -> bytes:
        url = f"{base}/news/{quote(a.slug)}.html"
        published = f"{a.published}T09:00:00+03:00"
        ld = {"@context": "https://schema.org", "@graph": [
            {"@type": "Organization", "@id": f"{base}/#org", "name": SITE_NAME},
            {"@type": "NewsArticle", "headline": a.title, "datePublished": published,
             "author": {"@type": "Person", "name": a.author}, "mainEntityOfPage": url,
             "articleSection": a.section, "inLanguage": "bg",
             "publisher": {"@id": f"{base}/#org"}}]}
        head = (f'<link rel="canonical" href="{url}">\n'
                f'<meta property="og:type" content="article">\n'
                f'<meta property="og:title" content="{html.escape(a.title)}">\n'
                f'<meta property="og:url" content="{url}">\n'
                f'<meta name="author" content="{html.escape(a.author)}">\n'
                f'<meta property="article:published_time" content="{published}">\n'
                f'<meta property="article:section" content="{html.escape(a.section)}">\n'
                '<script type="application/ld+json">'
                f"{json.dumps(ld, ensure_ascii=False)}</script>")
        if a.modified:
            head += f'\n<meta property="article:modified_time" content="{a.modified}T12:00:00+03:00">'
        if draft:
            head += '\n<meta name="robots" content="noindex">'
        if a.late:
            blob = base64.b64encode(json.dumps(a.paragraphs, ensure_ascii=False).encode()).decode()
            source = (f"fetch('/news/{quote(a.slug)}.json').then(function (r) {{ return r.json(); }})"
                      if a.late == "fetch" else  # the text, base64 in the page, after a timer
                      "new Promise(function (done) { setTimeout(done, 150, JSON.parse(new "
                      f"TextDecoder('utf-8').decode(Uint8Array.from(atob('{blob}'), function (c) "
                      "{ return c.charCodeAt(0); })))); })")
            body = ('<div class="article-body" id="article-body"></div>\n<script>\n'
                    "window.addEventListener('load', function () {\n"
                    f"  {source}.then(function (paras) {{\n"
                    "    var box = document.getElementById('article-body');\n"
                    "    paras.forEach(function (t) { var p = document.createElement('p');"
                    " p.textContent = t; box.appendChild(p); });\n"
                    "  });\n});\n</script>")
        elif a.js:
            blob = base64.b64encode(json.dumps(a.paragraphs, ensure_ascii=False).encode()).decode()
            body = ('<div class="article-body" id="article-body"></div>\n<script>\n'
                    "(function () {\n"
                    f'  var data = "{blob}";\n'
                    "  var bytes = Uint8Array.from(atob(data), function (c) "
                    "{ return c.charCodeAt(0); });\n"
                    "  var paras = JSON.parse(new TextDecoder('utf-8').decode(bytes));\n"
                    "  var box = document.getElementById('article-body');\n"
                    "  paras.forEach(function (t) { var p = document.createElement('p');"
                    " p.textContent = t; box.appendChild(p); });\n"
                    "})();\n</script>")
        else:
            body = ('<div class="article-body" id="article-body">'
                    + "".join(f"<p>{html.escape(p)}</p>" for p in a.paragraphs) + "</div>")
        comments = "".join(
            f'<li class="comment"><span class="user">{u}</span><p>{t}</p></li>' for u, t in (
                ("Иван", "Много интересно, благодаря за статията!"),
                ("Мария_72", "А кога ще има продължение? Чакам с нетърпение."),
                ("гост", "Всичко това го знаехме и преди, нищо ново.")))
        tags = "".join(f'<li><a href="{base}/tag/{quote(t)}">{html.escape(t)}</a></li>'
                       for t in a.tags)
        main = f"""<article class="article">
<nav class="breadcrumbs"><a href="{base}/">Начало</a> › <a href="{base}/section/{quote(a.section)}">{html.escape(a.section)}</a></nav>
<h1 class="article-title">{html.escape(a.title)}</h1>
<div class="byline">Автор: <a rel="author" href="{base}/authors/{quote(a.author)}">{html.escape(a.author)}</a>
<time datetime="{published}">{_bg_date(a.published)}</time></div>
{body}
<ul class="tags">{tags}</ul>
<div class="share">Сподели: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Viber</a></div>
</article>
<section class="comments"><h3>Коментари (3)</h3><ul>{comments}</ul>
<p>Влезте в профила си, за да коментирате.</p></section>"""
        return self._chrome(base, other, a.title, main, head, current=a)

    # -- fixture material -----------------------------------------------------------------------

    def legacy_response(self, base: str, path: str) -> Response:
        m = re.fullmatch(r"/legacy/item/([^/]+/[^/]+)/(\d+)/(.+)", path)
        if m:
            feed = self.legacy.get(m.group(1))
            n = int(m.group(2))
            if feed is None or n >= len(feed.items) or feed.items[n].slug != m.group(3):
                return self.not_found
            item = feed.items[n]
            page = (f"<html><head><title>{html.escape(item.title)}</title></head><body>"
                    f"<h1>{html.escape(item.title)}</h1><p>{html.escape(item.description)}</p>"
                    "</body></html>")
            if feed.is_cp1251:
                # a declared charset, contradicted by a wrong header
                page = page.replace("<head>", f'<head><meta charset="{feed.encoding}">')
                ctype = "text/html; charset=utf-8"
            else:  # no charset anywhere: only the bytes tell
                ctype = "text/html"
            return Response(200, page.encode(feed.encoding, "xmlcharrefreplace"), ctype)
        feed = self.legacy.get(path.removeprefix("/legacy/"))
        if feed is None:
            return self.not_found
        # windows-1251 under a wrong header charset (only the XML prolog is right); ISO-8859-5
        # with no charset in the header
        ctype = "application/rss+xml" + ("; charset=utf-8" if feed.is_cp1251 else "")
        return Response(200, feed.render(f"{base}/legacy/item/{path.removeprefix('/legacy/')}"), ctype)


def _rfc822(day: str) -> str:
    return format_datetime(datetime.fromisoformat(day).replace(
        hour=9, tzinfo=timezone(timedelta(hours=3))))


def _bg_date(day: str) -> str:
    y, m, d = (int(x) for x in day.split("-"))
    return f"{d} {_BG_MONTHS[m - 1]} {y} г."


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _days_between(first: str, last: str) -> int:
    return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).days


def _urlset(rows: Iterable[str]) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
            'schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
            + "".join(rows) + "</urlset>").encode()


class NewsReplay(ReplayServer):
    """The news site in a background thread: ``with NewsReplay(folder) as site: site.url("/rss.xml")``.

    ``articles``: a folder of article files or a list of ``Article``; ``requests`` lists every
    (host, path) served, for tests to check what was fetched.
    """

    def __init__(self, articles: Path | list[Article], port: int = 0, fixtures: Path | None = None,
                 host: str = "127.0.0.1", faults: Faults | None = None):
        self.site = NewsSite(articles if isinstance(articles, list) else load_articles(articles),
                             fixtures)
        self.not_found = self.site.not_found
        super().__init__(self.site, port=port, host=host, faults=faults)


# -- the command line ---------------------------------------------------------------------------


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shapes = parser.add_subparsers(dest="shape", required=True)
    wiki = shapes.add_parser("wiki", help="the MediaWiki Action API of a folder of page files")
    wiki.add_argument("--site", type=Path, default=Path(__file__).parent / "site" / "wiki",
                      help="folder of page *.txt files (default: the bundled demo wiki)")
    wiki.add_argument("--port", type=int, default=8765)
    wiki.add_argument("--maxlag-faults", type=int, default=0, help="answer maxlag this many times")
    wiki.add_argument("--ratelimit-faults", type=int, default=0, help="answer 429 this many times")
    news = shapes.add_parser("news", help="a news site of a folder of article files")
    news.add_argument("--site", type=Path, default=Path(__file__).parent / "site" / "news",
                      help="folder of article *.txt files (default: the bundled demo site)")
    news.add_argument("--port", type=int, default=8766)
    news.add_argument("--fixtures", type=Path, default=None,
                      help="shared fixtures folder: also serve the legacy feeds and real pages")
    args = parser.parse_args(argv)
    try:
        if args.shape == "wiki":
            pages = load_site(args.site)
            server = WikiReplay(pages, args.port, maxlag_faults=args.maxlag_faults,
                                ratelimit_faults=args.ratelimit_faults)
            banner = f"MediaWiki replay: {len(pages)} pages, API at {server.api}"
        else:
            if args.fixtures is not None and not args.fixtures.is_dir():
                raise UserError(f"fixtures folder not found: {args.fixtures}")
            server = NewsReplay(args.site, args.port, args.fixtures)
            banner = (f"news replay of {args.site} on {server.url()} (rss.xml, sitemap.xml, "
                      f"{len(server.site.articles)} articles"
                      + (f", {len(server.site.legacy)} legacy feeds" if server.site.legacy else "")
                      + ")")
    except OSError as exc:
        raise UserError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    server.serve_until_interrupted(banner)


if __name__ == "__main__":
    main()
