"""Wikimedia Enterprise HTML dumps in their real shape, built from replay pages, for tests, demo, bench.

A dump is one gzip stream of a tar as Go's ``archive/tar`` writes it (USTAR headers, the end
marked by exactly 1,024 zero bytes, no record padding) of ``<wiki>_namespace_0_<N>.ndjson`` files
(N from 0, each at most ``MEMBER_BYTES``), one Enterprise "article" a line (``name``,
``identifier``, ``url``, ``date_modified``, ``version``, ``event``, ``namespace``,
``in_language``, ``license[]``, ``redirects[]``, ``categories[]``, ``templates[]``, ``abstract``,
``article_body.html`` / ``.wikitext``). As in a snapshot built from a compacted stream read in
parallel, ``dump_articles`` can repeat pages in an older revision (before or after the newest,
some way off) and add the ``event.type`` "delete" records page moves leave (no ``article_body``).
Beside each dump its run folder holds ``<wiki>-NS0-<date>-ENTERPRISE-STATS.json`` with its md5
(``stats_file``). The HTML is shaped like Parsoid's: a whole document with
``<section data-mw-section-id>`` wrappers, templates as ``typeof="mw:Transclusion"`` nodes grouped
by ``about`` (hatnote, infobox, a coordinates box, a navbox, inline date templates inside
paragraphs), a ``<figure>`` thumbnail with its ``<figcaption>``, ``sup.mw-ref`` citation marks,
a ``div.mw-references-wrap`` list under „Бележки“, „Външни препратки“, category ``<link>``s, and no
edit links. ``demo.replay.real_size`` renders pages of real articles' sizes and furniture.

``DumpMirror`` is the download server's shape for the replay server (``demo.replay.core``): the
``runs/`` index, run folders (one may lack its files: written as ``.tmp`` and renamed at the
end), dump and STATS files answered resumably (with ``Faults`` slowly, so a test can kill a
download part-way).

    python -m demo.replay.dump --pages 20000 OUT.json.tar.gz   # and OUT's STATS file beside it
    python -m demo.replay.dump --pages 2000 --real-size OUT.json.tar.gz   # real articles' sizes

The STATS file is named for the run date in OUT's name (``...-NS0-<date>-...``), else the
articles' ``date_modified`` day.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import heapq
import html
import itertools
import json
import random
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote

from common.atomic import atomic_write
from common.errors import UserError, cli_main
from demo.replay.core import Request, Response, Route, route
from demo.replay.pages import Page, href, number_pages, synthetic_pages
from demo.replay.wikitext import Renderer, inline, sections

WIKI = "bgwiki"
BASE = "https://bg.wikipedia.org"
LICENSE = {"name": "Creative Commons Attribution-ShareAlike License 4.0",
           "identifier": "CC-BY-SA-4.0", "url": "https://creativecommons.org/licenses/by-sa/4.0/"}
MEMBER_BYTES = 100_000_000  # Wikimedia's members are at most about 100 MB
STATS_NAME = "{wiki}-NS0-{date}-ENTERPRISE-STATS.json"
MODIFIED = "2026-11-01T08:00:00Z"
REPEAT_SPREAD = 500  # articles between the copies of a repeated page, at most


def _url(title: str) -> str:
    return BASE + href(title)


def data_mw(template: str, *args: str, **params: str) -> str:
    values = {**{str(i): a for i, a in enumerate(args, 1)}, **params}
    data = {"parts": [{"template": {"target": {"wt": template, "href": f"./Шаблон:{quote(template)}"},
                                    "params": {k: {"wt": v} for k, v in values.items()}, "i": 0}}]}
    return html.escape(json.dumps(data, ensure_ascii=False), quote=True)


def wikilink(target: str, label: str) -> str:
    return f'<a rel="mw:WikiLink" href="./{quote(target.replace(" ", "_"))}" title="{target}">{label}</a>'


class ParsoidRenderer(Renderer):
    """A page's body as a Parsoid HTML document (what ``article_body.html`` holds)."""

    notes_per_page: int | None = 6  # a reference mark a paragraph, up to this many (None: no limit)

    def __init__(self, pages: list[Page]):
        super().__init__(pages)
        self.about = 0

    def _mwt(self) -> str:
        self.about += 1
        return f"#mwt{self.about}"

    def _inline(self, text: str, notes: list[str], page: Page) -> str:
        text = inline(text, wikilink)
        # a date template inside the prose: its text is article text
        text = re.sub(r"\b(1[89]\d\d) г\.(?![^<]*>)", lambda m: f'<span about="{self._mwt()}" typeof="mw:Transclusion" '
                      f'data-mw="{data_mw("Дата", година=m.group(1))}">{m.group(1)} г.</span>', text, count=1)
        if self.notes_per_page is None or len(notes) < self.notes_per_page:
            notes.append(self._note(page, len(notes) + 1))
            n = len(notes)
            mark = (f'<sup about="{self._mwt()}" class="mw-ref reference" id="cite_ref-{n}" rel="dc:references" '
                    f'typeof="mw:Extension/ref" data-mw="{{&quot;name&quot;:&quot;ref&quot;}}"><a href="./'
                    f'{quote(page.title.replace(" ", "_"))}#cite_note-{n}"><span class="mw-reflink-text">'
                    f'<span class="cite-bracket">[</span>{n}<span class="cite-bracket">]</span></span></a></sup>')
            text = re.sub(r"([.!?])(\s|$)", lambda m: m.group(1) + mark + m.group(2), text, count=1)
        return text

    def _note(self, page: Page, n: int) -> str:
        """The text of reference ``n`` in the page's list."""
        return f"Енциклопедичен справочник за {html.escape(page.title)}, т. {n}, с. {31 + 9 * n}."

    def render(self, page: Page) -> str:
        parts = sections(page.body)
        notes: list[str] = []
        title = html.escape(page.title)
        out = ['<!DOCTYPE html>\n<html prefix="dc: http://purl.org/dc/terms/ mw: http://mediawiki.org/rdf/" '
               f'about="{BASE}/wiki/Special:Redirect/revision/{page.revid}"><head prefix="mwr: {BASE}/wiki/'
               f'Special:Redirect/"><meta charset="utf-8"/><meta property="mw:pageId" content="{page.pageid}"/>'
               '<meta property="mw:pageNamespace" content="0"/><meta property="mw:htmlVersion" content="2.8.0"/>'
               f'<link rel="dc:isVersionOf" href="//bg.wikipedia.org/wiki/{quote(page.title.replace(" ", "_"))}"/>'
               f'<base href="//bg.wikipedia.org/wiki/"/><title>{title}</title>'
               '<meta http-equiv="content-language" content="bg"/></head>'
               '<body id="mwAA" lang="bg" class="mw-content-ltr sitedir-ltr ltr mw-body-content parsoid-body '
               'mediawiki mw-parser-output" dir="ltr">',
               '<section data-mw-section-id="0" id="mwAQ">', self._hatnote(page), self._infobox(page),
               self._coordinates(), self._figure(page, page.pageid)]
        out += self._paragraphs(parts[0][2], notes, page)
        open_levels: list[int] = [1]
        for number, (level, heading, lines) in enumerate(parts[1:], 1):
            while open_levels[-1] >= level:
                out.append("</section>")
                open_levels.pop()
            out.append(f'<section data-mw-section-id="{number}" id="mwS{number}">'
                       f'<h{level} id="{html.escape(heading.replace(" ", "_"))}">{html.escape(heading)}</h{level}>')
            if number == 1:
                out.append(self._main_article(f"{page.title} – {heading}"))
            open_levels.append(level)
            out += self._paragraphs(lines, notes, page)
        out += ["</section>"] * len(open_levels)
        number = len(parts)
        refs = "".join(f'<li about="#cite_note-{i}" id="cite_note-{i}"><span class="mw-cite-backlink" '
                       f'rel="mw:referencedBy"><a href="./{quote(page.title)}#cite_ref-{i}"><span '
                       f'class="mw-linkback-text">↑ </span></a></span> <span id="mw-reference-text-cite_note-{i}" '
                       f'class="mw-reference-text reference-text">{note}</span></li>'
                       for i, note in enumerate(notes, 1))
        out.append(f'<section data-mw-section-id="{number}" id="mwS{number}"><h2 id="Бележки">Бележки</h2>'
                   f'<div class="mw-references-wrap" typeof="mw:Extension/references" about="{self._mwt()}" '
                   f'data-mw="{{&quot;name&quot;:&quot;references&quot;}}"><ol class="mw-references references">'
                   f"{refs}</ol></div></section>")
        out.append(f'<section data-mw-section-id="{number + 1}" id="mwS{number + 1}"><h2 id="Външни_препратки">'
                   f'Външни препратки</h2><ul><li><a rel="mw:ExtLink nofollow" class="external text" '
                   f'href="https://www.example.bg/encyclopedia/{quote(page.title)}">„{title}“ в Енциклопедия '
                   f"България</a></li></ul>{self._marked_navbox(page)}")
        out += [f'<link rel="mw:PageProp/Category" href="./Категория:{quote(c.replace(" ", "_"))}"/>'
                for c in page.categories]
        out.append("</section></body></html>")
        return "\n".join(out)

    def _paragraphs(self, lines: list[str], notes: list[str], page: Page) -> list[str]:
        out = []
        for is_list, group in itertools.groupby(lines, key=lambda line: line.startswith("*")):
            items = [self._inline(line.lstrip("* ") if is_list else line, notes, page) for line in group]
            out += ["<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"] if is_list else \
                [f"<p>{i}</p>" for i in items]
        return out

    def _hatnote(self, page: Page) -> str:
        return (f'<div class="hatnote navigation-not-searchable" role="note" about="{self._mwt()}" '
                f'typeof="mw:Transclusion" data-mw="{data_mw("Друго значение")}">Вижте пояснителната '
                f'страница за други значения на „{html.escape(page.title)}“.</div>')

    def _infobox(self, page: Page) -> str:
        about = self._mwt()
        rows = "".join(f'<tr><th scope="row">Категория</th><td><a rel="mw:WikiLink" href="./Категория:'
                       f'{quote(c)}">{html.escape(c)}</a></td></tr>' for c in page.categories[:3])
        return (f'<style data-mw-deduplicate="TemplateStyles:r1" typeof="mw:Extension/templatestyles '
                f'mw:Transclusion" about="{about}" data-mw="{data_mw("Инфокутия")}">.infobox{{float:right}}'
                f'</style><table class="infobox infobox-table" about="{about}"><tbody><tr><th colspan="2">'
                f"{html.escape(page.title)}</th></tr>{rows}<tr><td colspan=\"2\">Общ преглед на обекта</td></tr>"
                "</tbody></table>")

    def _figure(self, page: Page, number: int) -> str:
        """Picture ``number`` of the page as a thumbnail with its caption (``[[Файл:…|мини|…]]``)."""
        name = quote(f"{page.title} {number}.jpg".replace(" ", "_"))
        path = f"//upload.wikimedia.org/wikipedia/commons/thumb/{name[0]}/{name[:2]}/{name}"
        caption = f"Изглед към {html.escape(page.title)} ({1900 + number % 125} г.)"
        return (f'<figure class="mw-default-size" typeof="mw:File/Thumb"><a href="./Файл:{name}" '
                f'class="mw-file-description"><img resource="./Файл:{name}" src="{path}/250px-{name}" '
                f'decoding="async" data-file-width="3264" data-file-height="2448" data-file-type="bitmap" '
                f'height="188" width="250" srcset="{path}/375px-{name} 1.5x, {path}/500px-{name} 2x" '
                f'class="mw-file-element"/></a><figcaption>{caption}, '
                f'{wikilink("Снимка", "снимка")} от архива</figcaption></figure>')

    def _main_article(self, target: str) -> str:
        # "main article" box: class-less list markup a template emits under a heading
        return (f'<dl about="{self._mwt()}" typeof="mw:Transclusion" data-mw="{data_mw("Основна", target)}">'
                f'<dd><i>Основна статия: <a rel="mw:WikiLink" href="./{quote(target.replace(" ", "_"))}">'
                f"{html.escape(target)}</a></i></dd></dl>")

    def _coordinates(self) -> str:
        # a block template without a telling class: only its typeof marks it as template output
        about = self._mwt()
        return (f'<div style="float:right;font-size:90%" about="{about}" typeof="mw:Transclusion" '
                f'data-mw="{data_mw("Координати", ширина="42.7", дължина="23.3")}"><span>Координати: '
                f'42°41′ с. ш. 23°19′ и. д.</span></div><span about="{about}">Карта на местоположението</span>')

    def _marked_navbox(self, page: Page) -> str:
        # the API shape's navbox, marked as the template output it is
        box = self.navbox(page)
        marks = (f'about="{self._mwt()}" typeof="mw:Transclusion" '
                 f'data-mw="{data_mw("Навигация", група=page.categories[0])}"') if box else ""
        return box.replace('class="navbox"', f'class="navbox" {marks}', 1)


def article(page: Page, renderer: ParsoidRenderer, modified: str = MODIFIED) -> dict:
    """The Enterprise "article" object of one page."""
    return {
        "name": page.title, "identifier": page.pageid, "abstract": page.body.split(".")[0][:200] + ".",
        "date_modified": modified,
        "version": {"identifier": page.revid, "comment": "правопис", "tags": [], "is_minor_edit": False,
                    "editor": {"identifier": 4242, "name": "Редактор"}},
        "event": {"identifier": f"{page.pageid}-{page.revid}", "type": "update", "date_created": modified},
        "url": _url(page.title), "namespace": {"identifier": 0}, "in_language": {"identifier": "bg"},
        "is_part_of": {"identifier": WIKI, "url": BASE}, "license": [LICENSE],
        "redirects": [{"name": r, "url": _url(r)} for r in page.redirects],
        "categories": [{"name": f"Категория:{c}", "url": _url(f"Категория:{c}")} for c in page.categories],
        "templates": [{"name": "Шаблон:Инфокутия", "url": _url("Шаблон:Инфокутия")}],
        "article_body": {"html": renderer.render(page), "wikitext": page.body},
    }


def deletion(title: str, pageid: int, revid: int, modified: str = MODIFIED) -> dict:
    """The record a page move leaves under the old title: ``event.type`` "delete", no ``article_body``."""
    return {"name": title, "identifier": pageid, "date_modified": modified, "version": {"identifier": revid},
            "event": {"identifier": f"{pageid}-{revid}-delete", "type": "delete", "date_created": modified},
            "url": _url(title), "namespace": {"identifier": 0}, "in_language": {"identifier": "bg"},
            "is_part_of": {"identifier": WIKI, "url": BASE}, "license": [LICENSE]}


def older(page: Page) -> Page:
    """``page`` a few revisions back: its last line not yet written."""
    return dataclasses.replace(page, revid=page.revid - 3, body=page.body.rsplit("\n", 1)[0])


def dump_articles(pages: list[Page], repeats: float = 0.0, moves: float = 0.0, seed: int = 20261101
                  ) -> Iterator[dict]:
    """Enterprise articles of ``pages``, one at a time (ids numbered like the replay wiki's).

    ``repeats``: the share of pages that also come in an older revision, before or after the
    newest (up to ``REPEAT_SPREAD`` articles away); ``moves``: the share of pages followed by the
    delete record of a title they were moved from.
    """
    renderer = ParsoidRenderer(pages)
    rng = random.Random(seed)
    later: list[tuple[int, int, dict]] = []  # (due after this many articles, tie-break, article)
    for number, page in enumerate(number_pages(pages)):
        while later and later[0][0] <= number:
            yield heapq.heappop(later)[2]
        copies = [article(page, renderer)]
        if rng.random() < repeats:
            copies.append(article(older(page), renderer))
            rng.shuffle(copies)  # the newest first or last
            heapq.heappush(later, (number + rng.randint(1, REPEAT_SPREAD), number, copies.pop()))
        yield from copies
        if rng.random() < moves:
            yield deletion(f"{page.title} (стар вариант)", page.pageid, page.revid)
    while later:
        yield heapq.heappop(later)[2]


def _tar_member(name: str, data: bytes) -> bytes:
    """A tar member as Go's ``archive/tar`` writes it: a USTAR header, the data, zeros to 512."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
    return info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict") + data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)


def write_dump(path: Path, lines: Iterable[dict | bytes], per_file: int = 0, compresslevel: int = 6,
               member_bytes: int = MEMBER_BYTES) -> Path:
    """Write a dump ``.tar.gz`` of NDJSON files of at most ``member_bytes`` each (and, when
    ``per_file`` is set, that many lines); a ``bytes`` item is a raw line."""
    with atomic_write(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=compresslevel,
                                                       mtime=0) as gz:
        chunk: list[bytes] = []
        size = number = 0
        for item in lines:
            line = item if isinstance(item, bytes) else \
                json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
            if chunk and (size + len(line) > member_bytes or len(chunk) == per_file):
                gz.write(_tar_member(f"{WIKI}_namespace_0_{number}.ndjson", b"".join(chunk)))
                chunk, size, number = [], 0, number + 1
            chunk.append(line)
            size += len(line)
        if chunk:
            gz.write(_tar_member(f"{WIKI}_namespace_0_{number}.ndjson", b"".join(chunk)))
        gz.write(b"\0" * 1024)  # the end: two zero blocks, no padding to a record
    return path


def stats_file(dump: bytes | Path, modified: str = "2026-11-02T03:04:05Z") -> bytes:
    """The run folder's ``<wiki>-NS0-<date>-ENTERPRISE-STATS.json`` for a dump (its md5)."""
    data = dump if isinstance(dump, bytes) else Path(dump).read_bytes()
    return json.dumps({"wiki": WIKI, "md5sum": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                       "date_modified": modified}).encode()


class DumpMirror:
    """dumps.wikimedia.org's shape, a site for ``demo.replay.core.ReplayServer``: the runs listing and dump files.

    ``files`` maps ``<run date>/<file name>`` to the file (bytes or a path; ``publish`` adds a
    dump with its STATS file); a run folder without its file is listed all the same (a run still
    being written); the listing's URL without its trailing "/" is redirected to it (301). Files
    are answered like the real server (``Range``/``If-Range``, ETag, 206/416 from the replay
    core). ``ranges`` keeps the ``Range`` header of every GET of a dump (None: the whole file),
    ``gets`` the name of every file GET, ``agents`` the User-Agents. Assigning new bytes to a
    file publishes a changed file (a new ETag). ``head_length`` False: a HEAD answer without
    ``Content-Length`` (as some servers and proxies send).
    """

    prefix = "/other/enterprise_html/runs/"

    def __init__(self, files: dict[str, bytes | Path], dates: Iterable[str] = ()):
        self.files = dict(files)
        self.dates = sorted({*dates, *(name.split("/")[0] for name in files)})
        self.ranges: list[str | None] = []
        self.gets: list[str] = []
        self.agents: set[str] = set()
        self.head_length = True
        self.routes: list[Route] = [
            (re.compile(re.escape(self.prefix.rstrip("/"))), self.redirect),
            (re.compile(re.escape(self.prefix)), self.listing),
            (re.compile(re.escape(self.prefix) + "(.*)", re.S), self.file)]

    def __call__(self, request: Request) -> Response | None:
        return route(self.routes, request)

    def publish(self, date: str, dump: bytes, stats: bool = True) -> str:
        """Put ``dump`` in run folder ``date`` as Wikimedia names it, with its STATS file unless
        ``stats`` is False; the dump's name under the runs listing."""
        name = f"{date}/{WIKI}-NS0-{date}-ENTERPRISE-HTML.json.tar.gz"
        self.files[name] = dump
        if stats:
            self.files[f"{date}/{STATS_NAME.format(wiki=WIKI, date=date)}"] = stats_file(dump)
        self.dates = sorted({*self.dates, date})
        return name

    def redirect(self, request: Request) -> Response:
        """The listing's URL without its "/": redirected, as nginx does."""
        return Response(301, b"", "text/html", {"Location": request.base + self.prefix})

    def listing(self, request: Request) -> Response:
        self.agents.add(request.headers.get("User-Agent", ""))
        rows = "".join(f'<a href="{d}/">{d}/</a>{" " * 40}01-Nov-2026 08:00       -\n' for d in self.dates)
        return Response(200, (f"<html>\n<head><title>Index of {self.prefix}</title></head>\n<body>\n"
                              f'<h1>Index of {self.prefix}</h1><hr><pre><a href="../">../</a>\n{rows}'
                              "</pre><hr></body>\n</html>\n").encode(), "text/html")

    def file(self, request: Request, name: str) -> Response | None:
        self.agents.add(request.headers.get("User-Agent", ""))
        if name not in self.files:
            return None
        if request.method == "GET":
            self.gets.append(name)
            if name.endswith(".tar.gz"):
                self.ranges.append(request.headers.get("Range"))
        unsized = {} if self.head_length or request.method != "HEAD" else {"Content-Length": None}
        return Response(200, self.files[name], "application/octet-stream", unsized, ranged=True)


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write a generated bgwiki Enterprise HTML dump (.tar.gz)")
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--paragraphs", type=int, default=6)
    parser.add_argument("--repeats", type=float, default=0.01,
                        help="share of pages also written in an older revision (default: 0.01)")
    parser.add_argument("--moves", type=float, default=0.005,
                        help="share of pages followed by a page move's delete record (default: 0.005)")
    parser.add_argument("--real-size", action="store_true",
                        help="pages of real articles' sizes and furniture (demo.replay.real_size); "
                             "--paragraphs is then drawn per page")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.paragraphs < 1:
        raise UserError("--pages and --paragraphs must be at least 1")
    if not (0 <= args.repeats <= 1 and 0 <= args.moves <= 1):
        raise UserError("--repeats and --moves must be between 0 and 1")
    if args.real_size:
        from demo.replay.real_size import real_size_articles  # it builds on this module's renderer
        write_dump(args.out, real_size_articles(args.pages))
    else:
        write_dump(args.out, dump_articles(synthetic_pages(args.pages, args.paragraphs), args.repeats,
                                           args.moves))
    named = re.search(r"-NS0-(\d{8})-", args.out.name)  # the run date of a file named as Wikimedia does
    stats = args.out.with_name(STATS_NAME.format(wiki=WIKI, date=named.group(1) if named else
                                                 MODIFIED[:10].replace("-", "")))
    with atomic_write(stats, "wb") as fh:
        fh.write(stats_file(args.out))
    print(f"{args.pages} articles -> {args.out} ({args.out.stat().st_size:,} bytes), md5 in {stats.name}")


if __name__ == "__main__":
    main()
