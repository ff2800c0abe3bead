"""Step 4: quality filters, each a small function returning the reason to drop or None.

In the spirit of the Gopher and C4 rules: boilerplate lines (cookie/JavaScript notices, "all
rights reserved"…) are removed and a page made mostly of them is dropped; then minimum length,
Cyrillic-letter ratio, language identity (lingua, restricted to the languages Bulgarian is
confused with), repeated lines and the share of lines ending in punctuation. A page's declared
``lang`` is never trusted.
"""

from __future__ import annotations

import functools

import regex
from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from common.config import Section
from common.errors import UserError

# The detector tells the corpus language from these (Cyrillic neighbours and English).
CONFUSABLE = (Language.BULGARIAN, Language.RUSSIAN, Language.MACEDONIAN, Language.SERBIAN,
              Language.UKRAINIAN, Language.BELARUSIAN, Language.ENGLISH)
# A short line matching this is a site notice, not prose (C4 drops "javascript" lines too).
BOILERPLATE = regex.compile(
    r"javascript|cookie|(използва\w*|ползва\w*|приемам\w*) "
    r"бисквитк|всички права запазени|all rights reserved|политика(та)? за поверителност|"
    r"privacy policy|абонирайте се|subscribe|последвайте ни|follow us|lorem ipsum|"
    r"общи(те)? условия|terms of (use|service)|\bвход\b.*\bрегистрация\b", regex.IGNORECASE)
BOILERPLATE_MAX_LINE = 250  # longer lines are prose even when they mention cookies
_NOT_LETTER = regex.compile(r"\P{L}+")
_NOT_CYRILLIC = regex.compile(r"\P{Cyrillic}+")
_END_PUNCT = regex.compile(r"""[.!?…:;"'»“”)\]]$""")
_SENTENCE_END = regex.compile(r"[.!?…][\"'»“”)]* +\p{Lu}")  # a sentence ends, the next begins


@functools.cache
def detector(lang: str) -> tuple[LanguageDetector, Language]:
    """The language detector of this process (built once) and the corpus language in it."""
    try:
        target = Language.from_iso_code_639_1(getattr(IsoCode639_1, lang.upper()))
    except AttributeError:
        raise UserError(f"corpus.lang: {lang!r} is not an ISO 639-1 code lingua knows") from None
    languages = set(CONFUSABLE) | {target}
    return LanguageDetectorBuilder.from_languages(*languages).build(), target


def strip_boilerplate(text: str, cfg: Section) -> tuple[str, str | None]:
    """(text without boilerplate lines, "boilerplate" when too many lines were boilerplate)."""
    lines = text.split("\n")
    kept = [line for line in lines
            if len(line) > BOILERPLATE_MAX_LINE or not BOILERPLATE.search(line)]
    if len(lines) - len(kept) > cfg.max_boilerplate_lines * len(lines):
        return text, "boilerplate"
    return "\n".join(kept), None


def too_short(text: str, cfg: Section) -> str | None:
    return "too short" if len(text) < cfg.min_chars else None


def cyrillic_ratio(text: str, cfg: Section) -> str | None:
    letters = _NOT_LETTER.sub("", text)
    cyrillic = len(_NOT_CYRILLIC.sub("", letters))
    return "few Cyrillic letters" if cyrillic < cfg.min_cyrillic_ratio * max(len(letters), 1) else None


def language(text: str, cfg: Section) -> str | None:
    found, target = detector(cfg.lang)
    confidence = found.compute_language_confidence(text[:cfg.lang_sample_chars], target)
    return "not " + cfg.lang if confidence < cfg.lang_min_confidence else None


def duplicate_lines(text: str, cfg: Section) -> str | None:
    lines = text.split("\n")
    return "repeated lines" if len(lines) - len(set(lines)) > cfg.max_dup_line_ratio * len(lines) else None


def is_sentence_line(line: str) -> bool:
    """A line that reads as prose: it ends like a sentence, or holds two sentences at least."""
    return bool(_END_PUNCT.search(line) or _SENTENCE_END.search(line))


def punctuation_lines(text: str, cfg: Section) -> str | None:
    lines = text.split("\n")
    ended = sum(1 for line in lines if is_sentence_line(line))
    return "few sentence lines" if ended < cfg.min_punct_line_ratio * len(lines) else None


CHECKS = (too_short, cyrillic_ratio, language, duplicate_lines, punctuation_lines)


def apply(text: str, cfg: Section) -> tuple[str, str | None, int]:
    """Run every filter: (text left, reason it was dropped or None, boilerplate chars removed)."""
    cleaned, reason = strip_boilerplate(text, cfg)
    if reason:
        return text, reason, 0
    for check in CHECKS:
        reason = check(cleaned, cfg)
        if reason:
            return cleaned, reason, len(text) - len(cleaned)
    return cleaned, None, len(text) - len(cleaned)
