"""The spiders' shared argument types: counts (``-a limit=``, ``-a depth=``), days and windows
(``-a since=``/``-a until=``) and the configured news sites (``-a site=``).

Each parser raises a ``UserError`` naming the argument, so ``crawler.commands.crawl`` stops a bad
one in one line before Scrapy starts.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from scrapy.linkextractors import LinkExtractor

from common.errors import UserError
from crawler.urls import on_domains


def count(value: str | int | None, name: str, default: int) -> int:
    """A whole-number spider argument ``-a name=value`` (``default`` when absent)."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if number < 0:
        raise UserError(f"spider argument -a {name}={value}: must be a whole number >= 0")
    return number


def day(name: str, value: str | None) -> date | None:
    """The day an ``-a since=``/``-a until=`` argument names; a UserError if it names none."""
    if value is None:
        return None
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise UserError(f"spider argument -a {name}={value}: not a date YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UserError(f"spider argument -a {name}={value}: no such date") from None


@dataclass(frozen=True)
class Window:
    """The days ``-a since=`` to ``-a until=`` (inclusive; either may be open)."""

    since: date | None = None
    until: date | None = None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None

    def holds(self, day: date | None) -> bool:
        """``day`` is in the window; an unknown day (None) is given the benefit of the doubt."""
        return day is None or ((self.since is None or day >= self.since)
                               and (self.until is None or day <= self.until))

    def days(self) -> Iterator[date]:
        """Every day from ``until`` (default today) back to ``since``."""
        day = self.until or datetime.now(UTC).date()
        while self.since is not None and day >= self.since:
            yield day
            day -= timedelta(days=1)


def window(since: str | None, until: str | None) -> Window:
    """The window of ``-a since=``/``-a until=``; a UserError if either is bad or since > until."""
    span = Window(day("since", since), day("until", until))
    if span.since and span.until and span.since > span.until:
        raise UserError(f"spider arguments: -a since={since} is after -a until={until}")
    return span


@dataclass(frozen=True)
class ArchiveForm:
    """A daily archive reached by a form POST: ``url`` and ``form`` fields (``{date}`` templates)."""

    url: str
    form: dict[str, str]

    def fields(self, when: date) -> dict[str, str]:
        """The form fields for the day ``when``."""
        return {name: value.format(date=when) for name, value in self.form.items()}


class Site:
    """One ``[[crawl.news]]`` table and its URL rules."""

    def __init__(self, table: dict):
        self.name: str = table["name"]
        self.start_urls: list[str] = table["start_urls"]
        self.domains = [d.lower().strip() for d in table["allowed_domains"]]
        self.render: str = table["render"]
        self.license: str = table["license"]
        self.pattern = re.compile(table["article_pattern"]) if table["article_pattern"] else None
        # domains are checked by is_article: LinkExtractor's allow_domains compares host:port
        self.links = LinkExtractor(unique=True)
        self.archive_urls: list[str] = table["archive_urls"]
        self.archive_forms = [ArchiveForm(f["url"], f["form"]) for f in table["archive_forms"]]
        self.sitemaps: list[str] = table["sitemaps"] or (
            [] if self.archive_urls or self.archive_forms
            else [f"https://{self.domains[0]}/robots.txt"])

    def is_article(self, url: str) -> bool:
        """``url`` (already through ``clean_url``) is one of this site's articles."""
        return (url.startswith(("http://", "https://")) and on_domains(url, self.domains)
                and (self.pattern is None or bool(self.pattern.search(url))))

    def urls(self) -> list[str]:
        """Every URL the site's listings are fetched from (the agent check looks at their hosts)."""
        return (self.start_urls + self.sitemaps + self.archive_urls
                + [form.url for form in self.archive_forms])


def sites(tables: list[dict], source: str, name: str | None = None) -> list[Site]:
    """The news sites of the ``[[crawl.news]]`` ``tables`` (of the config file ``source``): all,
    or the one called ``name``; a UserError otherwise."""
    found = [Site(t) for t in tables]
    if not found:
        raise UserError(f"{source}: no [[crawl.news]] site configured")
    if name is None:
        return found
    chosen = [s for s in found if s.name == name]
    if not chosen:
        raise UserError(f"unknown news site {name!r} (configured: "
                        f"{', '.join(s.name for s in found)})")
    return chosen
