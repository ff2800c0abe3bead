"""A MediaWiki Action API replay server on 127.0.0.1 for tests, the demo and the crawl benchmark.

It answers ``action=query`` (title resolution with ``normalized``/``redirects``/``missing``/
``invalid``, and ``list=categorymembers`` with continuation) and ``action=parse`` in the documented
``formatversion=2`` JSON shapes, by GET or POST, gzip when asked. Like Wikimedia it refuses generic
User-Agents (403), refuses more than 50 titles a request, serves a robots.txt that disallows
``/w/``, and can inject faults: a ``maxlag`` error and a 429 with Retry-After.

Pages come from a site folder of ``*.txt`` files (``title:``/``categories:``/``redirects:`` header,
a blank line, then paragraphs and ``== Heading ==`` lines; ``[[Link]]``, ``[[Link|text]]`` and
``'''bold'''`` inline) rendered into parser output shaped like bg.wikipedia's: infobox, table of
contents, reference marks, edit-section links, „Бележки“, „Външни препратки“ and a navbox.
Pages may also carry ready parser-output HTML.

    python -m demo.mediawiki_replay --site demo/site/wiki --port 8765
"""

from __future__ import annotations

import argparse
import html
import json
import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from common.errors import UserError, cli_main

ROBOTS_TXT = """# Like every Wikimedia wiki's robots.txt: /w/ (index.php, api.php) is not for search crawlers.
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


def parse_page_file(text: str) -> Page:
    """A site page file: header lines ``key: value``, a blank line, the body."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    meta: dict[str, str] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"header line without 'key:': {line!r}")
        meta[key.strip().lower()] = value.strip()
    if not meta.get("title"):
        raise ValueError("no 'title:' header")

    def split(key: str) -> list[str]:
        return [v.strip() for v in meta.get(key, "").split("|") if v.strip()]

    return Page(meta["title"], body.strip(), split("categories"), split("redirects"))


def load_site(folder: str | Path) -> list[Page]:
    """Every ``*.txt`` page of a site folder, in name order."""
    folder = Path(folder)
    if not any(folder.glob("*.txt")) and (folder / "wiki").is_dir():
        folder = folder / "wiki"  # a whole demo site folder: its wiki/ part
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise UserError(f"no *.txt pages in site folder {folder}")
    pages = []
    for path in files:
        try:
            pages.append(parse_page_file(path.read_text(encoding="utf-8")))
        except (ValueError, UnicodeDecodeError) as exc:
            raise UserError(f"site page {path}: {exc}") from None
    return pages


def _canon(title: str) -> str:
    title = " ".join(title.replace("_", " ").split())
    return title[:1].upper() + title[1:]


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
        for number, page in enumerate(pages, 1):
            page.pageid = page.pageid or 1000 + number
            page.revid = page.revid or 9_000_000 + 37 * number
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
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.batch_sizes: list[int] = []
        self.agents: set[str] = set()
        self.parse_cache: dict[int, bytes] = {}

    def count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

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


class Handler(BaseHTTPRequestHandler):
    server_version = "mw-replay/1.0"
    protocol_version = "HTTP/1.1"
    wiki: Wiki

    def log_message(self, format, *args) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def do_GET(self) -> None:
        self._serve(urlsplit(self.path).query)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        self._serve(body, urlsplit(self.path).query)

    def _serve(self, query: str, url_query: str = "") -> None:
        wiki = self.wiki
        path = urlsplit(self.path).path
        wiki.count(f"{self.command} {path}")
        agent = self.headers.get("User-Agent", "")
        with wiki.lock:
            wiki.agents.add(agent)
        if path == "/robots.txt":
            return self._send(200, ROBOTS_TXT.encode(), "text/plain; charset=utf-8")
        if path != "/w/api.php":
            return self._send(404, b"Not Found", "text/plain")
        if not agent or GENERIC_AGENTS.match(agent) or "(" not in agent:
            wiki.count("refused-agent")
            return self._send(403, b"Please set a user-agent and respect our robot policy "
                              b"https://w.wiki/4wJS.", "text/plain")
        if wiki.delay:
            time.sleep(wiki.delay)
        if wiki.take_fault("ratelimit_faults"):
            wiki.count("fault=429")
            return self._send(429, b"Too many requests.", "text/plain",
                              {"Retry-After": str(wiki.retry_after)})
        params = {k: v[-1] for k, v in parse_qs(url_query, keep_blank_values=True).items()}
        params.update({k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()})
        status, headers, payload = wiki.api(params)
        body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
        self._send(status, body, "application/json; charset=utf-8", headers)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        if "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 200:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
            body = compressor.compress(body) + compressor.flush()
            self.send_header("Content-Encoding", "gzip")
            self.wiki.count("gzip")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class ReplayServer:
    """The replay API in a background thread: ``with ReplayServer(pages) as srv: srv.api``."""

    def __init__(self, pages: list[Page], port: int = 0, **wiki_options):
        self.wiki = Wiki(pages, **wiki_options)
        handler = type("BoundHandler", (Handler,), {"wiki": self.wiki})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def api(self) -> str:
        return self.base + "/w/api.php"

    def __enter__(self) -> ReplayServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", required=True, help="folder of page *.txt files (e.g. demo/site/wiki)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--maxlag-faults", type=int, default=0, help="answer maxlag this many times")
    parser.add_argument("--ratelimit-faults", type=int, default=0, help="answer 429 this many times")
    args = parser.parse_args(argv)
    pages = load_site(args.site)
    server = ReplayServer(pages, args.port, maxlag_faults=args.maxlag_faults,
                          ratelimit_faults=args.ratelimit_faults)
    print(f"MediaWiki replay: {len(pages)} pages, API at {server.api} (Ctrl-C stops)", flush=True)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()


if __name__ == "__main__":
    main()
