"""Markdown tables, one writer for every report (corpus, tokenizer, bench, demo)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table(head: Sequence[str], rows: Iterable[Sequence], right: Iterable[int] = ()) -> list[str]:
    """The lines of a Markdown table; ``|`` in a cell is escaped and the columns numbered in
    ``right`` are right-aligned."""
    right = set(right)
    rule = "|" + "".join("---:|" if i in right else "---|" for i in range(len(head)))
    return [_row(head), rule, *(_row(row) for row in rows)]


def _row(cells: Sequence) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
