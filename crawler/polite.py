"""A small, polite HTTP client for the source check (``crawler.check``): the standard library's
``urllib``, one request at a time, the configured delay between two requests to a host,
robots.txt obeyed, redirects followed only on the same host (a redirect to another host is
reported as a move, not followed), every request logged for the report.
"""

from __future__ import annotations

import time
import urllib.robotparser
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urljoin, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

from crawler.extensions import cause_line

MAX_BYTES = 50 * 1024 * 1024  # a sitemap may be 50 MB
REDIRECTS = 5


@dataclass
class Answer:
    """What one request got: a status and body, a move to another host, or a failure."""

    url: str
    status: int = 0
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    moved_to: str = ""  # a redirect (``status``) to another host, not followed
    error: str = ""  # could not connect / no answer, or robots.txt forbids it

    @property
    def ok(self) -> bool:
        return not self.error and not self.moved_to and 200 <= self.status < 300


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # every 3xx comes back as an HTTPError
        return None


class Client:
    """GET/POST with ``agent``, ``delay`` seconds between two requests to one host."""

    def __init__(self, agent: str, delay: float, timeout: float = 30):
        self.agent, self.delay, self.timeout = agent, delay, timeout
        self.opener = build_opener(_NoRedirects)
        self.last: dict[str, float] = {}
        self.robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.requests = 0

    def fetch(self, url: str, form: dict[str, str] | None = None, obey_robots: bool = True
              ) -> Answer:
        """One URL (``form``: a POST), same-host redirects followed."""
        if obey_robots and not self.allowed(url):
            return Answer(url, error=f"robots.txt disallows {urlsplit(url).path or '/'}")
        for _ in range(REDIRECTS):
            answer = self._once(url, form)
            location = answer.headers.get("location", "")
            if not (300 <= answer.status < 400 and location):
                return answer
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                answer.moved_to = target
                return answer
            url, form = target, None
        return Answer(url, error=f"more than {REDIRECTS} redirects")

    def allowed(self, url: str) -> bool:
        """robots.txt of ``url``'s host allows it (an unreadable robots.txt allows everything)."""
        parts = urlsplit(url)
        if parts.path == "/robots.txt":
            return True
        host = f"{parts.scheme}://{parts.netloc}"
        if host not in self.robots:
            self.robots_answer(host)
        return self.robots[host].can_fetch(self.agent, url)

    def robots_answer(self, host: str) -> Answer:
        """Fetch ``host``'s robots.txt (once) and keep its rules; its answer."""
        answer = self.fetch(f"{host}/robots.txt")
        rules = urllib.robotparser.RobotFileParser()
        rules.parse(answer.body.decode("utf-8", "replace").splitlines() if answer.ok else [])
        self.robots[host] = rules
        return answer

    @contextmanager
    def turn(self, url: str) -> Iterator[None]:
        """One request to ``url``'s host, made inside: ``delay`` after the last one there ends,
        counted in ``requests``, its end the start of the next wait (a Chromium render too)."""
        host = urlsplit(url).netloc
        wait = self.last.get(host, 0.0) + self.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.requests += 1
        try:
            yield
        finally:
            self.last[host] = time.monotonic()

    def _once(self, url: str, form: dict[str, str] | None) -> Answer:
        with self.turn(url):
            return self._request(url, form)

    def _request(self, url: str, form: dict[str, str] | None) -> Answer:
        host = urlsplit(url).netloc
        data = urlencode(form).encode() if form is not None else None
        request = Request(url, data=data, headers={"User-Agent": self.agent,
                                                   "Accept-Encoding": "identity"})
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return Answer(url, response.status, response.read(MAX_BYTES),
                              {k.lower(): v for k, v in response.headers.items()})
        except HTTPError as exc:
            with exc:
                return Answer(url, exc.code, exc.read(MAX_BYTES),
                              {k.lower(): v for k, v in exc.headers.items()})
        except (URLError, OSError, HTTPException) as exc:
            return Answer(url, error=_why(getattr(exc, "reason", exc), host))


def _why(reason: object, host: str) -> str:
    """A failed connection in the crawl summary's words (``connection refused by host``...)."""
    if isinstance(reason, ConnectionRefusedError):
        return cause_line("refused", host)
    if isinstance(reason, TimeoutError):
        return cause_line("timeout", host)
    if "Name or service not known" in str(reason) or "resolution" in str(reason):
        return cause_line("dns", host)
    return cause_line(type(reason).__name__ if isinstance(reason, BaseException) else str(reason),
                      host)
