"""The wikitext converter: a page body's sections and inline markup, and the API's parser output.

``sections`` and ``inline`` read the wikitext-ish bodies of the replay's pages (``== Heading ==``
lines, ``* item`` lists, ``'''bold'''`` and ``[[target|label]]`` links); ``Renderer`` turns a page
into parser output shaped like bg.wikipedia's ``action=parse`` text (infobox, contents, reference
marks, edit links, „Бележки“, „Външни препратки“, navbox). The dump's Parsoid documents
(``demo.replay.dump``) are drawn from the same parse.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote

from demo.replay.pages import CATEGORY_NS, Page, canon, href

Section = tuple[int, str, list[str]]  # level (0: the lead), heading, non-blank lines


def sections(body: str) -> list[Section]:
    """``body`` split at its ``== Heading ==`` lines: the lead, then one entry a heading."""
    out: list[Section] = [(0, "", [])]
    for line in body.splitlines():
        m = re.fullmatch(r"(={2,4})\s*(.+?)\s*\1\s*", line)
        if m:
            out.append((len(m.group(1)), m.group(2), []))
        elif line.strip():
            out[-1][2].append(line.strip())
    return out


def inline(text: str, link: Callable[[str, str], str]) -> str:
    """One line as HTML: escaped, ``'''bold'''``, and each ``[[target|label]]`` as ``link(target,
    label)`` (the label defaults to the target)."""
    text = html.escape(text, quote=False)
    text = re.sub(r"'''(.+?)'''", r"<b>\1</b>", text)

    def wikilink(m: re.Match) -> str:
        target, _, label = m.group(1).partition("|")
        return link(target, label or target)

    return re.sub(r"\[\[(.+?)\]\]", wikilink, text)


def _api_link(target: str, label: str) -> str:
    return f'<a href="{href(canon(target))}" title="{canon(target)}">{label}</a>'


class Renderer:
    """Turns a page body into parser output shaped like bg.wikipedia's ``action=parse`` text."""

    def __init__(self, pages: list[Page]):
        self.by_category: dict[str, list[str]] = {}
        for page in pages:
            for cat in page.categories:
                self.by_category.setdefault(cat, []).append(page.title)

    def render(self, page: Page) -> str:
        if page.html is not None:
            return page.html
        parts = sections(page.body)
        notes: list[str] = []
        out = ['<div class="mw-content-ltr mw-parser-output" lang="bg" dir="ltr">', self._infobox(page)]
        out += self._paragraphs(parts[0][2], notes, page)
        if len(parts) > 1:
            out.append(self._toc(parts[1:]))
        for number, (level, heading, lines) in enumerate(parts[1:], 1):
            out.append(self._heading(level, heading, number, page.title))
            out += self._paragraphs(lines, notes, page)
        number = len(parts)
        out.append(self._heading(2, "Бележки", number, page.title))
        out.append('<div class="reflist"><div class="mw-references-wrap"><ol class="references">')
        out += [f'<li id="cite_note-{i}"><span class="mw-cite-backlink"><b><a href="#cite_ref-{i}">↑'
                f'</a></b></span> <span class="reference-text">{note}</span></li>'
                for i, note in enumerate(notes, 1)]
        out.append("</ol></div></div>")
        out.append(self._heading(2, "Външни препратки", number + 1, page.title))
        slug = quote(page.title.replace(" ", "_"))
        out.append(f'<ul><li><a rel="nofollow" class="external text" href="https://www.example.bg/'
                   f'encyclopedia/{slug}">„{html.escape(page.title)}“ в Енциклопедия България</a></li>'
                   f'<li><a rel="nofollow" class="external text" href="https://archive.example.org/'
                   f'bg/{slug}">Архивни материали за {html.escape(page.title)}</a></li></ul>')
        out.append(self.navbox(page))
        out.append(f"<!--\nNewPP limit report\nParsed by mw-replay\nCPU time usage: 0.{page.pageid % 97:03d}"
                   " seconds\n-->\n</div>")
        return "\n".join(out)

    def _paragraphs(self, lines: list[str], notes: list[str], page: Page) -> list[str]:
        out: list[str] = []
        items: list[str] = []
        for line in lines:
            if line.startswith("*"):
                items.append(f"<li>{inline(line.lstrip('* '), _api_link)}</li>")
                continue
            if items:
                out.append("<ul>" + "".join(items) + "</ul>")
                items = []
            text = inline(line, _api_link)
            if len(notes) < 8 and (len(out) + len(notes)) % 2 == 0:
                notes.append(f"{html.escape(page.title)}. — В: Енциклопедия България. Т. {len(notes) + 1}. "
                             f"София, Издателство на БАН, 1978, с. {100 + 7 * len(notes)}.")
                n = len(notes)
                mark = (f'<sup id="cite_ref-{n}" class="reference"><a href="#cite_note-{n}">'
                        f'<span class="cite-bracket">&#91;</span>{n}<span class="cite-bracket">&#93;'
                        f"</span></a></sup>")
                text = re.sub(r"([.!?])(\s|$)", lambda m, mark=mark: m.group(1) + mark + m.group(2),
                              text, count=1)
            out.append(f"<p>{text}\n</p>")
        if items:
            out.append("<ul>" + "".join(items) + "</ul>")
        return out

    @staticmethod
    def _infobox(page: Page) -> str:
        name = html.escape(page.title)
        rows = "".join(f'<tr><th scope="row" class="infobox-label">Категория</th>'
                       f'<td class="infobox-data"><a href="{href(CATEGORY_NS + ":" + c)}">{html.escape(c)}'
                       f"</a></td></tr>" for c in page.categories[:3])
        return (f'<table class="infobox infobox-table" style="width:22em"><tbody><tr><th colspan="2" '
                f'class="infobox-above">{name}</th></tr><tr><td colspan="2" class="infobox-image">'
                f'<span class="mw-default-size" typeof="mw:File/Frameless"><a href="/wiki/Файл:{quote(page.title)}.jpg"'
                f' class="mw-file-description"><img src="//upload.wikimedia.org/wikipedia/commons/thumb/'
                f'{page.pageid}.jpg" decoding="async" width="250" height="180" class="mw-file-element">'
                f'</a></span><div class="infobox-caption">{name}</div></td></tr>{rows}</tbody></table>')

    @staticmethod
    def _toc(headings: list[Section]) -> str:
        items = []
        for number, (level, heading, _) in enumerate(headings, 1):
            items.append(f'<li class="toclevel-{level - 1} tocsection-{number}"><a href="#'
                         f'{quote(heading.replace(" ", "_"))}"><span class="tocnumber">{number}</span> '
                         f'<span class="toctext">{html.escape(heading)}</span></a></li>')
        return ('<div id="toc" class="toc" role="navigation" aria-labelledby="mw-toc-heading">'
                '<input type="checkbox" role="button" id="toctogglecheckbox" class="toctogglecheckbox" '
                'style="display:none"><div class="toctitle" lang="bg" dir="ltr"><h2 id="mw-toc-heading">'
                'Съдържание</h2><span class="toctogglespan"><label class="toctogglelabel" '
                f'for="toctogglecheckbox"></label></span></div><ul>{"".join(items)}</ul></div>')

    @staticmethod
    def _heading(level: int, heading: str, number: int, title: str) -> str:
        anchor = html.escape(heading.replace(" ", "_"))
        edit = (f'<span class="mw-editsection"><span class="mw-editsection-bracket">[</span><a href="/w/index.php?'
                f'title={quote(title.replace(" ", "_"))}&amp;action=edit&amp;section={number}" title="Редактиране '
                f'на раздел: {html.escape(heading)}"><span>редактиране</span></a><span '
                f'class="mw-editsection-bracket">]</span></span>')
        return (f'<div class="mw-heading mw-heading{level}"><h{level} id="{anchor}">{html.escape(heading)}'
                f"</h{level}>{edit}</div>")

    def navbox(self, page: Page) -> str:
        """The navbox of the page's first category: its pages, 30 at most."""
        if not page.categories:
            return ""
        cat = page.categories[0]
        links = " • ".join(f'<a href="{href(t)}" title="{html.escape(t)}">{html.escape(t)}</a>'
                           for t in self.by_category.get(cat, [])[:30])
        return (f'<div role="navigation" class="navbox" aria-labelledby="{html.escape(cat)}" '
                f'style="padding:3px"><table class="nowraplinks navbox-inner" style="border-spacing:0">'
                f'<tbody><tr><th scope="col" class="navbox-title" colspan="2">{html.escape(cat)}</th></tr>'
                f'<tr><td class="navbox-list-with-group navbox-list navbox-odd"><div style="padding:0 0.25em">'
                f"{links}</div></td></tr></tbody></table></div>")
