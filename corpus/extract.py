"""Step 2: the main text of a page, paragraphs separated by newlines.

Wikipedia pages go through the wiki cleaner (``corpus.wiki_extract``). News pages go through
trafilatura and readability checking each other (``corpus.news_extract``), unless the site's
config names a CSS ``selector`` for its article body: then the text of the selected elements is
taken block by block (headings, paragraphs, list items), with BeautifulSoup.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from corpus import news_extract
from corpus.wiki_extract import BLOCKS
from corpus.wiki_extract import extract_wiki as extract_wiki

WIKI_SOURCE = "bgwiki"
SELECTOR = "selector"  # the path label of a page cut by its site's CSS selector

_SPACE = re.compile(r"\s+")


def extract_news(html: str, selector: str = "", url: str | None = None) -> str:
    """Article text of a news page: the site's CSS selector when given, else both libraries."""
    return extract_news_with_path(html, selector, url)[0]


def extract_news_with_path(html: str, selector: str = "", url: str | None = None) -> tuple[str, str]:
    """(article text, path it took): ``selector`` or one of ``corpus.news_extract``'s paths."""
    if selector:
        soup = BeautifulSoup(html, "lxml")
        chosen = soup.select(selector)
        for el in chosen:
            for junk in el.select("script, style, noscript, form, iframe, aside, nav, figure"):
                junk.decompose()
        return "\n".join(line for el in chosen for line in _selected_lines(el)), SELECTOR
    return news_extract.extract(html, url)


def _selected_lines(el: Tag) -> list[str]:
    """Lines of one selector-chosen element: itself when a block, else its blocks or its text."""
    if el.name not in BLOCKS:
        lines = _blocks(el)
        if lines:
            return lines
    for br in el.find_all("br"):
        br.replace_with("\n")
    return [line for line in (_SPACE.sub(" ", part).strip() for part in el.get_text().split("\n"))
            if line]


def _blocks(root: Tag) -> list[str]:
    """Text of the outermost block elements under ``root`` in document order."""
    out: list[str] = []
    taken: set[int] = set()
    for el in root.find_all(BLOCKS):
        if any(id(parent) in taken for parent in el.parents):
            continue
        taken.add(id(el))
        text = _SPACE.sub(" ", el.get_text()).strip()
        if text:
            out.append(text)
    return out
