"""``make train SIZE=...``: train a GPT-2 on the token shards; re-running resumes by itself.

One optimiser step = one global batch = ``batch_size`` blocks x ``accumulate`` micro-steps x
replicas. The step is a ``tf.function`` that pulls one batch from the (checkpointable) iterator
and runs ``replica_step`` through the distribution strategy: the micro-steps' gradients are summed
in a ``tf.range`` loop (XLA-compiled on GPUs), all-reduced across replicas, clipped by global norm
and applied. Everything the loss depends on (weights, optimiser moments and iteration, dropout
RNG, data iterator, step) lives in the checkpoint, so with ``deterministic = true`` a killed and
resumed run ends with the same weights as an uninterrupted one.

Writes ``artifacts/runs/<run>/``: ``checkpoints/``, ``tb/``, ``metrics.jsonl``, ``loss.png``,
``run.json`` and ``final/`` (a Hugging Face folder with the tokenizer and a model card).

Distribution (``train.strategy``, see ``make_strategy``): ``auto`` picks TPUStrategy when
``train.tpu`` is set, MultiWorkerMirroredStrategy when ``TF_CONFIG`` is set, MirroredStrategy on
several local GPUs, else one device; ``one``/``mirrored``/``multiworker``/``tpu`` force a choice.
``batch_size`` is per replica, so the global batch grows with the replicas; ``lr`` is used as
configured for that global batch (no automatic scaling): when adding replicas, scale ``lr``
yourself (linearly or by the square root of the batch growth, re-checking warmup) or lower
``batch_size``/``accumulate`` to keep the global batch. Multi-worker: start the same command on
every machine with its own ``TF_CONFIG``; each worker reads its share of the token shards (FILE
sharding with at least as many shard files as workers, DATA otherwise) and all run the same number
of steps. The chief (task ``chief``, else ``worker`` 0) alone writes the run folder; the others
write to a temporary folder deleted at the end. All resume from the chief's checkpoints, so the
run folder must be on storage every worker reads (the same path).

Security: TensorFlow's worker gRPC servers listen on all interfaces, unauthenticated and
unencrypted; anyone who reaches a port can run graphs on that worker. Keep workers on a private
network (a VPC/VLAN, or bind the cluster to private addresses and firewall the ports to the
workers' addresses only), never on the open internet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import config as cfglib  # noqa: E402
from common.atomic import atomic_dir, atomic_write, remove_stale_temps  # noqa: E402
from common.errors import UserError, cli_main  # noqa: E402
from tftrain import checkpoint, data, model  # noqa: E402

OOM_HINT = ("out of memory: lower train.batch_size (raise train.accumulate to keep the batch), "
            "set train.recompute = true (with dropout = 0), train.optimizer = \"adafactor\", "
            "train.precision = \"bf16\" or a smaller train.block_size")


def load_tokenizer(folder: Path):
    """``AutoTokenizer`` from the tokenizer folder, with a one-line error when it is missing."""
    from transformers import AutoTokenizer

    if not (folder / "tokenizer.json").is_file():
        raise UserError(f"{folder}: tokenizer not found; run `make tokenizer` first")
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}: cannot load the tokenizer ({exc})") from None


def tokenizer_sha256(folder: Path) -> str:
    return hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest()


class Plan:
    """Everything decided before TensorFlow starts: inputs checked, sizes and paths fixed."""

    def __init__(self, cfg, run_name: str | None, init: str | None):
        t = dict(cfg.train)
        self.cfg, self.train = cfg, t
        self.init = Path(init).resolve() if init else (t["init"] or None)
        self.run = cfglib.artifacts_dir(cfg, "runs", run_name or t["run_name"] or t["size"])
        self.tok_dir = cfglib.artifacts_dir(cfg, "tokenizer")
        self.tokens = cfglib.data_dir(cfg, "tokens")
        self.tokenizer = load_tokenizer(self.tok_dir)
        self.meta = data.load_meta(self.tokens, len(self.tokenizer))
        self.tok_sha = tokenizer_sha256(self.tok_dir)
        if self.meta.get("tokenizer_sha256") not in (None, self.tok_sha):
            raise UserError(f"{self.tokens}/meta.json: shards were made with another tokenizer "
                            f"than {self.tok_dir}; re-run `make tokenizer`")
        self.config, self.block = model.model_config(t, self.tokenizer, self.init)
        if t["recompute"] and self.config.resid_pdrop > 0:
            raise UserError("train.recompute = true needs train.dropout = 0 (a recomputed block "
                            "would draw new dropout masks)")
        if t["min_lr"] > t["lr"]:
            raise UserError(f"train.min_lr={t['min_lr']} is above train.lr={t['lr']}")
        self.blocks = {s: data.count_blocks(self.meta, s, self.block) for s in self.meta["splits"]}
        for split in ("valid", "test"):
            if not self.blocks[split]:
                raise UserError(f"{self.tokens}/{split}: fewer than {2 * self.block} tokens, "
                                f"not one block of {self.block}")
        self.dtype = self.meta["dtype"]

    def schedule(self, replicas: int) -> None:
        t = self.train
        self.replicas = replicas
        self.global_batch = t["batch_size"] * t["accumulate"] * replicas
        self.steps_per_epoch = self.blocks["train"] // self.global_batch
        if not self.steps_per_epoch:
            raise UserError(f"{self.tokens}/train: {self.blocks['train']} blocks of "
                            f"{self.block}, fewer than one global batch of {self.global_batch}")
        self.total_steps = t["max_steps"] or t["epochs"] * self.steps_per_epoch
        self.epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.tokens_per_step = self.global_batch * self.block

    def identity(self, replicas: int | None) -> dict:
        """What ``run.json`` records (``replicas`` None: not known yet, not checked)."""
        arch = ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions")
        data_keys = dict(self.train, block_size=self.block, replicas=replicas)
        return {"vocab_size": len(self.tokenizer), "tokenizer_sha256": self.tok_sha,
                "model": {k: getattr(self.config, k) for k in arch},
                "data": {k: data_keys[k] for k in checkpoint.FROZEN if data_keys[k] is not None}}


def check_strategy(train: dict) -> None:
    """Fail fast, before TensorFlow starts, on a TPU strategy without a TPU or a bad TF_CONFIG."""
    if train["strategy"] == "tpu" and not train["tpu"]:
        raise UserError('train.strategy="tpu" needs train.tpu (a TPU name, a grpc:// address or '
                        '"local")')
    if not os.environ.get("TF_CONFIG"):
        return
    try:
        spec = json.loads(os.environ["TF_CONFIG"])
        spec["cluster"].items()
        spec["task"]["type"], int(spec["task"]["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UserError(f"TF_CONFIG: malformed ({type(exc).__name__}: {exc}); expected "
                        '{"cluster": {"worker": ["host:port", ...]}, '
                        '"task": {"type": "worker", "index": 0}}') from None


def make_strategy(train: dict):
    """The ``tf.distribute`` strategy ``train.strategy`` names (after ``check_strategy``; before
    any other TF op).

    ``auto``: TPUStrategy when ``train.tpu`` is set, MultiWorkerMirroredStrategy when
    ``TF_CONFIG`` is set, MirroredStrategy with more than one local GPU, else the default
    one-device strategy. Every replica takes ``batch_size`` x ``accumulate`` blocks a step (global
    batch = that x replicas) and the learning rate stays as configured for the global batch.
    TPU: ``train.tpu`` is a TPU name, a ``grpc://`` address or ``local`` (TPU VM); minimal and
    untested here (no TPU), with the token shards on storage the TPU host reads.
    """
    import tensorflow as tf

    choice = train["strategy"]
    if choice == "auto":
        choice = ("tpu" if train["tpu"] else "multiworker" if os.environ.get("TF_CONFIG")
                  else "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "one")
    if choice == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=train["tpu"])
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if choice == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if choice == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    """True on the worker that writes the run folder: ``chief``, else ``worker`` 0, else alone."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type or resolver.task_type == "chief":
        return True
    return (resolver.task_type == "worker" and resolver.task_id == 0
            and "chief" not in resolver.cluster_spec().as_dict())


class Trainer:
    """The model, optimiser, data iterator, checkpoint and the compiled steps of one run."""

    def __init__(self, plan: Plan, strategy, precision: str, jit: bool, resuming: bool,
                 out: Path):
        import tensorflow as tf

        from tftrain import evaluate, optim

        t = plan.train
        self.plan, self.strategy, self.precision = plan, strategy, precision
        with strategy.scope():
            self.model = model.build_model(plan.config, None if resuming else plan.init)
            if t["recompute"]:
                model.enable_recompute(self.model)
            self.variables = self.model.trainable_variables
            self.schedule = optim.schedule(t, plan.total_steps)
            self.opt = optim.build_optimizer(t, self.schedule, self.variables,
                                             loss_scale=precision == "fp16")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # The default (one-device) strategy: the iterator itself is checkpointed (position,
        # buffer, RNG). Any other: TF cannot checkpoint a distributed iterator, so a resumed run
        # skips the steps already read (same seed, same order; it re-reads the data so far).
        single = strategy is tf.distribute.get_strategy()
        skip = checkpoint.saved_step(plan.run) if resuming and not single else 0
        micro = t["batch_size"] * t["accumulate"]
        dataset = strategy.distribute_datasets_from_function(
            lambda ctx: data.train_dataset(data.files(plan.tokens, plan.meta, "train"),
                                           plan.dtype, plan.block, micro, t["buffer_size"],
                                           t["seed"], ctx, skip_steps=skip))
        self.iterator = iter(dataset)
        objects = dict(model=self.model, optimizer=self.opt, step=self.step,
                       rng=model.dropout_generators(self.model))
        if single:
            objects["data"] = self.iterator
        # ``out``: the run folder on the chief, a throwaway folder on the other workers
        self.ckpt, self.manager = checkpoint.manager(out, t["keep_checkpoints"], **objects)
        self.evaluator = evaluate.Evaluator(self.model, strategy, plan.tokens, plan.meta,
                                            plan.block, t["batch_size"])
        self._train_step = self._build_step(jit)
        self._twin = None

    def _build_step(self, jit: bool):
        import tensorflow as tf

        from tftrain import optim

        t, plan, opt, variables = self.plan.train, self.plan, self.opt, self.variables
        accumulate, batch, block = t["accumulate"], t["batch_size"], plan.block
        global_tokens = float(plan.tokens_per_step)
        scaled = self.precision == "fp16"

        def grads_of(x, y):
            with tf.GradientTape() as tape:
                total, _ = model.token_loss(self.model, x, y, training=True)
                loss = total / global_tokens
                if scaled:
                    loss = opt.get_scaled_loss(loss)
            grads = tape.gradient(loss, variables)
            return total, [tf.convert_to_tensor(g) for g in grads]

        def micro_grads(x, y):
            if accumulate == 1:
                return grads_of(x, y)
            xs = tf.reshape(x, [accumulate, batch, block])
            ys = tf.reshape(y, [accumulate, batch, block])
            loss_sum, grads = grads_of(xs[0], ys[0])
            for i in tf.range(1, accumulate):
                total, more = grads_of(xs[i], ys[i])
                grads = [a + b for a, b in zip(grads, more)]  # noqa: B905 (AutoGraph zip: no strict=)
                loss_sum += total
            return loss_sum, grads

        # One device: XLA compiles the whole step, so clipping and the optimiser update fuse
        # with the backward pass. Across replicas only the gradients are compiled (the
        # all-reduce runs outside XLA).
        single = self.strategy is tf.distribute.get_strategy()
        if jit and not single:
            micro_grads = tf.function(micro_grads, jit_compile=True)

        def replica_step(x, y):
            loss_sum, grads = micro_grads(x, y)
            if not single:
                grads = tf.distribute.get_replica_context().all_reduce("sum", grads)
            if scaled:
                grads = opt.get_unscaled_gradients(grads)
            grads, norm = optim.clip(grads, t["clip_norm"])
            opt.apply_gradients(zip(grads, variables, strict=True), skip_gradients_aggregation=True)
            return loss_sum, norm

        if jit and single:
            replica_step = tf.function(replica_step, jit_compile=True)

        @tf.function
        def train_step(iterator):
            x, y = next(iterator)
            loss_sum, norm = self.strategy.run(replica_step, args=(x, y))
            loss_sum = self.strategy.reduce("sum", loss_sum, axis=None)
            self.step.assign_add(1)
            return loss_sum / global_tokens, self.strategy.experimental_local_results(norm)[0]

        return train_step

    def sampler(self):
        """The model to sample from: itself in fp32, else a float32 twin on the CPU.

        transformers' TF sampling (top-k/top-p warpers) fails on 16-bit logits, so under a mixed
        policy the current weights are copied into a float32 model kept in host memory.
        """
        import tensorflow as tf

        from tftrain import precision

        if self.precision == "fp32":
            return self.model
        if self._twin is None:
            with tf.device("/CPU:0"):
                precision.apply("fp32")
                self._twin = model.build_model(self.plan.config)
                precision.apply(self.precision)
        self._twin.set_weights(self.model.get_weights())
        return self._twin

    def learning_rate(self) -> float:
        """The rate the last optimiser step used."""
        return float(self.schedule(max(int(self.opt.iterations.numpy()) - 1, 0)))

    def restore(self) -> int:
        """Restore the run's (the chief's) latest checkpoint; returns its step."""
        import tensorflow as tf

        latest = checkpoint.latest(self.plan.run)
        try:
            self.ckpt.restore(latest).assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise UserError(f"{latest}: cannot resume ({first}); use another --run") from None
        return int(self.step.numpy())

    def save(self) -> None:
        self.manager.save(checkpoint_number=int(self.step.numpy()))


class Log:
    """metrics.jsonl, TensorBoard scalars and the Keras progress bar."""

    def __init__(self, run: Path, total: int, start: int):
        import tensorflow as tf
        import tf_keras

        self.path = run / "metrics.jsonl"
        self._truncate(start)
        self.writer = tf.summary.create_file_writer(str(run / "tb"))
        self.bar = tf_keras.utils.Progbar(total, stateful_metrics=["loss", "lr", "tok/s",
                                                                   "val_loss"])
        self.bar.update(start)

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


def _say(msg: str) -> None:
    print(msg, flush=True)


def _validate(trainer: Trainer, log: Log, step: int, epoch: int) -> float:
    loss, tokens = trainer.evaluator.run("valid")
    ppl = math.exp(min(loss, 50.0))
    log.record(step, "valid", loss=loss, perplexity=ppl, epoch=epoch, tokens=tokens)
    _say(f"\nstep {step}: validation loss {loss:.4f}, perplexity {ppl:.2f} ({tokens} tokens)")
    return loss


def _samples(trainer: Trainer, log: Log, step: int, epoch: int) -> None:
    from tftrain.generate import generate_samples

    t = trainer.plan.train
    texts = generate_samples(trainer.sampler(), trainer.plan.tokenizer, list(t["prompts"]),
                             t["sample_tokens"], seed=t["seed"])
    log.record(step, "samples", epoch=epoch, texts=texts)
    for text in texts:
        _say(f"  sample: {text!r}")


def _first_step_memory(log: Log, step: int) -> None:
    """Record and print the measured memory peak (call it once the first step has finished)."""
    from tftrain import memory

    peak, what = memory.peak_bytes()
    log.record(step, "memory", peak_gib=round(peak / memory.GIB, 3), what=what)
    _say(f"\nmemory after the first step: {peak / memory.GIB:.2f} GiB ({what}"
         f"{'' if what.startswith('GPU') else ', TensorFlow runtime and data pipeline included'})")


def train_loop(trainer: Trainer, log: Log, start: int) -> dict:
    """Run steps ``start+1 .. total``; returns the last validation loss and throughput."""
    import tensorflow as tf

    plan, t = trainer.plan, trainer.plan.train
    spe, total = plan.steps_per_epoch, plan.total_steps
    step, val_loss, saved = start, None, start
    window_start, window_steps, paused, speeds = time.perf_counter(), 0, 0.0, []
    try:
        while step < total:
            loss, norm = trainer._train_step(trainer.iterator)
            step += 1
            window_steps += 1
            if step == start + 1:
                loss = float(loss)  # waits for the step, so its memory is in the peak
                _first_step_memory(log, step)
            epoch = (step - 1) // spe + 1
            if step % t["log_every"] == 0 or step == total:
                loss, norm = float(loss), float(norm)
                elapsed = time.perf_counter() - window_start - paused
                speed = window_steps * plan.tokens_per_step / elapsed
                speeds.append(speed)
                lr = trainer.learning_rate()
                log.record(step, "train", loss=loss, lr=lr, grad_norm=norm, tokens_per_s=speed,
                           epoch=epoch)
                log.bar.update(step, [("loss", loss), ("lr", lr), ("tok/s", speed)])
                window_start, window_steps, paused = time.perf_counter(), 0, 0.0
            else:
                log.bar.update(step)
            epoch_end = step % spe == 0
            pause_start = time.perf_counter()
            if step % t["eval_every"] == 0 or epoch_end or step == total:
                val_loss = _validate(trainer, log, step, epoch)
            if epoch_end or step == total:
                _samples(trainer, log, step, epoch)
            if step % t["checkpoint_every"] == 0 or epoch_end or step == total:
                trainer.save()
                saved = step
            paused += time.perf_counter() - pause_start
    except tf.errors.ResourceExhaustedError:
        raise UserError(OOM_HINT) from None
    except KeyboardInterrupt:
        if int(trainer.step.numpy()) > saved:
            trainer.save()
        raise
    if val_loss is None:
        val_loss = _validate(trainer, log, step, (step - 1) // spe + 1)
    speeds = sorted(speeds[1:] or speeds)
    return {"val_loss": val_loss, "tokens_per_s": speeds[len(speeds) // 2] if speeds else 0.0}


def _licences(cfg) -> str:
    corpus = cfglib.data_dir(cfg, "corpus")
    attribution = corpus / "ATTRIBUTION.md"
    if attribution.is_file():
        return attribution.read_text(encoding="utf-8").strip()
    docs = corpus / "docs.jsonl"
    if docs.is_file():
        counts: dict[str, int] = {}
        for line in docs.read_text(encoding="utf-8").splitlines():
            if line.strip():
                lic = json.loads(line).get("license") or "unknown"
                counts[lic] = counts.get(lic, 0) + 1
        return "\n".join(f"- {lic}: {n} documents" for lic, n in sorted(counts.items()))
    return "No attribution file was found next to the corpus (`data/corpus/ATTRIBUTION.md`)."


def model_card(plan: Plan, params: int, precision: str, result: dict, step: int) -> str:
    """The README.md of ``final/``: data, configuration, validation perplexity, licences."""
    c, t = plan.config, plan.train
    split_rows = "\n".join(
        f"| {s} | {e['documents']:,} | {e['tokens']:,} | {plan.blocks[s]:,} |"
        for s, e in plan.meta["splits"].items())
    settings = ", ".join(f"{k}={t[k]}" for k in (
        "optimizer", "lr", "min_lr", "warmup_steps", "weight_decay", "batch_size", "accumulate",
        "clip_norm", "buffer_size", "seed"))
    loss = result["val_loss"]
    return f"""---
language: bg
library_name: transformers
pipeline_tag: text-generation
---
# Bulgarian GPT-2 ({t['size']}, {params / 1e6:.1f}M parameters)

A GPT-2 trained from {'`' + str(plan.init) + '`' if plan.init else 'scratch'} on Bulgarian web
text by the bg-gpt2 toolkit (TensorFlow `TFGPT2LMHeadModel`). Load it with
`TFAutoModelForCausalLM.from_pretrained` and `AutoTokenizer.from_pretrained`.

## Model
n_layer={c.n_layer}, n_head={c.n_head}, n_embd={c.n_embd}, n_positions={c.n_positions},
vocab={c.vocab_size} (ByteLevel BPE), block size {plan.block}, dropout {c.resid_pdrop}.

## Training
{step:,} steps of {plan.global_batch} blocks ({plan.tokens_per_step:,} tokens a step),
{precision}; {settings}.

## Data
| split | documents | tokens | blocks |
|---|---|---|---|
{split_rows}

## Evaluation
Validation loss {loss:.4f}, perplexity {math.exp(min(loss, 50.0)):.2f} (the whole valid split).

## Data licences
{_licences(plan.cfg)}

Generated text may repeat or distort its sources; it is not fact-checked.
"""


def export_final(trainer: Trainer, precision: str, result: dict, step: int, out: Path) -> Path:
    """Write ``out/final/`` (weights as safetensors, tokenizer, model card) in one rename."""
    plan = trainer.plan
    params = model.parameter_count(trainer.model)
    with atomic_dir(out / "final") as tmp:
        trainer.model.save_pretrained(str(tmp), safe_serialization=True)
        plan.tokenizer.save_pretrained(str(tmp))
        (tmp / "README.md").write_text(model_card(plan, params, precision, result, step),
                                       encoding="utf-8")
    return out / "final"


def dump_weights(trainer: Trainer, path: Path) -> None:
    """Every weight of this worker's model, by variable name, to a ``.npz`` (debugging)."""
    import numpy as np

    with atomic_write(path, "wb") as fh:
        np.savez(fh, **{v.name: v.numpy() for v in trainer.model.weights})


def _summary(rows: list[tuple[str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="training summary")
    table.add_column("what")
    table.add_column("value", justify="right")
    for what, value in rows:
        table.add_row(what, value)
    Console(file=sys.stdout).print(table)


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tftrain.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cfglib.add_config_args(parser)
    parser.add_argument("--run", help="run name (default: train.run_name or the size)")
    parser.add_argument("--init", help="start from this Hugging Face GPT-2 folder")
    parser.add_argument("--dump-weights", type=Path, metavar="PATH",
                        help="debugging: also write this worker's final weights to PATH (.npz)")
    args = parser.parse_args(argv)
    plan = Plan(cfglib.from_args(args), args.run, args.init)
    t = plan.train
    checkpoint.check_identity(plan.run, plan.identity(None))  # before TF starts: fail fast
    check_strategy(t)

    import tensorflow as tf
    import tf_keras

    from tftrain import precision

    strategy = make_strategy(t)
    plan.schedule(strategy.num_replicas_in_sync)
    resuming = checkpoint.check_identity(plan.run, plan.identity(plan.replicas))
    tf_keras.utils.set_random_seed(t["seed"])
    tf_keras.backend.experimental.enable_tf_random_generator()  # dropout RNG state checkpointed
    if t["deterministic"]:
        tf.config.experimental.enable_op_determinism()
    prec, jit, device = precision.resolve(t["precision"], t["xla"])
    precision.apply(prec)

    chief = is_chief(strategy)
    if chief:
        out = plan.run
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out)
        for name in checkpoint.remove_partial(out):
            _say(f"removed {name}: a checkpoint save that was interrupted")
    else:  # it saves as the chief does (saving may need every worker), into a throwaway folder
        out = Path(tempfile.mkdtemp(prefix=f"{plan.run.name}-worker-"))
    try:
        return _train(plan, strategy, prec, jit, device, resuming, chief, out, args.dump_weights)
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)


def _train(plan: Plan, strategy, prec: str, jit: bool, device: str, resuming: bool, chief: bool,
           out: Path, dump: Path | None) -> int:
    from tftrain import memory, plots

    t = plan.train
    trainer = Trainer(plan, strategy, prec, jit, resuming, out)
    start = trainer.restore() if resuming else 0
    if chief and not resuming:
        checkpoint.write_identity(plan.run, plan.identity(plan.replicas))
        with atomic_write(plan.run / "model_config.json") as fh:
            fh.write(plan.config.to_json_string())
    params = model.parameter_count(trainer.model)
    buf = data.buffer_bytes(t["buffer_size"], plan.block, plan.dtype)
    _say(f"model: {t['size']}{' from ' + str(plan.init) if plan.init else ''}, "
         f"{params:,} parameters; device {device}, precision {prec}, XLA {'on' if jit else 'off'}")
    _say(memory.format_estimate(memory.estimate(
        plan.config, t["batch_size"], plan.block, prec, t["optimizer"], t["recompute"],
        t["accumulate"])))
    _say(f"data: {plan.blocks['train']:,} train blocks of {plan.block}+1 tokens, global batch "
         f"{plan.global_batch} ({t['batch_size']} x {t['accumulate']} accumulated x "
         f"{plan.replicas} replicas), {plan.steps_per_epoch:,} steps an epoch, "
         f"{plan.total_steps:,} steps ({plan.epochs} epochs)")
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec().as_dict() if resolver and resolver.task_type else {}
    workers = len(spec.get("chief", [])) + len(spec.get("worker", []))
    if workers > 1:
        shards = len(plan.meta["splits"]["train"]["shards"])
        _say(f"workers: {workers} ({resolver.task_type} {resolver.task_id}"
             f"{', chief' if chief else ''}); input sharding "
             f"{data.shard_policy(shards, workers)} ({shards} train shard files)")
    _say(f"shuffle buffer: {t['buffer_size']:,} blocks = {buf / 1e6:.2f} MB in memory "
         f"(and in each checkpoint)")
    if buf > t["buffer_budget_mb"] * 1e6:
        _say(f"warning: the shuffle buffer ({buf / 1e6:.2f} MB) is over train.buffer_budget_mb="
             f"{t['buffer_budget_mb']:g}; lower train.buffer_size")
    if resuming:
        _say(f"resuming run {plan.run.name} from {Path(checkpoint.latest(plan.run)).name} "
             f"(step {start}, epoch {start // plan.steps_per_epoch + 1})")
    log = Log(out, plan.total_steps, start)
    began = time.perf_counter()
    result = train_loop(trainer, log, start)
    final = export_final(trainer, prec, result, plan.total_steps, out)
    if dump:
        dump_weights(trainer, dump)
    plots.plot_curves(log.path, out / "loss.png")
    _summary([("run", str(plan.run)), ("parameters", f"{params:,}"),
              ("steps", f"{start} -> {plan.total_steps}"),
              ("tokens seen", f"{plan.total_steps * plan.tokens_per_step:,}"),
              ("validation loss", f"{result['val_loss']:.4f}"),
              ("validation perplexity", f"{math.exp(min(result['val_loss'], 50.0)):.2f}"),
              ("median tokens/s", f"{result['tokens_per_s']:,.0f}"),
              ("precision / XLA", f"{prec} / {'on' if jit else 'off'}"),
              ("wall time", f"{time.perf_counter() - began:.0f} s"),
              ("final model", str(final) if chief else "written by the chief")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
