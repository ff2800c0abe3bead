"""What a training run writes for people and tools: the start-up description, progress,
metrics.jsonl, TensorBoard and the closing summary. (TensorFlow's quiet start-up:
``tftrain.tfsetup``.)

Progress: on a terminal a tqdm bar (loss, bits/byte, lr, tokens/s beside it); anywhere else (CI,
``nohup``, a pipe, the demo's stage logs) one line every ``train.log_every`` steps: step, loss,
bits per byte, lr, tokens/s and ETA, instead of a progress-bar line per step.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from common.atomic import atomic_write
from tftrain import checkpoint, data, distribute, memory


def describe_start(plan, params: int, prec: str, jit: bool, device: str, strategy, chief: bool,
                   start: int | None) -> None:
    """Print what will run: model, memory estimate, data and batch, workers, shuffle buffer, and
    the checkpoint resumed from (``start``: its step; None for a new run)."""
    t = plan.train
    buf = data.buffer_bytes(t.buffer_size, plan.block, plan.dtype)
    print(f"model: {t.size}{' from ' + str(plan.init) if plan.init else ''}, "
          f"{params:,} parameters; device {device}, precision {prec}, XLA {'on' if jit else 'off'}")
    print(memory.format_estimate(memory.estimate(
        plan.config, t.batch_size, plan.block, prec, t.optimizer, t.recompute, t.accumulate)))
    print(f"data: {plan.blocks['train']:,} train blocks of {plan.block}+1 tokens, global batch "
          f"{plan.global_batch} ({t.batch_size} x {t.accumulate} accumulated x "
          f"{plan.replicas} replicas), {plan.steps_per_epoch:,} steps an epoch, "
          f"{plan.total_steps:,} steps ({plan.epochs} epochs)")
    workers, task = distribute.describe_workers(strategy)
    if workers > 1:
        shards = len(plan.meta["splits"]["train"]["shards"])
        print(f"workers: {workers} ({task}{', chief' if chief else ''}); input sharding "
              f"{data.shard_policy(shards, workers)} ({shards} train shard files)")
    print(f"shuffle buffer: {t.buffer_size:,} blocks = {buf / 1e6:.2f} MB in memory "
          f"(and in each checkpoint)")
    if buf > t.buffer_budget_mb * 1e6:
        print(f"warning: the shuffle buffer ({buf / 1e6:.2f} MB) is over train.buffer_budget_mb="
              f"{t.buffer_budget_mb:g}; lower train.buffer_size")
    if start is not None:
        print(f"resuming run {plan.run.name} from {Path(checkpoint.latest(plan.run)).name} "
              f"(step {start}, epoch {start // plan.steps_per_epoch + 1})")


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
        keep = [r for r in read_metrics(self.path) if r.get("step", 0) <= start]
        with atomic_write(self.path) as fh:
            fh.write("".join(_line(r) for r in keep))

    def record(self, step: int, kind: str, **values) -> None:
        import tensorflow as tf

        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(_line({"step": step, "kind": kind, **values}))
        with self.writer.as_default(step=step):
            for name, value in values.items():
                if isinstance(value, float):
                    tf.summary.scalar(f"{kind}/{name}", value)
                elif isinstance(value, list):
                    tf.summary.text(f"{kind}/{name}", "\n\n".join(map(str, value)))
        self.writer.flush()


def _line(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def read_metrics(path: Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (``Metrics`` writes it), in order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def print_columns(rows: list[tuple[str, str]]) -> None:
    """Two plain columns (what, value), the first padded: the closing lines of a command whose
    output is read by eye and by ``grep`` (``generate``, ``export_pt``)."""
    width = max(len(what) for what, _ in rows)
    print("\n".join(f"{what:<{width}}  {value}" for what, value in rows))


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """A two-column table (what, value) with a title and borders at the end of a training run."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows:
        table.add_row(what, value)
    Console(file=sys.stdout).print(table)
