"""Counts every step keeps: documents and characters dropped by reason, and bad input by place."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_PROBLEMS = 200  # problems listed by place; the counts cover all of them
STEPS = ("read", "extract", "normalize", "filter", "dedup", "write")


def _order(key: tuple[str, str]) -> tuple:
    """Table order: by step; within one, "in" rows, then skipped/dropped by name, then "kept"."""
    step, reason = key
    kind = 0 if reason.startswith("in") else 2 if reason.startswith(("kept", "out")) else 1
    return (STEPS.index(step) if step in STEPS else len(STEPS), step, kind, reason)


@dataclass
class Stats:
    """What one worker (or, merged, the whole run) saw: drops and problems, mergeable."""

    docs: Counter = field(default_factory=Counter)    # (step, reason) -> documents
    chars: Counter = field(default_factory=Counter)   # (step, reason) -> characters
    problems: list[str] = field(default_factory=list)  # "file:line: what" for bad input
    # (place in the pipeline, step name, "in" or "out") -> documents, for each step of
    # ``corpus.steps.Pipeline``
    steps: Counter = field(default_factory=Counter)

    def count(self, step: str, reason: str, chars: int = 0, docs: int = 1) -> None:
        self.docs[step, reason] += docs
        self.chars[step, reason] += chars

    def problem(self, step: str, reason: str, where: str, what: str) -> None:
        """Bad input that was skipped: counted, and listed with its place."""
        self.count(step, reason)
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where}: {what}")

    def passed(self, place: int, name: str, kind: str) -> None:
        """A document went into (``kind`` "in") or came out of ("out") step ``name``."""
        self.steps[place, name, kind] += 1

    def step_rows(self) -> list[tuple[str, int, int, int]]:
        """(step, documents in, dropped, out) for each pipeline step, in pipeline order."""
        names = sorted({(place, name) for place, name, _ in self.steps})
        return [(name, self.steps[place, name, "in"],
                 self.steps[place, name, "in"] - self.steps[place, name, "out"],
                 self.steps[place, name, "out"]) for place, name in names]

    def merge(self, other: Stats) -> None:
        self.docs.update(other.docs)
        self.chars.update(other.chars)
        self.steps.update(other.steps)
        room = MAX_PROBLEMS - len(self.problems)
        self.problems.extend(other.problems[:max(room, 0)])

    def to_json(self) -> dict:
        """A JSON-able form (``from_json`` reads it back)."""
        return {"rows": [list(row) for row in self.rows()], "problems": list(self.problems),
                "steps": [[*key, n] for key, n in sorted(self.steps.items())]}

    @classmethod
    def from_json(cls, data: dict) -> Stats:
        stats = cls(problems=[str(p) for p in data["problems"]])
        for step, reason, docs, chars in data["rows"]:
            stats.count(str(step), str(reason), int(chars), int(docs))
        for place, name, kind, n in data["steps"]:
            stats.steps[int(place), str(name), str(kind)] += int(n)
        return stats

    def rows(self) -> list[tuple[str, str, int, int]]:
        """(step, reason, documents, characters) in a fixed order, whatever the workers did."""
        return [(step, reason, self.docs[step, reason], self.chars[step, reason])
                for step, reason in sorted(self.docs, key=_order)]
