"""Training throughput: the trainer's TF step against transformers 5 PyTorch, same model and batch.

``make bench-train`` (``python -m bench.train``) times one training step (forward, backward,
global-norm clipping, AdamW with decoupled weight decay; mean token cross-entropy from float32
logits) of a 4-layer, 256-wide, 4-head GPT-2 with an 8000-token vocabulary on batches of 8 x 128
tokens, in a fresh process per variant:

- ``tf-fp32``: the trainer's own step (``tftrain.step.make_train_step``), fp32;
- ``tf-fp32-xla``: the same step with the trainer's XLA (on one device: forward, backward,
  clipping and the AdamW update compiled as one program);
- ``tf-bf16-xla``: mixed_bfloat16 + the trainer's XLA;
- ``tf-fp16-xla``: mixed_float16 with dynamic loss scaling + the trainer's XLA (run by default
  only on a machine with a GPU: a CPU emulates float16);
- ``torch-fp32`` (the peer): transformers 5 ``GPT2LMHeadModel``, fp32, eager, ``torch.optim.AdamW``,
  in the PyTorch venv ``.venv-pt`` (torch's CPU build: on a GPU machine the TF rows run on the
  GPU and the peer on the CPU, so those ratios are not like for like; every row names its device).

Every variant uses all cores for intra-op work and the same batches and starting loss. The
variants run in lockstep (each takes ``CHUNK`` steps in turn) so that load from other processes on a
shared machine falls on all of them alike, and the whole is repeated in ``--rounds`` (3) rounds
with fresh processes. The figure is the median step time after warm-up, as tokens/s (all rounds'
steps); the ratio is the median over rounds of each round's ratio, best TF variant over the
PyTorch peer; the ratio of the fastest tenth of steps (p10) is reported beside it, as the view of
a quiet machine. Results go to ``bench/results/train.json`` (machine, load average and date
included).

What moved the TF number on a 2-core AMD EPYC (AVX2, no native bf16): feeding the step from a
persistent tf.data iterator, as the trainer does (a new iterator per call retraces every step:
4-15 s steps); XLA on the gradient computation: +20-25% on a quiet machine; compiling the whole
step including clipping and AdamW (now the trainer's XLA on one device): another 0-13% there
(0.92-0.96 of PyTorch), no gain under load; running the tied LM head as one 2-D matmul over
all tokens (``tftrain.model.token_loss``) instead of transformers' broadcast batched matmul: the
head's forward + backward 168 -> 105 ms, the step ~10% faster (0.92-1.05 of PyTorch over 7 runs,
median 0.99: single runs spread widely, hence the rounds);
bf16 is emulated on this CPU and gains nothing;
``XLA_FLAGS=--xla_cpu_use_thunk_runtime=false`` gave nothing, nor did (2026-11-23, 60-step runs of
tf-fp32-xla against torch-fp32, ratio 0.92-0.96 with or without them) ``--xla_cpu_use_onednn``,
``--xla_cpu_use_xnnpack``, ``--xla_cpu_experimental_onednn_custom_call``,
``--xla_cpu_enable_fast_math`` or ``--xla_cpu_experimental_xnn_graph_fusion_mode=..._GREEDY``;
nor, after the head change, ``--xla_cpu_experimental_{onednn,ynn}_fusion_type=LIBRARY_FUSION_TYPE_
INDIVIDUAL_DOT`` / ``..._DOT`` (0.97-1.01 against 0.92-1.05 without, interleaved runs: within
the run-to-run spread). A profile of the XLA step: ~80% of thread time in matmuls. Under load
from other processes PyTorch's OpenMP threads degrade far more than TF's, so medians favour TF
there while the p10 steps favour PyTorch (0.80-0.95 in our runs).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import tftrain  # noqa: F401 (sets TensorFlow's environment: tftrain.tfsetup)
from bench import harness

ROOT = Path(__file__).resolve().parent.parent
PT_PYTHON = ROOT / ".venv-pt" / "bin" / "python"
RESULT = ROOT / "bench" / "results" / "train.json"
MODEL = dict(n_layer=4, n_embd=256, n_head=4, vocab_size=8000, n_positions=128)
BATCH, BLOCK = 8, 128
TF_VARIANTS = {"tf-fp32": ("fp32", False), "tf-fp32-xla": ("fp32", True),
               "tf-bf16-xla": ("bf16", True), "tf-fp16-xla": ("fp16", True)}
GPU_ONLY = ("tf-fp16-xla",)  # float16 is emulated on a CPU: a default only where a GPU runs it
PROTOCOL = "@@bench "
CHUNK = 5
# hyper-parameters shared by both sides (the trainer's defaults)
LR, BETAS, EPS, WEIGHT_DECAY, CLIP = 3e-4, (0.9, 0.95), 1e-8, 0.1, 1.0


def batches(vocab: int = MODEL["vocab_size"], batch: int = BATCH, block: int = BLOCK, n: int = 4,
            seed: int = 0):
    """``n`` fixed (inputs, labels) int32 batches of random token ids, the same on both sides."""
    import numpy as np

    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, size=(n, batch, block + 1), dtype=np.int32)
    return [(t[:, :-1], t[:, 1:]) for t in tokens]


def _measure(step) -> tuple[float, float]:
    """Seconds and loss of one step (which takes its own next batch)."""
    start = time.perf_counter()
    loss = step()
    return time.perf_counter() - start, loss


def random_model(model: dict):
    """A random GPT-2 of the ``model`` dimensions (dropout off, seed 0), built under the
    precision policy in force."""
    import tf_keras
    from transformers import GPT2Config

    from tftrain import model as tfmodel

    tf_keras.utils.set_random_seed(0)
    return tfmodel.build_model(GPT2Config(**model, resid_pdrop=0.0, embd_pdrop=0.0,
                                          attn_pdrop=0.0, use_cache=False))


def trainer_step(model: dict, batch: int, block: int, prec: str, jit: bool,
                 recompute: bool = False, net=None, data=None, **train_updates):
    """The trainer's own step (``tftrain.step.make_train_step``) on a random GPT-2 ``model``.

    Returns ``(step() -> loss, info)``; the step pulls its batch (fixed random ids, or ``data``:
    a ``tf.data.Dataset`` of ``(inputs, labels)`` batches) from a tf.data iterator, as in the
    trainer; ``net``: a model already built (default: built here, seed 0); ``jit``: the
    trainer's XLA (on one device, the whole step: forward, backward, clipping and the optimiser
    update in one program). ``train_updates`` override the ``[train]`` defaults; the schedule
    spans ``max_steps`` (10,000 when 0).
    """
    import numpy as np
    import tensorflow as tf

    from common.config import SCHEMA
    from tftrain import model as tfmodel
    from tftrain import optim, precision
    from tftrain.step import make_train_step

    precision.apply(prec)
    train = {k: f.default for k, f in SCHEMA["train"].items()}
    train.update(lr=LR, min_lr=LR, warmup_steps=0, beta1=BETAS[0], beta2=BETAS[1], eps=EPS,
                 weight_decay=WEIGHT_DECAY, clip_norm=CLIP, optimizer="adamw", batch_size=batch,
                 accumulate=1, recompute=recompute)
    train.update(train_updates)
    if net is None:
        net = random_model(model)
    if recompute:
        tfmodel.enable_recompute(net)
    variables = net.trainable_variables
    opt = optim.build_optimizer(train, optim.schedule(train, train["max_steps"] or 10_000), variables,
                                loss_scale=prec == "fp16")
    info = {"framework": f"tensorflow {tf.__version__}", "precision": prec, "xla": jit,
            "optimizer": train["optimizer"], "recompute": recompute,
            "params": tfmodel.parameter_count(net), "device": precision.resolve(prec, "off")[2]}
    if data is None:
        xs, ys = zip(*batches(model["vocab_size"], batch, block), strict=True)
        data = tf.data.Dataset.from_tensor_slices((np.stack(xs), np.stack(ys))).repeat()
    train_step = make_train_step(net, opt, tf.distribute.get_strategy(),
                                 tf.Variable(0, dtype=tf.int64), batch_size=batch,
                                 accumulate=train["accumulate"], block=block,
                                 clip_norm=train["clip_norm"], jit=jit)
    iterator = iter(data)
    return (lambda: float(train_step(iterator)[0])), info


def tf_step(variant: str, inter_op: int):
    """``trainer_step`` for one of ``TF_VARIANTS`` on the benchmark model, all cores intra-op."""
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already set when TF runs (a second variant)
        tf.config.threading.set_intra_op_parallelism_threads(os.cpu_count() or 1)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    prec, jit = TF_VARIANTS[variant]
    step, info = trainer_step(MODEL, BATCH, BLOCK, prec, jit)
    info["threads"] = {"intra_op": os.cpu_count(), "inter_op": inter_op}
    return step, info


def torch_step():
    """transformers 5 ``GPT2LMHeadModel`` + ``torch.optim.AdamW`` (no decay on biases/LayerNorm)."""
    import torch
    import transformers
    from torch.nn import functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    config = GPT2Config(**MODEL, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False)
    model = GPT2LMHeadModel(config).train()
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=BETAS, eps=EPS)

    data = itertools.cycle([(torch.from_numpy(x).long(), torch.from_numpy(y))
                            for x, y in batches()])

    def step():
        x, y = next(data)
        logits = model(input_ids=x, use_cache=False).logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1).long())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        return float(loss)

    info = {"framework": f"torch {torch.__version__} + transformers {transformers.__version__}",
            "precision": "fp32", "xla": "off", "device": "CPU",  # the peer's venv has torch's CPU build
            "attention": model.config._attn_implementation,
            "threads": {"intra_op": torch.get_num_threads(),
                        "inter_op": torch.get_num_interop_threads()},
            "params": sum(p.numel() for p in model.parameters())}
    return step, info


def worker(variant: str, warmup: int, inter_op: int) -> None:
    """Build, warm up, say ready; then run ``N`` steps per ``run N`` line read from stdin."""
    if variant.startswith("torch"):
        step, info = torch_step()
    else:
        step, info = tf_step(variant, inter_op)
    warm = [_measure(step) for _ in range(warmup)]
    info.update(first_step_s=round(warm[0][0], 2), loss_first=round(warm[0][1], 4))
    print(PROTOCOL + json.dumps(info), flush=True)
    for line in sys.stdin:
        runs = [_measure(step) for _ in range(int(line.split()[1]))]
        print(PROTOCOL + json.dumps(runs), flush=True)


class Worker:
    """One variant's process, driven in lockstep with the others."""

    def __init__(self, variant: str, args, log: Path):
        python = PT_PYTHON if variant.startswith("torch") else sys.executable
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.variant = variant
        self.log_path = log
        self.log = open(log, "w")  # noqa: SIM115 (closed in close())
        self.proc = subprocess.Popen(
            [str(python), "-m", "bench.train", "--worker", variant, "--warmup", str(args.warmup),
             "--inter-op", str(args.inter_op)],
            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True)
        self.times: list[float] = []
        self.losses: list[float] = []

    def read(self):
        for line in self.proc.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL):])
        self.log.flush()
        tail = "\n".join(self.log_path.read_text().strip().splitlines()[-5:])
        raise SystemExit(f"bench.train: variant {self.variant} failed:\n{tail}")

    def run(self, n: int) -> None:
        self.proc.stdin.write(f"run {n}\n")
        self.proc.stdin.flush()
        for seconds, loss in self.read():
            self.times.append(seconds)
            self.losses.append(loss)

    def close(self) -> None:
        """End the worker; its figures are read already, so a slow teardown is killed, not waited on."""
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def summarise(info: dict, times: list[float], losses: list[float], warmup: int) -> dict:
    ordered = sorted(times)
    median = statistics.median(times)
    return {**info, "median_step_s": round(median, 5),
            "p10_step_s": round(ordered[len(times) // 10], 5),
            "p90_step_s": round(ordered[(9 * len(times)) // 10], 5),
            "tokens_per_s": round(BATCH * BLOCK / median, 1), "loss_last": round(losses[-1], 4),
            "steps": len(times), "warmup": warmup, "times": times, "losses": losses}


def _lockstep(workers: list[Worker], infos: dict, args) -> dict:
    """Round-robin ``CHUNK`` steps per variant, so background load hits every variant alike."""
    for done in range(0, args.steps, CHUNK):
        for w in workers:
            w.run(min(CHUNK, args.steps - done))
        print(f"  {min(done + CHUNK, args.steps)}/{args.steps} steps", file=sys.stderr, flush=True)
    for w in workers:
        w.close()
    return {w.variant: summarise(infos[w.variant], w.times, w.losses, args.warmup)
            for w in workers}


def _round(variants: list[str], args, n: int) -> dict:
    """One round: a fresh process per variant, built and warmed up one at a time, then lockstep."""
    with tempfile.TemporaryDirectory() as logs:
        workers, infos = [], {}
        for v in variants:
            workers.append(Worker(v, args, Path(logs) / f"{v}.log"))
            infos[v] = workers[-1].read()
            print(f"  round {n}: {v} ready (first step {infos[v]['first_step_s']} s)",
                  file=sys.stderr, flush=True)
        return _lockstep(workers, infos, args)


def _ratio(rounds: list[dict], name: str, peer: str, key: str = "median_step_s") -> float:
    """Median over rounds of the per-round step-time ratio peer / ``name`` (= tokens/s ratio)."""
    return round(statistics.median(r[peer][key] / r[name][key] for r in rounds), 3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30, help="measured steps (after warm-up)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds, each with fresh processes; figures: medians over rounds")
    parser.add_argument("--inter-op", type=int, default=1, help="TF inter-op threads")
    parser.add_argument("--variants", nargs="+", choices=[*TF_VARIANTS, "torch-fp32"],
                        help="default: every TF variant (those of GPU_ONLY where a GPU is) and "
                             "torch-fp32")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        worker(args.worker, args.warmup, args.inter_op)
        return 0

    if not PT_PYTHON.exists():
        raise SystemExit(f"bench.train: {PT_PYTHON} missing; run `make bench-train` (builds it)")
    benchmark = harness.Run()
    host = benchmark.machine
    variants = args.variants or [*(v for v in TF_VARIANTS if host["gpu"] or v not in GPU_ONLY),
                                 "torch-fp32"]
    print(f"bench.train: {args.rounds} rounds of {len(variants)} variants in lockstep, "
          f"{args.warmup} warm-up + {args.steps} steps each", file=sys.stderr)
    rounds = [_round(variants, args, n + 1) for n in range(args.rounds)]
    results = {v: summarise(rounds[0][v], [t for r in rounds for t in r[v]["times"]],
                            [x for r in rounds for x in r[v]["losses"]], args.warmup)
               for v in variants}
    tokens = BATCH * BLOCK
    peer = "torch-fp32" if "torch-fp32" in results else None
    figures = []
    for name, r in results.items():
        if name == peer:
            continue
        row = {"figure": f"train tokens/s, {name}", "value": r["tokens_per_s"],
               "unit": "tokens/s", "device": r["device"]}
        if peer:
            row.update(peer=f"train tokens/s, {peer} ({results[peer]['device']})",
                       peer_value=results[peer]["tokens_per_s"],
                       ratio=_ratio(rounds, name, peer),
                       runs=[_ratio([x], name, peer) for x in rounds])
        figures.append(row)
    tf_names = [v for v in results if v.startswith("tf")]
    if peer:
        tf_best = max(tf_names, key=lambda v: _ratio(rounds, v, peer))
        tf_best_p10 = max(tf_names, key=lambda v: _ratio(rounds, v, peer, "p10_step_s"))
        # the quiet-machine view: the fastest tenth of steps, least touched by other load
        figures.append({"figure": f"train tokens/s at the p10 step, {tf_best_p10}",
                        "value": round(tokens / results[tf_best_p10]["p10_step_s"], 1),
                        "unit": "tokens/s", "device": results[tf_best_p10]["device"],
                        "peer": f"train tokens/s at the p10 step, {peer} ({results[peer]['device']})",
                        "peer_value": round(tokens / results[peer]["p10_step_s"], 1),
                        "ratio": _ratio(rounds, tf_best_p10, peer, "p10_step_s"),
                        "runs": [_ratio([x], tf_best_p10, peer, "p10_step_s") for x in rounds]})
    else:
        tf_best = max(tf_names, key=lambda v: results[v]["tokens_per_s"])
    for r in results.values():
        del r["times"], r["losses"]
    host["load_avg_1min_at_end"] = harness.load()
    report = {
        "setup": {"model": MODEL, "batch": BATCH, "block": BLOCK, "dropout": 0.0,
                  "rounds": args.rounds,
                  "step": "forward + backward + clip(1.0) + AdamW(wd 0.1, no decay on 1-D)",
                  "tf_step": "tftrain.step.make_train_step (xla: the trainer's XLA, the "
                             "whole step incl. clipping and AdamW in one program)"},
        "headline": {"figure": f"TF best ({tf_best}) / PyTorch eager fp32, median over "
                               f"{args.rounds} rounds",
                     "ratio": _ratio(rounds, tf_best, peer) if peer else None,
                     "ratio_p10_step": figures[-1]["ratio"] if peer else None,
                     "target": 1.0},
        "variants": results,
    }
    benchmark.write(RESULT, "train", figures, **report)
    width = max(len(v) for v in results)
    print(f"{'variant':<{width}}  tokens/s  median step  first step  loss first->last")
    for name, r in results.items():
        print(f"{name:<{width}}  {r['tokens_per_s']:8.0f}  {r['median_step_s']:9.4f} s  "
              f"{r['first_step_s']:8.1f} s  {r['loss_first']:.3f} -> {r['loss_last']:.3f}")
    if peer:
        per_round = ", ".join(f"{_ratio([x], tf_best, peer):.3f}" for x in rounds)
        print(f"ratio {tf_best} / {peer}: {report['headline']['ratio']:.3f} (median of rounds: "
              f"{per_round}; target >= 1.0); at the p10 step: {figures[-1]['ratio']:.3f}")
    print(f"wrote {RESULT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
