"""Real-size Parsoid pages for the generated Enterprise dump (``python -m demo.replay.dump --real-size``).

Real bgwiki articles as Parsoid HTML weigh 80–170 KB on average (25–50 GB for about 300,000),
with a median of tens of KB and a tail past 500 KB, and most of it is not prose: ``data-mw`` JSON on
every template node, a citation template behind each reference, reference lists of hundreds of
entries, navboxes of hundreds of links, tables and figures. ``target_bytes`` draws each page's
HTML size from a log-normal fitted to those figures (median ``MEDIAN_BYTES``, ``SIGMA``) and
``real_size_body`` writes a body long enough; ``RealSizeRenderer`` puts that furniture around the
prose. Rendered, 5,000 pages came out at a median of 46 KB, a mean of 106 KB and 2.6 % over 500 KB
(no page under ``FIXED_BYTES`` and one paragraph). The text a cleaner should keep is the
same as the API renderer's for the page: the furniture adds none.
"""

from __future__ import annotations

import html
import math
import random
from collections.abc import Callable, Iterator
from urllib.parse import quote

from demo.replay.dump import ParsoidRenderer, article, data_mw, wikilink
from demo.replay.pages import Page, number_pages, sentence, synthetic_pages

MEDIAN_BYTES = 45_000
SIGMA = 1.2
# Bytes of Parsoid HTML a page carries besides its paragraphs, and per paragraph of prose (with its
# links, reference and its share of figures and tables): measured on this renderer's output.
FIXED_BYTES = 16_000
PARAGRAPH_BYTES = 6_200
Sentence = Callable[[random.Random], str]


def target_bytes(rng: random.Random) -> int:
    """A page's HTML size, drawn from the log-normal."""
    return int(MEDIAN_BYTES * math.exp(rng.gauss(0, SIGMA)))


def _own_sentence(rng: random.Random) -> str:
    return sentence(rng.randrange(10**6), rng.randrange(10**3))


def real_size_body(n: int, sentence: Sentence | None = None, seed: int = 0) -> str:
    """Page ``n``'s body, long enough for its drawn size: paragraphs of ``sentence(rng)`` (default:
    the replay's own) with links and a year, a heading every 4 paragraphs, now and then a list."""
    rng = random.Random(f"{seed}-{n}")
    paragraphs = max(1, round((target_bytes(rng) - FIXED_BYTES) / PARAGRAPH_BYTES))
    return "\n".join(_body(paragraphs, sentence or _own_sentence, rng))


def real_size_articles(count: int, sentence: Sentence | None = None, seed: int = 0) -> Iterator[dict]:
    """Enterprise articles of ``count`` real-size pages (titles, categories and redirects as
    ``synthetic_pages``'), one at a time: a body is written for its article and dropped after."""
    pages = synthetic_pages(count, paragraphs=1)
    renderer = RealSizeRenderer(pages)
    for n, page in enumerate(number_pages(pages)):
        page.body = real_size_body(n, sentence, seed)
        yield article(page, renderer)
        page.body = ""


def _linked(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // 6)):
        i = rng.randrange(len(words) - 1)
        if words[i].isalpha() and not words[i].startswith("[["):
            words[i] = f"[[{words[i].capitalize()}|{words[i]}]]"
    return " ".join(words)


def _body(paragraphs: int, sentence: Sentence, rng: random.Random) -> list[str]:
    lines = []
    for p in range(paragraphs):
        if p and p % 4 == 0:
            marks = "===" if p % 12 == 8 else "=="
            lines.append(f"{marks} {' '.join(sentence(rng).split()[:3]).rstrip('.,;:!?')} {marks}")
        if p % 7 == 6:
            lines += [f"* {_linked(sentence(rng), rng)}" for _ in range(rng.randint(3, 6))]
            continue
        text = " ".join(sentence(rng) for _ in range(rng.randint(3, 6)))
        lines.append(f"{_linked(text, rng)} Това е отбелязано през {rng.randint(1850, 1999)} г.")
    return lines


class RealSizeRenderer(ParsoidRenderer):
    """``ParsoidRenderer`` with a real article's furniture: a citation template behind every
    reference, a figure and a wikitable in the sections, a large infobox and several navboxes."""

    notes_per_page = None  # a reference a paragraph, however many

    def __init__(self, pages: list[Page]):
        super().__init__(pages)
        self.section = 0  # the page's sections rendered so far (the lead is the first)

    def render(self, page: Page) -> str:
        self.section = 0
        return super().render(page)

    def _note(self, page: Page, n: int) -> str:
        about = self._mwt()
        rng = random.Random(f"{page.title}-{n}")
        year = rng.randint(1960, 2024)
        url = f"https://www.example.bg/arhiv/{rng.randrange(10**8)}"
        title = f"Сведения за {html.escape(page.title)}, част {n}"
        data = data_mw("Цитат уеб", url=url, заглавие=title, издател="Примерно издание",
                        дата=f"{year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", език="bg",
                        достъп_до=f"{year + 1}-01-15", архив_url=url.replace("www", "archive"))
        return (f'<link rel="mw-deduplicated-inline-style" href="mw-data:TemplateStyles:r2" about="{about}" '
                f'typeof="mw:Extension/templatestyles mw:Transclusion" data-mw="{data}"/><cite class="citation '
                f'web cs1" about="{about}" id="mwC{n}"><a rel="mw:ExtLink nofollow" href="{url}" class="external '
                f'text">{title}</a>. <i>Примерно издание</i>. {year}. Посетен на 15 януари {year + 1}.</cite>'
                f'<span title="ctx_ver=Z39.88-2004&amp;rft_val_fmt=info%3Aofi%2Ffmt%3Akev%3Amtx%3Abook&amp;'
                f'rft.btitle={quote(title)}&amp;rft.date={year}&amp;rft_id={quote(url)}" class="Z3988" '
                f'about="{about}"></span>')

    def _paragraphs(self, lines: list[str], notes: list[str], page: Page) -> list[str]:
        # a figure in every other section, a table in every third, both in the lead
        rng = random.Random(f"{page.title}-section-{self.section}")
        before = [self._figure(page, rng.randrange(10**6))] if self.section % 2 == 0 else []
        after = [self._wikitable(rng)] if self.section % 3 == 0 else []
        self.section += 1
        return before + super()._paragraphs(lines, notes, page) + after

    def _wikitable(self, rng: random.Random) -> str:
        rows = []
        for r in range(rng.randint(6, 16)):
            flag = (f'<span class="flagicon" about="{self._mwt()}" typeof="mw:Transclusion" '
                    f'data-mw="{data_mw("Флагче", "България")}"><span class="mw-image-border" '
                    f'typeof="mw:File"><img src="//upload.wikimedia.org/flag.svg" width="23" height="14"/>'
                    "</span></span>")
            rows.append(f"<tr><td>{1900 + 5 * r}</td><td>{flag} {wikilink(f'Година {1900 + 5 * r}', 'година')}"
                        f"</td><td>{rng.randint(100, 99_999):,}</td><td>{rng.random():.2%}</td></tr>")
        return ('<table class="wikitable sortable"><tbody><tr><th>Година</th><th>Събитие</th>'
                f"<th>Население</th><th>Дял</th></tr>{''.join(rows)}</tbody></table>")

    def _infobox(self, page: Page) -> str:
        rng = random.Random(f"{page.title}-infobox")
        params = {f"поле{k}": f"стойност {rng.randrange(10**6)}" for k in range(rng.randint(15, 30))}
        rows = "".join(f'<tr><th scope="row" class="infobox-label">{k}</th><td class="infobox-data">'
                       f"{wikilink(v, v)}</td></tr>" for k, v in params.items())
        about = self._mwt()
        return (f'<table class="infobox infobox-table" about="{about}" typeof="mw:Transclusion" '
                f'data-mw="{data_mw("Инфокутия", име=page.title, **params)}"><tbody><tr><th colspan="2">'
                f"{html.escape(page.title)}</th></tr>{rows}</tbody></table>")

    def _marked_navbox(self, page: Page) -> str:
        rng = random.Random(f"{page.title}-navbox")
        boxes = [super()._marked_navbox(page)]
        for _ in range(len(page.body) // 40_000):
            groups = "".join(
                f'<tr><th class="navbox-group">Група {g}</th><td class="navbox-list hlist"><ul>'
                + "".join(f"<li>{wikilink(f'Място {rng.randrange(10**5)}', f'Място {k}')}</li>"
                          for k in range(rng.randint(15, 40))) + "</ul></td></tr>"
                for g in range(rng.randint(3, 8)))
            boxes.append(f'<div role="navigation" class="navbox" about="{self._mwt()}" typeof="mw:Transclusion" '
                         f'data-mw="{data_mw("Навигация", заглавие=page.title)}"><table class="nowraplinks '
                         f'navbox-inner"><tbody>{groups}</tbody></table></div>')
        return "".join(boxes)
