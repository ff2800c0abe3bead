"""The bundled demo site (demo/site/) and the titles files: well-formed, Bulgarian, in range."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import regex

from crawler.titles import normalize
from demo.replay.articles import load_articles
from demo.replay.pages import load_site

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "demo" / "site"
WIKI_FILES = sorted((SITE / "wiki").glob("*.txt"))
NEWS_FILES = sorted((SITE / "news").glob("*.txt"))

WORD = regex.compile(r"[\p{L}\p{N}]+(?:[-'’][\p{L}\p{N}]+)*")
LETTER = regex.compile(r"\p{L}")
CYRILLIC = regex.compile(r"\p{Cyrillic}")
SLUG = regex.compile(r"\d\d-[a-z0-9]+(?:-[a-z0-9]+)*\.txt")
WIKI_KEYS = {"title", "categories", "redirects"}
NEWS_KEYS = {"title", "author", "published", "section", "js"}


def parse(path: Path) -> tuple[dict[str, str], str]:
    """A site file's ``key: value`` header and its body (after the first blank line)."""
    text = path.read_text(encoding="utf-8")
    head, sep, body = text.partition("\n\n")
    assert sep, f"{path.name}: no blank line after the header"
    header: dict[str, str] = {}
    for line in head.splitlines():
        key, colon, value = line.partition(":")
        assert colon and key == key.strip().lower(), f"{path.name}: bad header line {line!r}"
        assert key not in header, f"{path.name}: header key {key!r} twice"
        header[key] = value.strip()
    return header, body.strip()


def prose(body: str) -> str:
    """The body's running text: no ``== headings ==``, no ``'''``/``[[ ]]`` markup."""
    lines = [line for line in body.splitlines() if not line.startswith("==")]
    return regex.sub(r"'''|\[\[|\]\]", "", "\n".join(lines))


def words(text: str) -> int:
    return len(WORD.findall(text))


def cyrillic_share(text: str) -> float:
    letters = LETTER.findall(text)
    return sum(1 for c in letters if CYRILLIC.fullmatch(c)) / max(len(letters), 1)


def content_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are neither blank nor ``#`` comments."""
    text = path.read_bytes().decode("utf-8")  # a UnicodeDecodeError fails the test
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.strip().startswith("#")]


def test_article_counts() -> None:
    assert len(WIKI_FILES) == 30
    assert len(NEWS_FILES) >= 12
    assert len(WIKI_FILES) + len(NEWS_FILES) >= 40


@pytest.mark.parametrize("path", WIKI_FILES, ids=lambda p: p.name)
def test_wiki_page(path: Path) -> None:
    assert SLUG.fullmatch(path.name)
    header, body = parse(path)
    assert {"title", "categories"} <= header.keys() <= WIKI_KEYS
    assert header["title"] and header["categories"]
    sections = [line for line in body.splitlines() if regex.fullmatch(r"== \S.* ==", line)]
    assert 2 <= len(sections) <= 4, f"{len(sections)} sections"
    assert not body.startswith("=="), "no intro before the first section"
    assert 250 <= words(prose(body)) <= 450
    assert cyrillic_share(prose(body)) > 0.9
    assert header["title"].startswith(tuple("АБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЮЯ"))


@pytest.mark.parametrize("path", NEWS_FILES, ids=lambda p: p.name)
def test_news_article(path: Path) -> None:
    assert SLUG.fullmatch(path.name)
    header, body = parse(path)
    assert header.keys() == NEWS_KEYS
    assert all(header.values())
    assert regex.fullmatch(r"20\d\d-[01]\d-[0-3]\d", header["published"])
    assert header["js"] in ("true", "false")
    assert len(body.split("\n\n")) >= 3, "at least three paragraphs"
    assert 200 <= words(body) <= 400
    assert cyrillic_share(header["title"] + body) > 0.9


def test_exactly_one_javascript_article() -> None:
    js = [p.name for p in NEWS_FILES if parse(p)[0]["js"] == "true"]
    assert len(js) == 1, js


def test_near_duplicate_pair_is_close_but_not_equal() -> None:
    """The README's republished article: most word 5-grams shared, a new headline."""
    readme = (SITE / "README.md").read_text(encoding="utf-8")
    pair = [p for p in NEWS_FILES if f"news/{p.name}" in readme and "js: true" not in p.read_text()]
    assert len(pair) == 2, [p.name for p in pair]
    (head_a, body_a), (head_b, body_b) = (parse(p) for p in pair)
    assert head_a["title"] != head_b["title"] and body_a != body_b

    def shingles(text: str) -> set[tuple[str, ...]]:
        w = WORD.findall(text.lower())
        return {tuple(w[i:i + 5]) for i in range(len(w) - 4)}

    a, b = shingles(body_a), shingles(body_b)
    assert len(a & b) / len(a | b) > 0.8


def test_pages_and_articles_are_distinct() -> None:
    titles = [parse(p)[0]["title"] for p in WIKI_FILES + NEWS_FILES]
    assert len(set(titles)) == len(titles)
    bodies = [prose(parse(p)[1]) for p in WIKI_FILES]
    assert len(set(bodies)) == len(bodies)


def test_replay_servers_load_the_site() -> None:
    """The two replay servers accept every file as it is."""
    pages = load_site(SITE / "wiki")
    assert sorted(p.title for p in pages) == sorted(parse(p)[0]["title"] for p in WIKI_FILES)
    assert sum(1 for p in pages if p.redirects) >= 5
    articles = load_articles(SITE / "news")
    assert len(articles) == len(NEWS_FILES)
    assert sum(a.js for a in articles) == 1


def test_demo_titles_file_covers_every_page_and_each_odd_case() -> None:
    path = ROOT / "titles" / "demo.txt"
    assert path.read_text(encoding="utf-8").startswith("#")
    pages = {parse(p)[0]["title"] for p in WIKI_FILES}
    redirect_to = {normalize(r): parse(p)[0]["title"] for p in WIKI_FILES
                   for r in parse(p)[0].get("redirects", "").split("|") if r.strip()}
    valid, invalid, urls = [], [], []
    for number, line in content_lines(path):
        if line.startswith("https://"):
            urls.append(line)
        try:
            valid.append(normalize(line))
        except ValueError:
            invalid.append((number, line))
    assert len(invalid) == 1 and "[" in invalid[0][1]
    assert len(urls) == 1 and urls[0].startswith("https://bg.wikipedia.org/wiki/") and "_" in urls[0]
    assert sum(n - 1 for n in Counter(valid).values()) == 1, "exactly one duplicate"
    via_redirect = [t for t in set(valid) if t in redirect_to]
    missing = [t for t in set(valid) if t not in pages and t not in redirect_to]
    assert via_redirect and len(missing) == 1, (via_redirect, missing)
    assert {redirect_to.get(t, t) for t in valid} - set(missing) == pages


def test_bgwiki_titles_file() -> None:
    path = ROOT / "titles" / "bgwiki.txt"
    text = path.read_text(encoding="utf-8")
    headers = [line for line in text.splitlines() if regex.fullmatch(r"# \p{Lu}.*", line)]
    assert len(headers) >= 8, "grouped under # topic headers"
    titles = []
    for number, line in content_lines(path):
        assert not line.startswith("http"), f"line {number}: a plain title, not a URL"
        titles.append(normalize(line))  # ValueError = an invalid line
        assert titles[-1] == line, f"line {number}: not in canonical form: {line!r}"
        assert CYRILLIC.search(line), f"line {number}: no Cyrillic in {line!r}"
    assert 300 <= len(titles) <= 400
    duplicates = [t for t, n in Counter(titles).items() if n > 1]
    assert not duplicates
