"""``make check-sources``: which configured sources work, before a crawl of hours.

    python -m crawler.check [--config F] [--site NAME]

A few polite requests per source (``crawler.polite``: at most about ten, ``crawl.download_delay``
apart, robots.txt obeyed, the User-Agent checked first by ``crawler.agent``), then a table of
one row per source: what was tried, the result (ok / blocked / moved / changed / unreachable),
the evidence (status codes, counts, characters) and the fix. Exit 0 only when every source is
ok; otherwise one line per broken source on stderr and exit 1.

* bgwiki: API siteinfo (the agent accepted) and one ``action=parse`` of the main page, each with
  ``maxlag``; a ``maxlag`` answer is waited out (``Retry-After``) and asked once more. Blocked: the
  API answered 401/402/403/429 (after that one retry) or a challenge page.
* dump (``crawler.wikidump.preflight``): the newest run of ``crawl.bgwiki.dump``, its size, its
  STATS file (the md5 the download is checked against) and whether the disk has room.
* each news site: its robots.txt (allows the URLs the config uses? its ``Sitemap:`` lines), each
  feed (parses? items, article links), the first sitemap (entries, newest ``lastmod``), the newest
  article (characters of main text, measured as the crawler's Selenium fallback measures it:
  trafilatura, ``crawler.middlewares.article_chars``; the corpus stage's own extractor may keep
  a little more or less), rendered in Chromium when under ``crawl.render_min_chars``, and
  yesterday's archive page (article links). Blocked: every listing answered 401/402/403/429 or
  a challenge page (``crawler.blocking``; some of them: evidence only, as the crawl judges); moved: a redirect to another host; changed: a feed or
  archive URL that is gone (404/410), no articles where the config expects them, or too little
  text even after rendering; unreachable: no connection, or a listing answering 5xx.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

from scrapy.http import HtmlResponse

from common import config, markdown
from common.errors import UserError, cli_main
from crawler import agent as user_agent
from crawler import wikidump
from crawler.arguments import Site
from crawler.backoff import retry_after
from crawler.blocking import HINT, refusal
from crawler.feeds import decode, entry_day, parse_xml_links, ungzipped
from crawler.middlewares import article_chars
from crawler.polite import MAX_BYTES, Answer, Client
from crawler.render import RenderError, RenderPool
from crawler.urls import clean_url, on_domains

RESULTS = ("unreachable", "blocked", "moved", "changed")  # the worst first; else "ok"
COLUMNS = ("source", "tried", "result", "evidence", "fix")
MAX_FEEDS = 3


@dataclass
class Finding:
    """What the requests for one source showed, gathered into its table row."""

    source: str
    tried: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # result, evidence, fix

    def problem(self, result: str, evidence: str, fix: str) -> None:
        self.problems.append((result, evidence, fix))
        self.evidence.append(evidence)

    def row(self, requests: int) -> dict[str, str]:
        worst = min(self.problems, key=lambda p: RESULTS.index(p[0]), default=None)
        return {"source": self.source, "tried": f"{', '.join(self.tried)} ({requests} requests)",
                "result": worst[0] if worst else "ok", "evidence": "; ".join(self.evidence),
                "fix": worst[2] if worst else ""}


def _listings(found: Finding, answers: list[tuple[str, Answer]]) -> None:
    """The verdict on a site's listings: blocked when every one was refused (as the crawl
    judges; a partial refusal is evidence only), moved, unreachable."""
    refused = [(path, why) for path, a in answers
               if not a.error and (why := refusal(a.status, a.body, a.headers))]
    if refused:
        what = f"{refused[0][1]} on {refused[0][0]}, {len(refused)} of {len(answers)} listings"
        if len(refused) == len(answers):
            found.problem("blocked", what, HINT)
        else:
            found.evidence.append(f"refused: {what}")
    for path, a in answers:
        if a.moved_to:
            found.problem("moved", f"{a.status} {path} -> {a.moved_to}",
                          f"use {a.moved_to} in the config (and its host in allowed_domains)")
        elif a.error and not a.error.startswith("robots.txt"):
            found.problem("unreachable", f"{path}: {a.error}",
                          "check the URL and your network; is the site up?")


def _gone(found: Finding, path: str, answer: Answer, fix: str) -> None:
    """The verdict on a listing that answered, neither refused nor moved, with an error status:
    404/410 gone (``changed``), 5xx ``unreachable``, any other ``changed``."""
    if answer.error or answer.moved_to or answer.ok or refusal(answer.status, answer.body,
                                                               answer.headers):
        return
    if answer.status >= 500:
        found.problem("unreachable", f"HTTP {answer.status} on {path}",
                      "the site answers with a server error: try again later; is the site up?")
    elif answer.status in (404, 410):
        found.problem("changed", f"HTTP {answer.status} on {path}: the URL is gone", fix)
    else:
        found.problem("changed", f"HTTP {answer.status} on {path}", fix)


def sitemap_evidence(found: Finding, client: Client, url: str) -> Answer:
    """The first sitemap robots.txt names: its entries and newest ``lastmod`` (a ``.xml.gz``
    gunzipped), or why it could not be read, as evidence."""
    answer = client.fetch(url)
    path = urlsplit(url).path
    links = parse_xml_links(ungzipped(answer.body, MAX_BYTES), answer.url,
                            answer.headers.get("content-type")) if answer.ok else None
    if links is not None:
        days = [d for e in links.entries if (d := entry_day(e.modified))]
        found.evidence.append(f"sitemap {path}: a {links.kind} of {len(links.entries)}, "
                              f"newest lastmod {max(days) if days else 'none'}")
    elif answer.ok:
        found.evidence.append(f"sitemap {path}: not a sitemap")
    elif not (answer.error or answer.moved_to):
        found.evidence.append(f"sitemap {path}: HTTP {answer.status}")
    return answer


def _api(client: Client, api: str, params: dict[str, str], maxlag: int, wait_cap: float
         ) -> tuple[Answer, dict, float]:
    """One MediaWiki API call with ``maxlag``; a maxlag (or 429/503) answer is waited out
    (``Retry-After``, at most ``wait_cap`` seconds) and the call made once more."""
    url = f"{api}?" + urlencode({**params, "format": "json", "formatversion": "2",
                                 "maxlag": str(maxlag)})

    def call() -> tuple[Answer, dict]:
        answer = client.fetch(url, obey_robots=False)  # the API: API:Etiquette, not robots.txt
        try:
            return answer, (json.loads(answer.body) if answer.ok else {})
        except ValueError:
            return answer, {}

    answer, data = call()
    if (data.get("error") or {}).get("code") != "maxlag" and answer.status not in (429, 503):
        return answer, data, 0.0
    wait = min(retry_after(answer.headers.get("retry-after", "").encode(), 5.0), wait_cap)
    time.sleep(wait)
    return *call(), wait


def wiki_row(cfg: config.Section, client: Client) -> dict[str, str]:
    """bgwiki: siteinfo and one ``action=parse``, with ``maxlag``."""
    api, maxlag = cfg.crawl.bgwiki.api, cfg.crawl.bgwiki.maxlag
    found = Finding("bgwiki", ["API siteinfo", "action=parse"])
    start = client.requests
    answer, data, waited = _api(client, api, {"action": "query", "meta": "siteinfo"}, maxlag,
                                cfg.crawl.backoff_max_seconds)
    if answer.error:
        found.problem("unreachable", answer.error, "check crawl.bgwiki.api and your network")
    elif answer.status == 403:
        found.problem("blocked", "HTTP 403 on the API: the agent was refused",
                      "set crawl.user_agent to name you and a contact (Wikimedia's User-Agent policy)")
    elif why := refusal(answer.status, answer.body, answer.headers):
        found.problem("blocked", f"{why} on the API", HINT)
    elif not data.get("query"):
        error = data.get("error") or {"code": f"HTTP {answer.status}"}
        found.problem("changed", f"siteinfo: {error.get('code')} {error.get('info', '')}".strip(),
                      "check crawl.bgwiki.api: it should be a MediaWiki api.php")
    else:
        general = data["query"].get("general", {})
        found.evidence.append(f"siteinfo {answer.status}: {general.get('sitename', '?')}, "
                              f"{general.get('generator', '?')}")
        page = general.get("mainpage", "")
        answer, data, more = _api(client, api, {"action": "parse", "page": page,
                                                "prop": "text|revid"}, maxlag,
                                  cfg.crawl.backoff_max_seconds)
        waited += more
        text = (data.get("parse") or {}).get("text", "")
        if text:
            found.evidence.append(f"parse {page!r}: {len(text):,} characters of HTML")
        else:
            found.problem("changed", f"parse {page!r}: HTTP {answer.status}, no text",
                          "check crawl.bgwiki.api")
    found.evidence.append(f"maxlag={maxlag} sent" + (
        f", a maxlag answer waited out ({waited:.0f} s, Retry-After)" if waited else ""))
    return found.row(client.requests - start)


def _article_links(site: Site, answer: Answer, client: Client) -> set[str]:
    """The article links on a listing page that the crawl would follow (robots.txt allowing)."""
    page = HtmlResponse(answer.url, body=answer.body,
                        encoding=decode(answer.body, answer.headers.get("content-type"))[1])
    return {u for link in site.links.extract_links(page)
            if site.is_article(u := clean_url(link.url)) and client.allowed(u)}


def news_row(site: Site, cfg: config.Section, client: Client,
             render: Callable[[str], str]) -> dict[str, str]:
    """One news site: robots.txt, feeds, a sitemap, the newest article, yesterday's archive."""
    found = Finding(site.name)
    start = client.requests
    first = urlsplit(site.urls()[0])
    robots = client.robots_answer(f"{first.scheme}://{first.netloc}")
    answers = [("/robots.txt", robots)]
    found.tried.append("robots.txt")
    if robots.error:
        _listings(found, answers)
        return found.row(client.requests - start)
    text = decode(robots.body)[0] if robots.ok else ""
    sitemaps = [u for u in re.findall(r"(?im)^\s*sitemap\s*:\s*(\S+)", text)
                if on_domains(u, site.domains)]
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    archives = ([(t.format(date=yesterday), None) for t in site.archive_urls]
                + [(f.url, f.fields(yesterday)) for f in site.archive_forms])
    used = site.start_urls + [u for u, _ in archives]
    denied = [urlsplit(u).path for u in used if not client.allowed(u)]
    found.evidence.append(f"robots.txt {robots.status}" + (
        f", disallows {', '.join(denied)}" if denied else ", allows the paths used"))
    if denied:
        found.problem("blocked", f"robots.txt disallows {', '.join(denied)}",
                      "the site's robots.txt forbids these URLs: drop them or ask the site")
    articles: list = []
    for url in site.start_urls[:MAX_FEEDS]:
        found.tried.append(f"feed {urlsplit(url).path}")
        answer = client.fetch(url)
        answers.append((urlsplit(url).path, answer))
        links = parse_xml_links(answer.body, url, answer.headers.get("content-type")) \
            if answer.ok and not refusal(answer.status, answer.body, answer.headers) else None
        if answer.ok and links is None:
            found.problem("changed", f"{urlsplit(url).path}: not a feed or sitemap",
                          "find the site's current feed and set it in start_urls")
        elif links is not None:
            kept = [e for e in links.entries if site.is_article(clean_url(e.url))]
            articles += kept
            found.evidence.append(f"{links.kind} {urlsplit(url).path}: {len(links.entries)} items, "
                                  f"{len(kept)} article links")
            if not kept:
                found.problem("changed", f"no article links in {urlsplit(url).path}",
                              "check article_pattern and allowed_domains against the feed")
        else:
            _gone(found, urlsplit(url).path, answer,
                  "find the site's current feed and set it in start_urls")
    if sitemaps:
        found.tried.append("sitemap")
        found.evidence.append(f"Sitemap: lines in robots.txt: {len(sitemaps)}")
        answers.append((urlsplit(sitemaps[0]).path, sitemap_evidence(found, client, sitemaps[0])))
    else:
        found.evidence.append("no Sitemap: line in robots.txt")
    for url, form in archives[:1]:
        found.tried.append("yesterday's archive" + (" (POST)" if form else ""))
        answer = client.fetch(url, form)
        answers.append((urlsplit(url).path, answer))
        if answer.ok and not refusal(answer.status, answer.body, answer.headers):
            count = len(_article_links(site, answer, client))
            found.evidence.append(f"archive {yesterday}: {count} article links")
            if not count:
                found.problem("changed", f"archive {yesterday} lists no article links",
                              "check archive_urls/archive_forms and article_pattern")
        else:
            _gone(found, urlsplit(url).path, answer,
                  "find the site's current archive page and set it in archive_urls/archive_forms")
    _listings(found, answers)
    if articles:
        newest = max(articles, key=lambda e: e.day or datetime.min.date())
        found.tried.append("newest article")
        _article(found, site, cfg, client, render, clean_url(newest.url))
    return found.row(client.requests - start)


def _article(found: Finding, site: Site, cfg: config.Section, client: Client,
             render: Callable[[str], str], url: str) -> None:
    """Fetch one article and measure its main text; render it when that is short."""
    answer = client.fetch(url)
    path = urlsplit(url).path
    why = None if answer.error else refusal(answer.status, answer.body, answer.headers)
    if answer.error.startswith("robots.txt"):
        found.problem("blocked", f"article: {answer.error}",
                      "the site's robots.txt forbids its articles: ask the site")
        return
    if answer.error or why or not answer.ok:
        found.problem("blocked" if why else "unreachable",
                      f"article {path}: {why or answer.error or f'HTTP {answer.status}'}",
                      HINT if why else "check the site; the feed links a page that fails")
        return
    chars = article_chars(decode(answer.body, answer.headers.get("content-type"))[0])
    minimum = cfg.crawl.render_min_chars
    evidence = f"article {path}: {chars:,} characters (plain HTML"
    if chars < minimum and site.render != "never":
        try:
            rendered = article_chars(render(url))
            evidence += f"), {rendered:,} rendered in Chromium"
            chars = rendered
        except RenderError as exc:
            evidence += f"; rendering failed: {exc}"
    else:
        evidence += ")"
    if chars < minimum:
        found.problem("changed", f"{evidence}: under crawl.render_min_chars={minimum}",
                      "the article layout changed: check the page, set a selector or render")
    else:
        found.evidence.append(evidence + ", main text by trafilatura")


class Renderer:
    """Chromium renders of article pages (one browser, started at the first), each one of the
    client's requests: ``crawl.download_delay`` after the last request to the host, counted."""

    def __init__(self, cfg: config.Section, client: Client):
        self.cfg, self.client = cfg, client
        self.pool: RenderPool | None = None

    def __call__(self, url: str) -> str:
        crawl = self.cfg.crawl
        self.pool = self.pool or RenderPool(
            1, chromium=crawl.chromium, chromedriver=crawl.chromedriver,
            timeout=crawl.selenium_timeout, user_agent=self.client.agent,
            min_chars=crawl.render_min_chars, settle=crawl.render_settle_seconds)
        lease = self.pool.acquire()  # the browser started before the wait: the wait ends at the fetch
        try:
            with self.client.turn(url):
                return self.pool.render(url, lease).html
        finally:
            self.pool.release(lease)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def table(rows: list[dict[str, str]]) -> str:
    """The rows as a Markdown table."""
    return "\n".join(markdown.table(COLUMNS, [[r[c] for c in COLUMNS] for r in rows]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crawler.check",
                                     description=__doc__.split("\n\n")[0])
    config.add_config_args(parser)
    parser.add_argument("--site", metavar="NAME", help="check only this source (bgwiki, dump or a news site)")
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = config.from_args(args)
    sites = [Site(t) for t in cfg.crawl.news]
    names = ["bgwiki", "dump", *(s.name for s in sites)]
    if args.site and args.site not in names:
        raise UserError(f"unknown source {args.site!r} (configured: {', '.join(names)})")
    chosen = [s for s in sites if args.site in (None, s.name)]
    urls = ([cfg.crawl.bgwiki.api] if args.site in (None, "bgwiki") else []) + (
        [cfg.crawl.bgwiki.dump] if args.site in (None, "dump") else []) + [
        u for s in chosen for u in s.urls()]
    client = Client(user_agent.checked(cfg.crawl.user_agent, urls, user_agent.URLLIB),
                    cfg.crawl.download_delay)
    render = Renderer(cfg, client)
    checks: list[Callable[[], dict[str, str]]] = []
    if args.site in (None, "bgwiki"):
        checks.append(lambda: wiki_row(cfg, client))
    if args.site in (None, "dump"):
        checks.append(lambda: wikidump.preflight(cfg, client.agent))
    checks += [lambda s=s: news_row(s, cfg, client, render) for s in chosen]
    try:
        rows = [check() for check in checks]
    finally:
        render.close()
    print(table(rows), flush=True)
    broken = [r for r in rows if r["result"] != "ok"]
    for r in broken:
        print(f"{r['source']}: {r['result']}: {r['fix']}", file=sys.stderr)
    if broken:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
