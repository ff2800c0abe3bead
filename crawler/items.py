"""The raw page record: one a line in data/raw/<spider>/part-NNNNN.jsonl.gz."""

from __future__ import annotations

import scrapy


class RawPage(scrapy.Item):
    """A fetched page, kept whole so the corpus stage can re-clean without crawling again."""

    url = scrapy.Field()            # the URL fetched
    canonical_url = scrapy.Field()  # the page's canonical URL (wiki: /wiki/Title; news: rel=canonical)
    title = scrapy.Field()
    source = scrapy.Field()         # "bgwiki" or the news site's configured name
    lang = scrapy.Field()           # declared language (the corpus stage checks it for real)
    fetched_at = scrapy.Field()     # ISO 8601 UTC
    http_status = scrapy.Field()
    via = scrapy.Field()            # "http" or "selenium"
    render_s = scrapy.Field()       # selenium: seconds to render, the wait for late content included
    revid = scrapy.Field()          # wiki revision id (None for news)
    license = scrapy.Field()        # "CC BY-SA 4.0" for Wikipedia
    html = scrapy.Field()           # wiki: action=parse HTML; news: the whole page
    published = scrapy.Field()      # news: publication date when the page states it
    author = scrapy.Field()         # news: author when the page states it
    categories = scrapy.Field()     # wiki: category names
