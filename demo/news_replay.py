"""A news-site replay server on 127.0.0.1, for the demo, the tests and the crawl benchmark.

It serves a folder of article files (``title:``/``author:``/``published:``/``section:``/``js:``
header lines, a blank line, then paragraphs separated by blank lines) as a small news site:
``/robots.txt`` (disallows ``/news/drafts/``, names the sitemap), ``/rss.xml``, ``/sitemap.xml``
(an index of ``/sitemaps/news.xml``), ``/`` and ``/section/<name>`` pages, and article pages
``/news/<file stem>.html`` with realistic boilerplate (menu, "most read" sidebar, cookie notice,
comments, footer), rel=canonical, og: and article: meta tags and JSON-LD. An article marked
``js: true`` is served with an empty body container; inline JavaScript inserts its text, so only
a browser sees it. Pages also link to ``http://localhost:<port>/...`` (another host, same server)
and to a draft under ``/news/drafts/``: a polite crawler fetches neither.

With ``fixtures`` (the shared real-fixtures folder) it also serves, rewritten in memory only:
the legacy RSS feeds as ``/legacy/<encoding folder>/<file>`` in their original bytes, with item
links pointing at ``/legacy/item/<encoding folder>/<file>/<n>/<slug from the title>`` (Cyrillic,
in the feed's encoding); those pages answer only when the slug was decoded right. Feeds and
pages keep their legacy encoding: windows-1251 under a wrong ``charset=utf-8`` header (the XML
prolog or meta tag is right), ISO-8859-5 with no charset in the header (pages: none at all). The real Bulgarian article pages are ``/real/<file>``, listed in the gzipped
sitemap ``/sitemaps/real.xml.gz``.

``python -m demo.news_replay --site DIR --port N [--fixtures DIR]``
"""

from __future__ import annotations

import argparse
import base64
import codecs
import gzip
import html
import json
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from lxml import etree

from common.errors import UserError, cli_main

SITE_NAME = "Демо новини"
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


def parse_article(path: Path) -> Article:
    """Read one article file; UserError naming the file and the fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"article {path}: not UTF-8 (bad byte at offset {exc.start})") from None
    head, sep, body = text.replace("\r\n", "\n").partition("\n\n")
    fields = {}
    for n, line in enumerate(head.splitlines(), 1):
        key, colon, value = line.partition(":")
        if not colon:
            raise UserError(f"article {path}:{n}: expected 'key: value', got {line!r}")
        fields[key.strip().lower()] = value.strip()
    missing = [k for k in ("title", "author", "published", "section") if not fields.get(k)]
    if missing:
        raise UserError(f"article {path}: missing {', '.join(missing)}")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["published"]):
        raise UserError(f"article {path}: published must be YYYY-MM-DD, got "
                        f"{fields['published']!r}")
    js = fields.get("js", "false").lower()
    if js not in ("true", "false"):
        raise UserError(f"article {path}: js must be true or false, got {js!r}")
    paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
    if not sep or not paragraphs:
        raise UserError(f"article {path}: no paragraphs after the header")
    return Article(path.stem, fields["title"], fields["author"], fields["published"],
                   fields["section"], js == "true", paragraphs)


def load_articles(folder: Path) -> list[Article]:
    files = sorted(Path(folder).glob("*.txt"))
    if not files:
        raise UserError(f"no article files (*.txt) in {folder}")
    return sorted((parse_article(f) for f in files), key=lambda a: (a.published, a.slug),
                  reverse=True)


def slugify(title: str) -> str:
    return re.sub(r"\W+", "-", title.lower()).strip("-")[:60] or "item"


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
    """Every page of the site, built on request (``base``: this request's scheme://host:port)."""

    def __init__(self, articles: list[Article], fixtures: Path | None = None):
        self.articles = articles
        self.by_slug = {a.slug: a for a in articles}
        self.sections = sorted({a.section for a in articles})
        self.legacy: dict[str, LegacyFeed] = {}
        self.real: dict[str, Path] = {}
        if fixtures is not None:
            for folder in LEGACY_FOLDERS:
                for path in sorted((fixtures / "rss_legacy_encodings" / folder).glob("*.xml")):
                    self.legacy[f"{folder}/{path.name}"] = LegacyFeed(path)
            for path in sorted((fixtures / "news_html" / "htmldate_test_set").glob("*.html")):
                self.real[path.name] = path

    # -- routing ---------------------------------------------------------------------------

    def respond(self, base: str, path: str) -> tuple[int, str, bytes]:
        """(status, content type, body) for a request path."""
        port = urlsplit(base).port
        other = f"http://localhost:{port}"
        path = unquote(urlsplit(path).path)
        if path == "/robots.txt":
            return 200, "text/plain; charset=utf-8", (
                f"User-agent: *\nDisallow: /news/drafts/\nSitemap: {base}/sitemap.xml\n").encode()
        if path == "/rss.xml":
            return 200, "application/rss+xml; charset=utf-8", self.rss(base, other)
        if path == "/sitemap.xml":
            return 200, "application/xml", self.sitemap_index(base)
        if path == "/sitemaps/news.xml":
            return 200, "application/xml", self.urlset(
                (f"{base}/news/{quote(a.slug)}.html", a) for a in self.articles)
        if path == "/sitemaps/real.xml.gz" and self.real:
            return 200, "application/x-gzip", gzip.compress(self.urlset(
                (f"{base}/real/{name}", None) for name in self.real))
        if path == "/" or path.startswith("/section/"):
            section = path.removeprefix("/section/") if path != "/" else None
            if section is not None and section not in self.sections:
                return self.not_found()
            return 200, "text/html; charset=utf-8", self.section_page(base, other, section)
        m = re.fullmatch(r"/news/(drafts/)?([^/]+)\.html", path)
        if m and m.group(2) in self.by_slug:
            article = self.by_slug[m.group(2)]
            return 200, "text/html; charset=utf-8", self.article_page(base, other, article,
                                                                      draft=bool(m.group(1)))
        if path.startswith("/legacy/"):
            return self.legacy_response(base, path)
        if path.startswith("/real/") and path[6:] in self.real:
            return 200, "text/html; charset=utf-8", self.real[path[6:]].read_bytes()
        return self.not_found()

    @staticmethod
    def not_found() -> tuple[int, str, bytes]:
        return 404, "text/html; charset=utf-8", "<html><body><h1>404 Няма такава страница</h1>" \
            "</body></html>".encode()

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

    def sitemap_index(self, base: str) -> bytes:
        maps = [f"{base}/sitemaps/news.xml"] + ([f"{base}/sitemaps/real.xml.gz"] if self.real else [])
        entries = "".join(f"<sitemap><loc>{m}</loc></sitemap>" for m in maps)
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns='
                f'"http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>').encode()

    @staticmethod
    def urlset(entries: Iterable[tuple[str, Article | None]]) -> bytes:
        rows = []
        for url, a in entries:
            news = ""
            if a is not None:
                news = (f"<news:news><news:publication><news:name>{SITE_NAME}</news:name>"
                        "<news:language>bg</news:language></news:publication>"
                        f"<news:publication_date>{a.published}</news:publication_date>"
                        f"<news:title>{html.escape(a.title)}</news:title></news:news>")
            rows.append(f"<url><loc>{html.escape(url)}</loc>{news}</url>")
        return ('<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/'
                'schemas/sitemap/0.9" xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
                + "".join(rows) + "</urlset>").encode()

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

    def section_page(self, base: str, other: str, section: str | None) -> bytes:
        shown = [a for a in self.articles if section is None or a.section == section]
        cards = "".join(
            f'<article class="card"><h2><a href="{base}/news/{quote(a.slug)}.html">'
            f'{html.escape(a.title)}</a></h2><p class="lead">{html.escape(a.paragraphs[0][:160])}'
            f'…</p><span class="date">{_bg_date(a.published)}</span></article>' for a in shown)
        draft = (f'<p class="preview"><a href="{base}/news/drafts/{quote(shown[0].slug)}.html">'
                 "Предварителен преглед</a></p>" if shown else "")
        heading = section or "Последни новини"
        return self._chrome(base, other, heading,
                            f'<h1>{html.escape(heading)}</h1><div class="cards">{cards}</div>'
                            f"{draft}")

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
        if draft:
            head += '\n<meta name="robots" content="noindex">'
        if a.js:
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
        main = f"""<article class="article">
<nav class="breadcrumbs"><a href="{base}/">Начало</a> › <a href="{base}/section/{quote(a.section)}">{html.escape(a.section)}</a></nav>
<h1 class="article-title">{html.escape(a.title)}</h1>
<div class="byline">Автор: <a rel="author" href="{base}/authors/{quote(a.author)}">{html.escape(a.author)}</a>
<time datetime="{published}">{_bg_date(a.published)}</time></div>
{body}
<div class="share">Сподели: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Viber</a></div>
</article>
<section class="comments"><h3>Коментари (3)</h3><ul>{comments}</ul>
<p>Влезте в профила си, за да коментирате.</p></section>"""
        return self._chrome(base, other, a.title, main, head, current=a)

    # -- fixture material -----------------------------------------------------------------------

    def legacy_response(self, base: str, path: str) -> tuple[int, str, bytes]:
        m = re.fullmatch(r"/legacy/item/([^/]+/[^/]+)/(\d+)/(.+)", path)
        if m:
            feed = self.legacy.get(m.group(1))
            n = int(m.group(2))
            if feed is None or n >= len(feed.items) or feed.items[n].slug != m.group(3):
                return self.not_found()
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
            return 200, ctype, page.encode(feed.encoding, "xmlcharrefreplace")
        feed = self.legacy.get(path.removeprefix("/legacy/"))
        if feed is None:
            return self.not_found()
        # windows-1251 under a wrong header charset (only the XML prolog is right); ISO-8859-5
        # with no charset in the header
        ctype = "application/rss+xml" + ("; charset=utf-8" if feed.is_cp1251 else "")
        return 200, ctype, feed.render(f"{base}/legacy/item/{path.removeprefix('/legacy/')}")


def _rfc822(day: str) -> str:
    return format_datetime(datetime.fromisoformat(day).replace(
        hour=9, tzinfo=timezone(timedelta(hours=3))))


def _bg_date(day: str) -> str:
    y, m, d = (int(x) for x in day.split("-"))
    return f"{d} {_BG_MONTHS[m - 1]} {y} г."


class NewsReplay:
    """The server in a background thread: ``with NewsReplay(folder) as site: site.url("/rss.xml")``.

    ``requests`` lists every (host header, path) served, for tests to check what was fetched.
    """

    def __init__(self, site_dir: Path, port: int = 0, fixtures: Path | None = None,
                 host: str = "127.0.0.1"):
        self.site = NewsSite(load_articles(site_dir), fixtures)
        self.requests: list[tuple[str, str]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                host_header = self.headers.get("Host", "")
                replay.requests.append((host_header.split(":")[0], self.path))
                status, ctype, body = replay.site.respond(f"http://{host_header}", self.path)
                gz = "gzip" in self.headers.get("Accept-Encoding", "") and len(body) > 1024 \
                    and not ctype.endswith("gzip")
                if gz:
                    body = gzip.compress(body, compresslevel=5)
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if gz:
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def paths(self, host: str = "127.0.0.1") -> list[str]:
        """Paths requested through ``host``."""
        return [p for h, p in self.requests if h == host]

    def __enter__(self) -> NewsReplay:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=Path(__file__).parent / "site" / "news",
                        help="folder of article .txt files (default: the bundled demo site)")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--fixtures", type=Path, default=None,
                        help="shared fixtures folder: also serve the legacy feeds and real pages")
    args = parser.parse_args(argv)
    if args.fixtures is not None and not args.fixtures.is_dir():
        raise UserError(f"fixtures folder not found: {args.fixtures}")
    try:
        replay = NewsReplay(args.site, args.port, args.fixtures)
    except OSError as exc:
        raise UserError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    with replay:
        print(f"news replay of {args.site} on {replay.url('/')}  (rss.xml, sitemap.xml, "
              f"{len(replay.site.articles)} articles"
              + (f", {len(replay.site.legacy)} legacy feeds" if replay.site.legacy else "")
              + "); Ctrl-C stops", flush=True)
        try:
            replay.thread.join()
        except KeyboardInterrupt:
            print("stopped")


if __name__ == "__main__":
    main()
