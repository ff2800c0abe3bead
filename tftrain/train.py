"""``make train SIZE=...``: train a GPT-2 on the token shards; re-running resumes by itself.

Read it top to bottom, in the order it runs: ``main`` (the command: the plan, TensorFlow,
strategy, precision, chief or worker), ``Plan`` (the config checked and sized: a frozen record
the rest reads), ``train`` (one run: set up, loop, final export, summary), ``Trainer`` (model,
optimiser, data, checkpoint and the step, ``tftrain.step.make_train_step``) and ``train_loop``
(the steps, with validation, samples and checkpoints between them).

One optimiser step = one global batch = ``batch_size`` blocks x ``accumulate`` micro-steps x
replicas: the micro-steps' gradients are summed in a ``tf.range`` loop, all-reduced across
replicas, clipped by global norm and applied. Everything the loss depends on (weights, optimiser
moments and iteration, dropout RNG, data iterator, step) lives in the checkpoint, so with
``deterministic = true`` a killed and resumed run ends with the same weights as an uninterrupted
one. Validation every ``eval_every`` steps scores the first ``train.eval_tokens`` tokens of the
valid split (all of it when smaller) and reports loss, perplexity and bits per byte.

Writes ``artifacts/runs/<run>/``: ``checkpoints/``, ``tb/``, ``metrics.jsonl``, ``loss.png``,
``run.json`` and ``final/`` (``tftrain.card``: a Hugging Face folder with the tokenizer and a
model card).

Several devices or machines: ``train.strategy`` (``tftrain.distribute`` explains the global
batch, the learning rate, multi-worker runs and their security).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import config as cfglib
from common.atomic import atomic_write, remove_stale_temps
from common.errors import UserError, cli_main
from tftrain import card, checkpoint, data, distribute, hf_load, logs, model, runs, tfsetup
from tftrain.step import make_train_step

OOM_HINT = ("out of memory: lower train.batch_size (raise train.accumulate to keep the batch), "
            "set train.recompute = true (with dropout = 0), train.optimizer = \"adafactor\", "
            "train.precision = \"bf16\" or a smaller train.block_size")


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
    sys.stdout.reconfigure(line_buffering=True)  # progress lines appear as they are printed
    plan = Plan.check(cfglib.from_args(args), args.run, args.init)
    t = plan.train
    checkpoint.check_identity(plan.run, plan.identity())  # before TF starts: fail fast
    distribute.check_strategy(t)

    tf = tfsetup.import_tensorflow()
    import tf_keras

    from tftrain import precision

    strategy = distribute.make_strategy(t)
    plan = plan.sized(strategy.num_replicas_in_sync)
    resuming = checkpoint.check_identity(plan.run, plan.identity())
    tf_keras.utils.set_random_seed(t.seed)
    tf_keras.backend.experimental.enable_tf_random_generator()  # dropout RNG state checkpointed
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    prec, jit, device = precision.resolve(t.precision, t.xla)
    precision.apply(prec)

    chief = distribute.is_chief(strategy)
    if chief:
        out = plan.run
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(out)
        for name in checkpoint.remove_partial(out):
            print(f"removed {name}: a checkpoint save that was interrupted")
    else:  # it saves as the chief does (saving may need every worker), into a throwaway folder
        out = Path(tempfile.mkdtemp(prefix=f"{plan.run.name}-worker-"))
    try:
        return train(plan, strategy, prec, jit, device, resuming, chief, out, args.dump_weights)
    finally:
        if not chief:
            shutil.rmtree(out, ignore_errors=True)


@dataclass(frozen=True)
class Plan:
    """Everything decided before the first step: inputs checked, sizes and paths fixed.

    ``check`` makes it before TensorFlow starts; ``sized`` adds the batch and step counts once
    the strategy's replica count is known (until then ``replicas`` is None)."""

    train: cfglib.Section  # the [train] table, read as attributes: plan.train.lr
    init: Path | str | None
    run: Path
    tokens: Path
    tokenizer: Any  # a transformers tokenizer
    meta: dict
    tok_sha: str
    config: Any  # transformers.GPT2Config
    block: int
    blocks: dict[str, int]
    bytes_per_token: float  # the train split's average UTF-8 bytes a token
    dtype: str
    replicas: int | None = None
    global_batch: int = 0
    steps_per_epoch: int = 0
    total_steps: int = 0
    epochs: int = 0
    tokens_per_step: int = 0

    @classmethod
    def check(cls, cfg: cfglib.Section, run_name: str | None, init: str | None) -> Plan:
        """The plan of a run, every input checked (no TensorFlow needed)."""
        t = cfg.train
        init_path = hf_load.local_path(init or t.init) if init or t.init else None
        run = runs.run_dir(cfg, run_name)
        tok_dir = cfglib.artifacts_dir(cfg, "tokenizer")
        tokens = cfglib.data_dir(cfg, "tokens")
        tokenizer = runs.load_tokenizer(tok_dir)
        meta = data.load_meta(tokens, len(tokenizer))
        tok_sha = runs.tokenizer_sha256(tok_dir)
        if meta.get("tokenizer_sha256") not in (None, tok_sha):
            raise UserError(f"{tokens}/meta.json: shards were made with another tokenizer "
                            f"than {tok_dir}; re-run `make tokenizer`")
        config, block = model.model_config(t, tokenizer, init_path)
        if t.recompute and config.resid_pdrop > 0:
            raise UserError("train.recompute = true needs train.dropout = 0 (a recomputed block "
                            "would draw new dropout masks)")
        if t.min_lr > t.lr:
            raise UserError(f"train.min_lr={t.min_lr} is above train.lr={t.lr}")
        blocks = {s: data.count_blocks(meta, s, block) for s in meta["splits"]}
        for split in ("valid", "test"):
            if not blocks[split]:
                raise UserError(f"{tokens}/{split}: fewer than {2 * block} tokens, "
                                f"not one block of {block}")
        return cls(train=t, init=init_path, run=run,
                   tokens=tokens, tokenizer=tokenizer, meta=meta,
                   tok_sha=tok_sha, config=config, block=block, blocks=blocks,
                   bytes_per_token=data.bytes_per_token(tokens, meta, "train"),
                   dtype=meta["dtype"])

    def sized(self, replicas: int) -> Plan:
        """This plan with the global batch, steps an epoch, total steps and epochs."""
        t = self.train
        global_batch = t.batch_size * t.accumulate * replicas
        steps_per_epoch = self.blocks["train"] // global_batch
        if not steps_per_epoch:
            raise UserError(f"{self.tokens}/train: {self.blocks['train']} blocks of "
                            f"{self.block}, fewer than one global batch of {global_batch}")
        total_steps = t.max_steps or t.epochs * steps_per_epoch
        return dataclasses.replace(
            self, replicas=replicas, global_batch=global_batch, steps_per_epoch=steps_per_epoch,
            total_steps=total_steps, epochs=math.ceil(total_steps / steps_per_epoch),
            tokens_per_step=global_batch * self.block)

    def identity(self) -> dict:
        """What ``run.json`` records (replicas not checked while not known)."""
        arch = ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions")
        data_keys = dict(self.train, block_size=self.block, replicas=self.replicas)
        return {"vocab_size": len(self.tokenizer), "tokenizer_sha256": self.tok_sha,
                "model": {k: getattr(self.config, k) for k in arch},
                "data": {k: data_keys[k] for k in checkpoint.FROZEN if data_keys[k] is not None}}


def train(plan: Plan, strategy, prec: str, jit: bool, device: str, resuming: bool, chief: bool,
          out: Path, dump: Path | None) -> int:
    """Build the trainer (resuming when the run has a checkpoint), say what will run, train,
    export ``final/`` and print the summary; ``out`` is where this worker saves."""
    from tftrain import plots

    trainer = Trainer(plan, strategy, prec, jit, resuming, out)
    start = trainer.restore() if resuming else 0
    if chief and not resuming:
        checkpoint.write_identity(plan.run, plan.identity())
        with atomic_write(plan.run / "model_config.json") as fh:
            fh.write(plan.config.to_json_string())
    params = model.parameter_count(trainer.model)
    logs.describe_start(plan, params, prec, jit, device, strategy, chief,
                        start if resuming else None)
    metrics = logs.Metrics(out, start)
    began = time.perf_counter()
    result = train_loop(trainer, metrics, start)
    final = card.export_final(
        trainer.model, plan.tokenizer,
        card.model_card(plan, params, prec, result, plan.total_steps), plan.tokens, out)
    if dump:
        dump_weights(trainer, dump)
    plots.plot_curves(metrics.path, out / "loss.png")
    logs.print_summary("training summary", [
        ("run", str(plan.run)), ("parameters", f"{params:,}"),
        ("steps", f"{start} -> {plan.total_steps}"),
        ("tokens seen", f"{plan.total_steps * plan.tokens_per_step:,}"),
        ("validation loss", f"{result['valid']['loss']:.4f}"),
        ("validation perplexity", f"{result['valid']['perplexity']:.2f}"),
        ("validation bits/byte", f"{result['valid']['bits_per_byte']:.4f}"),
        ("median tokens/s", f"{result['tokens_per_s']:,.0f}"),
        ("precision / XLA", f"{prec} / {'on' if jit else 'off'}"),
        ("wall time", f"{time.perf_counter() - began:.0f} s"),
        ("final model", str(final) if chief else "written by the chief")])
    return 0


class Trainer:
    """The model, optimiser, data iterator, checkpoint and compiled steps of one run."""

    def __init__(self, plan: Plan, strategy, precision: str, jit: bool, resuming: bool,
                 out: Path):
        import tensorflow as tf

        from tftrain import evaluate, optim

        t = plan.train
        self.plan, self.strategy, self.precision = plan, strategy, precision
        with strategy.scope():
            self.model = model.build_model(plan.config, None if resuming else plan.init)
            if t.recompute:
                model.enable_recompute(self.model)
            self.lr_schedule = optim.schedule(t, plan.total_steps)
            self.opt = optim.build_optimizer(t, self.lr_schedule, self.model.trainable_variables,
                                             loss_scale=precision == "fp16")
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        # The default (one-device) strategy: the iterator itself is checkpointed (position,
        # buffer, RNG). Any other: TF cannot checkpoint a distributed iterator, so a resumed run
        # skips the steps already read (same seed, same order; it re-reads the data so far).
        single = strategy is tf.distribute.get_strategy()
        skip = checkpoint.saved_step(plan.run) if resuming and not single else 0
        micro = t.batch_size * t.accumulate
        dataset = strategy.distribute_datasets_from_function(
            lambda ctx: data.train_dataset(data.files(plan.tokens, plan.meta, "train"),
                                           plan.dtype, plan.block, micro, t.buffer_size,
                                           t.seed, ctx, skip_steps=skip))
        self.iterator = iter(dataset)
        objects = dict(model=self.model, optimizer=self.opt, step=self.step,
                       rng=model.dropout_generators(self.model))
        if single:
            objects["data"] = self.iterator
        # ``out``: the run folder on the chief, a throwaway folder on the other workers
        self.ckpt, self.manager = checkpoint.manager(out, t.keep_checkpoints, **objects)
        self.evaluator = evaluate.Evaluator(self.model, strategy, plan.block, t.batch_size,
                                            data.token_bytes(plan.tokenizer))
        self.train_step = make_train_step(
            self.model, self.opt, strategy, self.step, batch_size=t.batch_size,
            accumulate=t.accumulate, block=plan.block, clip_norm=t.clip_norm, jit=jit)
        self._twin = None

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
        return float(self.lr_schedule(max(int(self.opt.iterations.numpy()) - 1, 0)))

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


def train_loop(trainer: Trainer, metrics: logs.Metrics, start: int) -> dict:
    """Run steps ``start+1 .. total``; returns the last validation figures and throughput."""
    import tensorflow as tf

    plan, t = trainer.plan, trainer.plan.train
    per_epoch, total = plan.steps_per_epoch, plan.total_steps
    progress = logs.Progress(total, start)
    pace = logs.Pace(plan.tokens_per_step)
    step, valid, saved = start, None, start
    try:
        while step < total:
            loss, norm = trainer.train_step(trainer.iterator)
            step += 1
            if step == start + 1:
                loss = float(loss)  # waits for the step, so its memory is in the peak
                first_step_memory(metrics, progress, step)
            pace.step()
            epoch = (step - 1) // per_epoch + 1
            figures = None
            if step % t.log_every == 0 or step == total:
                loss, norm = float(loss), float(norm)
                speed, eta = pace.figures(total - step)
                figures = dict(loss=loss, bpb=loss / math.log(2) / plan.bytes_per_token,
                               lr=trainer.learning_rate(), tokens_per_s=speed, eta_s=eta)
                metrics.record(step, "train", loss=loss, bits_per_byte=figures["bpb"],
                               lr=figures["lr"], grad_norm=norm, tokens_per_s=speed, epoch=epoch)
            progress.update(step, figures)
            epoch_end = step % per_epoch == 0
            with pace.pause():
                if step % t.eval_every == 0 or epoch_end or step == total:
                    valid = validate(trainer, metrics, progress, step, epoch)
                if epoch_end or step == total:
                    write_samples(trainer, metrics, progress, step, epoch)
                if step % t.checkpoint_every == 0 or epoch_end or step == total:
                    trainer.save()
                    saved = step
    except tf.errors.ResourceExhaustedError:
        raise UserError(OOM_HINT) from None
    except KeyboardInterrupt:
        if int(trainer.step.numpy()) > saved:
            trainer.save()
        raise
    finally:
        progress.close()
    if valid is None:
        valid = validate(trainer, metrics, progress, step, (step - 1) // per_epoch + 1)
    return {"valid": valid, "tokens_per_s": pace.median_speed()}


def validate(trainer: Trainer, metrics: logs.Metrics, progress: logs.Progress, step: int,
             epoch: int) -> dict:
    """Score the valid split (up to ``train.eval_tokens``); record and print the figures."""
    plan = trainer.plan
    r = trainer.evaluator.split(plan.tokens, plan.meta, "valid", plan.train.eval_tokens)
    metrics.record(step, "valid", loss=r["loss"], perplexity=r["perplexity"],
                   bits_per_byte=r["bits_per_byte"], epoch=epoch, tokens=r["tokens"], bytes=r["bytes"])
    progress.say(f"step {step}: validation loss {r['loss']:.4f}, perplexity "
                 f"{r['perplexity']:.2f}, {r['bits_per_byte']:.4f} bits/byte ({r['tokens']} "
                 f"tokens{', the whole split' if r['whole'] else ''})")
    return r


def write_samples(trainer: Trainer, metrics: logs.Metrics, progress: logs.Progress, step: int,
                  epoch: int) -> None:
    from tftrain.generate import generate_samples

    t = trainer.plan.train
    texts = generate_samples(trainer.sampler(), trainer.plan.tokenizer, list(t.prompts),
                             t.sample_tokens, seed=t.seed)
    metrics.record(step, "samples", epoch=epoch, texts=texts)
    for text in texts:
        progress.say(f"  sample: {text!r}")


def first_step_memory(metrics: logs.Metrics, progress: logs.Progress, step: int) -> None:
    """Record and print the measured memory peak (call it once the first step has finished)."""
    from tftrain import memory

    peak, what = memory.peak_bytes()
    metrics.record(step, "memory", peak_gib=round(peak / memory.GIB, 3), what=what)
    progress.say(f"memory after the first step: {peak / memory.GIB:.2f} GiB ({what}"
                 f"{'' if what.startswith('GPU') else ', TensorFlow runtime and data pipeline included'})")


def dump_weights(trainer: Trainer, path: Path) -> None:
    """Every weight of this worker's model, by variable name, to a ``.npz`` (debugging)."""
    import numpy as np

    with atomic_write(path, "wb") as fh:
        np.savez(fh, **{v.name: v.numpy() for v in trainer.model.weights})


if __name__ == "__main__":
    sys.exit(main())
