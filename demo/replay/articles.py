"""The news site's articles: the ``Article`` record, article files and generated articles.

An article file is a header of ``key: value`` lines (``title``, ``author``, ``published``
YYYY-MM-DD, ``section``, optional ``js``: true, false, timeout or fetch), a blank line, then the
paragraphs, separated by blank lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from common.errors import UserError
from demo.replay.core import read_site_file


@dataclass(frozen=True)
class Article:
    slug: str
    title: str
    author: str
    published: str  # YYYY-MM-DD
    section: str
    js: bool
    paragraphs: list[str]
    tags: tuple[str, ...] = ()
    modified: str = ""  # YYYY-MM-DD of a later edit, "" if never edited
    lastmod: bool = True  # the sitemaps give its <lastmod> (else only its news publication date)
    # "js: timeout" / "js: fetch": the text arrives after the load event, by a 150 ms timer or
    # from /news/<slug>.json (as real sites insert articles); "" for plain or inline-script pages
    late: str = ""

    @property
    def changed(self) -> str:
        return self.modified or self.published


def parse_article(path: Path) -> Article:
    """Read one article file; UserError naming the file and the fault."""
    fields, body = read_site_file(path, required=("title", "author", "published", "section"))
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["published"]):
        raise UserError(f"article {path}: published must be YYYY-MM-DD, got "
                        f"{fields['published']!r}")
    js = fields.get("js", "false").lower()
    if js not in ("true", "false", "timeout", "fetch"):
        raise UserError(f"article {path}: js must be true, false, timeout or fetch, got {js!r}")
    paragraphs = [" ".join(p.split()) for p in body.split("\n\n") if p.strip()]
    if not paragraphs:
        raise UserError(f"article {path}: no paragraphs after the header")
    return Article(path.stem, fields["title"], fields["author"], fields["published"],
                   fields["section"], js != "false", paragraphs,
                   late=js if js in ("timeout", "fetch") else "")


def load_articles(folder: Path | list[Article]) -> list[Article]:
    """The articles of a folder of article files (a list given is taken as it is)."""
    if isinstance(folder, list):
        return folder
    files = sorted(Path(folder).glob("*.txt"))
    if not files:
        raise UserError(f"no article files (*.txt) in {folder}")
    return sorted((parse_article(f) for f in files), key=lambda a: (a.published, a.slug),
                  reverse=True)


def slugify(title: str) -> str:
    return re.sub(r"\W+", "-", title.lower()).strip("-")[:60] or "item"


_PLACES = ["Ясеново", "Брезник", "Каменица", "Горно поле", "Старосел", "Дъбрава", "Пясъчник",
           "Белица", "Здравец", "Речица"]
_NEWS_SUBJECTS = ["Общинският съвет", "Кметът", "Местните жители", "Учениците", "Търговците",
                  "Лекарите", "Туристическият съюз", "Читалището", "Спортният клуб", "Пожарникарите"]
_NEWS_VERBS = ["обсъдиха нов план за", "поискаха повече средства за", "представиха резултатите от",
               "започнаха подготовка за", "отчетоха напредък по", "поставиха въпроса за"]
_NEWS_OBJECTS = ["ремонта на главната улица", "новата детска градина", "есенния панаир",
                 "водопровода в старата махала", "градския транспорт", "зимното почистване",
                 "реставрацията на читалището", "пазара за местни продукти"]
_NEWS_SECTIONS = ["Общество", "Икономика", "Култура", "Спорт", "Регионални"]
_NEWS_TAGS = ["транспорт", "образование", "бюджет", "фестивал", "футбол", "времето",
              "здравеопазване", "туризъм"]
_NEWS_AUTHORS = ["Веселина Крумова", "Огнян Дамянов", "Теодора Русева", "Благой Стаматов"]


def synthetic_articles(count: int, first: str = "2024-11-01", every_days: int = 6) -> list[Article]:
    """``count`` generated Bulgarian articles (our own sentences), one every ``every_days`` from
    ``first``, newest first: every 9th edited about a year later (if that is not past the newest),
    every 7th with no sitemap ``<lastmod>``, two tags each."""
    start = datetime.fromisoformat(first)
    last = start + timedelta(days=every_days * (count - 1))
    articles = []
    for n in range(count):
        day = start + timedelta(days=every_days * n)
        edited = day + timedelta(days=380)
        place = _PLACES[n % len(_PLACES)]
        paragraphs = [" ".join(
            f"{_NEWS_SUBJECTS[(n + p + k) % len(_NEWS_SUBJECTS)]} в {place} "
            f"{_NEWS_VERBS[(n * 5 + p + k) % len(_NEWS_VERBS)]} "
            f"{_NEWS_OBJECTS[(n * 3 + 2 * p + k) % len(_NEWS_OBJECTS)]}, съобщи "
            f"{_NEWS_AUTHORS[(n + k) % len(_NEWS_AUTHORS)].split()[0]} на събрание № {n * 7 + p}."
            for k in range(4)) for p in range(3)]
        articles.append(Article(
            f"{day:%Y-%m-%d}-novina-{n:04d}",
            f"{_NEWS_SUBJECTS[n % len(_NEWS_SUBJECTS)]} в {place} и "
            f"{_NEWS_OBJECTS[n % len(_NEWS_OBJECTS)]} (№ {n})",
            _NEWS_AUTHORS[n % len(_NEWS_AUTHORS)], f"{day:%Y-%m-%d}",
            _NEWS_SECTIONS[n % len(_NEWS_SECTIONS)], False, paragraphs,
            tags=(_NEWS_TAGS[n % len(_NEWS_TAGS)], _NEWS_TAGS[(n * 3 + 1) % len(_NEWS_TAGS)]),
            modified=f"{edited:%Y-%m-%d}" if n % 9 == 4 and edited <= last else "",
            lastmod=n % 7 != 3))
    return sorted(articles, key=lambda a: (a.published, a.slug), reverse=True)
