"""The news spider: articles of the configured ``[[crawl.news]]`` sites.

    scrapy crawl news [-a site=NAME] [-a since=YYYY-MM-DD] [-a until=YYYY-MM-DD] [-a limit=N]

``scrapy crawl news`` crawls every site's ``start_urls`` (its feeds: the newest items), ``-a
site=NAME`` one site. Start URLs may be RSS/Atom feeds, a site's robots.txt (its ``Sitemap:``
lines), sitemap indexes, sitemaps (plain or gzipped) or HTML section pages; which one is read off
the response. Only article URLs are followed: on one of the site's ``allowed_domains`` and, when
the site sets an ``article_pattern``, matching it (section and article pages are followed only with
a pattern), so tag and section pages listed in a sitemap are never fetched.

``-a since=``/``-a until=`` (inclusive days) crawl the archive as well: each site's ``sitemaps``
(default: its robots.txt's ``Sitemap:`` lines) and its ``archive_urls`` (daily pages, walked from
``until`` back to ``since``). A child sitemap whose ``lastmod`` is before ``since`` is not
fetched; a sitemap or feed entry is kept when its ``lastmod`` (else its publication date) is in
the window; an article found without a date (section and daily pages) is stored only if its own
publication date is in the window, and its links are not followed. ``-a limit=N`` asks for at most
N articles per site that are not stored yet; what is stored is never fetched again
(``SkipDoneMiddleware``). Article requests carry the site's ``render`` mode for
``SeleniumRenderMiddleware``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import scrapy
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.utils.gz import gunzip

from common import config
from common.errors import UserError
from crawler.feeds import Entry, decode, entry_day, parse_xml_links
from crawler.items import RawPage
from crawler.pipelines import done_keys
from crawler.spiders.bgwiki import _count

_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenewsarticle",
                  "analysisnewsarticle", "opinionnewsarticle", "reviewnewsarticle", "report"}


LISTING_MAX_BYTES = 50 * 1024 * 1024  # a sitemap may hold 50,000 URLs in 50 MB (uncompressed)

_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|yclid|mc_cid|mc_eid|ref_src)$", re.I)


def clean_url(url: str) -> str:
    """``url`` without its #fragment and tracking parameters (utm_*, fbclid, ...)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if not _TRACKING.match(k)]
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


def _on_domains(url: str, domains: list[str]) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return any(host == d or host.endswith("." + d) for d in domains)


class Site:
    """One ``[[crawl.news]]`` table and its URL rules."""

    def __init__(self, table: dict):
        self.name: str = table["name"]
        self.start_urls: list[str] = table["start_urls"]
        self.domains = [d.lower().strip() for d in table["allowed_domains"]]
        self.render: str = table["render"]
        self.license: str = table["license"]
        self.pattern = re.compile(table["article_pattern"]) if table["article_pattern"] else None
        # domains are checked by is_article: LinkExtractor's allow_domains compares host:port
        self.links = LinkExtractor(unique=True)
        self.archive_urls: list[str] = table["archive_urls"]
        self.sitemaps: list[str] = table["sitemaps"] or (
            [] if self.archive_urls else [f"https://{self.domains[0]}/robots.txt"])

    def is_article(self, url: str) -> bool:
        """``url`` (already through ``clean_url``) is one of this site's articles."""
        return (url.startswith(("http://", "https://")) and _on_domains(url, self.domains)
                and (self.pattern is None or bool(self.pattern.search(url))))


def chosen_sites(site: str | None = None) -> list[Site]:
    """The configured sites to crawl: all, or the one named ``site``; a UserError otherwise."""
    cfg = config.load()
    sites = [Site(t) for t in cfg.crawl.news]
    if not sites:
        raise UserError(f"{cfg.source}: no [[crawl.news]] site configured")
    if site is None:
        return sites
    chosen = [s for s in sites if s.name == site]
    if not chosen:
        raise UserError(f"unknown news site {site!r} (configured: "
                        f"{', '.join(s.name for s in sites)})")
    return chosen


def _day(name: str, value: str | None) -> date | None:
    """The day an ``-a since=``/``-a until=`` argument names; a UserError if it names none."""
    if value is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise UserError(f"spider argument -a {name}={value}: not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"spider argument -a {name}={value}: no such date") from None


@dataclass(frozen=True)
class Window:
    """The days ``-a since=`` to ``-a until=`` (inclusive; either may be open)."""

    since: date | None = None
    until: date | None = None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None

    def holds(self, day: date | None) -> bool:
        """``day`` is in the window; an unknown day (None) is given the benefit of the doubt."""
        return day is None or ((self.since is None or day >= self.since)
                               and (self.until is None or day <= self.until))

    def days(self) -> Iterator[date]:
        """Every day from ``until`` (default today) back to ``since``."""
        day = self.until or datetime.now(UTC).date()
        while self.since is not None and day >= self.since:
            yield day
            day -= timedelta(days=1)


@dataclass(frozen=True)
class Options:
    sites: list[Site]
    window: Window
    limit: int  # new articles per site; 0: no limit


def options(settings=None, site: str | None = None, since: str | None = None,
            until: str | None = None, limit: str | None = None) -> Options:
    """Check the spider arguments; a bad one is a UserError (before Scrapy starts)."""
    window = Window(_day("since", since), _day("until", until))
    if window.since and window.until and window.since > window.until:
        raise UserError(f"spider arguments: -a since={since} is after -a until={until}")
    return Options(chosen_sites(site), window, _count(limit, "limit", 0))


class NewsSpider(scrapy.Spider):
    name = "news"
    check_arguments = staticmethod(options)  # crawler.commands.crawl checks before starting

    def __init__(self, site: str | None = None, since: str | None = None,
                 until: str | None = None, limit: str | None = None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.opts = options(site=site, since=since, until=until, limit=limit)
        self.sites = {s.name: s for s in self.opts.sites}
        self.allowed_domains = sorted({d for s in self.opts.sites for d in s.domains})
        self.seen_canonical: set[str] = set()
        self.requested: dict[str, set[str]] = {name: set() for name in self.sites}
        self.stored: set[str] = set()  # with a limit: what is stored does not count against it
        self.skipped: set[str] = set()  # stored ones listed again: counted once
        self.listed: set[str] = set()  # listings requested in this run
        self.run_id = uuid.uuid4().hex  # SkipDoneMiddleware: a stopped run's listings are dropped

    async def start(self) -> AsyncIterator[scrapy.Request]:
        window = self.opts.window
        if self.opts.limit:
            self.stored = done_keys(Path(self.settings["RAW_DIR"]) / self.name)
        for site in self.sites.values():
            for url in site.start_urls + (site.sitemaps if window else []):
                for request in self._listing_request(site, url):
                    yield request
        walks = [s for s in self.sites.values() if window and s.archive_urls]
        if walks and window.since is None:
            self.logger.warning("archive_urls are walked from -a since=, which is not given")
        for day in window.days() if walks else ():
            for site in walks:
                if self._full(site):
                    continue
                for template in site.archive_urls:
                    for request in self._listing_request(site, template.format(date=day)):
                        yield request

    # -- discovery ---------------------------------------------------------------------------

    def _listing_request(self, site: Site, url: str) -> Iterator[scrapy.Request]:
        """A robots.txt, feed, sitemap or daily page: up to the sitemap protocol's 50 MB.

        Read again on every run, once (``dont_filter``: a stopped run's JOBDIR remembers the
        listings it fetched, and an earlier ``since`` needs them again); those it left queued are
        dropped (``meta["run"]``), as this run requests them afresh.
        """
        if url in self.listed:
            return
        self.listed.add(url)
        yield scrapy.Request(url, callback=self.parse_start, dont_filter=True, meta={
            "site": site.name, "run": self.run_id,
            "download_maxsize": max(LISTING_MAX_BYTES, self.settings.getint("DOWNLOAD_MAXSIZE"))})

    def parse_start(self, response: Response) -> Iterator[scrapy.Request]:
        """A robots.txt, feed, sitemap (index), section or daily page: its article requests."""
        site = self.sites[response.meta["site"]]
        if urlsplit(response.url).path == "/robots.txt":
            yield from self._sitemaps_of_robots(site, response)
            return
        body = response.body
        if body[:2] == b"\x1f\x8b":  # a .xml.gz sitemap served without Content-Encoding
            body = gunzip(body, max_size=response.meta["download_maxsize"])
        found = parse_xml_links(body, response.url, response.headers.get("Content-Type", b"")
                                .decode("latin-1"))
        if found is None:
            yield from self._follow_links(site, response)
            return
        window, stats = self.opts.window, self.crawler.stats
        if found.kind == "sitemapindex":
            for entry in found.entries:
                if not _on_domains(entry.url, site.domains):
                    continue
                changed = entry_day(entry.modified)
                if window.since and changed and changed < window.since:
                    stats.inc_value("news/sitemaps_before_since")  # nothing new in there
                    continue
                yield from self._listing_request(site, entry.url)
            return
        kept = [e for e in found.entries if site.is_article(clean_url(e.url))]
        stats.inc_value(f"news/{found.kind}_links", len(found.entries))
        stats.inc_value(f"news/{found.kind}_links_skipped", len(found.entries) - len(kept))
        dated = [(e.day, e) for e in kept]
        inside = [(day, e) for day, e in dated if window.holds(day)]
        stats.inc_value("news/outside_window", len(kept) - len(inside))
        inside.sort(key=lambda pair: pair[0] or date.min, reverse=True)  # newest first (limit)
        for day, entry in inside:
            yield from self._article_request(site, entry, dated=day is not None)

    def _sitemaps_of_robots(self, site: Site, response: Response) -> Iterator[scrapy.Request]:
        text, _ = decode(response.body, response.headers.get("Content-Type", b"").decode("latin-1"))
        for m in re.finditer(r"(?im)^\s*sitemap\s*:\s*(\S+)", text):
            url = urljoin(response.url, m.group(1))
            if _on_domains(url, site.domains):
                yield from self._listing_request(site, url)

    def _follow_links(self, site: Site, response: Response) -> Iterator[scrapy.Request]:
        if site.pattern is None or not isinstance(response, TextResponse):
            return
        for link in site.links.extract_links(self._decoded(response)):
            if site.is_article(clean_url(link.url)):
                yield from self._article_request(site, Entry(link.url))

    def _full(self, site: Site) -> bool:
        return bool(self.opts.limit) and len(self.requested[site.name]) >= self.opts.limit

    def _article_request(self, site: Site, entry: Entry, dated: bool = False
                         ) -> Iterator[scrapy.Request]:
        url = clean_url(entry.url)
        if url in self.requested[site.name] or url in self.skipped:
            return
        if url in self.stored:
            self.skipped.add(url)
            self.crawler.stats.inc_value("pages/already_stored")  # as SkipDoneMiddleware counts
            return
        if self._full(site):
            self.crawler.stats.inc_value("news/over_limit")
            return
        self.requested[site.name].add(url)
        yield scrapy.Request(url, callback=self.parse_article, meta={
            "site": site.name, "render": site.render, "dated": dated,
            "feed": {"title": entry.title, "published": entry.published, "author": entry.author},
        })

    # -- articles ----------------------------------------------------------------------------

    def parse_article(self, response: Response) -> Iterator[RawPage | scrapy.Request]:
        site = self.sites[response.meta["site"]]
        if not isinstance(response, TextResponse):
            self.logger.info("not a page (%s): %s", response.headers.get("Content-Type"),
                             response.url)
            return
        if not _on_domains(response.url, site.domains):  # a browser followed a redirect away
            self.logger.info("left the allowed domains: %s", response.url)
            self.crawler.stats.inc_value("news/offsite_after_render")
            return
        page = self._decoded(response)
        meta = article_metadata(page)
        feed = response.meta.get("feed") or {}
        window = self.opts.window
        if window and not response.meta.get("dated") and not window.holds(
                entry_day(meta["published"] or feed.get("published"))):
            self.crawler.stats.inc_value("news/outside_window")
            return
        canonical = meta["canonical_url"] or response.url
        # one item per article reached by several URLs; a canonical that is not an article URL
        # (some sites point every page at the home page) proves nothing
        if site.is_article(clean_url(canonical)) and urlsplit(canonical).path.strip("/"):
            if canonical in self.seen_canonical:
                self.crawler.stats.inc_value("news/duplicate_canonical")
                return
            self.seen_canonical.add(canonical)
        yield RawPage(
            url=response.url,
            canonical_url=canonical,
            title=meta["title"] or feed.get("title") or None,
            source=site.name,
            lang=meta["lang"],
            fetched_at=datetime.now(UTC).isoformat(timespec="seconds"),
            http_status=response.status,
            via="selenium" if "selenium" in response.flags else "http",
            render_s=response.meta.get("render_s"),
            revid=None,
            license=site.license,
            html=page.text,
            published=meta["published"] or feed.get("published") or None,
            author=meta["author"] or feed.get("author") or None,
        )
        if not window:  # an archive crawl finds articles through its sitemaps and daily pages
            yield from self._follow_links(site, page)

    @staticmethod
    def _decoded(response: TextResponse) -> TextResponse:
        """The response re-decoded when its header charset was wrong or missing."""
        if "selenium" in response.flags:
            return response
        _, encoding = decode(response.body, response.headers.get("Content-Type", b"")
                             .decode("latin-1"))
        if encoding == response.encoding:
            return response
        return response.replace(cls=HtmlResponse, encoding=encoding)


def _first(*values) -> str:
    for value in values:
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def _ld_objects(page: TextResponse) -> Iterator[dict]:
    """Every JSON-LD object on the page, ``@graph`` members and nested lists flattened."""
    for raw in page.css('script[type="application/ld+json"]::text').getall():
        try:
            data = json.loads(raw, strict=False)
        except ValueError:
            continue
        stack = [data]
        while stack:
            item = stack.pop(0)
            if isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                yield item
                if isinstance(item.get("@graph"), list):
                    stack.extend(item["@graph"])


def _ld_article(page: TextResponse) -> dict:
    for obj in _ld_objects(page):
        types = obj.get("@type")
        types = types if isinstance(types, list) else [types]
        if any(isinstance(t, str) and t.lower() in _ARTICLE_TYPES for t in types):
            return obj
    return {}


def _ld_author(value) -> str:
    people = value if isinstance(value, list) else [value]
    names = [p.get("name") if isinstance(p, dict) else p for p in people]
    return ", ".join(" ".join(n.split()) for n in names if isinstance(n, str) and n.strip())


def _ld_url(value) -> str:
    if isinstance(value, dict):
        value = value.get("@id") or value.get("url")
    return value if isinstance(value, str) and value.startswith("http") else ""


def article_metadata(page: TextResponse) -> dict:
    """Title, canonical URL, publication date, author and language from meta tags and JSON-LD."""
    ld = _ld_article(page)

    def meta(*names: str) -> str:
        for name in names:
            value = page.xpath(f'//meta[@property="{name}" or @name="{name}" or '
                               f'@itemprop="{name}"]/@content').get()
            if value and value.strip():
                return value
        return ""

    canonical = _first(page.css('link[rel="canonical"]::attr(href)').get(), meta("og:url"),
                       _ld_url(ld.get("mainEntityOfPage")), _ld_url(ld.get("url")))
    article_author = meta("article:author")
    return {
        "title": _first(meta("og:title"), ld.get("headline"), page.css("title::text").get(),
                        page.css("h1 ::text").get()),
        "canonical_url": urljoin(page.url, canonical) if canonical else "",
        "published": _first(ld.get("datePublished"), meta("article:published_time"),
                            meta("datePublished"),
                            page.css('[itemprop="datePublished"]::attr(datetime)').get(),
                            meta("pubdate", "publishdate", "date", "dc.date", "DC.date.issued"),
                            page.css("time[pubdate]::attr(datetime)").get()),
        "author": _first(_ld_author(ld.get("author")), meta("author"),
                         "" if article_author.startswith("http") else article_author,
                         " ".join(page.css('[itemprop="author"] [itemprop="name"] ::text')
                                  .getall()),
                         page.css('a[rel="author"]::text').get()),
        "lang": _first(page.xpath("/html/@lang").get(), page.xpath("/html/@xml:lang").get())
        or None,
    }
