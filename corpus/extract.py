"""Step 2: the main text of a page, paragraphs separated by newlines.

Wikipedia pages come as ``action=parse`` output (the API crawl) or as Parsoid documents (the
Enterprise HTML dumps, ``make wikidump``); both are cleaned alike. Parsoid marks a template's
output (``typeof="mw:Transclusion"``, its nodes sharing one ``about``): outside prose it is
furniture (infobox, navbox, "main article" box, sister-project links) and goes even without a
telling class; inside a paragraph (a date, a foreign word) it is text and stays.

Wikipedia ``action=parse`` HTML is cleaned with BeautifulSoup: headings, paragraphs and lists
are kept; navboxes, infoboxes, tables, references and citation marks, edit links, the TOC,
coordinates, math, hatnotes and the trailing sections (Бележки, Източници, …) go. News pages go
through trafilatura and readability checking each other (``corpus.news_extract``), unless the
site's config names a CSS ``selector`` for its article body: then the text of the selected
elements is taken the same way as wiki text.
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from corpus import news_extract

WIKI_SOURCE = "bgwiki"
SELECTOR = "selector"  # the path label of a page cut by its site's CSS selector

# Elements that are never article prose: by tag, class or id.
JUNK_TAGS = {"script", "style", "noscript", "link", "meta", "table", "figure", "math"}
JUNK_CLASSES = {
    "mw-editsection", "toc", "toclimit-2", "toclimit-3", "navbox", "vertical-navbox",
    "navbox-styles", "infobox", "sidebar", "reflist", "references", "mw-references-wrap",
    "reference", "mw-cite-backlink", "coordinates", "geo-default", "geo", "mwe-math-element",
    "mwe-math-fallback-image-inline", "hatnote", "dablink", "rellink", "ambox", "mbox-small",
    "metadata", "noprint", "thumb", "gallery", "catlinks", "printfooter", "mw-empty-elt",
    "sistersitebox", "portalbox", "portal", "authority-control", "shortdescription",
    "mw-jump-link", "mw-indicators", "mw-ref", "mw-references",
}
# Parsoid marks references and their lists by type as well as by class.
JUNK_TYPEOF = {"mw:Extension/ref", "mw:Extension/references"}
JUNK_IDS = {"toc", "coordinates", "catlinks", "siteSub", "contentSub", "jump-to-nav"}
# Trailing sections whose headings end the article text (bg, and en for the English fixture).
STOP_SECTIONS = {
    "бележки", "източници", "литература", "външни препратки", "вижте също", "допълнителна литература",
    "references", "notes", "see also", "external links", "further reading", "bibliography",
}
HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
BLOCKS = (*HEADINGS, "p", "li", "dt", "dd", "blockquote", "pre")
TRANSCLUSION = "mw:Transclusion"
_SPACE = re.compile(r"\s+")


def extract_wiki(html: str) -> str:
    """Article text of MediaWiki HTML (``action=parse`` output, a Parsoid document or a served page)."""
    soup = BeautifulSoup(html, "lxml")
    root = soup.select_one(".mw-parser-output") or soup.body or soup
    elements = root.find_all(True)  # one walk of the tree for both kinds of junk
    junk = [el for el in elements if _is_junk(el)] + _template_furniture(elements)
    for el in junk:
        el.decompose()
    return "\n".join(_blocks(root, stop_sections=True))


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
        lines = _blocks(el, stop_sections=False)
        if lines:
            return lines
    for br in el.find_all("br"):
        br.replace_with("\n")
    return [line for line in (_SPACE.sub(" ", part).strip() for part in el.get_text().split("\n"))
            if line]


def _is_junk(el: Tag) -> bool:
    return (el.name in JUNK_TAGS or el.get("id") in JUNK_IDS
            or not JUNK_CLASSES.isdisjoint(el.get("class") or ())
            or not JUNK_TYPEOF.isdisjoint((el.get("typeof") or "").split()))


def _template_furniture(elements: list[Tag]) -> list[Tag]:
    """Parsoid template output outside prose, among ``elements`` (a tree's, in document order):
    every node of such a transclusion's ``about`` group.

    A group's paragraphs and headings are kept (a heading such as „Бележки“ from a template still
    ends the article text in ``_blocks``).
    """
    abouts = {el["about"] for el in elements
              if el.get("about") is not None and TRANSCLUSION in (el.get("typeof") or "").split()
              and el.find_parent(BLOCKS) is None}
    if not abouts:
        return []
    return [el for el in elements
            if el.get("about") in abouts and el.name != "p" and el.name not in HEADINGS
            and el.find_parent(BLOCKS) is None]


def _blocks(root: Tag, stop_sections: bool) -> list[str]:
    """Text of the outermost block elements under ``root`` in document order.

    With ``stop_sections`` a heading named in STOP_SECTIONS drops its section (up to the next
    heading of the same or a higher level).
    """
    out: list[str] = []
    taken: set[int] = set()
    skip_level = 0  # > 0: inside a dropped section of this heading level
    for el in root.find_all(BLOCKS):
        if any(id(parent) in taken for parent in el.parents):
            continue
        taken.add(id(el))
        text = _SPACE.sub(" ", el.get_text()).strip()
        if el.name in HEADINGS:
            level = int(el.name[1])
            if skip_level and level > skip_level:
                continue
            skip_level = level if stop_sections and text.lower() in STOP_SECTIONS else 0
        if text and not skip_level:
            out.append(text)
    return out
