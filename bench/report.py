"""``make bench``: gather ``bench/results/*.json`` into one table, ``bench/RESULTS.md``.

A result file holds ``name``, ``date``, ``machine`` ({"cpu", "cores", "gpu", ...}) and ``figures``: a list
of {"figure", "value", "unit", "peer", "peer_value", "ratio", "device"} (device "CPU" or the GPU's
name), each figure measured beside its peer in the same run, and optionally ``section``: Markdown
put under the table; ``bench.harness.Run.write`` writes them. ``--note TEXT`` adds a line under
the title (say, that the machine was busy).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import RESULTS, ROOT
from common import markdown
from common.atomic import atomic_write
from common.errors import UserError, cli_main

OUT = ROOT / "bench" / "RESULTS.md"


def _num(v) -> str:
    if isinstance(v, int | float):
        return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.0f}"
    return "" if v is None else str(v)


def _ratio(v) -> str:
    if not isinstance(v, int | float):
        return ""
    return f"{v:.3f}" if abs(v) < 10 else f"{v:,.1f}"


def _date(v) -> str:
    """An ISO date (or ``YYYY-MM-DD HH:MM UTC``) as ``YYYY-MM-DD HH:MM UTC``; anything else as is."""
    try:
        when = datetime.fromisoformat(str(v).replace(" UTC", "+00:00"))
    except ValueError:
        return "" if v is None else str(v)
    when = when.astimezone(UTC) if when.tzinfo else when
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _where(m: dict) -> str:
    """The machine cell: CPU model, cores, GPU (or none), and the load when the run started."""
    load = m.get("load_avg_1min_at_start")
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, GPU {m.get('gpu') or 'none'}"
            + (f", load {load:.1f} at start" if isinstance(load, int | float) else ""))


def rows(path: Path) -> list[list[str]]:
    """Table rows of one result file (a file without ``figures`` gives one row saying so)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"unreadable result file {path}: {exc}") from None
    m = data.get("machine") or {}
    where, date = _where(m), _date(data.get("date"))
    out = []
    for f in data.get("figures") or []:
        unit = f.get("unit", "")
        out.append([path.stem, f.get("device") or ("GPU" if m.get("gpu") else "CPU"),
                    str(f.get("figure", "")), f"{_num(f.get('value'))} {unit}".strip(),
                    str(f.get("peer", "")),
                    f"{_num(f.get('peer_value'))} {unit}".strip() if "peer_value" in f else "",
                    _ratio(f.get("ratio")), where, date])
    if not out:  # a file without the ``figures`` list: show every ratio it holds, by its path
        for label, key, ratio in _ratios(data, ()):
            out.append([path.stem, "GPU" if m.get("gpu") else "CPU",
                        f"{data.get('figure') or label} ({key}; file has no `figures` list)",
                        "", "", "", _ratio(ratio), where, date])
    return out


def _ratios(node, path: tuple[str, ...]):
    """``(label, key, value)`` for every ``ratio*`` number in ``node`` (per-run lists skipped)."""
    if isinstance(node, dict):
        label = str(node.get("figure") or node.get("name") or ".".join(path))
        for key, value in node.items():
            if key.startswith("ratio") or key.endswith("_ratio"):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    yield label, key, value
            elif key != "runs" and isinstance(value, dict | list):
                yield from _ratios(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _ratios(value, (*path, str(i)))


def render(paths: list[Path], note: str = "") -> str:
    head = ["bench", "device", "figure", "value", "peer", "peer value", "ratio", "machine",
            "date"]
    lines = ["# Benchmark results", "",
             "Written by `make bench` (`python -m bench.report`) from `bench/results/*.json`. "
             "Each figure is measured beside its peer in the same run; ratio = figure / peer "
             "(over several runs: the median of the per-run ratios). "
             "GPU figures are labelled by device.", ""]
    if note:
        lines += [f"**Note:** {note}", ""]
    lines += markdown.table(head, [row for path in paths for row in rows(path)])
    for path in paths:  # a result file's own Markdown ``section`` (bench-scale, bench-quality)
        section = json.loads(path.read_text(encoding="utf-8")).get("section")
        if section:
            lines += ["", section.rstrip("\n")]
    return "\n".join(lines) + "\n"


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="gather bench/results/*.json into bench/RESULTS.md")
    parser.add_argument("--note", default="", help="a line shown under the title")
    args = parser.parse_args(argv)
    paths = sorted(RESULTS.glob("*.json"))
    if not paths:
        raise UserError(f"no results in {RESULTS}; run `make bench`")
    text = render(paths, args.note)
    with atomic_write(OUT) as fh:
        fh.write(text)
    figures = sum(line.startswith("| ") for line in text.splitlines()) - 1
    print(f"{len(paths)} result files, {figures} figures -> {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
