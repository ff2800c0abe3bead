"""News main text from two libraries that check each other: trafilatura and readability-lxml.

Both run on one parsed page. Where they agree (trafilatura lines that readability also has make
up half the shorter output), the text is those lines, plus readability-only lines that are long
prose, or shorter prose in a container (class, id) that holds lines both have: trafilatura
sometimes misses a block of the body, e.g. the part after an inline ad. A line only trafilatura
keeps (it leans to recall) stays when the page's JSON-LD ``articleBody`` has it, or by where it
stands: before the first line both have (a headline, a standfirst) when it is prose of 12 words
or more; between lines both have (a subheading, a caption, a list item readability left out)
when it has 5 words; after the last (share bars, donation boxes, related articles) only when it
is prose of 30 words. When one library returns too little, the other is taken (unless that is
short too and holds all of it: a stub page, whose extra lines are its frame); when they pick
different parts of the page, trafilatura's pick is kept unless readability's has at least 8
paragraphs of prose and three times as many (trafilatura took a teaser, readability the
article); when both return too little, a long JSON-LD ``articleBody`` is. Lines that are a
widget label (``Коментари (12)``, ``Сподели``), a link to another article (``Прочетете още: …``)
or a teaser (a line ending in an ellipsis followed by ``Прочети повече``) are dropped on every
path. Each result names its path.

Readability gets the page without scripts, styles, forms, navigation, footers and figures (the
same choice without captions, in half the time). The pair costs about 20% more CPU than
trafilatura alone with its built-in readability fallback. Skipping readability when trafilatura
returns only prose lines was tried: it saved a fifth of the pages and cost 0.002-0.003 F1, so
both run on every page.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import lxml.html
import regex
import trafilatura
from lxml import etree
from readability import Document
from readability.readability import Unparseable

from corpus import filters

# Paths a page can take (the corpus report counts them).
PATHS = MERGED, TRAFILATURA, DISAGREE, DISAGREE_PROSE, READABILITY, JSONLD, TOO_LITTLE = (
    "merged", "trafilatura", "trafilatura:disagree", "readability:disagree", "readability",
    "json-ld", "too-little")
OFF = 10**6  # a word or length threshold that never fires

_NOT_CONTENT = ("script", "style", "noscript", "iframe", "svg", "template", "link", "meta", "nav",
                "footer", "aside", "form", "button", "select", "input", "figure", "figcaption")
_BLOCKS = ("p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "div", "td", "tr",
           "dd", "dt", "section", "article", "ul", "ol", "table", "br", "figcaption")
_WORD = regex.compile(r"\w+")
_PARAGRAPH = 12  # words of a line that counts as a paragraph of prose
_SPACE = regex.compile(r"\s+")
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters: a line starts, its container
# A whole line that is a widget label, not prose (bg and en news sites).
_WIDGET = regex.compile(
    r"(коментари|коментирай|сподели(те)?|share( this)?|comments?|прочет(и|ете) (още|повече)|"
    r"виж(те)? (още|повече)|read more|още от (категорията|автора|рубриката)|"
    r"свързани (новини|статии)|related (articles|stories)|етикети|тагове|tags|"
    r"абонирай(те)? се( за бюлетина)?|subscribe|последвайте ни|follow us|"
    r"(facebook|twitter|linkedin|viber|whatsapp|email|e-mail|печат|print)"
    r"([ ,|/]+(facebook|twitter|linkedin|viber|whatsapp|email|e-mail|печат|print))*)"
    r"\s*[:(\[]?\s*\d*\s*[)\]]?\s*:?",
    regex.IGNORECASE)
# A teaser of another article: a line ending in an ellipsis, then a "read more" link.
_READ_MORE = regex.compile(r"(прочет(и|ете)|виж(те)?) (още|повече)|read more|continue reading",
                           regex.IGNORECASE)
_ELLIPSIS = regex.compile(r"(\.\.\.|…)$")
# A link to another article inside the body: "Прочетете още: <title>", "Read more: <title>".
_SEE_ALSO = regex.compile(r"(" + _READ_MORE.pattern + r"|още по темата|свързан[аи]? (новини|статии)"
                          r"|related( articles| stories)?|see also)\s*:.*", regex.IGNORECASE)


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds of :func:`combine`.

    ``cover``, ``lead_words``, ``inside_words``, ``after_words`` and ``switch_prose``: the grid
    point most folds chose in ``bench/extraction.py``'s 5-fold cross-validation over two
    development sets (Scrapinghub and trafilatura's eval half, folds by site); ``add_words`` (60)
    was chosen by an earlier run of that search with it in the grid (not in the shipped grid, so
    not reproduced by ``make bench-corpus``). ``agree`` and
    ``body_words`` barely move either set, so they are left out of the grid; ``body_words`` is low enough for
    the short paragraphs of a split Bulgarian article body. ``min_chars`` 100 would gain 0.001
    F1 on trafilatura's set and turn the Bulgarian stub page into its menu. Taking readability's
    pick when the two disagree and it is twice as long was tried: one fold of five chose it
    (trafilatura's set +0.003 F1, Scrapinghub -0.005), so it went.
    """

    min_chars: int = 200  # an output shorter than this counts as nothing
    agree: float = 0.5  # share of the shorter output the other must confirm to merge
    cover: float = 0.5  # share of a line's word trigrams the other output must contain
    add_words: int = 60  # a readability-only line joins when it is prose of this many words
    body_words: int = 15  # ... or this many, in a container like one holding a line both have
    # A line only trafilatura keeps stays when it has this many words and is prose, before the
    # first line both have (a headline, a standfirst) or after the last; between them, prose or not.
    lead_words: int = 12
    inside_words: int = 5
    after_words: int = 30
    # Disagreeing, readability's pick wins when it has this many paragraphs of prose (12 words
    # or more) and three times trafilatura's: trafilatura took a teaser, readability the article.
    switch_prose: int = 8


DEFAULT = Thresholds()


@dataclass
class Candidates:
    """What each source made of one page: lines of text (and readability's line containers)."""

    trafilatura: list[str]
    readability: list[str]
    json_ld: list[str]
    containers: list[str] = field(default_factory=list)  # per readability line; "" = unknown


def candidates(html: str, url: str | None = None) -> Candidates:
    """Run trafilatura and readability on ``html`` (parsed once) and read its JSON-LD body."""
    tree = trafilatura.load_html(html)  # also takes bytes and XML-declared strings
    if tree is None:
        return Candidates([], [], [])
    text = trafilatura.extract(
        tree, url=url, fast=True, include_comments=False, include_tables=False,
        include_images=False, include_links=False, deduplicate=False) or ""
    json_ld = _json_ld_body(tree)
    etree.strip_elements(tree, *_NOT_CONTENT, with_tail=False)
    try:
        summary = Document(tree).summary(html_partial=True)
    except Unparseable:
        summary = ""
    lines = _html_lines(summary)
    return Candidates(_lines(text), [line for line, _ in lines], _lines(json_ld),
                      [container for _, container in lines])


def combine(c: Candidates, t: Thresholds = DEFAULT) -> tuple[str, str]:
    """(text, path): the lines both libraries vouch for, or the one that found anything."""
    tra, rea = c.trafilatura, c.readability
    tra_len, rea_len = _chars(tra), _chars(rea)
    if rea_len < t.min_chars or tra_len < t.min_chars:
        if max(tra_len, rea_len) < t.min_chars:
            return (_clean(c.json_ld, c), JSONLD) if _chars(c.json_ld) >= t.min_chars else (
                _clean(tra or rea, c), TOO_LITTLE)
        (name, longer), (_, shorter) = sorted(
            ((TRAFILATURA, tra), (READABILITY, rea)), key=lambda x: -_chars(x[1]))
        keys = set().union(*map(_grams, longer))
        if shorter and _chars(longer) < 2 * t.min_chars and all(
                _share(_grams(line), keys) >= t.cover for line in shorter):
            return _clean(shorter, c), TOO_LITTLE  # a stub: the longer adds only its frame
        return _clean(longer, c), name
    tra_grams, rea_grams = [_grams(line) for line in tra], [_grams(line) for line in rea]
    tra_keys, rea_keys = set().union(*tra_grams), set().union(*rea_grams)
    jld_keys = set().union(*map(_grams, c.json_ld))
    confirmed = [_share(g, rea_keys) >= t.cover for g in tra_grams]
    if _chars(line for line, ok in zip(tra, confirmed, strict=True) if ok) < t.agree * min(
            tra_len, rea_len):
        tra_prose, rea_prose = (sum(_is_prose(line, _PARAGRAPH) for line in x) for x in (tra, rea))
        if rea_prose >= max(t.switch_prose, 3 * tra_prose):
            return _clean(rea, c), DISAGREE_PROSE
        return _clean(tra, c), DISAGREE
    teasers = _teasers(c)  # both may keep one; it does not mark where the body is
    both_at = [i for i, ok in enumerate(confirmed) if ok and tra[i] not in teasers] or [len(tra)]
    first, last = both_at[0], both_at[-1]
    kept = [(line, g) for i, (line, g, ok) in enumerate(zip(tra, tra_grams, confirmed, strict=True))
            if ok or (jld_keys and _share(g, jld_keys) >= t.cover)
            or (i < first and _is_prose(line, t.lead_words))
            or (first < i < last and len(_WORD.findall(line)) >= t.inside_words)
            or (i > last and _is_prose(line, t.after_words))]
    where = {x: i for i, (_, g) in enumerate(kept) for x in g}  # trigram -> its last line
    added: dict[int, list[str]] = {}  # readability-only lines, after the line matching their
    after = -1  # predecessor in readability's order
    both = [_share(g, tra_keys) >= t.cover for g in rea_grams]
    containers = c.containers or [""] * len(rea)
    body = {name for name, ok in zip(containers, both, strict=True) if ok and name}
    for line, g, ok, name in zip(rea, rea_grams, both, containers, strict=True):
        if ok:
            votes = Counter(where[x] for x in g if x in where)  # the line sharing most
            after = votes.most_common(1)[0][0] if votes else after
        elif (_is_prose(line, t.add_words) or (name in body and _is_prose(line, t.body_words))
              or (jld_keys and _share(g, jld_keys) >= t.cover)):
            added.setdefault(after, []).append(line)
    out = added.get(-1, []) + [x for i, (line, _) in enumerate(kept)
                               for x in (line, *added.get(i, ()))]
    return _clean(out, c, teasers), MERGED


def extract(html: str, url: str | None = None, t: Thresholds = DEFAULT) -> tuple[str, str]:
    """(main text, path) of a news page."""
    return combine(candidates(html, url), t)


def _teasers(c: Candidates) -> set[str]:
    """Teasers of other articles: lines ending in an ellipsis, followed by a "read more" link."""
    return {line for source in (c.trafilatura, c.readability)
            for line, after in zip(source, source[1:], strict=False)
            if _ELLIPSIS.search(line) and _READ_MORE.fullmatch(after)}


def _clean(lines: list[str], c: Candidates, teasers: set[str] | None = None) -> str:
    """The lines without widget labels and without teasers of other articles (``teasers``: the
    ones ``_teasers(c)`` finds, when the caller has them already)."""
    teasers = _teasers(c) if teasers is None else teasers
    return "\n".join(line for line in lines if not (
        _WIDGET.fullmatch(line) or _SEE_ALSO.fullmatch(line) or line in teasers))


def _lines(text: str) -> list[str]:
    return [line for line in (_SPACE.sub(" ", part).strip() for part in text.split("\n")) if line]


def _html_lines(fragment: str) -> list[tuple[str, str]]:
    """(text, container) lines of an HTML fragment, one per block element.

    The container names the nearest element with a class or id around the line's text (its
    tag, class and id; "" when none): a split article body has the same one twice.
    """
    if not fragment.strip():
        return []
    root = lxml.html.fromstring(fragment)
    for el in list(root.iter(*_BLOCKS)):
        block = next(el.iterancestors(*_BLOCKS), None)  # where the text after ``el`` belongs
        el.tail = _mark(block) + (el.tail or "")
        if el.tag != "br":
            el.text = _mark(el) + (el.text or "")
    out = []
    for piece in root.text_content().split(_OPEN):  # each line begins with its container's name
        container, marked, text = piece.partition(_CLOSE)
        text = _SPACE.sub(" ", text if marked else piece).strip()
        if text:
            out.append((text, container if marked else ""))
    return out


def _mark(el) -> str:
    """A line start: the name of the element with a class or id nearest ``el``, marked."""
    named = next((e for e in (el, *el.iterancestors()) if e.get("class") or e.get("id")),
                 None) if el is not None else None
    name = "" if named is None else f"{named.tag}.{named.get('class', '')}#{named.get('id', '')}"
    return f"{_OPEN}{name}{_CLOSE}"


def _json_ld_body(tree: lxml.html.HtmlElement) -> str:
    """The longest ``articleBody`` in the page's JSON-LD scripts ("" when none)."""
    best = ""
    for script in tree.xpath('//script[@type="application/ld+json"]'):
        try:
            stack = [json.loads(script.text or "")]
        except ValueError:
            continue
        while stack:
            item = stack.pop()
            if isinstance(item, list):
                stack += item
            elif isinstance(item, dict):
                body = item.get("articleBody")
                if isinstance(body, str) and len(body) > len(best):
                    best = body
                stack += [v for v in item.values() if isinstance(v, list | dict)]
    if "<" in best:  # some sites put HTML there
        best = "\n".join(line for line, _ in _html_lines(f"<div>{best}</div>"))
    return best


def _grams(line: str) -> set[tuple[str, ...]]:
    """Lower-cased word trigrams of a line (one shorter tuple for a line of 1-2 words)."""
    w = _WORD.findall(line.lower())
    return set(zip(w, w[1:], w[2:], strict=False)) or ({tuple(w)} if w else set())


def _share(grams: set, keys: set) -> float:
    """Share of a line's trigrams found in ``keys`` (1.0 for a line without words)."""
    return len(grams & keys) / len(grams) if grams else 1.0


def _is_prose(line: str, min_words: int) -> bool:
    return len(_WORD.findall(line)) >= min_words and bool(filters.END_PUNCT.search(line))


def _chars(lines) -> int:
    return sum(len(line) for line in lines)
