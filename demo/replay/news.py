"""The news site shape: ``NewsSite`` (a site: its routes, feeds, sitemaps and archives) and
``NewsReplay`` (it, served).

Articles come from a folder of article files or ``synthetic_articles`` (``demo.replay.articles``:
years of them, some edited later); its HTML pages are drawn by ``demo.replay.news_pages``; with
the shared fixtures it also serves the legacy-encoded feeds (``demo.replay.legacy``) and real
Bulgarian pages.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

from demo.replay.articles import Article, load_articles
from demo.replay.core import HTML, Faults, ReplayServer, Request, Response, Route, route
from demo.replay.legacy import LegacyFeed, legacy_feeds
from demo.replay.news_pages import SITE_NAME, NewsPages


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
    - mediapool's daily archive ``/today.html``: today, or the day a form POST names in
      ``rdate=YYYY-MM-DD``;
    - a feed that moved for good, ``/moved/<path>`` (301 to ``<path>`` on ``localhost``), and the
      site after a redesign: ``/changed/rss.xml`` links ``/changed/<slug>.html``, an app shell
      whose text sits in a JSON blob for a script bundle that no longer loads (no article text,
      in a browser either);
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
        self.legacy: dict[str, LegacyFeed] = legacy_feeds(fixtures) if fixtures is not None else {}
        self.real: dict[str, Path] = {} if fixtures is None else {
            path.name: path for path in sorted((fixtures / "news_html" / "htmldate_test_set").glob("*.html"))}
        self.pages = NewsPages(articles, self.sections)
        self.routes: list[Route] = [(re.compile(pattern, re.S), handler) for pattern, handler in (
            (r"/robots\.txt", self.robots),
            (r"/rss\.xml", self.rss_feed),
            (r"/sitemap\.xml", self.sitemap_index_page),
            (r"/sitemaps/news\.xml", self.news_sitemap),
            (r"/sitemaps/(\d{4}-\d{2})\.xml(\.gz)?", self.month_sitemap),
            (r"/sitemaps/tags\.xml", self.listing_sitemap),
            (r"/sitemaps/real\.xml\.gz", self.real_sitemap),
            (r"/(?:section/(.*))?", self.section),
            (r"/tag/(.*)", self.tag),
            (r"/archive/(\d{4}-\d{2}-\d{2})", self.day),
            (r"/today\.html", self.today),
            (r"/moved/(.*)", self.moved),
            (r"/changed/rss\.xml", self.changed_feed),
            (r"/changed/([^/]+)\.html", self.changed_article),
            (r"/news/([^/]+)\.json", self.article_text),
            (r"/news/(drafts/)?([^/]+)\.html", self.article),
            (r"/legacy/item/([^/]+/[^/]+)/(\d+)/(.+)", self.legacy_item),
            (r"/legacy/(.*)", self.legacy_feed),
            (r"/real/(.*)", self.real_page),
        )]

    def __call__(self, request: Request) -> Response | None:
        return route(self.routes, request)

    not_found = Response(404, "<html><body><h1>404 Няма такава страница</h1></body></html>".encode(),
                         "text/html; charset=utf-8")

    # -- routes: each takes the request and its path's groups -------------------------------------

    @staticmethod
    def robots(request: Request) -> Response:
        return Response(200, f"User-agent: *\nDisallow: /news/drafts/\nSitemap: {request.base}/sitemap.xml\n"
                        .encode())

    def rss_feed(self, request: Request) -> Response:
        return Response(200, self.rss(request.base, _other(request.base)), "application/rss+xml; charset=utf-8")

    def sitemap_index_page(self, request: Request) -> Response:
        return Response(200, self.sitemap_index(request.base), "application/xml")

    def news_sitemap(self, request: Request) -> Response:
        newest = self.articles[0].published if self.articles else ""
        return Response(200, self.urlset(request.base, [a for a in self.articles if _days_between(
            a.published, newest) < 2]), "application/xml")

    def month_sitemap(self, request: Request, month: str, gz: str | None) -> Response | None:
        if month not in self.months or bool(gz) != self.gzipped(month):
            return None
        body = self.urlset(request.base, self.months[month], mirror=(_other(request.base), self.months[month][0]))
        return Response(200, gzip.compress(body), "application/x-gzip") if gz else Response(
            200, body, "application/xml")

    def listing_sitemap(self, request: Request) -> Response:
        return Response(200, self.listing_urlset(request.base), "application/xml")

    def real_sitemap(self, request: Request) -> Response | None:
        if not self.real:
            return None
        return Response(200, gzip.compress(_urlset(
            f"<url><loc>{request.base}/real/{quote(name)}</loc></url>" for name in self.real)),
            "application/x-gzip")

    def section(self, request: Request, section: str | None) -> Response:
        """``/`` (every article) or ``/section/<name>``."""
        if section is not None and section not in self.sections:
            return self.not_found
        return Response(200, self.pages.listing_page(request.base, _other(request.base), section or "Последни новини", [
            a for a in self.articles if section is None or a.section == section]), HTML)

    def tag(self, request: Request, tag: str) -> Response | None:
        if tag not in self.tags:
            return None
        return Response(200, self.pages.listing_page(request.base, _other(request.base), f"Етикет: {tag}", [
            a for a in self.articles if tag in a.tags]), HTML)

    def day(self, request: Request, day: str) -> Response | None:
        if not _is_date(day):
            return None
        return Response(200, self.pages.day_page(request.base, _other(request.base), day), HTML)

    def today(self, request: Request) -> Response:
        """mediapool's daily archive: ``today.html`` shows today; a form POST with
        ``rdate=YYYY-MM-DD`` shows that day (a GET's query string is ignored)."""
        day = request.params.get("rdate", "") if request.method == "POST" else ""
        if not _is_date(day):
            day = datetime.now(timezone(timedelta(hours=2))).date().isoformat()
        return Response(200, self.pages.day_page(request.base, _other(request.base), day), HTML)

    @staticmethod
    def moved(request: Request, rest: str) -> Response:
        """``/moved/<path>``: moved for good to ``<path>`` on another host (``localhost``)."""
        return Response(301, b"", HTML, {"Location": f"{_other(request.base)}/{rest}"})

    def changed_feed(self, request: Request) -> Response:
        """The feed of the articles in the site's new layout (``/changed/<slug>.html``)."""
        return Response(200, self.rss(request.base, _other(request.base), folder="changed"),
                        "application/rss+xml; charset=utf-8")

    def changed_article(self, request: Request, slug: str) -> Response | None:
        if slug not in self.by_slug:
            return None
        return Response(200, self.pages.app_shell_page(request.base, self.by_slug[slug]), HTML)

    def article_text(self, request: Request, slug: str) -> Response | None:
        """A ``js: fetch`` article's paragraphs, slowly, as its page's script asks for them."""
        if slug not in self.by_slug or self.by_slug[slug].late != "fetch":
            return None
        time.sleep(self.api_seconds)
        return Response(200, json.dumps(self.by_slug[slug].paragraphs, ensure_ascii=False).encode(),
                        "application/json")

    def article(self, request: Request, draft: str | None, slug: str) -> Response | None:
        if slug not in self.by_slug:
            return None
        return Response(200, self.pages.article_page(request.base, _other(request.base), self.by_slug[slug],
                                                     draft=bool(draft)), HTML)

    def legacy_item(self, request: Request, name: str, n: str, slug: str) -> Response:
        feed = self.legacy.get(name)
        return (feed and feed.item_page(int(n), slug)) or self.not_found

    def legacy_feed(self, request: Request, name: str) -> Response:
        feed = self.legacy.get(name)
        return feed.feed(f"{request.base}/legacy/item/{name}") if feed else self.not_found

    def real_page(self, request: Request, name: str) -> Response | None:
        return Response(200, self.real[name].read_bytes(), HTML) if name in self.real else None

    # -- feeds and sitemaps -------------------------------------------------------------------

    def rss(self, base: str, other: str, folder: str = "news") -> bytes:
        """The feed of every article, linked under ``/<folder>/``."""
        items = []
        for a in self.articles:
            items.append(
                f"<item><title>{html.escape(a.title)}</title>"
                f"<link>{base}/{folder}/{quote(a.slug)}.html?utm_source=rss</link>"
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
        maps.append((f"{_other(base)}/sitemaps/partner.xml", newest))
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



def _other(base: str) -> str:
    """Another host on the same server as ``base``: ``http://localhost:<port>``."""
    return f"http://localhost:{urlsplit(base).port}"


def _rfc822(day: str) -> str:
    return format_datetime(datetime.fromisoformat(day).replace(
        hour=9, tzinfo=timezone(timedelta(hours=3))))


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
        self.site = NewsSite(load_articles(articles),
                             fixtures)
        self.not_found = self.site.not_found
        super().__init__(self.site, port=port, host=host, faults=faults)
