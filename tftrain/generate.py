"""Sample text from a trained GPT-2: ``make generate PROMPT="България е"``.

``generate_samples`` is what the trainer calls each epoch and what the command runs. Prompts are
padded on the left to a fixed bucket length (a multiple of ``BUCKET`` tokens), so that an
XLA-compiled ``generate`` (``xla=True``) compiles once per bucket instead of once per prompt length.
Sampling is seeded (stateless TF random ops), so the same seed gives the same text.
"""

from __future__ import annotations

import argparse
import sys
import time
import unicodedata
import weakref
from pathlib import Path

from common import config as cfglib
from common.errors import UserError, cli_main
from tftrain import logs, runs, tfsetup

BUCKET = 16
_XLA_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> compiled generate


def _padded_length(longest: int, limit: int) -> int:
    return min(limit, max(BUCKET, -(-longest // BUCKET) * BUCKET))


def encode_prompts(tokenizer, prompts: list[str], max_prompt: int) -> tuple:
    """Left-padded ``(input_ids, attention_mask)`` int32 arrays of a bucketed length.

    A prompt longer than ``max_prompt`` tokens keeps its last ``max_prompt`` tokens; an empty
    prompt starts from the bos token.
    """
    import numpy as np

    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    ids = [(tokenizer.encode(p) or [bos])[-max_prompt:] for p in prompts]
    width = _padded_length(max(len(i) for i in ids), max_prompt)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    input_ids = np.full((len(ids), width), pad, dtype=np.int32)
    mask = np.zeros((len(ids), width), dtype=np.int32)
    for row, seq in enumerate(ids):
        input_ids[row, width - len(seq):] = seq
        mask[row, width - len(seq):] = 1
    return input_ids, mask


def _compiled_generate(model):
    import tensorflow as tf

    if model not in _XLA_CACHE:
        _XLA_CACHE[model] = tf.function(model.generate, jit_compile=True)
    return _XLA_CACHE[model]


def generate_samples(model, tokenizer, prompts: list[str], max_new_tokens: int, *, top_k: int = 50,
                     top_p: float = 0.95, temperature: float = 0.9, num_beams: int = 1,
                     repetition_penalty: float = 1.0, xla: bool = False,
                     seed: int = 0) -> list[str]:
    """Continue each prompt; returns ``prompt + continuation`` strings in prompt order.

    ``num_beams > 1`` runs beam search (deterministic); otherwise sampling with ``top_k`` (0: off),
    ``top_p`` and ``temperature``. ``xla=True`` runs ``generate`` compiled with XLA.
    """
    import tensorflow as tf

    if not prompts:
        return []
    n_positions = model.config.n_positions
    if max_new_tokens >= n_positions:
        raise UserError(f"generate.max_new_tokens={max_new_tokens} leaves no room for a prompt: "
                        f"the model's context is {n_positions} tokens")
    # The corpus (and so the tokenizer's training text) is NFC; prompts must be too.
    prompts = [unicodedata.normalize("NFC", p) for p in prompts]
    input_ids, mask = encode_prompts(tokenizer, prompts, n_positions - max_new_tokens)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=pad,
                  eos_token_id=tokenizer.eos_token_id, repetition_penalty=repetition_penalty,
                  num_beams=num_beams)
    if num_beams > 1:
        kwargs.update(do_sample=False)
    else:
        kwargs.update(do_sample=True, top_k=top_k, top_p=top_p, temperature=temperature,
                      seed=[seed, 0])
    run = _compiled_generate(model) if xla else model.generate
    out = run(tf.constant(input_ids), attention_mask=tf.constant(mask), **kwargs)
    new_tokens = out.numpy()[:, input_ids.shape[1]:]
    texts = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return [p + t for p, t in zip(prompts, texts, strict=True)]


def load_model(path: Path):
    """The TF model and its tokenizer from a saved Hugging Face folder."""
    return runs.load_hf_model(path), runs.load_tokenizer(path, "not a trained model folder")


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tftrain.generate", description=__doc__)
    cfglib.add_config_args(parser)
    parser.add_argument("--ckpt", help="HF model folder or run folder (default: the config's run)")
    parser.add_argument("--prompt", action="append",
                        help="prompt text (repeatable; default: train.prompts)")
    args = parser.parse_args(argv)
    cfg = cfglib.from_args(args)
    g = cfg.generate
    path = runs.hf_folder(cfg, args.ckpt)
    prompts = args.prompt or list(cfg.train.prompts)
    if not prompts:
        raise UserError("no prompt: pass --prompt or set train.prompts")
    tfsetup.import_tensorflow()
    model, tokenizer = load_model(path)
    start = time.perf_counter()
    texts = generate_samples(model, tokenizer, prompts, g.max_new_tokens, top_k=g.top_k,
                             top_p=g.top_p, temperature=g.temperature, num_beams=g.num_beams,
                             repetition_penalty=g.repetition_penalty, xla=g.xla, seed=g.seed)
    seconds = time.perf_counter() - start
    for text in texts:
        print(text)
        print("-" * 40)
    mode = f"beam search x{g.num_beams}" if g.num_beams > 1 else (
        f"sampling top_k={g.top_k} top_p={g.top_p} temperature={g.temperature}")
    rows = [("model", str(path)), ("prompts", str(len(prompts))),
            ("max_new_tokens", str(g.max_new_tokens)), ("decoding", mode),
            ("repetition_penalty", str(g.repetition_penalty)), ("seed", str(g.seed)),
            ("xla", str(g.xla)), ("seconds", f"{seconds:.1f}")]
    logs.print_columns(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
