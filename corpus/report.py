"""The account of a run: a table of documents and characters in, dropped by step and reason,
and out per split; ``report.md`` with that table, the bad input and a length histogram."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from common import markdown
from corpus.stats import Stats

BINS = np.logspace(1, 7, 49)  # document lengths in characters, 10 to 10^7, 8 bins a decade


class LengthHistogram:
    """Document-length counts in fixed log-spaced bins (memory does not grow with the corpus)."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(BINS) + 1, dtype=np.int64)

    def add(self, chars: int) -> None:
        self.counts[np.searchsorted(BINS, chars, side="right")] += 1

    def save_png(self, path: Path) -> None:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        edges = np.concatenate([[BINS[0] / BINS[1] * BINS[0]], BINS, [BINS[-1] * BINS[1] / BINS[0]]])
        fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
        ax.stairs(self.counts, edges, fill=True)
        ax.set_xscale("log")
        used = np.flatnonzero(self.counts)
        if len(used):
            ax.set_xlim(edges[used[0]], edges[used[-1] + 1])
        ax.set_xlabel("document length (characters)")
        ax.set_ylabel("documents")
        ax.set_title("Corpus document lengths")
        fig.tight_layout()
        fig.savefig(path, format="png", metadata={"Software": None})
        plt.close(fig)


def table(stats: Stats) -> list[tuple[str, str, str, str]]:
    """Rows (step, what, documents, characters) as strings, a header row first."""
    rows = [("step", "what", "documents", "characters")]
    rows += [(step, reason, f"{docs:,}", f"{chars:,}") for step, reason, docs, chars in stats.rows()]
    return rows


def text_table(stats: Stats) -> str:
    """The table for the terminal."""
    rows = table(stats)
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                 row[2].rjust(widths[2]), row[3].rjust(widths[3])]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def write_report(out: Path, stats: Stats, lengths: LengthHistogram, settings: dict) -> None:
    """``report.md`` and ``lengths.png`` in ``out``."""
    rows = table(stats)
    md = ["# Corpus build report", "",
          "Characters are raw HTML in the `read` row and in the `path` and `dropped` rows of "
          "`extract` (the pages as they came in); every other row counts text.", "",
          *markdown.table(rows[0], rows[1:], right=(2, 3))]
    md += ["", "## Documents through each step", "",
           "Extraction, normalisation and the filters, in the order they run; each step's "
           "`dropped` are the `dropped` and `skipped` rows of its stage above that name it or "
           "give its reason.", "",
           *markdown.table(["step", "in", "dropped", "out"],
                           [[name, f"{n_in:,}", f"{dropped:,}", f"{n_out:,}"]
                            for name, n_in, dropped, n_out in stats.step_rows()], right=(1, 2, 3))]
    total = int(lengths.counts.sum())
    md += ["", f"## Document lengths ({total:,} documents)", "", "![document lengths](lengths.png)"]
    if stats.problems:
        shown = stats.problems
        md += ["", f"## Bad input skipped (first {len(shown)})", ""]
        md += [f"- `{p}`" for p in shown]
    md += ["", "## Settings", ""]
    md += [f"- `{k}` = `{_show(v)}`" for k, v in sorted(settings.items())]
    (out / "report.md").write_text("\n".join(md) + "\n", encoding="utf-8")
    lengths.save_png(out / "lengths.png")


def _show(value) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return str(value)
