"""Training memory, measured, beside the trainer's printed estimate (``tftrain.memory.estimate``).

``make bench-memory`` (``python -m bench.memory``) runs the trainer's own step
(``bench.train.trainer_step``: model, recompute, optimiser, clipping, ``make_train_step``) for
a few steps in a fresh process per setting, with GPT-2's 50,257-token vocabulary (the ``--init``
case before any resize), and reports the peak:

- on a GPU, the allocator peak (``tf.config.experimental.get_memory_info``), the figure that
  decides whether a card is big enough; precision ``auto`` (bf16 on Ampere or newer, else fp16);
- on a CPU, the process's peak resident size minus its size before the model was built, in fp32
  (16-bit is emulated on CPUs). This checks the estimate the trainer prints, not a GPU's figure.

Settings: ``medium`` at block 100, batch 16 with AdamW (the setting that filled a 16 GB T4 in
the notebooks this project replaces), the same with recompute, and ``xl`` at block 1024, batch 1
with recompute + Adafactor (fine-tuning the 1.5B model on a 16 GB card). Results go to
``bench/results/memory.json``; on a GPU machine, ``memory-<gpu>.json``; ``--precision`` or
``--xla`` other than auto add ``-precision-<p>`` / ``-xla-<on|off>`` to the name. Each setting's
worker also has its wall and CPU seconds and the peak RSS of its process tree recorded
(``bench.harness.measure``, in ``results.<setting>.process``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import tftrain  # noqa: F401 (sets TensorFlow's environment: tftrain.tfsetup)
from bench import harness

GIB = 1024**3
VOCAB = 50257
# name: size, batch, block, optimizer, recompute
SETTINGS = {
    "medium-b16-s100-adamw": ("medium", 16, 100, "adamw", False),
    "medium-b16-s100-adamw-recompute": ("medium", 16, 100, "adamw", True),
    "xl-b1-s1024-adafactor-recompute": ("xl", 1, 1024, "adafactor", True),
}
PROTOCOL = "@@bench "


def measure(name: str, steps: int, prec: str, xla: str) -> dict:
    """Run ``steps`` train steps of one setting in this process; its peak and its estimate."""
    import tensorflow as tf
    from transformers import GPT2Config

    from bench.train import trainer_step
    from tftrain import memory, precision
    from tftrain.model import PRESETS

    size, batch, block, optimizer, recompute = SETTINGS[name]
    prec, jit, device = precision.resolve(prec, xla)
    preset = PRESETS[size]
    model = dict(vocab_size=VOCAB, **{k: int(preset[k]) for k in
                                      ("n_layer", "n_head", "n_embd", "n_positions")})
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    before = memory.resident_bytes()
    step, info = trainer_step(model, batch, block, prec, jit, recompute,
                              optimizer=optimizer)
    began = time.perf_counter()
    losses = [step() for _ in range(steps)]
    peak, what = memory.peak_bytes()
    used = peak if gpu else peak - before
    est = memory.estimate(GPT2Config(**model), batch, block, prec, optimizer, recompute)
    return {**info, "xla": "on" if jit else "off", "setting": name, "device": device,
            "what": what,
            "peak_gib": round(used / GIB, 2), "estimate_gib": round(est["total"] / GIB, 2),
            "estimate_parts_gib": {k: round(est[k] / GIB, 2) for k in
                                   ("weights", "gradients", "optimizer", "activations")},
            "steps": steps, "seconds_per_step": round((time.perf_counter() - began) / steps, 1),
            "loss_first": round(losses[0], 3), "loss_last": round(losses[-1], 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=2, help="train steps per setting")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                        help="auto: bf16/fp16 on a GPU, fp32 on a CPU")
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                        help="auto: the trainer's XLA on a GPU, none on a CPU")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(PROTOCOL + json.dumps(measure(args.worker, args.steps, args.precision, args.xla)), flush=True)
        return 0

    benchmark = harness.Run()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results, figures = {}, []
    for name in args.settings:  # a fresh process each, so the peak is this setting's own
        print(f"bench.memory: {name} ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
            log = Path(tmp) / "worker.log"
            process = harness.measure([sys.executable, "-m", "bench.memory", "--worker", name,
                                       "--steps", str(args.steps), "--precision", args.precision,
                                       "--xla", args.xla], log, env)
            output = log.read_text(encoding="utf-8", errors="replace").splitlines()
        line = next((x for x in output if x.startswith(PROTOCOL)), None)
        if process["returncode"] or line is None:
            tail = "\n".join(output[-5:])
            raise SystemExit(f"bench.memory: {name} failed (exit {process['returncode']}):\n{tail}")
        r = results[name] = json.loads(line[len(PROTOCOL):])
        r["process"] = {k: round(process[k], 1) for k in ("seconds", "cpu_s", "peak_rss_mb")}
        print(f"  {name}: {r['peak_gib']} GiB measured ({r['what']}), estimate "
              f"{r['estimate_gib']} GiB, {r['precision']}, XLA {r['xla']}, "
              f"{r['seconds_per_step']} s/step",
              file=sys.stderr, flush=True)
        figures.append({"figure": f"training memory peak, {name}, {r['precision']}, XLA "
                                  f"{r['xla']} ({r['what']})",
                        "value": r["peak_gib"], "unit": "GiB", "device": r["device"],
                        "peer": "the trainer's printed estimate (tftrain.memory)",
                        "peer_value": r["estimate_gib"],
                        "ratio": round(r["peak_gib"] / r["estimate_gib"], 3)})
    m = benchmark.machine
    setup = {"vocab_size": VOCAB, "steps": args.steps, "precision": args.precision,
             "xla": args.xla,
             "settings": {k: dict(zip(("size", "batch", "block", "optimizer", "recompute"), v,
                                      strict=True))
                          for k, v in SETTINGS.items() if k in results}}
    slug = "memory" + ("-" + "".join(c if c.isalnum() else "-" for c in m["gpu"]).lower()
                       if m["gpu"] else "") + "".join(
        f"-{k}-{v}" for k, v in (("precision", args.precision), ("xla", args.xla)) if v != "auto")
    out = benchmark.write(harness.RESULTS / f"{slug}.json",
                          "memory" + (f" ({m['gpu']})" if m["gpu"] else ""), figures,
                          setup=setup, results=results)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
