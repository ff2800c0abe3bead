"""The news spider: articles of the configured ``[[crawl.news]]`` sites.

    scrapy crawl news [-a site=NAME] [-a since=YYYY-MM-DD] [-a until=YYYY-MM-DD] [-a limit=N]

``scrapy crawl news`` crawls every site's ``start_urls`` (its feeds: the newest items), ``-a
site=NAME`` one site. Start URLs may be RSS/Atom feeds, a site's robots.txt (its ``Sitemap:``
lines), sitemap indexes, sitemaps (plain or gzipped) or HTML section pages; which one is read off
the response. Only article URLs are followed: on one of the site's ``allowed_domains`` and, when
the site sets an ``article_pattern``, matching it (section and article pages are followed only with
a pattern), so tag and section pages listed in a sitemap are never fetched.

``-a since=``/``-a until=`` (inclusive days) crawl the archive as well: each site's ``sitemaps``
(default: its robots.txt's ``Sitemap:`` lines), its ``archive_urls`` (daily pages) and its
``archive_forms`` (daily pages reached by a form POST), walked from ``until`` back to ``since``. A child sitemap whose ``lastmod`` is before ``since`` is not
fetched; a sitemap or feed entry is kept when its ``lastmod`` (else its publication date) is in
the window; an article found without a date (section and daily pages) is stored only if its own
publication date is in the window, and its links are not followed. ``-a limit=N`` asks for at most
N articles per site that are not stored yet; what is stored is never fetched again
(``SkipDoneMiddleware``). Article requests carry the site's ``render`` mode for
``SeleniumRenderMiddleware``.

Each listing's answer is counted per site, and a refusal (401/402/403/429 after the retries, or a
bot-challenge page) kept as evidence; an article answered by a challenge page is not stored
(``crawler.blocking``, whose verdicts the crawl summary prints). Metadata comes from
``crawler.metadata``, the argument types from ``crawler.arguments``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawler import arguments
from crawler.arguments import Site, Window
from crawler.blocking import challenge, headers_of, refusal
from crawler.feeds import Entry, decode, entry_day, parse_xml_links, ungzipped
from crawler.items import RawPage
from crawler.metadata import article_metadata
from crawler.pipelines import done_keys
from crawler.urls import clean_url, on_domains

LISTING_MAX_BYTES = 50 * 1024 * 1024  # a sitemap may hold 50,000 URLs in 50 MB (uncompressed)


@dataclass(frozen=True)
class Options:
    sites: list[Site]
    window: Window
    limit: int  # new articles per site; 0: no limit

    def urls(self) -> list[str]:
        """Every listing URL of the chosen sites (for the User-Agent check)."""
        return [url for site in self.sites for url in site.urls()]


def options(settings, site: str | None = None, since: str | None = None,
            until: str | None = None, limit: str | None = None) -> Options:
    """Check the spider arguments against the settings' ``NEWS_SITES``; a bad one is a
    UserError (before Scrapy starts)."""
    window = arguments.window(since, until)
    sites = arguments.sites(settings.getlist("NEWS_SITES"), settings["CONFIG_SOURCE"], site)
    return Options(sites, window, arguments.count(limit, "limit", 0))


class NewsSpider(scrapy.Spider):
    name = "news"
    check_arguments = staticmethod(options)  # crawler.commands.crawl checks before starting

    def __init__(self, **kwargs):
        args = {k: kwargs.pop(k) for k in ("site", "since", "until", "limit") if k in kwargs}
        super().__init__(**kwargs)
        self.args = args
        self.seen_canonical: set[str] = set()
        self.stored: set[str] = set()  # with a limit: what is stored does not count against it
        self.skipped: set[str] = set()  # stored ones listed again: counted once
        self.listed: set[str] = set()  # listings requested in this run
        self.run_id = uuid.uuid4().hex  # SkipDoneMiddleware: a stopped run's listings are dropped

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.opts = options(crawler.settings, **spider.args)
        spider.sites = {s.name: s for s in spider.opts.sites}
        spider.allowed_domains = sorted({d for s in spider.opts.sites for d in s.domains})
        spider.requested = {name: set() for name in spider.sites}  # article URLs per site
        return spider

    async def start(self) -> AsyncIterator[scrapy.Request]:
        window = self.opts.window
        if self.opts.limit:
            self.stored = done_keys(Path(self.settings["RAW_DIR"]) / self.name)
        for site in self.sites.values():
            for url in site.start_urls + (site.sitemaps if window else []):
                for request in self._listing_request(site, url):
                    yield request
        walks = [s for s in self.sites.values()
                 if window and (s.archive_urls or s.archive_forms)]
        if walks and window.since is None:
            self.logger.warning("archive_urls are walked from -a since=, which is not given")
        for day in window.days() if walks else ():
            for site in walks:
                if self._full(site):
                    continue
                for template in site.archive_urls:
                    for request in self._listing_request(site, template.format(date=day)):
                        yield request
                for form in site.archive_forms:
                    for request in self._listing_request(site, form.url, form.fields(day)):
                        yield request

    # -- discovery ---------------------------------------------------------------------------

    def _listing_request(self, site: Site, url: str, form: dict[str, str] | None = None
                         ) -> Iterator[scrapy.Request]:
        """A robots.txt, feed, sitemap or daily page (``form``: a daily page reached by a form
        POST): up to the sitemap protocol's 50 MB.

        Read again on every run, once (``dont_filter``: a stopped run's JOBDIR remembers the
        listings it fetched, and an earlier ``since`` needs them again); those it left queued are
        dropped (``meta["run"]``), as this run requests them afresh.
        """
        key = f"{url} {sorted(form.items())}" if form else url
        if key in self.listed:
            return
        self.listed.add(key)
        meta = {"site": site.name, "run": self.run_id,
                "download_maxsize": max(LISTING_MAX_BYTES, self.settings.getint("DOWNLOAD_MAXSIZE"))}
        if form:
            yield scrapy.FormRequest(url, formdata=form, callback=self.parse_start,
                                     errback=self.listing_failed, dont_filter=True, meta=meta)
        else:
            yield scrapy.Request(url, callback=self.parse_start, errback=self.listing_failed,
                                 dont_filter=True, meta=meta)

    def _listing_outcome(self, site: str, path: str, why: str | None) -> None:
        """Count a listing's answer per site; a refusal (``why``) is evidence of a block."""
        stats = self.crawler.stats
        stats.inc_value(f"news/listings/{site}")
        if why:
            stats.inc_value(f"news/listings_blocked/{site}")
            self._evidence(site, f"{why} on {path}")
            self.logger.warning("%s turned the crawler away: %s on %s", site, why, path)

    def _evidence(self, site: str, text: str) -> None:
        """The first refusal seen for ``site``: what the crawl summary names as the evidence."""
        stats = self.crawler.stats
        if not stats.get_value(f"news/blocked_evidence/{site}"):
            stats.set_value(f"news/blocked_evidence/{site}", text)

    def listing_failed(self, failure: Failure) -> None:
        """A listing that answered an error status (after the retries) or could not be fetched."""
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            return  # not fetched (robots.txt, a stopped run's stale listing): no answer to judge
        request = failure.request
        response = failure.value.response if failure.check(HttpError) else None
        why = (refusal(response.status, response.body, headers_of(response))
               if response is not None else None)
        self._listing_outcome(request.meta["site"], urlsplit(request.url).path, why)
        if why is None:
            self.logger.error("listing %s failed: %s", request.url, failure.getErrorMessage())

    def parse_start(self, response: Response) -> Iterator[scrapy.Request]:
        """A robots.txt, feed, sitemap (index), section or daily page: its article requests."""
        site = self.sites[response.meta["site"]]
        why = refusal(response.status, response.body, headers_of(response))
        self._listing_outcome(site.name, urlsplit(response.url).path, why)
        if why:
            return
        if urlsplit(response.url).path == "/robots.txt":
            yield from self._sitemaps_of_robots(site, response)
            return
        body = ungzipped(response.body, response.meta["download_maxsize"])
        found = parse_xml_links(body, response.url, response.headers.get("Content-Type", b"")
                                .decode("latin-1"))
        if found is None:
            yield from self._follow_links(site, response)
            return
        window, stats = self.opts.window, self.crawler.stats
        if found.kind == "sitemapindex":
            for entry in found.entries:
                if not on_domains(entry.url, site.domains):
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
            if on_domains(url, site.domains):
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
        service = challenge(response.body, headers_of(response))
        if service:  # bot protection answered instead of the article
            self.logger.warning("%s challenge instead of the article: %s", service, response.url)
            self.crawler.stats.inc_value(f"news/articles_blocked/{site.name}")
            self._evidence(site.name, f"{service} challenge on {urlsplit(response.url).path}")
            return
        if not on_domains(response.url, site.domains):  # a browser followed a redirect away
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
        self.crawler.stats.inc_value(f"news/articles/{site.name}")
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
