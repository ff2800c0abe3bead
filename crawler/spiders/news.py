"""The news spider: articles of the configured ``[[crawl.news]]`` sites.

``scrapy crawl news`` crawls every site, ``-a site=NAME`` one of them. Start URLs may be RSS/Atom
feeds, sitemaps (and sitemap indexes) or HTML section pages; which one is read off the response.
Only article URLs are followed: on one of the site's ``allowed_domains`` and, when the site sets an
``article_pattern``, matching it (section and article pages are followed only with a pattern).
Article requests carry the site's ``render`` mode for ``SeleniumRenderMiddleware``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import scrapy
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.linkextractors import LinkExtractor
from scrapy.utils.gz import gunzip

from common import config
from common.errors import UserError
from crawler.feeds import Entry, decode, parse_xml_links
from crawler.items import RawPage

_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenewsarticle",
                  "analysisnewsarticle", "opinionnewsarticle", "reviewnewsarticle", "report"}


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
        self.links = LinkExtractor(allow_domains=self.domains, unique=True)

    def is_article(self, url: str) -> bool:
        """``url`` (already through ``clean_url``) is one of this site's articles."""
        return (url.startswith(("http://", "https://")) and _on_domains(url, self.domains)
                and (self.pattern is None or bool(self.pattern.search(url))))


def chosen_sites(settings=None, site: str | None = None, **_) -> list[Site]:
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


class NewsSpider(scrapy.Spider):
    name = "news"
    check_arguments = staticmethod(chosen_sites)  # crawler.commands.crawl checks before starting

    def __init__(self, site: str | None = None, *args, **kwargs):
        super().__init__(*args, **kwargs)
        sites = chosen_sites(site=site)
        self.sites = {s.name: s for s in sites}
        self.allowed_domains = sorted({d for s in sites for d in s.domains})
        self.seen_canonical: set[str] = set()

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for site in self.sites.values():
            for url in site.start_urls:
                yield scrapy.Request(url, callback=self.parse_start, meta={"site": site.name},
                                     dont_filter=True)

    # -- discovery ---------------------------------------------------------------------------

    def parse_start(self, response: Response) -> Iterator[scrapy.Request]:
        """A feed, a sitemap (index) or a section page: yield the article requests it lists."""
        site = self.sites[response.meta["site"]]
        body = response.body
        if body[:2] == b"\x1f\x8b":  # a .xml.gz sitemap served without Content-Encoding
            body = gunzip(body, max_size=self.settings.getint("DOWNLOAD_MAXSIZE"))
        found = parse_xml_links(body, response.url, response.headers.get("Content-Type", b"")
                                .decode("latin-1"))
        if found is None:
            yield from self._follow_links(site, response)
            return
        if found.kind == "sitemapindex":
            for entry in found.entries:
                if _on_domains(entry.url, site.domains):
                    yield scrapy.Request(entry.url, callback=self.parse_start,
                                         meta={"site": site.name})
            return
        kept = [e for e in found.entries if site.is_article(clean_url(e.url))]
        self.crawler.stats.inc_value(f"news/{found.kind}_links", len(found.entries))
        self.crawler.stats.inc_value(f"news/{found.kind}_links_skipped",
                                     len(found.entries) - len(kept))
        for entry in kept:
            yield self._article_request(site, entry)

    def _follow_links(self, site: Site, response: Response) -> Iterator[scrapy.Request]:
        if site.pattern is None or not isinstance(response, TextResponse):
            return
        for link in site.links.extract_links(self._decoded(response)):
            if site.is_article(clean_url(link.url)):
                yield self._article_request(site, Entry(link.url))

    def _article_request(self, site: Site, entry: Entry) -> scrapy.Request:
        return scrapy.Request(clean_url(entry.url), callback=self.parse_article, meta={
            "site": site.name, "render": site.render,
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
