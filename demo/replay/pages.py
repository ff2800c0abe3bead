"""The replay wiki's pages: the ``Page`` record, page files, generated pages, titles and links.

A page file is a header of ``key: value`` lines (``title:``, and ``categories:`` and
``redirects:`` ``|``-separated), a blank line, then the wikitext-ish body.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from common.errors import UserError
from demo.replay.core import read_site_file

CATEGORY_NS = "Категория"


@dataclass
class Page:
    """One wiki page: canonical title, categories, redirects to it, and wikitext-ish body or HTML."""

    title: str
    body: str = ""
    categories: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    html: str | None = None  # ready ``mw-parser-output`` HTML (e.g. a real page) instead of body
    pageid: int = 0
    revid: int = 0

    @property
    def ns(self) -> int:
        return 14 if self.title.startswith(CATEGORY_NS + ":") else 0


def load_site(folder: str | Path) -> list[Page]:
    """Every ``*.txt`` wiki page of a site folder (``title:``, ``categories:`` and ``redirects:``
    ``|``-separated), in name order."""
    folder = Path(folder)
    if not any(folder.glob("*.txt")) and (folder / "wiki").is_dir():
        folder = folder / "wiki"  # a whole demo site folder: its wiki/ part
    files = sorted(folder.glob("*.txt"))
    if not files:
        raise UserError(f"no *.txt pages in site folder {folder}")
    pages = []
    for path in files:
        meta, body = read_site_file(path, required=("title",))
        categories, redirects = ([v.strip() for v in meta.get(key, "").split("|") if v.strip()]
                                 for key in ("categories", "redirects"))
        pages.append(Page(meta["title"], body, categories, redirects))
    return pages



def canon(title: str) -> str:
    """A title as MediaWiki normalises it: underscores as spaces, one space, first letter upper."""
    title = " ".join(title.replace("_", " ").split())
    return title[:1].upper() + title[1:]


def href(title: str) -> str:
    """The ``/wiki/…`` path of a title."""
    return "/wiki/" + quote(title.replace(" ", "_"))


def number_pages(pages: Iterable[Page]) -> Iterator[Page]:
    """``pages``, each given a page id and revision id where it has none (by its place)."""
    for number, page in enumerate(pages, 1):
        page.pageid = page.pageid or 1000 + number
        page.revid = page.revid or 9_000_000 + 37 * number
        yield page


_SUBJECTS = ["Селището", "Реката", "Планината", "Крепостта", "Манастирът", "Учените", "Жителите",
             "Летописецът", "Старият мост", "Градината", "Общината", "Библиотеката"]
_VERBS = ["се споменава за пръв път", "е описан подробно", "се развива бързо", "привлича посетители",
          "е обявен за паметник на културата", "е възстановен след войната", "се изучава от векове",
          "играе важна роля в стопанството"]
_TAILS = ["през Средновековието", "в началото на XX век", "според местните предания",
          "в документите на Търновското царство", "след Освобождението", "в наши дни",
          "в края на XIX век", "по време на Възраждането"]


def sentence(n: int, k: int) -> str:
    return (f"{_SUBJECTS[(n + k) % len(_SUBJECTS)]} {_VERBS[(n * 3 + k) % len(_VERBS)]} "
            f"{_TAILS[(n + 5 * k) % len(_TAILS)]}, отбелязва изследване № {n * 31 + k}.")


def synthetic_pages(count: int, paragraphs: int = 6, category: str = "Населени места") -> list[Page]:
    """``count`` generated Bulgarian pages (our own sentences), each with two redirects."""
    pages = []
    for n in range(count):
        body = []
        for p in range(paragraphs):
            if p and p % 2 == 0:
                body.append(f"== Раздел {p // 2} ==")
            body.append(" ".join(sentence(n, p * 10 + k) for k in range(6)))
        pages.append(Page(f"Статия {n:05d}", "\n".join(body), [category, f"Група {n % 10}"],
                          [f"Статия {n:05d} (пренасочване)", f"статия_{n:05d}_стара"]))
    return pages
