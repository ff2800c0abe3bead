"""The MediaWiki Action API shape: ``Wiki`` (a site) and ``WikiReplay`` (it, served).

``action=query`` (title resolution with ``normalized``/``redirects``/``missing``/``invalid``,
``list=categorymembers`` with continuation) and ``action=parse`` in the ``formatversion=2`` JSON
shapes, by GET or POST. Like Wikimedia it refuses generic User-Agents (403), refuses more than 50
titles a request, serves a robots.txt that disallows ``/w/``, and can inject a ``maxlag`` error and
a 429 with Retry-After. Pages come from a folder of page files (``demo.replay.pages.load_site``) or
``synthetic_pages``, rendered by ``demo.replay.wikitext.Renderer``.
"""

from __future__ import annotations

import html
import json
import re
import time

from demo.replay.core import ReplayServer, Request, Response, Route, Tally, route
from demo.replay.pages import CATEGORY_NS, Page, canon, number_pages
from demo.replay.wikitext import Renderer

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
                self.redirects[canon(source)] = page.title
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
        self.routes: list[Route] = [(re.compile(r"/robots\.txt"), self.robots),
                                    (re.compile(r"/w/api\.php"), self.api_request)]

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
            title = canon(raw)
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
        category = canon(params.get("cmtitle", ""))
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
            page = self.by_title.get(self.redirects.get(canon(params.get("page", "")), canon(params.get("page", ""))))
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
        with self.lock:
            self.agents.add(request.headers.get("User-Agent", ""))
        return route(self.routes, request)

    @staticmethod
    def robots(request: Request) -> Response:
        return Response(200, WIKI_ROBOTS_TXT.encode())

    def api_request(self, request: Request) -> Response:
        """``/w/api.php``: the agent checked, the delay and a 429 fault, then the call answered."""
        agent = request.headers.get("User-Agent", "")
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
