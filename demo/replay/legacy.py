"""The shared fixtures' legacy-encoded feeds, served by the news site in their original bytes.

Item links are rewritten to ``<item base>/<n>/<slug from the title>`` (Cyrillic, in the feed's
encoding; those pages answer only when the slug was decoded right), keeping the legacy encoding:
windows-1251 under a wrong ``charset=utf-8`` header (the XML prolog or meta tag is right),
ISO-8859-5 with no charset in the header (pages: none at all).
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from demo.replay.articles import slugify
from demo.replay.core import Response

LEGACY_FOLDERS = ("windows-1251-bulgarian", "iso-8859-5-bulgarian")


@dataclass(frozen=True)
class LegacyItem:
    title: str
    description: str
    slug: str


class LegacyFeed:
    """A real legacy-encoded feed whose item links are rewritten to this server, bytes kept."""

    def __init__(self, path: Path):
        self.path = path
        self.raw = path.read_bytes()
        root = etree.fromstring(self.raw, etree.XMLParser(recover=True, resolve_entities=False))
        self.encoding = etree.ElementTree(root).docinfo.encoding
        self.is_cp1251 = codecs.lookup(self.encoding).name == "cp1251"
        self.items: list[LegacyItem] = []
        self.links: list[str] = []
        for el in root.iter():
            if not isinstance(el.tag, str) or etree.QName(el).localname not in ("item", "entry"):
                continue
            link, title, description = "", "", ""
            for child in el:
                name = etree.QName(child).localname if isinstance(child.tag, str) else ""
                if name == "link" and not link:
                    link = child.get("href") or (child.text or "").strip()
                elif name == "title" and not title:
                    title = " ".join((child.text or "").split())
                elif name in ("description", "summary", "content") and not description:
                    description = re.sub(r"<[^>]+>", " ", child.text or "")
            if link and title:
                self.items.append(LegacyItem(title, " ".join(description.split()),
                                             slugify(title)))
                self.links.append(link)

    def render(self, item_base: str) -> bytes:
        body = self.raw
        order = sorted(range(len(self.items)), key=lambda n: -len(self.links[n]))  # prefixes last
        for n in order:
            link, item = self.links[n], self.items[n]
            new = f"{item_base}/{n}/{item.slug}".encode(self.encoding, "xmlcharrefreplace")
            for form in {link, html.escape(link, quote=False)}:
                body = body.replace(form.encode(self.encoding), new)
        return body


    def feed(self, item_base: str) -> Response:
        """The feed, its item links under ``item_base``."""
        # windows-1251 under a wrong header charset (only the XML prolog is right); ISO-8859-5
        # with no charset in the header
        ctype = "application/rss+xml" + ("; charset=utf-8" if self.is_cp1251 else "")
        return Response(200, self.render(item_base), ctype)

    def item_page(self, n: int, slug: str) -> Response | None:
        """Item ``n``'s page if ``slug`` is its slug, in the feed's encoding."""
        if n >= len(self.items) or self.items[n].slug != slug:
            return None
        item = self.items[n]
        page = (f"<html><head><title>{html.escape(item.title)}</title></head><body>"
                f"<h1>{html.escape(item.title)}</h1><p>{html.escape(item.description)}</p>"
                "</body></html>")
        if self.is_cp1251:
            # a declared charset, contradicted by a wrong header
            page = page.replace("<head>", f'<head><meta charset="{self.encoding}">')
            ctype = "text/html; charset=utf-8"
        else:  # no charset anywhere: only the bytes tell
            ctype = "text/html"
        return Response(200, page.encode(self.encoding, "xmlcharrefreplace"), ctype)


def legacy_feeds(fixtures: Path) -> dict[str, LegacyFeed]:
    """The fixtures' legacy feeds by ``<encoding folder>/<file>``."""
    return {f"{folder}/{path.name}": LegacyFeed(path) for folder in LEGACY_FOLDERS
            for path in sorted((fixtures / "rss_legacy_encodings" / folder).glob("*.xml"))}
