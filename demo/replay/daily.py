"""A news site shaped like dnevnik.bg as public reports of 2026 describe it: its feed ``/rss/``
answers 402 to a non-browser client; its daily page ``/allnews/YYYY/MM/DD/`` links each article
``/<section>/YYYY/MM/DD/<id>_<slug>/`` and that article's comments page ``.../comments/``; an
article gives its date only in ``<time itemprop="datePublished" content=...>`` (no JSON-LD, no
``article:published_time``).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from demo.replay.articles import Article, load_articles
from demo.replay.core import HTML, ReplayServer, Request, Response, Route, route

SECTION = "bulgaria"


class DailySite:
    """The site's routes: the refused feed, the daily pages, the articles and their comments."""

    def __init__(self, articles: list[Article]):
        self.articles = articles
        self.by_id = {str(4_700_001 + n): a for n, a in enumerate(articles)}
        self.routes: list[Route] = [(re.compile(pattern), handler) for pattern, handler in (
            (r"/rss/", self.feed),
            (r"/allnews/(\d{4})/(\d{2})/(\d{2})/", self.day),
            (rf"/{SECTION}/\d{{4}}/\d{{2}}/\d{{2}}/(\d+)_[^/]+/", self.article),
            (rf"/{SECTION}/\d{{4}}/\d{{2}}/\d{{2}}/(\d+)_[^/]+/comments/", self.comments),
        )]

    def __call__(self, request: Request) -> Response | None:
        return route(self.routes, request)

    @staticmethod
    def feed(request: Request) -> Response:
        return Response(402, b"<html><body><h1>402 Payment Required</h1></body></html>", HTML)

    def path(self, article_id: str) -> str:
        a = self.by_id[article_id]
        return f"/{SECTION}/{a.published.replace('-', '/')}/{article_id}_{a.slug}/"

    def day(self, request: Request, y: str, m: str, d: str) -> Response:
        shown = [i for i, a in self.by_id.items() if a.published == f"{y}-{m}-{d}"]
        items = "".join(f'<li><a href="{self.path(i)}">{html.escape(self.by_id[i].title)}</a> '
                        f'<a class="comments" href="{self.path(i)}comments/">Коментари</a></li>'
                        for i in shown)
        return Response(200, _page(f"Всички новини за {d}.{m}.{y}", f"<ul>{items}</ul>"), HTML)

    def article(self, request: Request, article_id: str) -> Response | None:
        a = self.by_id.get(article_id)
        if a is None:
            return None
        body = (f'<article><h1>{html.escape(a.title)}</h1><time itemprop="datePublished" '
                f'content="{a.published}T09:00:00+03:00">{a.published}</time>'
                + "".join(f"<p>{html.escape(p)}</p>" for p in a.paragraphs) + "</article>")
        return Response(200, _page(a.title, body), HTML)

    def comments(self, request: Request, article_id: str) -> Response | None:
        a = self.by_id.get(article_id)
        if a is None:
            return None
        return Response(200, _page(f"Коментари: {a.title}", "<ol><li>Добра статия.</li></ol>"), HTML)


def _page(title: str, main: str) -> bytes:
    return (f'<!DOCTYPE html><html lang="bg"><head><meta charset="utf-8"><title>'
            f"{html.escape(title)}</title></head><body><main>{main}</main></body></html>").encode()


class DailyReplay(ReplayServer):
    """``DailySite`` served: ``with DailyReplay(folder) as site: site.url("/allnews/...")``."""

    def __init__(self, articles: Path | list[Article], port: int = 0):
        self.site = DailySite(load_articles(articles))
        super().__init__(self.site, port=port)
