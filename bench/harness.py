"""The benchmarks' one harness: the machine, a measured command, and the result file.

- ``Run``: a benchmark run, started: its date and ``machine()`` (CPU model, cores, GPU, Python,
  the 1-minute load average at the start) taken then; ``Run.write`` puts them into the result
  file beside the figures (the shape ``bench.report`` reads), atomically.
- ``measure``: one command as its own process: wall seconds, CPU seconds and peak RSS of its
  whole process tree. The tree (children and grandchildren, such as the corpus stage's pool
  workers, which ``wait4`` never sees) is read from ``/proc`` every ``POLL_S``. Peak RSS is the
  larger of the largest sum over the tree (shared pages counted in each process) and the largest
  single process's own high-water mark (``VmHWM``, which starts afresh at exec). ``wait4``'s
  ``ru_maxrss`` is not used: it keeps the forking parent's RSS across exec, so a large benchmark
  process would show as its children's peak. CPU seconds are the larger of ``wait4``'s (every
  waited-for descendant) and the sum of the last reading of each process seen.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from common.atomic import atomic_write

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
POLL_S = 0.1
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MB = 2**20


def machine() -> dict:
    """CPU model, cores, GPU (if any), Python version and the 1-minute load average now."""
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
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu or None,
            "python": platform.python_version(), "load_avg_1min_at_start": load()}


def load() -> float:
    """The 1-minute load average now."""
    return round(os.getloadavg()[0], 2)


class Run:
    """A benchmark run from its start: ``date`` and ``machine`` are taken when it is made."""

    def __init__(self) -> None:
        self.date = datetime.now(UTC).isoformat(timespec="seconds")
        self.machine = machine()

    def write(self, path: Path, name: str, figures: list[dict], **details) -> Path:
        """The result file: ``name``, ``date``, ``machine``, ``figures`` and ``details``."""
        data = {"name": name, "date": self.date, "machine": self.machine, "figures": figures,
                **details}
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return path


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (``/proc/<pid>/task/<tid>/children``)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as fh:
                    stack += [int(child) for child in fh.read().split()]
        except OSError:  # it has exited meanwhile
            continue
    return found


def _process(pid: int) -> tuple[int, int, float] | None:
    """(RSS bytes, high-water RSS bytes, CPU seconds) of one process now; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            status = dict(line.split(":", 1) for line in fh if ":" in line)
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        rss, hwm = (int(status[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM"))
    except (OSError, IndexError, KeyError, ValueError):  # gone, or a zombie without memory
        return None
    return rss, hwm, (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


class Watch:
    """The process tree of ``pid``, read at once and then every ``POLL_S`` in a thread until
    ``stop``."""

    def __init__(self, pid: int):
        self.pid = pid
        self.tree_peak = 0  # bytes: the largest sum of the tree's RSS seen
        self.hwm: dict[int, int] = {}  # pid: its own high-water RSS, last seen
        self.cpu: dict[int, float] = {}  # pid: its CPU seconds, last seen
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while True:  # a first reading at once, so a short command is seen too
            total = 0
            for member in process_tree(self.pid):
                seen = _process(member)
                if seen is not None:
                    total += seen[0]
                    self.hwm[member], self.cpu[member] = seen[1], seen[2]
            self.tree_peak = max(self.tree_peak, total)
            if self.done.wait(POLL_S):
                return

    def stop(self, usage) -> dict:
        """The figures, given the ``wait4`` resource usage of the reaped process."""
        self.done.set()
        self.thread.join()
        largest = max(self.hwm.values(), default=0)
        return {"cpu_s": max(usage.ru_utime + usage.ru_stime, sum(self.cpu.values())),
                "peak_rss_mb": max(self.tree_peak, largest) / MB,
                "max_process_rss_mb": largest / MB, "processes": len(self.cpu)}


def measure(argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
            cwd: Path = ROOT) -> dict:
    """Run ``argv`` (stdout and stderr to ``log``) to its end: ``seconds`` (wall), ``cpu_s``,
    ``peak_rss_mb``, ``max_process_rss_mb`` (the largest single process), ``processes`` (how
    many were seen) and ``returncode``."""
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(list(argv), cwd=cwd, env=None if env is None else dict(env),
                                stdout=out, stderr=subprocess.STDOUT)
        watch = Watch(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.perf_counter() - start, **watch.stop(usage),
            "returncode": proc.returncode}
