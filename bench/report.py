"""``make bench``: gather ``bench/results/*.json`` into one table, ``bench/RESULTS.md``.

A result file holds ``name``, ``date``, ``machine`` ({"cpu", "cores", "gpu"}) and ``figures``: a list
of {"figure", "value", "unit", "peer", "peer_value", "ratio", "device"} (device "CPU" or the GPU's
name), each figure measured beside its peer in the same run. ``machine()`` is shared by the
benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "bench" / "RESULTS.md"


def machine() -> dict:
    """CPU model, cores and GPU (if any) of this machine."""
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu or None}


def _num(v) -> str:
    if isinstance(v, int | float):
        return f"{v:,.3g}" if abs(v) < 10 else f"{v:,.0f}"
    return "" if v is None else str(v)


def _ratio(v) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) else ""


def rows(path: Path) -> list[list[str]]:
    """Table rows of one result file (a file without ``figures`` gives one row saying so)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    m = data.get("machine") or {}
    where = f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores" + (
        f", GPU {m['gpu']}" if m.get("gpu") else "")
    out = []
    for f in data.get("figures") or []:
        unit = f.get("unit", "")
        out.append([path.stem, f.get("device") or ("GPU" if m.get("gpu") else "CPU"),
                    str(f.get("figure", "")), f"{_num(f.get('value'))} {unit}".strip(),
                    str(f.get("peer", "")),
                    f"{_num(f.get('peer_value'))} {unit}".strip() if "peer_value" in f else "",
                    _ratio(f.get("ratio")), where, str(data.get("date", ""))])
    if not out:  # a file without the ``figures`` list: show every ratio it holds, by its path
        for label, key, ratio in _ratios(data, ()):
            out.append([path.stem, "GPU" if m.get("gpu") else "CPU",
                        f"{data.get('figure') or label} ({key}; file has no `figures` list)",
                        "", "", "", _ratio(ratio), where, str(data.get("date", ""))])
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


def render(paths: list[Path]) -> str:
    head = ["bench", "device", "figure", "value", "peer", "peer value", "ratio", "machine",
            "date"]
    lines = ["# Benchmark results", "",
             "Written by `make bench` (`python -m bench.report`) from `bench/results/*.json`. "
             "Each figure is measured beside its peer in the same run; ratio = figure / peer. "
             "GPU figures are labelled by device.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path in paths:
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                  for row in rows(path)]
    return "\n".join(lines) + "\n"


def main() -> int:
    paths = sorted(RESULTS.glob("*.json"))
    if not paths:
        print(f"bench.report: no results in {RESULTS}; run `make bench`", file=sys.stderr)
        return 2
    OUT.write_text(render(paths), encoding="utf-8")
    print(f"{len(paths)} result files -> {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
