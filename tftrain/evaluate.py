"""``make eval [CKPT=...] [TEXT=file.txt]``: loss, perplexity and bits per byte of a trained model.

``CKPT`` is a run folder (its ``final/``, else its latest checkpoint) or a Hugging Face folder;
default: the config's run. Without ``TEXT`` the whole test split (``--split valid``: the valid
split) is read in order in blocks of the run's block size; the loss is the mean cross-entropy
(nats) over every predicted token, perplexity its exponential, and bits per byte = total nats /
ln 2 / UTF-8 bytes of the text scored, the figure that compares models with different
tokenizers. The bytes are those the scored tokens spell (``data.token_bytes`` summed over the
labels, the end-of-document separator spelling none), so they are exact for the whole split and
for the trainer's validation on a ``train.eval_tokens`` budget alike. ``TEXT`` is any UTF-8
file, e.g. text the model never saw: it is NFC-normalised (as the corpus is), tokenised with the model's tokenizer after one ``<|endoftext|>``, and every token of
it is scored, each with up to a block of preceding context; its bits per byte are over its own
bytes (exact). With ``--lines`` (``make eval TEXT=file.txt LINES=1``) each line of ``TEXT`` is
also scored as one sentence in the Goldfish models' half-sentence protocol (``tftrain.halves``):
the mean bits of each line's second half given its first, the figure they publish for
FLORES-200. Results are printed and written to ``eval-<split>.json`` or
``eval-text-<name>.json`` in the run folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import unicodedata
from pathlib import Path

from common import config as cfglib
from common.atomic import atomic_write
from common.errors import UserError, cli_main
from tftrain import data, halves, model, runs, tfsetup


def figures(nats: float, tokens: int, text_bytes: int) -> dict:
    """Mean loss (nats a token), perplexity and bits per byte of ``nats`` summed over ``tokens``
    that spell ``text_bytes`` UTF-8 bytes."""
    loss = nats / tokens
    return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)),
            "bits_per_byte": nats / math.log(2) / text_bytes, "tokens": tokens, "bytes": text_bytes}


class Evaluator:
    """Summed loss over blocks, through the strategy (one compiled step per shape)."""

    def __init__(self, net, strategy, block: int, batch: int, byte_table):
        """``byte_table``: ``data.token_bytes`` of the model's tokenizer."""
        import tensorflow as tf

        self.strategy, self.block, self.batch = strategy, block, batch
        table = tf.constant(byte_table, dtype=tf.int64)

        def replica(x, y):
            total, count = model.token_loss(net, x, y, training=False)
            return total, count, tf.reduce_sum(tf.gather(table, tf.cast(y, tf.int64)))

        @tf.function
        def step(x, y):
            return tuple(strategy.reduce("sum", v, axis=None)
                         for v in strategy.run(replica, args=(x, y)))

        self._step = step

    def _sum(self, dataset) -> tuple[float, int, int]:
        """Summed nats, token count and UTF-8 bytes of the labels over ``dataset``."""
        import tensorflow as tf

        options = tf.data.Options()  # several workers: each reads all, keeps its share of batches
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        total, count, nbytes = 0.0, 0, 0
        for x, y in self.strategy.experimental_distribute_dataset(dataset.with_options(options)):
            t, n, b = self._step(x, y)
            total += float(t)
            count += int(n)
            nbytes += int(b)
        return total, count, nbytes

    def split(self, tokens: Path, meta: dict, split: str, max_tokens: int = 0) -> dict:
        """``figures`` over ``split`` (its first ``max_tokens`` tokens, rounded up to whole
        batches, when given), the ``bytes`` they spell, and ``whole``: whether every block of the
        split was scored."""
        dataset = data.eval_dataset(data.files(tokens, meta, split), meta["dtype"], self.block,
                                    self.batch)
        if max_tokens:
            dataset = dataset.take(-(-max_tokens // (self.batch * self.block)))
        nats, count, nbytes = self._sum(dataset)
        if not count:
            raise UserError(f"{tokens}/{split}: no block of {self.block} tokens to evaluate")
        if not nbytes:
            raise UserError(f"{tokens}/{split}: the scored tokens spell no text (only separators)")
        return {**figures(nats, count, nbytes),
                "whole": count == data.count_blocks(meta, split, self.block) * self.block}

    def text(self, ids: list[int]) -> tuple[float, int]:
        """Summed nats and count over every id after the first, in blocks of ``block``."""
        import numpy as np
        import tensorflow as tf

        ids = np.asarray(ids, dtype=np.int32)
        full = (len(ids) - 1) // self.block * self.block
        x, y = ids[:-1], ids[1:]
        parts = [tf.data.Dataset.from_tensor_slices((x[:full].reshape(-1, self.block),
                                                     y[:full].reshape(-1, self.block)))
                 .batch(self.batch)] if full else []
        if full < len(x):
            parts.append(tf.data.Dataset.from_tensors((x[None, full:], y[None, full:])))
        sums = [self._sum(p) for p in parts]
        return sum(s for s, _, _ in sums), sum(n for _, n, _ in sums)


def read_text(path: Path) -> str:
    """The NFC text of a UTF-8 file, with one-line errors for a missing, binary or empty one."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"--text {path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"--text {path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    text = unicodedata.normalize("NFC", text)
    if not text.strip():
        raise UserError(f"--text {path}: no text")
    return text


def score_text(evaluator: Evaluator, tokenizer, text: str) -> dict:
    """``figures`` of ``text`` after one EOS, over its own UTF-8 bytes."""
    ids = tokenizer(text, add_special_tokens=False, split_special_tokens=True,
                    verbose=False)["input_ids"]
    nats, count = evaluator.text([tokenizer.eos_token_id, *ids])
    return figures(nats, count, len(text.encode("utf-8")))


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tftrain.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cfglib.add_config_args(parser)
    parser.add_argument("--ckpt", help="run folder, final/ or HF folder (default: the config's run)")
    parser.add_argument("--split", default="test", choices=("valid", "test"))
    parser.add_argument("--text", type=Path, help="score this UTF-8 text file instead of a split")
    parser.add_argument("--lines", action="store_true",
                        help="with --text: also score each line as a sentence, Goldfish's mean "
                             "bits of the second half given the first")
    args = parser.parse_args(argv)
    if args.lines and not args.text:
        raise UserError("--lines needs --text (LINES=1 needs TEXT=): a file with one sentence a line")
    cfg = cfglib.from_args(args)
    found = runs.locate(cfg, args.ckpt)
    text = read_text(args.text) if args.text else None
    tokens = cfglib.data_dir(cfg, "tokens")

    tf = tfsetup.import_tensorflow()
    net = runs.load_model(found)
    block = runs.block_size(found.run) or cfg.train.block_size or net.config.n_positions
    if block > net.config.n_positions:
        raise UserError(f"train.block_size={block} is above the model's context "
                        f"n_positions={net.config.n_positions}")
    tokenizer = runs.load_run_tokenizer(cfg, found)
    evaluator = Evaluator(net, tf.distribute.get_strategy(), block, cfg.train.batch_size,
                          data.token_bytes(tokenizer))
    if text is not None:
        result = {"text": str(args.text.resolve()), **score_text(evaluator, tokenizer, text)}
        if args.lines:
            result["halves"] = halves.score(net, tokenizer, halves.split_lines(text),
                                            cfg.train.batch_size, min(halves.MAX_IDS, block + 1))
        name, what = f"eval-text-{args.text.stem}.json", f"{args.text.name}:"
    else:
        meta = data.load_meta(tokens, net.config.vocab_size)
        result = {"split": args.split, **evaluator.split(tokens, meta, args.split)}
        del result["whole"]
        name, what = f"eval-{args.split}.json", args.split
    result.update(block_size=block, model=str(found.path))
    with atomic_write(found.run / name) as fh:
        json.dump(result, fh, indent=2)
    print(f"{what} loss {result['loss']:.4f}  perplexity {result['perplexity']:.2f}  "
          f"bits/byte {result['bits_per_byte']:.4f}  ({result['tokens']:,} tokens, "
          f"block {block}, model {found.path})")
    if "halves" in result:
        h = result["halves"]
        print(f"{what} second halves given the first (Goldfish protocol): {h['mean_bits']:.2f} "
              f"bits a sentence, mean over {h['sentences']:,} lines"
              + (f"; {h['truncated']} cut at {h['max_ids']} ids" if h["truncated"] else "")
              + (f", {h['left_out']} of them left out (the first half alone fills them)"
                 if h["left_out"] else ""))
    print(f"written: {found.run / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
