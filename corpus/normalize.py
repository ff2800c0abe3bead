"""Step 3: one canonical form for text: mojibake fixed, NFC, no invisible characters.

Bulgarian typography („…“, —, «») is kept: ftfy runs with ``uncurl_quotes`` off. Lines are
stripped and inner whitespace collapsed; empty lines go, so paragraphs are separated by one
newline. The corpus document separator can never occur inside a document.
"""

from __future__ import annotations

import unicodedata

import ftfy
import regex

from common.formats import SEPARATOR

_FTFY = ftfy.TextFixerConfig(uncurl_quotes=False, fix_character_width=False, normalization="NFC",
                             explain=False)
# Soft hyphen, zero-width and bidi marks, word joiners, BOM: invisible, removed.
_INVISIBLE = regex.compile(r"[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
# Control characters (C0/C1) other than newline and tab.
_CONTROL = regex.compile(r"[^\P{Cc}\n\t]")
_SPACE = regex.compile(r"[^\S\n]+")  # whitespace except newline (incl. tab, NBSP, thin spaces)


def normalize(text: str) -> str:
    """Clean ``text`` as described in the module docstring."""
    text = ftfy.fix_text(text, _FTFY)
    text = unicodedata.normalize("NFC", text).replace(SEPARATOR, " ")
    text = _CONTROL.sub("", _INVISIBLE.sub("", text))
    lines = (_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)
