"""The replay core: a threaded HTTP/1.1 server on 127.0.0.1 that answers from sites and files.

``ReplayServer`` answers GET, HEAD and POST from *sites* — callables taking a ``Request`` and
returning a ``Response``, or None for "not mine" — and from ``files``, a mapping of paths to bytes
or to a file on disk. It gzips bodies when the client asks, and serves files like a download
server: ``Accept-Ranges``, ``ETag``, ``Last-Modified``, ``Range: bytes=N-`` answered with 206 (416
past the end) and ``If-Range``. ``requests`` lists every (host, path) served and ``counts`` tallies
``"GET /path"``.

It can be as hard as the real thing: ``Faults`` (switchable while it runs, per path regex) slows
every body to ``rate`` bytes/s, stalls a body after ``stall_after`` bytes (the connection stays
open, silent, so a test can kill a download part-way), or truncates it after ``truncate_after``
bytes (the connection drops short of its Content-Length).

A site routes through a table (``route``): (compiled pattern, handler) pairs, the first handler
whose pattern matches the whole path and answers wins.
"""

from __future__ import annotations

import mimetypes
import re
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from common.errors import UserError


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
Site = Callable[[Request], "Response | None"]
Route = tuple[re.Pattern[str], Callable[..., "Response | None"]]
NOT_FOUND = Response(404, b"Not Found")
HTML = "text/html; charset=utf-8"
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



def route(routes: Iterable[Route], request: Request) -> Response | None:
    """The first answer of the handlers whose pattern matches the whole path; each is called with
    the request and the pattern's groups, and may answer None to pass it on."""
    for pattern, handler in routes:
        match = pattern.fullmatch(request.path)
        if match:
            response = handler(request, *match.groups())
            if response is not None:
                return response
    return None
