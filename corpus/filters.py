"""Step 4: quality filters, each a small function of a Document returning the reason to drop it.

In the spirit of Gopher, C4 and FineWeb-2 (whose Bulgarian ``bul_Cyrl`` configuration is the
reference for the thresholds; README says where ours differ): boilerplate lines (cookie/JavaScript
notices, "all rights reserved"…) are removed and a page made mostly of them is dropped; then
minimum length, Cyrillic-letter ratio, stop words, word length, words with letters, repeated
lines, the share of lines ending in punctuation, repeated word n-grams and, last as the slowest,
language identity (lingua, restricted to the languages Bulgarian is confused with). A page's
declared ``lang`` is never trusted. A filter sees the whole Document (source and URL too) and may
edit its text. Adding one: a function here, its place in ``FILTERS``, its ``[corpus]`` key in
``common/config.py`` and that key's row in README's configuration reference.
"""

from __future__ import annotations

import functools
from collections import Counter

import regex
from lingua import IsoCode639_1, Language, LanguageDetector, LanguageDetectorBuilder

from common.config import Section
from common.errors import UserError
from corpus.document import WORD, Document

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
END_PUNCT = regex.compile(r"""[.!?…:;"'»“”)\]]$""")
_SENTENCE_END = regex.compile(r"[.!?…][\"'»“”)]* +\p{Lu}")  # a sentence ends, the next begins
_LETTER = regex.compile(r"\p{L}")


@functools.cache
def detector(lang: str) -> tuple[LanguageDetector, Language]:
    """The language detector of this process (built once) and the corpus language in it."""
    try:
        target = Language.from_iso_code_639_1(getattr(IsoCode639_1, lang.upper()))
    except AttributeError:
        raise UserError(f"corpus.lang: {lang!r} is not an ISO 639-1 code lingua knows") from None
    languages = set(CONFUSABLE) | {target}
    return LanguageDetectorBuilder.from_languages(*languages).build(), target


def strip_boilerplate(doc: Document, cfg: Section) -> str | None:
    """Remove boilerplate lines; "boilerplate" when too many lines were boilerplate."""
    lines = doc.text.split("\n")
    kept = [line for line in lines
            if len(line) > BOILERPLATE_MAX_LINE or not BOILERPLATE.search(line)]
    if len(lines) - len(kept) > cfg.max_boilerplate_lines * len(lines):
        return "boilerplate"
    doc.text = "\n".join(kept)
    return None


def too_short(doc: Document, cfg: Section) -> str | None:
    return "too short" if len(doc.text) < cfg.min_chars else None


def cyrillic_ratio(doc: Document, cfg: Section) -> str | None:
    letters = _NOT_LETTER.sub("", doc.text)
    cyrillic = len(_NOT_CYRILLIC.sub("", letters))
    return "few Cyrillic letters" if cyrillic < cfg.min_cyrillic_ratio * max(len(letters), 1) else None


def language(doc: Document, cfg: Section) -> str | None:
    found, target = detector(cfg.lang)
    confidence = found.compute_language_confidence(doc.text[:cfg.lang_sample_chars], target)
    return "not " + cfg.lang if confidence < cfg.lang_min_confidence else None


def stop_words(doc: Document, cfg: Section) -> str | None:
    """FineWeb-2's rule: at least ``min_stop_words`` different stop words occur ("г." as "г")."""
    words = set(doc.lower_words())
    found = sum(1 for word in cfg.stop_words if word.lower().rstrip(".") in words)
    return "few stop words" if found < cfg.min_stop_words else None


def word_length(doc: Document, cfg: Section) -> str | None:
    """Gopher's rule: the mean word length lies in [min_avg_word_length, max_avg_word_length]."""
    words = WORD.findall(doc.text)
    mean = sum(map(len, words)) / max(len(words), 1)
    if mean < cfg.min_avg_word_length:
        return "short words"
    return "long words" if mean > cfg.max_avg_word_length else None


def letter_words(doc: Document, cfg: Section) -> str | None:
    """Gopher's rule: enough whitespace-separated words hold a letter (not numbers or symbols)."""
    words = doc.text.split()
    with_letter = sum(1 for word in words if _LETTER.search(word))
    return "few words with letters" if with_letter < cfg.min_letter_word_ratio * len(words) else None


def repeated_ngrams(doc: Document, cfg: Section) -> str | None:
    """Gopher's repetition rules on lower-cased words: the most frequent n-gram, and all n-grams
    seen before (counted without overlap), may cover at most a given share of the characters."""
    words = doc.lower_words()
    size = max(len(doc.text), 1)
    for n, share in cfg.max_top_ngram_share:
        grams = Counter(" ".join(words[i:i + n]) for i in range(len(words) - n + 1))
        if grams:
            gram, count = grams.most_common(1)[0]
            if count > 1 and len(gram) * count > share * size:
                return f"repeated {n}-word phrase"
    for n, share in cfg.max_dup_ngram_share:
        seen: set[str] = set()
        repeated, i = 0, 0
        while i <= len(words) - n:
            gram = " ".join(words[i:i + n])
            if gram in seen:
                repeated += len(gram)
                i += n
            else:
                seen.add(gram)
                i += 1
        if repeated > share * size:
            return f"repeated {n}-word spans"
    return None


def duplicate_lines(doc: Document, cfg: Section) -> str | None:
    lines = doc.text.split("\n")
    return "repeated lines" if len(lines) - len(set(lines)) > cfg.max_dup_line_ratio * len(lines) else None


def is_sentence_line(line: str) -> bool:
    """A line that reads as prose: it ends like a sentence, or holds two sentences at least."""
    return bool(END_PUNCT.search(line) or _SENTENCE_END.search(line))


def punctuation_lines(doc: Document, cfg: Section) -> str | None:
    lines = doc.text.split("\n")
    ended = sum(1 for line in lines if is_sentence_line(line))
    return "few sentence lines" if ended < cfg.min_punct_line_ratio * len(lines) else None


# In order, cheap ones first: the first that gives a reason drops the document.
FILTERS = (strip_boilerplate, too_short, cyrillic_ratio, stop_words, word_length, letter_words,
           duplicate_lines, punctuation_lines, repeated_ngrams, language)
