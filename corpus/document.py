"""The unit every corpus step works on: one page's text with where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from corpus.split import doc_id

WORD = regex.compile(r"\w+")


def lower_words(text: str) -> list[str]:
    """The lower-cased words (``\\w+`` runs) of ``text``: what the stop-word and repetition
    filters count and the MinHash shingles are made of."""
    return WORD.findall(text.lower())


@dataclass
class Document:
    """A page on its way to the corpus; ``text`` starts as the raw HTML and ends as clean text."""

    id: str
    url: str
    title: str
    source: str
    licence: str
    text: str
    metadata: dict = field(default_factory=dict)  # e.g. "extract_path", "where" (file:record)
    _words: tuple[str, list[str]] | None = field(default=None, init=False, repr=False,
                                                  compare=False)

    def lower_words(self) -> list[str]:
        """``lower_words(self.text)``, worked out once per text (the filters after the last one
        that edits the text and the dedup keys share it)."""
        if self._words is None or self._words[0] is not self.text:
            self._words = (self.text, lower_words(self.text))
        return self._words[1]

    @classmethod
    def from_record(cls, record: dict, licences: dict[str, str], where: str = "") -> Document:
        """A raw record (see crawler.items) as a Document; its licence, else its source's."""
        url = str(record.get("canonical_url") or record.get("url") or "")
        source = str(record.get("source") or "unknown")
        licence = str(record.get("license") or licences.get(source, "unknown"))
        return cls(id=doc_id(url), url=url, title=str(record.get("title") or ""), source=source,
                   licence=licence, text=record["html"], metadata={"where": where})
