"""The wiki cleaner: article text of MediaWiki HTML, walked on lxml's tree.

Wikipedia pages come as ``action=parse`` output (the API crawl) or as Parsoid documents (the
Enterprise HTML dumps, ``make wikidump``); both are cleaned alike. Headings, paragraphs and lists
are kept; navboxes, infoboxes, tables, figures, references and citation marks, edit links, the
TOC, coordinates, math, hatnotes and the trailing sections (Бележки, Източници, …) go. Parsoid
marks a template's output (``typeof="mw:Transclusion"``, its nodes sharing one ``about``): outside
prose it is furniture (infobox, navbox, "main article" box, sister-project links) and goes even
without a telling class; inside a paragraph (a date, a foreign word) it is text and stays.

The text is what BeautifulSoup's ``get_text`` gave when this cleaner was written on it (strings
under ``rt``, ``rp`` and ``template`` left out, comments too): lxml parses a real-size page about
20 times faster than BeautifulSoup builds its tree, so the hot path walks lxml's elements itself.
"""

from __future__ import annotations

import re

from lxml import etree

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
BLOCKS = frozenset((*HEADINGS, "p", "li", "dt", "dd", "blockquote", "pre"))
KEPT_IN_FURNITURE = frozenset((*HEADINGS, "p"))  # a template's paragraphs and headings stay
MUTED = frozenset(("rt", "rp", "template"))  # elements whose strings are not text
TRANSCLUSION = "mw:Transclusion"
_SPACE = re.compile(r"\s+")


def extract_wiki(html: str) -> str:
    """Article text of MediaWiki HTML (``action=parse`` output, a Parsoid document or a served page)."""
    doc = etree.fromstring(html.encode("utf-8", "replace"), etree.HTMLParser(encoding="utf-8"))
    if doc is None:
        return ""
    root = next((el for el in doc.iter(etree.Element)
                 if "mw-parser-output" in (el.get("class") or "").split()), None)
    if root is None:
        root = next(doc.iter("body"), doc)
    blocks: list[tuple[etree._Element, bool]] = []
    _outer_blocks(root, _furniture(root), next(root.iterancestors(*BLOCKS), None) is not None,
                  next(root.iterancestors(*MUTED), None) is not None, blocks)
    return "\n".join(_section_lines(blocks))


def _junk(el: etree._Element) -> bool:
    if el.tag in JUNK_TAGS or el.get("id") in JUNK_IDS:
        return True
    cls, typeof = el.get("class"), el.get("typeof")
    return ((cls is not None and not JUNK_CLASSES.isdisjoint(cls.split()))
            or (typeof is not None and not JUNK_TYPEOF.isdisjoint(typeof.split())))


def _furniture(root: etree._Element) -> set[str]:
    """``about`` groups of the Parsoid transclusions under ``root`` that sit outside any block."""
    return {el.get("about") for el in root.iterdescendants(etree.Element)
            if el.get("about") is not None and TRANSCLUSION in (el.get("typeof") or "").split()
            and next(el.iterancestors(*BLOCKS), None) is None}


def _outer_blocks(el: etree._Element, abouts: set[str], in_block: bool, muted: bool,
                  out: list[tuple[etree._Element, bool]]) -> None:
    """Append (block, muted) for the outermost kept block elements under ``el``, in document order.

    Junk goes with everything under it; so does a furniture group's node outside any block
    (``in_block``: ``el`` has a block ancestor), except its paragraphs and headings.
    """
    for child in el.iterchildren(etree.Element):
        tag = child.tag
        if _junk(child) or (not in_block and tag not in KEPT_IN_FURNITURE
                            and abouts and child.get("about") in abouts):
            continue
        if tag in BLOCKS:
            out.append((child, muted))
        else:
            _outer_blocks(child, abouts, in_block, muted or tag in MUTED, out)


def _text(el: etree._Element, muted: bool, parts: list[str]) -> None:
    """Append the strings under ``el`` (not its own text, nor its tail), leaving junk out."""
    for child in el:
        if isinstance(child.tag, str) and not _junk(child):
            mute = muted or child.tag in MUTED
            if child.text and not mute:
                parts.append(child.text)
            _text(child, mute, parts)
        if child.tail and not muted:
            parts.append(child.tail)


def _section_lines(blocks: list[tuple[etree._Element, bool]]) -> list[str]:
    """Text of each block; a heading named in STOP_SECTIONS drops its section (up to the next
    heading of the same or a higher level)."""
    out: list[str] = []
    skip_level = 0  # > 0: inside a dropped section of this heading level
    for block, muted in blocks:
        parts = [block.text] if block.text and not muted else []
        _text(block, muted, parts)
        text = _SPACE.sub(" ", "".join(parts)).strip()
        if block.tag in HEADINGS:
            level = int(block.tag[1])
            if skip_level and level > skip_level:
                continue
            skip_level = level if text.lower() in STOP_SECTIONS else 0
        if text and not skip_level:
            out.append(text)
    return out
