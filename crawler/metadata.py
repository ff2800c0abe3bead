"""An article page's metadata (title, canonical URL, publication date, author, language) from its
meta tags, microdata and JSON-LD: pure functions of the page, no crawl state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urljoin

from scrapy.http import TextResponse

_ARTICLE_TYPES = {"article", "newsarticle", "blogposting", "reportagenewsarticle",
                  "analysisnewsarticle", "opinionnewsarticle", "reviewnewsarticle", "report"}


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
                            # e.g. dnevnik.bg: <time itemprop="datePublished" content="...">
                            page.css('[itemprop="datePublished"]::attr(content)').get(),
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
