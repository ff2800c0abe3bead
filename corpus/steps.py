"""Steps 2-4 (extract, normalise, filter) as a list of small functions over a Document.

A step returns the reason to drop the document, or None to keep it, and may rewrite its text.
``Pipeline`` runs them in order and counts, per step, the documents in and out and what was
dropped and why, the characters a step removed, what each stage kept and the extractor's path per page (``metadata["extract_path"]``
when the extractor says which path it took); a step that raises skips the document and is listed
as bad input with its place.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from common.config import Section
from corpus import extract, filters
from corpus.document import Document
from corpus.normalize import normalize
from corpus.stats import Stats


@dataclass(frozen=True)
class Step:
    """One step: its report group (``stage``), its name and the function run on a document."""

    stage: str
    name: str
    run: Callable[[Document], str | None]


def extract_text(doc: Document, selectors: dict[str, str]) -> str | None:
    """HTML to main text: the wiki cleaner for bgwiki (title first), else the news extractor."""
    if doc.source == extract.WIKI_SOURCE:
        text, path = extract.extract_wiki(doc.text), "wiki"
        if text and doc.title and text.split("\n", 1)[0] != doc.title:
            text = doc.title + "\n" + text
    else:
        text, path = extract.extract_news_with_path(doc.text, selectors.get(doc.source, ""),
                                                     doc.url)
    doc.text = text
    doc.metadata["extract_path"] = path
    return None if text.strip() else "no main text"


def normalize_text(doc: Document) -> str | None:
    doc.text = normalize(doc.text)
    return None if doc.text else "empty"


def corpus_steps(cfg: Section, selectors: dict[str, str]) -> list[Step]:
    """The steps of ``python -m corpus.build`` in order, for the ``[corpus]`` settings ``cfg``."""
    steps = [Step("extract", "extraction", functools.partial(extract_text, selectors=selectors)),
             Step("normalize", "normalize", normalize_text)]
    steps += [Step("filter", check.__name__.replace("_", " "), functools.partial(check, cfg=cfg))
              for check in filters.FILTERS]
    return steps


class Pipeline:
    """Runs the steps on one document at a time, counting into ``stats``."""

    def __init__(self, steps: Sequence[Step], stats: Stats):
        self.steps = list(steps)
        self.stats = stats
        # a stage's "kept" row is counted after its last step
        self._last = {step.stage: n for n, step in enumerate(self.steps)}

    def __call__(self, doc: Document) -> Document | None:
        """``doc`` after every step, or None when a step dropped it (counted in ``stats``)."""
        for n, step in enumerate(self.steps):
            before = len(doc.text)
            self.stats.passed(n, step.name, "in")
            try:
                reason = step.run(doc)
            except Exception as exc:  # noqa: BLE001 - one bad page must not stop the run
                self.stats.problem(step.stage, f"skipped: {step.name} failed",
                                   doc.metadata.get("where", doc.url), f"{type(exc).__name__}: {exc}")
                return None
            path = doc.metadata.get("extract_path") if step.stage == "extract" else None
            if path:
                self.stats.count(step.stage, "path: " + path, before)
            if reason:
                self.stats.count(step.stage, "dropped: " + reason, before)
                return None
            self.stats.passed(n, step.name, "out")
            removed = before - len(doc.text)
            if removed > 0 and step.stage != "extract":
                self.stats.count(step.stage, f"removed characters ({step.name})", removed)
            if self._last[step.stage] == n:
                self.stats.count(step.stage, "kept", len(doc.text))
        return doc
