"""``make eval [CKPT=...]``: loss and perplexity of a trained model on the whole test split.

``CKPT`` is a run folder (its ``final/``, else its latest checkpoint) or a Hugging Face folder;
default: the config's run. The loss is the mean cross-entropy (nats) over every predicted token of
the split, read in order in blocks of the run's block size; perplexity is its exponential. The
result is printed and written to ``eval.json`` in the run folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from common import config as cfglib  # noqa: E402
from common.atomic import atomic_write  # noqa: E402
from common.errors import UserError, cli_main  # noqa: E402
from tftrain import data, model  # noqa: E402


class Evaluator:
    """Summed loss over a whole split, through the strategy (one compiled step per shape)."""

    def __init__(self, net, strategy, tokens: Path, meta: dict, block: int, batch: int):
        import tensorflow as tf

        self.strategy, self.tokens, self.meta, self.block, self.batch = (
            strategy, tokens, meta, block, batch)

        def replica(x, y):
            return model.token_loss(net, x, y, training=False)

        @tf.function
        def step(x, y):
            total, count = strategy.run(replica, args=(x, y))
            return (strategy.reduce("sum", total, axis=None),
                    strategy.reduce("sum", count, axis=None))

        self._step = step

    def run(self, split: str) -> tuple[float, int]:
        """``(mean loss in nats, tokens)`` over every block of ``split``."""
        import tensorflow as tf

        dataset = data.eval_dataset(data.files(self.tokens, self.meta, split),
                                    self.meta["dtype"], self.block, self.batch)
        options = tf.data.Options()  # several workers: each reads all, keeps its share of batches
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
        total, count = 0.0, 0.0
        for x, y in self.strategy.experimental_distribute_dataset(dataset):
            t, n = self._step(x, y)
            total += float(t)
            count += float(n)
        if not count:
            raise UserError(f"{self.tokens}/{split}: no block of {self.block} tokens to evaluate")
        return total / count, int(count)


def resolve(cfg, ckpt: str | None) -> tuple[Path, Path, str]:
    """``(model path, run folder, kind)``: kind is "hf" (a HF folder) or "checkpoint"."""
    if ckpt:
        path = Path(ckpt).expanduser().resolve()
    else:
        path = cfglib.artifacts_dir(cfg, "runs", cfg.train.run_name or cfg.train.size)
    if (path / "config.json").is_file():
        return path, path.parent if path.name == "final" else path, "hf"
    if (path / "final" / "config.json").is_file():
        return path / "final", path, "hf"
    from tftrain import checkpoint

    latest = checkpoint.latest(path)
    if latest and (path / "model_config.json").is_file():
        return Path(latest), path, "checkpoint"
    raise UserError(f"{path}: no trained model (no final/ folder, config.json or checkpoint); "
                    "run `make train` first or pass CKPT=")


def load(path: Path, run: Path, kind: str):
    """The TF model from a HF folder or from a run's checkpoint (weights only)."""
    import tensorflow as tf
    from transformers import GPT2Config, TFAutoModelForCausalLM

    if kind == "hf":
        try:
            return TFAutoModelForCausalLM.from_pretrained(str(path))
        except (OSError, ValueError) as exc:
            raise UserError(f"{path}: cannot load the model ({str(exc).splitlines()[0]})") from None
    config = GPT2Config.from_json_file(str(run / "model_config.json"))
    net = model.build_model(config)
    tf.train.Checkpoint(model=net).restore(str(path)).expect_partial()
    return net


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tftrain.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cfglib.add_config_args(parser)
    parser.add_argument("--ckpt", help="run folder, final/ or HF folder (default: the config's run)")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    args = parser.parse_args(argv)
    cfg = cfglib.from_args(args)
    path, run, kind = resolve(cfg, args.ckpt)
    tokens = cfglib.data_dir(cfg, "tokens")
    run_json = run / "run.json"
    block = (json.loads(run_json.read_text(encoding="utf-8"))["data"]["block_size"]
             if run_json.is_file() else 0)

    import tensorflow as tf

    net = load(path, run, kind)
    meta = data.load_meta(tokens, net.config.vocab_size)
    block = block or cfg.train.block_size or net.config.n_positions
    if block > net.config.n_positions:
        raise UserError(f"train.block_size={block} is above the model's context "
                        f"n_positions={net.config.n_positions}")
    evaluator = Evaluator(net, tf.distribute.get_strategy(), tokens, meta, block,
                          cfg.train.batch_size)
    loss, count = evaluator.run(args.split)
    result = {"split": args.split, "loss": loss, "perplexity": math.exp(min(loss, 50.0)),
              "tokens": count, "block_size": block, "model": str(path)}
    with atomic_write(run / f"eval-{args.split}.json") as fh:
        json.dump(result, fh, indent=2)
    print(f"{args.split} loss {loss:.4f}  perplexity {result['perplexity']:.2f}  "
          f"({count:,} tokens, block {block}, model {path})")
    print(f"written: {run / f'eval-{args.split}.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
