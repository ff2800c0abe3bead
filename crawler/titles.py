"""Titles files for the bgwiki spider: one title or ``https://bg.wikipedia.org/wiki/...`` URL a line.

Rules: UTF-8; ``#`` starts a comment line; blank lines are ignored; URLs are percent-decoded and
their ``#fragment`` dropped; underscores are spaces; the first letter is upper-cased as MediaWiki
does (``$wgCapitalLinks``); duplicates are dropped. A line that cannot be a title (MediaWiki forbids
``# < > [ ] | { }``) is skipped and reported with its line number (the spider logs it). A missing
or non-UTF-8 file, or one without a single valid title, is a ``UserError``.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from common.errors import UserError

CATEGORY_PREFIX = "Категория:"
FORBIDDEN = re.compile(r"[#<>\[\]|{}]")
WIKI_HOSTS = ("bg.wikipedia.org", "bg.m.wikipedia.org")
MAX_TITLE_BYTES = 255  # MediaWiki's limit on a title's UTF-8 length


def normalize(line: str, wiki_hosts: tuple[str, ...] = WIKI_HOSTS) -> str:
    """One line's title in MediaWiki's canonical form; ValueError saying why when it is not one."""
    text = line.strip()
    if text.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if parts.hostname not in wiki_hosts or not parts.path.startswith("/wiki/"):
            raise ValueError(f"not a https://{wiki_hosts[0]}/wiki/... URL")
        text = unquote(parts.path[len("/wiki/"):], errors="strict")
    title = " ".join(text.replace("_", " ").split())
    if not title:
        raise ValueError("empty title")
    bad = FORBIDDEN.search(title)
    if bad:
        raise ValueError(f"forbidden character {bad.group()!r}")
    if len(title.encode("utf-8")) > MAX_TITLE_BYTES:
        raise ValueError(f"longer than {MAX_TITLE_BYTES} bytes")
    return title[0].upper() + title[1:]


def load(path: str | Path, wiki_hosts: tuple[str, ...] = WIKI_HOSTS
         ) -> tuple[list[str], list[tuple[int, str, str]]]:
    """The file's titles in order without duplicates, and the skipped lines: (number, line, why)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"titles file not found: {path}") from None
    except OSError as exc:
        raise UserError(f"titles file {path}: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UserError(f"titles file {path}: not UTF-8 (bad byte at offset {exc.start})") from None
    titles: dict[str, None] = {}
    skipped = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            titles.setdefault(normalize(stripped, wiki_hosts))
        except ValueError as exc:
            skipped.append((number, stripped, str(exc)))
    if not titles:
        raise UserError(f"titles file {path}: no valid title in it")
    return list(titles), skipped


def choose(titles: str | None, category: str | None, api_host: str | None, option: str,
           default_titles: str = "", default_category: str = "") -> tuple[list[str], list[tuple[int, str, str]], str]:
    """A titles file or a category, not both, as the bgwiki spider and the dump import take them:
    (the file's titles, its skipped lines, the category as ``Категория:Name`` or ""); with
    neither, the defaults (the category first), else nothing chosen.

    ``option`` names an argument in the one-line errors: ``"-a {}="`` (spider) or ``"--{} "``.
    """
    if titles and category:
        raise UserError(f"give {option.format('titles')}FILE or {option.format('category')}NAME, not both")
    category = None if titles else (category or default_category)
    if category:
        try:
            return [], [], CATEGORY_PREFIX + normalize(category.removeprefix(CATEGORY_PREFIX))
        except ValueError as exc:
            raise UserError(f"{option.format('category')}{category}: {exc}") from None
    titles = titles or default_titles
    if titles:
        return *load(titles, WIKI_HOSTS + ((api_host,) if api_host else ())), ""
    return [], [], ""
