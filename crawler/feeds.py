"""Decode pages in any (Cyrillic) encoding, and read article links (and their dates) out of feeds
and sitemaps.

Decoding trusts the bytes before the labels: a BOM; then valid UTF-8 with non-ASCII text; then
the encoding the document declares (XML prolog, HTML meta); then the HTTP header; then the
Cyrillic single-byte code page whose decoding looks most like Bulgarian text. (Scrapy alone lets
a wrong header charset win, and guessed cp932 for short windows-1251 bodies.)
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin

from lxml import etree
from scrapy.utils.gz import gunzip

_DECLARED = re.compile(
    rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']"""
    rb"""|<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9._:-]+)", re.I)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))
_CYRILLIC_CODEPAGES = ("cp1251", "iso8859-5", "koi8-r", "cp866")  # codecs.lookup names
# the commonest Bulgarian lower-case letters; mis-decoded text scores far lower
_COMMON_BG = set("аеиотнрсвлкдпмзяъбгчу")


def _codec(name: str | bytes | None) -> str | None:
    if not name:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", "replace")
    try:
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def declared_encoding(body: bytes) -> str | None:
    """The encoding named in the first 2 KB: an XML prolog or an HTML ``<meta charset>``."""
    m = _DECLARED.search(body[:2048])
    return _codec(m.group(1) or m.group(2)) if m else None


def _bulgarian_score(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum(c in _COMMON_BG for c in letters) / len(letters) if letters else 0.0


def guess_encoding(body: bytes, header: str | None = None) -> str:
    """The encoding to decode ``body`` with (``header``: the Content-Type value, if any)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    if not body.isascii():
        try:
            body.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError:
            pass
    m = _HEADER_CHARSET.search(header or "")
    for name in (declared_encoding(body), _codec(m.group(1)) if m else None):
        if name and not name.startswith(("utf-8", "utf_8")) and _decodes(body, name):
            return name
    if body.isascii():
        return "utf-8"
    return max(_CYRILLIC_CODEPAGES,
               key=lambda cp: _bulgarian_score(body.decode(cp, "replace")))


def _decodes(body: bytes, name: str) -> bool:
    try:
        body.decode(name)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def decode(body: bytes, header: str | None = None) -> tuple[str, str]:
    """``(text, encoding)`` of a page or feed body; never raises on bad bytes."""
    name = guess_encoding(body, header)
    return body.decode(name, "replace"), name


@dataclass(frozen=True)
class Entry:
    """One link from a feed or sitemap, with what the feed says about it."""

    url: str
    title: str = ""
    published: str = ""
    author: str = ""
    modified: str = ""  # a sitemap's <lastmod>

    @property
    def day(self) -> date | None:
        """The day that dates the entry: its lastmod, else its publication date."""
        return entry_day(self.modified) or entry_day(self.published)


def entry_day(value: str | None) -> date | None:
    """The calendar day of a W3C/ISO 8601 date(time) or an RFC 822 date; None if neither."""
    if not value:
        return None
    m = re.match(r"\s*(\d{4})-(\d{2})-(\d{2})", value)
    try:
        if m:
            return date(*map(int, m.groups()))
        return parsedate_to_datetime(value).date()
    except (TypeError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class XmlLinks:
    kind: str  # "feed", "sitemap" or "sitemapindex"
    entries: list[Entry]


def _local(el) -> str:
    return etree.QName(el).localname.lower() if isinstance(el.tag, str) else ""


def _child_text(el, *names: str) -> str:
    for child in el:
        if _local(child) in names and (child.text or "").strip():
            return " ".join(child.text.split())
    return ""


def _author(el) -> str:
    for child in el:
        if _local(child) in ("creator", "author"):
            text = _child_text(child, "name") or (child.text or "").strip()
            if text:
                return " ".join(text.split())
    return ""


def _entry_url(el, base: str) -> str:
    for child in el:
        if _local(child) == "link":
            if child.get("href") and child.get("rel", "alternate") == "alternate":
                return urljoin(base, child.get("href").strip())
            if (child.text or "").strip():
                return urljoin(base, child.text.strip())
    guid = next((c for c in el if _local(c) == "guid" and c.get("isPermaLink") != "false"), None)
    if guid is not None and (guid.text or "").strip().startswith("http"):
        return guid.text.strip()
    about = el.get("{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about")
    return urljoin(base, about) if about else ""


def ungzipped(body: bytes, max_size: int = 0) -> bytes:
    """``body`` gunzipped when it is a gzip file (a ``.xml.gz`` sitemap served without
    ``Content-Encoding``), at most ``max_size`` bytes of it (0: no limit); else ``body``."""
    return gunzip(body, max_size=max_size) if body[:2] == b"\x1f\x8b" else body


def parse_xml_links(body: bytes, base_url: str, header: str | None = None) -> XmlLinks | None:
    """Links of an RSS 0.9x/1.0/2.0 or Atom feed, a sitemap or a sitemap index; None if not one."""
    text, _ = decode(body, header)
    head = text.lstrip("\ufeff \t\r\n")[:4096].lower()
    if not re.search(r"<(\w+:)?(rss|rdf|feed|urlset|sitemapindex)[\s>]", head):
        return None
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text.lstrip("\ufeff"))  # already decoded
    parser = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, huge_tree=False)
    root = etree.fromstring(text.encode("utf-8"), parser)
    if root is None:
        return None
    kind = _local(root)
    if kind in ("urlset", "sitemapindex"):
        entries = []
        for el in root:
            loc = _child_text(el, "loc")
            if not loc:
                continue
            news = next((c for c in el if _local(c) == "news"), None)
            entries.append(Entry(urljoin(base_url, loc),
                                 title=_child_text(news, "title") if news is not None else "",
                                 published=(_child_text(news, "publication_date")
                                            if news is not None else ""),
                                 modified=_child_text(el, "lastmod")))
        return XmlLinks("sitemap" if kind == "urlset" else "sitemapindex", entries)
    entries = []
    for el in root.iter():
        if _local(el) in ("item", "entry"):
            url = _entry_url(el, base_url)
            if url:
                entries.append(Entry(url, _child_text(el, "title"),
                                     _child_text(el, "pubdate", "date", "published", "issued",
                                                 "updated", "modified"),
                                     _author(el)))
    return XmlLinks("feed", entries)
