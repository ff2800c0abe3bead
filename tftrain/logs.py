"""What a training run writes for people and tools: progress, metrics.jsonl, TensorBoard; and
the start-up noise held back.

Progress: on a terminal a tqdm bar (loss, bits/byte, lr, tokens/s beside it); anywhere else (CI,
``nohup``, a pipe, the demo's stage logs) one line every ``train.log_every`` steps: step, loss,
bits per byte, lr, tokens/s and ETA, instead of a progress-bar line per step.

Noise a user cannot act on is dropped, nothing else: the C++ start-up lines TensorFlow prints
while it loads and probes for devices (oneDNN notice, "Could not find cuda drivers", and on a
machine with no CUDA driver the ``cuInit`` error that follows), transformers' "TensorFlow and
JAX classes are deprecated" warning (this project pins transformers 4.x on purpose) and its
"All ... layers were used / initialized" notes on a load that went right. Every other line
written during start-up, and every other transformers warning (layers not used or newly
initialised among them), still comes through.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from common.atomic import atomic_write

STARTUP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations are on",
                 "Could not find cuda drivers", "Unable to register cuDNN factory",
                 "Unable to register cuFFT factory", "Unable to register cuBLAS factory",
                 "computation placer already registered",
                 "This TensorFlow binary is optimized to use available CPU instructions",
                 "rebuild TensorFlow with the appropriate compiler flags")
NO_DRIVER = "Could not find cuda drivers"
NO_DRIVER_ONLY = ("failed call to cuInit",)  # noise only when no CUDA driver is installed
# transformers warnings that say nothing is wrong
TRANSFORMERS_NOISE = ("TensorFlow and JAX classes are deprecated",
                      "All model checkpoint layers were used", "All the layers of ")


def startup_noise(lines: list[str]) -> list[str]:
    """The lines worth showing from what was written to stderr during start-up."""
    no_driver = any(NO_DRIVER in line for line in lines)
    return [line for line in lines
            if not any(tag in line for tag in STARTUP_NOISE)
            and not (no_driver and any(tag in line for tag in NO_DRIVER_ONLY))]


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(TRANSFORMERS_NOISE)


def quiet_transformers() -> None:
    """Drop ``TRANSFORMERS_NOISE`` (only it) from the transformers loggers that emit it."""
    for name in ("transformers.modeling_tf_utils", "transformers.tokenization_utils_base"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise())


@contextmanager
def quiet_startup():
    """Import TensorFlow and probe its devices inside this block: file descriptor 2 is held in a
    temporary file meanwhile and what is not start-up noise is written back afterwards."""
    quiet_transformers()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines()
            kept = startup_noise(lines)
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
                sys.stderr.flush()


def import_tensorflow():
    """``tensorflow``, imported and its devices listed quietly (see ``quiet_startup``)."""
    with quiet_startup():
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    return tf


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Pace:
    """Tokens/s over each logging window and the time left, with paused time (validation,
    samples, checkpoints) left out of both.

    The ETA divides the steps left by the pace since the first step of this process ended: that
    step's time is mostly tracing and compiling the step (with XLA, tens of seconds on a CPU),
    and counted in it would put the first ETAs far above the run's real pace. Call ``step``
    once a step's result is waited for, so the first one is timed whole.
    """

    def __init__(self, tokens_per_step: int, clock=time.perf_counter):
        self.tokens_per_step, self.clock = tokens_per_step, clock
        self.steps, self.paused, self.speeds = 0, 0.0, []
        self._window = (clock(), 0, 0.0)  # (time, steps, paused) when the window began
        self._warm = None  # the same, when the first step had ended

    def step(self) -> None:
        self.steps += 1
        if self._warm is None:
            self._warm = (self.clock(), self.steps, self.paused)

    @contextmanager
    def pause(self):
        """Time in this block counts neither in tokens/s nor in the ETA."""
        began = self.clock()
        try:
            yield
        finally:
            self.paused += self.clock() - began

    def _seconds(self, since: tuple[float, int, float], now: float) -> tuple[float, int]:
        """Working seconds and steps since ``since``."""
        start, steps, paused = since
        return now - start - (self.paused - paused), self.steps - steps

    def figures(self, steps_left: int) -> tuple[float, float]:
        """(tokens/s over the window since the last call, ETA in seconds); starts a window."""
        now = self.clock()
        seconds, steps = self._seconds(self._window, now)
        speed = steps * self.tokens_per_step / max(seconds, 1e-9)
        self.speeds.append(speed)
        self._window = (now, self.steps, self.paused)
        seconds, steps = self._seconds(self._warm, now) if self._warm else (0.0, 0)
        per_step = seconds / steps if steps else self.tokens_per_step / speed if speed else 0.0
        return speed, steps_left * per_step

    def median_speed(self) -> float:
        """The median tokens/s of the windows, the first (compilation) left out when others exist."""
        speeds = sorted(self.speeds[1:] or self.speeds)
        return speeds[len(speeds) // 2] if speeds else 0.0


class Progress:
    """A tqdm bar on a terminal, else a summary line every logged step (``figures`` given)."""

    def __init__(self, total: int, start: int):
        from tqdm import tqdm

        self.total = total
        self.bar = tqdm(total=total, initial=start, disable=None, file=sys.stdout, unit="step",
                        dynamic_ncols=True)

    def update(self, step: int, figures: dict | None = None) -> None:
        """One step done; ``figures`` (loss, bpb, lr, tokens_per_s, eta_s) on logged steps."""
        if not self.bar.disable:
            self.bar.update(step - self.bar.n)
            if figures:
                self.bar.set_postfix({"loss": f"{figures['loss']:.4f}",
                                      "bits/byte": f"{figures['bpb']:.3f}",
                                      "lr": f"{figures['lr']:.2e}",
                                      "tokens/s": f"{figures['tokens_per_s']:,.0f}"},
                                     refresh=False)
        elif figures:
            width = len(str(self.total))
            self.say(f"step {step:>{width}}/{self.total}  loss {figures['loss']:.4f}  "
                     f"bits/byte {figures['bpb']:.4f}  lr {figures['lr']:.2e}  "
                     f"tokens/s {figures['tokens_per_s']:,.0f}  ETA {_duration(figures['eta_s'])}")

    def say(self, msg: str) -> None:
        """A message that does not break the bar."""
        if self.bar.disable:
            print(msg, flush=True)
        else:
            self.bar.write(msg, file=sys.stdout)

    def close(self) -> None:
        self.bar.close()


class Metrics:
    """``metrics.jsonl`` (one JSON record a line) and TensorBoard scalars of a run."""

    def __init__(self, run: Path, start: int):
        import tensorflow as tf

        self.path = run / "metrics.jsonl"
        self._truncate(start)
        self.writer = tf.summary.create_file_writer(str(run / "tb"))

    def _truncate(self, start: int) -> None:
        """Drop records a killed run wrote after the checkpoint it resumes from."""
        if not self.path.is_file():
            return
        keep = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= start]
        with atomic_write(self.path) as fh:
            fh.write("".join(line + "\n" for line in keep))

    def record(self, step: int, kind: str, **values) -> None:
        import tensorflow as tf

        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"step": step, "kind": kind, **values}, ensure_ascii=False) + "\n")
        with self.writer.as_default(step=step):
            for name, value in values.items():
                if isinstance(value, float):
                    tf.summary.scalar(f"{kind}/{name}", value)
                elif isinstance(value, list):
                    tf.summary.text(f"{kind}/{name}", "\n\n".join(map(str, value)))
        self.writer.flush()


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """A two-column table (what, value) at the end of a command."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows:
        table.add_row(what, value)
    Console(file=sys.stdout).print(table)
