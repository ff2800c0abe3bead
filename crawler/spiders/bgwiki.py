"""``bgwiki``: chosen Bulgarian Wikipedia articles through the MediaWiki Action API.

    scrapy crawl bgwiki [-a titles=FILE | -a category="Категория:..." -a depth=N] [-a limit=N] [-a api=URL]

Defaults come from ``[crawl.bgwiki]``. Titles are resolved 50 at a time with
``action=query&titles=A|B|...&redirects=1`` sent by POST (a GET of 50 Cyrillic titles passes
Scrapy's URL length limit and is dropped), so redirects and normalised spellings collapse to one
canonical page; each page is then fetched once, by page id, with
``action=parse&prop=text|revid|displaytitle|categories``. Every call carries ``maxlag``;
backoff on maxlag/ratelimited/429/503 is ``crawler.backoff``'s job.

robots.txt: every Wikimedia wiki disallows ``/w/`` for all agents. That rule keeps search-engine
crawlers off ``index.php``; the Action API under ``/w/api.php`` is the sanctioned path for bots,
governed by API:Etiquette and the User-Agent policy instead. So API requests carry
``dont_obey_robotstxt``; ``ROBOTSTXT_OBEY`` stays on for everything else.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from common.errors import UserError
from crawler import arguments
from crawler import titles as titles_file
from crawler.items import RawPage

CATEGORY_PREFIX = titles_file.CATEGORY_PREFIX


def canonical_url(wiki_base: str, title: str) -> str:
    """A page's canonical URL, ``<wiki_base>/wiki/Title_with_underscores`` (a done-key of the shards)."""
    return f"{wiki_base}/wiki/{quote(title.replace(' ', '_'), safe=';@$!*(),/~:')}"


@dataclass
class Options:
    """What to crawl: spider arguments over ``[crawl.bgwiki]``."""

    api: str
    wiki_base: str
    batch: int
    maxlag: int
    license: str
    limit: int
    depth: int
    category: str  # "" for none
    titles: list[str]
    skipped: list[tuple[int, str, str]]  # titles-file lines that are not titles

    def urls(self) -> list[str]:
        """What the spider fetches from (for the User-Agent check)."""
        return [self.api]


def options(settings, titles: str | None = None, category: str | None = None, depth: str | None = None,
            limit: str | None = None, api: str | None = None) -> Options:
    """Check the spider arguments against the settings; a bad one is a UserError."""
    api = api or settings["BGWIKI_API"]
    parts = urlsplit(api)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(f"spider argument -a api={api}: not an http(s) URL")
    names, skipped, category = titles_file.choose(titles, category, parts.hostname, "-a {}=",
                                                  settings["BGWIKI_TITLES"], settings["BGWIKI_CATEGORY"])
    if not category and not names:
        raise UserError("no titles: set crawl.bgwiki.titles or give -a titles=FILE")
    return Options(api=api, wiki_base=f"{parts.scheme}://{parts.netloc}",
                   batch=settings.getint("BGWIKI_BATCH"), maxlag=settings.getint("BGWIKI_MAXLAG"),
                   license=settings["BGWIKI_LICENSE"],
                   limit=arguments.count(limit, "limit", settings.getint("BGWIKI_LIMIT")),
                   depth=arguments.count(depth, "depth", settings.getint("BGWIKI_DEPTH")),
                   category=category, titles=names, skipped=skipped)


class BgWikiSpider(scrapy.Spider):
    """Resolves titles (or walks a category), then fetches each canonical page's parsed HTML once."""

    name = "bgwiki"
    check_arguments = staticmethod(options)  # crawler.commands.crawl checks them before starting

    def __init__(self, **kwargs):
        args = {k: kwargs.pop(k) for k in ("titles", "category", "depth", "limit", "api") if k in kwargs}
        super().__init__(**kwargs)
        self.args = args
        self.requested: set[int] = set()  # page ids asked for in this run

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider.opts = options(crawler.settings, **spider.args)
        for number, line, why in spider.opts.skipped:
            spider.logger.warning("titles file line %d skipped (%s): %r", number, why, line)
        return spider

    def api_request(self, params: dict[str, str], callback, *, post: bool = False, **meta) -> scrapy.Request:
        form = {**params, "format": "json", "formatversion": "2", "maxlag": str(self.opts.maxlag)}
        return scrapy.FormRequest(self.opts.api, method="POST" if post else "GET", formdata=form,
                                  callback=callback, errback=self.failed,
                                  meta={"dont_obey_robotstxt": True, **meta})

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.opts.category:
            self.logger.info("walking %s to depth %d", self.opts.category, self.opts.depth)
            yield self.category_request(self.opts.category, 0)
            return
        self.logger.info("%d titles to resolve in batches of %d", len(self.opts.titles), self.opts.batch)
        for start in range(0, len(self.opts.titles), self.opts.batch):
            batch = self.opts.titles[start:start + self.opts.batch]
            yield self.api_request({"action": "query", "titles": "|".join(batch), "redirects": "1"},
                                   self.parse_titles, post=True, pages=len(batch))

    def parse_titles(self, response: Response) -> Iterator[scrapy.Request]:
        query = self.answer(response).get("query", {})
        stats = self.crawler.stats
        for redirect in query.get("redirects", []):
            stats.inc_value("bgwiki/redirects")
            self.logger.debug("redirect: %s -> %s", redirect["from"], redirect["to"])
        for page in query.get("pages", []):
            if page.get("missing"):
                stats.inc_value("pages/missing")
                self.logger.info("missing page: %s", page.get("title"))
            elif page.get("invalid"):
                stats.inc_value("pages/failed")
                self.logger.warning("invalid title %r: %s", page.get("title"), page.get("invalidreason"))
            elif page.get("ns") == 0:
                yield from self.page_request(page["pageid"], page["title"])
            else:
                stats.inc_value("bgwiki/not_articles")
                self.logger.info("not an article (namespace %s), skipped: %s", page.get("ns"), page.get("title"))

    def category_request(self, category: str, depth: int, cont: str | None = None) -> scrapy.Request:
        params = {"action": "query", "list": "categorymembers", "cmtitle": category,
                  "cmtype": "page|subcat", "cmlimit": "500"}
        if cont:
            params["cmcontinue"] = cont
        return self.api_request(params, self.parse_category, category=category, depth=depth)

    def parse_category(self, response: Response) -> Iterator[scrapy.Request]:
        data = self.answer(response)
        members = data.get("query", {}).get("categorymembers", [])
        category, depth = response.meta["category"], response.meta["depth"]
        if not members and "continue" not in data:
            self.logger.warning("%s has no members (does it exist?)", category)
        for member in members:
            if member["ns"] == 14 and depth < self.opts.depth:
                yield self.category_request(member["title"], depth + 1)
            elif member["ns"] == 0:
                yield from self.page_request(member["pageid"], member["title"])
        if "continue" in data:
            yield self.category_request(category, depth, data["continue"]["cmcontinue"])

    def page_request(self, pageid: int, title: str) -> Iterator[scrapy.Request]:
        if pageid in self.requested:
            return  # a redirect or another spelling of a page already asked for
        if self.opts.limit and len(self.requested) >= self.opts.limit:
            self.crawler.stats.inc_value("bgwiki/over_limit")
            return
        self.requested.add(pageid)
        yield self.api_request({"action": "parse", "pageid": str(pageid),
                                "prop": "text|revid|displaytitle|categories"},
                               self.parse_page, canonical_url=self.canonical_url(title), pageid=pageid,
                               pages=1)

    def parse_page(self, response: Response) -> Iterator[RawPage]:
        parsed = self.answer(response).get("parse")
        if not parsed:
            return
        yield RawPage(
            url=response.url, canonical_url=self.canonical_url(parsed["title"]), title=parsed["title"],
            source="bgwiki", lang="bg",
            fetched_at=datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            http_status=response.status, via="http", revid=parsed.get("revid"), license=self.opts.license,
            html=parsed.get("text", ""),
            categories=[c["category"].replace("_", " ") for c in parsed.get("categories", [])],
        )

    def canonical_url(self, title: str) -> str:
        return canonical_url(self.opts.wiki_base, title)

    def answer(self, response: Response) -> dict:
        """The JSON answer; an API error (left after backoff) is logged and counted."""
        try:
            data = response.json()
        except ValueError:
            data = {"error": {"code": "notjson", "info": f"HTTP {response.status}, not JSON"}}
        if "error" in data:
            error = data["error"]
            self.count_failure(response.request)
            self.logger.error("API error %s on %s: %s", error.get("code"), response.url, error.get("info"))
            return {}
        for warning in data.get("warnings", {}).values():
            self.logger.warning("API warning: %s", warning)
        return data

    def failed(self, failure: Failure) -> None:
        if failure.check(IgnoreRequest) and not failure.check(HttpError):
            return  # e.g. already stored (crawler.resume)
        request = failure.request
        self.count_failure(request)
        self.logger.error("gave up on %s: %s", request.meta.get("canonical_url") or request.url,
                          failure.getErrorMessage())

    def count_failure(self, request: scrapy.Request) -> None:
        """A failed call fails the pages it stood for (a title batch: all of them; a category: none)."""
        self.crawler.stats.inc_value("bgwiki/api_errors")
        if request.meta.get("pages"):
            self.crawler.stats.inc_value("pages/failed", request.meta["pages"])
