"""``make bench-gpu``: the trainer on your NVIDIA GPU in under 10 minutes, as one table to send us.

Every row runs the trainer's own step (``bench.train.trainer_step``: ``tftrain.step``, AdamW or
Adafactor, clipping, the trainer's XLA) on a random GPT-2 with GPT-2's 50,257-token vocabulary,
each in a fresh process (so a peak is that row's own and a crash costs one row):

- speed: ``small`` (batch 4) and ``medium`` (batch 1) at block 1024, AdamW, bf16 and fp16, XLA on
  and off: tokens/s (median step after warm-up) and MFU, model FLOPs per token
  (6 x parameters + 12 x layers x width x block, the PaLM paper's count; recompute not counted)
  times tokens/s over the card's dense 16-bit tensor peak (``PEAK_TFLOPS``, from NVIDIA's data
  sheets; ``--peak-tflops`` for another card);
- memory: ``bench.memory``'s ``medium`` at block 100, batch 16, AdamW (the seed notebooks' T4
  setting: 13.9 GB there) and ``xl`` at block 1024, batch 1, Adafactor + recompute, at the
  precision and XLA the trainer picks (``auto``): the allocator's peak beside the trainer's
  printed estimate (``tftrain.memory.estimate``).

Whether a step updates the weights in place: after warm-up, the device address of every
trainable weight's buffer is read (through DLPack) before and after one more step. A step that
writes new weights into fresh buffers must allocate them while the old ones still exist, so the
addresses change ("moved"; XLA not aliasing a variable's input buffer to its output, or TF copying
a buffer another op still reads before it writes it); an update in place keeps them ("kept").
Without it the step holds two copies of those weights at its peak (4 bytes a parameter more than
the estimate). The embeddings (``wte``, ``wpe``) are read by ``tf.gather``, which puts a variable
in TF's copy-on-read mode: every read is a fresh copy, so their own buffer cannot be seen this
way ("copied at every read"; each such read costs a copy of the matrix, 154 MB for ``small``).

``--smoke`` runs on the CPU with a 1-layer, 16-wide model (128-token vocabulary) at batch 2 x
block 16, all in one worker process (the tests run it): ``small``'s speed rows and the memory
rows (``medium``'s speed rows would repeat ``small``'s with that model); its figures measure
nothing. Without ``--smoke`` the run stops before its first row when TensorFlow lists no GPU (the
``tensorflow`` wheel without its CUDA libraries) and names the command that adds them. Results:
``bench/results/gpu-<card>.json`` (``make bench`` adds it to ``bench/RESULTS.md``) and the
table on screen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.harness import RESULTS, Run
from bench.memory import SETTINGS, VOCAB
from common import markdown
from common.errors import UserError, cli_main

GIB = 1024**3
PROTOCOL = "@@gpu "
SPEED_BATCH = {"small": 4, "medium": 1}  # fits a 16 GB card at block 1024 without recompute
SPEED_BLOCK = 1024
MEMORY = ("medium-b16-s100-adamw", "xl-b1-s1024-adafactor-recompute")
SMOKE_MODEL = dict(n_layer=1, n_head=2, n_embd=16, n_positions=32, vocab_size=128)
SMOKE_BATCH, SMOKE_BLOCK = 2, 16
# dense fp16/bf16 tensor-core TFLOPS (NVIDIA data sheets), by a part of the device name; the first
# match wins; None: not known here (pass --peak-tflops)
PEAK_TFLOPS: tuple[tuple[str, float | None], ...] = (
    ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0), ("L40S", 362.0), ("L40", None),
    ("L4", 121.0), ("A10G", None), ("A10", 125.0), ("V100-PCIE", 112.0), ("V100", 125.0),
    ("T4", 65.0))


@dataclass(frozen=True)
class Row:
    """One measurement: ``kind`` "speed" or "memory"; precision/xla as in ``[train]``."""

    kind: str
    size: str
    batch: int
    block: int
    precision: str
    xla: str
    optimizer: str = "adamw"
    recompute: bool = False

    @classmethod
    def of(cls, result: dict) -> Row:
        """The row a result (``measure``'s, or an ``error`` one) was measured for."""
        return cls(**{k: result[k] for k in cls.__dataclass_fields__})

    def label(self) -> str:
        extra = (f", {self.optimizer}" + (" + recompute" if self.recompute else "")
                 if self.kind == "memory" else "")
        return (f"{self.size}, batch {self.batch} x block {self.block}, {self.precision}, "
                f"XLA {self.xla}{extra}")


def rows(smoke: bool = False) -> list[Row]:
    """The table's rows: 8 speed rows, then the 2 memory rows (``smoke``: the ``medium`` speed
    rows left out, the same as ``small``'s with the smoke model)."""
    sizes = list(SPEED_BATCH)[:1] if smoke else list(SPEED_BATCH)
    speed = [Row("speed", size, SPEED_BATCH[size], SPEED_BLOCK, prec, xla)
             for size in sizes for prec in ("bf16", "fp16") for xla in ("on", "off")]
    memory = []
    for name in MEMORY:
        size, batch, block, optimizer, recompute = SETTINGS[name]
        memory.append(Row("memory", size, batch, block, "auto", "auto", optimizer, recompute))
    return speed + memory


def peak_tflops(device: str) -> float | None:
    """The dense 16-bit peak of ``device`` from ``PEAK_TFLOPS``, None when not listed."""
    return next((tflops for part, tflops in PEAK_TFLOPS if part in device), None)


def flops_per_token(params: int, layers: int, width: int, block: int) -> int:
    """Model FLOPs of one trained token: forward and backward through every weight, plus
    attention's score and value products."""
    return 6 * params + 12 * layers * width * block


def _address(capsule) -> int:
    """The ``data`` pointer of a DLPack capsule."""
    import ctypes

    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    return ctypes.c_void_p.from_address(get(capsule, b"dltensor")).value


def buffer_address(variable) -> int | None:
    """The device address of ``variable``'s buffer, read through DLPack; None when two reads
    give two buffers: a variable read sparsely (``tf.gather``, the embeddings) is in TF's
    copy-on-read mode, where every read is a fresh copy and its own buffer cannot be seen."""
    import tensorflow as tf

    first = tf.experimental.dlpack.to_dlpack(variable.value())
    second = tf.experimental.dlpack.to_dlpack(variable.value())  # while the first is held
    return _address(first) if _address(first) == _address(second) else None


def buffer_moves(variables, step) -> dict[str, list[str]]:
    """``step()`` between two looks at each variable's buffer: the names of those that kept it
    ("kept"), got another ("moved") or cannot be seen ("copied_on_read")."""
    before = [buffer_address(v) for v in variables]
    step()
    out: dict[str, list[str]] = {"kept": [], "moved": [], "copied_on_read": []}
    for address, v in zip(before, variables, strict=True):
        after = buffer_address(v)
        kind = ("copied_on_read" if None in (address, after) else
                "kept" if address == after else "moved")
        out[kind].append(v.name.split("/", 1)[-1].removesuffix(":0"))
    return out


def model_dims(size: str, smoke: bool) -> dict:
    """The GPT-2 dimensions of a preset (GPT-2's vocabulary), or the smoke model."""
    from tftrain.model import PRESETS

    if smoke:
        return dict(SMOKE_MODEL)
    preset = PRESETS[size]
    return dict(vocab_size=VOCAB, **{k: int(preset[k]) for k in
                                     ("n_layer", "n_head", "n_embd", "n_positions")})


def measure(row: Row, smoke: bool, warmup: int, steps: int) -> dict:
    """Build, warm up and time one row in this process: tokens/s, memory peak, estimate and
    the in-place count."""
    import gc

    import tensorflow as tf
    from transformers import GPT2Config

    from bench.train import random_model, trainer_step
    from tftrain import memory, precision

    prec, jit, device = precision.resolve(row.precision, row.xla)
    model = model_dims(row.size, smoke)
    batch, block = (SMOKE_BATCH, SMOKE_BLOCK) if smoke else (row.batch, row.block)
    gc.collect()
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if gpu:
        tf.config.experimental.reset_memory_stats("GPU:0")
    before = memory.resident_bytes()
    precision.apply(prec)
    net = random_model(model)
    step, info = trainer_step(model, batch, block, prec, jit, row.recompute, net=net,
                              optimizer=row.optimizer)
    began = time.perf_counter()
    losses = [step()]
    first = time.perf_counter() - began
    losses += [step() for _ in range(warmup - 1)]
    moves = buffer_moves(net.trainable_variables, step)
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - began)
    peak, what = memory.peak_bytes()
    est = memory.estimate(GPT2Config(**model), batch, block, prec, row.optimizer, row.recompute)
    tokens_per_s = batch * block / statistics.median(times)
    return {**asdict(row), "precision": prec, "xla": "on" if jit else "off", "device": device,
            "model": model, "batch": batch, "block": block, "params": info["params"],
            "tokens_per_s": round(tokens_per_s, 1),
            "flops_per_token": flops_per_token(info["params"], model["n_layer"],
                                               model["n_embd"], block),
            "first_step_s": round(first, 2), "steps": steps,
            # a CPU's RSS peak may predate this row (--smoke runs every row in one process)
            "peak_bytes": peak if gpu else max(peak - before, 0), "what": what,
            "estimate_bytes": est["total"], "weights": len(net.trainable_variables),
            "buffers": moves,
            "loss_first": round(losses[0], 4), "loss_last": round(losses[-1], 4)}


def environment() -> dict:
    """TensorFlow's view of the device and the versions that decide the figures."""
    import tensorflow as tf
    import tf_keras
    import transformers

    build = tf.sysconfig.get_build_info()
    gpus = tf.config.list_physical_devices("GPU")
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else {}
    return {"device": details.get("device_name", "CPU"),
            "compute_capability": ".".join(map(str, details.get("compute_capability", ()))),
            "gpus": len(gpus), "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            "transformers": transformers.__version__, "python": platform.python_version(),
            "cuda_build": build.get("cuda_version", ""), "cudnn_build": build.get("cudnn_version", "")}


def cuda_install(version: str) -> str:
    """The command that adds the CUDA libraries of TensorFlow ``version`` to the venv."""
    return f'.venv/bin/pip install "tensorflow[and-cuda]=={version}"'


def gpu_missing(env: dict) -> str | None:
    """Why a GPU run must stop before its first row: the TensorFlow ``env`` (``environment``)
    describes lists no GPU, so every row would run on the CPU; None when it lists one."""
    if env.get("gpus"):
        return None
    return (f"TensorFlow {env['tensorflow']} sees no GPU, so every row would run on the CPU; "
            f"add its CUDA libraries: {cuda_install(env['tensorflow'])}")


def worker(smoke: bool, warmup: int, steps: int) -> None:
    """Read rows (JSON, one a line) from stdin; print the environment, then each row's result."""
    print(PROTOCOL + json.dumps(environment()), flush=True)
    for line in sys.stdin:
        row = Row(**json.loads(line))
        try:
            result = measure(row, smoke, warmup, steps)
        except Exception as exc:  # noqa: BLE001 (one failed row, e.g. out of memory, is reported)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            result = {**asdict(row), "error": f"{type(exc).__name__}: {first}"}
        print(PROTOCOL + json.dumps(result), flush=True)


def run_rows(todo: list[Row], smoke: bool, args) -> tuple[dict, list[dict]]:
    """Each row in a fresh worker process (``--smoke``: all in one); the environment and
    the results in row order (a worker that died gives its rows an ``error``). Without
    ``smoke``, stops (``gpu_missing``) before a worker whose TensorFlow sees no GPU gets a row."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    if smoke:
        env["CUDA_VISIBLE_DEVICES"] = "-1"
    groups = [todo] if smoke else [[r] for r in todo]
    seen, results = {}, []
    for group in groups:
        with tempfile.TemporaryFile("w+") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.gpu", "--worker", "--warmup", str(args.warmup),
                 "--steps", str(args.steps), *(["--smoke"] if smoke else [])],
                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True)
            replies = (json.loads(x[len(PROTOCOL):]) for x in proc.stdout
                       if x.startswith(PROTOCOL))
            first = next(replies, None)  # the environment, printed before the worker reads rows
            missing = gpu_missing(first) if first and not smoke else None
            if first and not missing:
                proc.stdin.write("".join(json.dumps(asdict(r)) + "\n" for r in group))
            proc.stdin.close()
            got = [first, *replies] if first else []
            proc.wait()
            log.seek(0)
            tail = " | ".join(log.read().strip().splitlines()[-3:])
        if missing:
            raise UserError(missing)
        seen = seen or (got[0] if got else {})
        done = got[1:]
        for r in group[len(done):]:
            done.append({**asdict(r), "error": f"worker exited {proc.returncode}: {tail}"})
        for r in done:
            print(f"  {Row.of(r).label()}: "
                  + (r["error"] if "error" in r else f"{r['tokens_per_s']:,.0f} tokens/s, peak "
                     f"{r['peak_bytes'] / GIB:.2f} GiB"), file=sys.stderr, flush=True)
        results += done
    return seen, results


def mfu(r: dict, peak: float | None) -> float | None:
    """Model FLOPs utilisation of a row against ``peak`` TFLOPS."""
    if peak is None or "error" in r:
        return None
    return r["flops_per_token"] * r["tokens_per_s"] / (peak * 1e12)


def _names(what: str, names: list[str], most: int = 3) -> str:
    """``; what: a, b, c ...`` (nothing when ``names`` is empty)."""
    if not names:
        return ""
    return f"; {what}: {', '.join(names[:most])}" + (" ..." if len(names) > most else "")


def table(results: list[dict], peak: float | None) -> list[str]:
    """The Markdown table of the run."""
    out = []
    for r in results:
        label = Row.of(r).label()
        if "error" in r:
            out.append([r["kind"], label, "", "", "", "", "", r["error"]])
            continue
        u = mfu(r, peak)
        out.append([r["kind"], label, f"{r['tokens_per_s']:,.0f}",
                    "n/a" if u is None else f"{u:.1%}", f"{r['peak_bytes'] / GIB:.2f}",
                    f"{r['estimate_bytes'] / GIB:.2f}",
                    f"{len(r['buffers']['kept'])}/{r['weights']}",
                    f"first step {r['first_step_s']} s; loss {r['loss_first']} -> "
                    f"{r['loss_last']}" + _names("moved", r["buffers"]["moved"])
                    + _names("copied at every read", r["buffers"]["copied_on_read"])])
    return markdown.table(["kind", "setting", "tokens/s", "MFU", "peak GiB", "estimate GiB",
                           "weights updated in place", "notes"], out)


def nvidia_smi() -> dict:
    """Name, driver and memory of the first GPU as ``nvidia-smi`` reports them ({} without it)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        line = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=20).stdout.strip().splitlines()[0]
        name, driver, total = (x.strip() for x in line.split(","))
        return {"name": name, "driver": driver, "memory": total}
    return {}


def figures(results: list[dict], device: str, peak: float | None) -> list[dict]:
    """``bench.report`` figures: tokens/s with XLA on beside off, and each peak beside its
    estimate."""
    by = {(r["kind"], r["size"], r["precision"], r["xla"]): r for r in results if "error" not in r}
    out = []
    for (kind, size, prec, xla), r in by.items():
        if kind == "speed" and xla == "on":
            row = {"figure": f"train tokens/s, {Row.of(r).label()}"
                             + (f", MFU {mfu(r, peak):.1%}" if peak else ""),
                   "value": r["tokens_per_s"], "unit": "tokens/s", "device": device}
            off = by.get(("speed", size, prec, "off"))
            if off:
                row.update(peer="the same with XLA off", peer_value=off["tokens_per_s"],
                           ratio=round(r["tokens_per_s"] / off["tokens_per_s"], 3))
            out.append(row)
        elif kind == "memory":
            out.append({"figure": f"training memory peak, {Row.of(r).label()} ({r['what']})",
                        "value": round(r["peak_bytes"] / GIB, 2), "unit": "GiB",
                        "device": device,
                        "peer": "the trainer's printed estimate (tftrain.memory)",
                        "peer_value": round(r["estimate_bytes"] / GIB, 2),
                        "ratio": round(r["peak_bytes"] / r["estimate_bytes"], 3)})
    return out


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="on the CPU with a tiny model, without medium's speed rows (a check "
                             "that it runs)")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing (>= 1)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row")
    parser.add_argument("--peak-tflops", type=float,
                        help="your card's dense 16-bit peak, when PEAK_TFLOPS does not list it")
    parser.add_argument("--out", type=Path,
                        help=f"folder for the result file (default: {RESULTS}; --smoke: a "
                             "temporary folder)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.warmup < 1 or args.steps < 1:
        raise UserError("--warmup and --steps must be at least 1")
    if args.worker:
        worker(args.smoke, args.warmup, args.steps)
        return 0
    smi = nvidia_smi()
    if not args.smoke and not smi:
        raise UserError("no NVIDIA GPU here (nvidia-smi found none); `make bench-gpu "
                        "ARGS=--smoke` runs its rows on the CPU with a tiny model")
    run, start = Run(), time.time()
    todo = rows(args.smoke)
    print(f"bench.gpu: {len(todo)} rows" + (" (smoke: CPU, tiny model)" if args.smoke else
                                              f" on {smi['name']}"), file=sys.stderr, flush=True)
    env, results = run_rows(todo, args.smoke, args)
    peak = args.peak_tflops or peak_tflops(env.get("device", ""))
    device = smi.get("name") or env.get("device", "CPU")
    lines = table(results, peak)
    head = (f"`make bench-gpu`{' --smoke (CPU, tiny model: figures mean nothing)' if args.smoke else ''}"
            f" on {device}, driver {smi.get('driver', 'n/a')}, {smi.get('memory', 'n/a')}; "
            f"TensorFlow {env.get('tensorflow')} (CUDA {env.get('cuda_build') or 'n/a'}, cuDNN "
            f"{env.get('cudnn_build') or 'n/a'}), tf-keras {env.get('tf_keras')}, transformers "
            f"{env.get('transformers')}, Python {env.get('python')}; compute capability "
            f"{env.get('compute_capability') or 'n/a'}; MFU against "
            + (f"{peak:g} TFLOPS" if peak else "no known peak (--peak-tflops)")
            + f"; {time.time() - start:.0f} s in all.")
    section = "\n".join([f"### GPU check ({device})", "", head, "", *lines])
    out = args.out or (Path(tempfile.mkdtemp(prefix="bench-gpu-")) if args.smoke else RESULTS)
    path = run.write(out / ("gpu-" + ("cpu-smoke" if args.smoke else
                                      "".join(c if c.isalnum() else "-" for c in device).lower())
                            + ".json"),
                     f"gpu ({device})", figures(results, device, peak),
                     environment={**env, "nvidia_smi": smi, "peak_tflops": peak},
                     rows=results, section=section)
    print(section)
    print(f"\nwrote {path}" + ("" if args.smoke else
                             "; please send this table (or the file) to the project"))
    failed = [r for r in results if "error" in r]
    return 1 if args.smoke and failed else 0


if __name__ == "__main__":
    sys.exit(main())
