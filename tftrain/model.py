"""The GPT-2 to train: size presets, its config from the tokenizer, building it, and its loss.

``model_config`` needs no TensorFlow (bad sizes fail fast, before TF starts); ``build_model`` and
``token_loss`` do. The loss is computed from float32 logits with int32 labels: under a mixed
policy the LM head's logits are 16-bit, and a 16-bit softmax is coarse, while casting ids through
float16 corrupts every id above 2048.
"""

from __future__ import annotations

import math
from pathlib import Path

from transformers import GPT2Config

from common.errors import UserError
from common.formats import BLOCK_SIZES
from tftrain import hf_load

# n_layer, n_head, n_embd, n_positions, dropout; block sizes: common.formats.BLOCK_SIZES
PRESETS: dict[str, dict[str, float]] = {
    "tiny": dict(n_layer=2, n_head=4, n_embd=128, n_positions=256, dropout=0.0),
    "small": dict(n_layer=12, n_head=12, n_embd=768, n_positions=1024, dropout=0.1),
    "medium": dict(n_layer=24, n_head=16, n_embd=1024, n_positions=1024, dropout=0.1),
    "large": dict(n_layer=36, n_head=20, n_embd=1280, n_positions=1024, dropout=0.1),
    "xl": dict(n_layer=48, n_head=25, n_embd=1600, n_positions=1024, dropout=0.1),
}


def _special_ids(tokenizer) -> dict[str, int]:
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UserError(f"tokenizer {tokenizer.name_or_path}: has no eos token")
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    return dict(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)


def model_config(train: dict, tokenizer, init: Path | None = None) -> tuple[GPT2Config, int]:
    """The ``GPT2Config`` and block size for ``[train]`` (preset + overrides, or ``--init``).

    ``vocab_size`` is ``len(tokenizer)`` and bos/eos/pad come from it. With ``init`` the
    architecture is the saved model's (its embeddings are resized to the tokenizer later).
    """
    size = train["size"]
    if size not in PRESETS:
        raise UserError(f"train.size: unknown size {size!r} (known: {', '.join(PRESETS)})")
    preset = PRESETS[size]
    dropout = train["dropout"] if train["dropout"] >= 0 else preset["dropout"]
    if init:
        config = hf_load.check_folder(Path(init))
        for key in ("n_layer", "n_head", "n_embd"):
            if train[key] and train[key] != getattr(config, key):
                raise UserError(f"train.{key}={train[key]} differs from --init {init} "
                                f"({getattr(config, key)}); drop the override")
        config.vocab_size = len(tokenizer)
    else:
        arch = {k: train[k] or preset[k] for k in ("n_layer", "n_head", "n_embd")}
        config = GPT2Config(vocab_size=len(tokenizer), n_positions=int(preset["n_positions"]),
                            **{k: int(v) for k, v in arch.items()})
    config.update(dict(resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                       **_special_ids(tokenizer)))
    if config.n_embd % config.n_head:
        raise UserError(f"train.n_embd={config.n_embd} is not a multiple of "
                        f"train.n_head={config.n_head}")
    block = train["block_size"] or min(BLOCK_SIZES[size], config.n_positions)
    if block > config.n_positions:
        raise UserError(f"train.block_size={block} is above the model's context "
                        f"n_positions={config.n_positions}")
    return config, block


def build_model(config: GPT2Config, init: Path | None = None):
    """A built ``TFGPT2LMHeadModel``: random (seeded by the caller, ``init_weights``), then with
    ``init``'s weights when given (``tftrain.hf_load``; embedding rows beyond the saved ones
    stay random)."""
    import tensorflow as tf
    from transformers import TFGPT2LMHeadModel

    model = TFGPT2LMHeadModel(config)
    model(tf.zeros((1, 2), tf.int32))
    init_weights(model, config)
    if init:
        done = hf_load.load_weights(model, Path(init))
        print(f"init: {done['tensors']} tensors from {init}; embedding rows: {done['kept']:,} "
              f"kept, {done['new']:,} drawn new (saved {done['saved_rows']:,}, tokenizer "
              f"{config.vocab_size:,})")
    return model


def init_weights(model, config: GPT2Config) -> None:
    """GPT-2's random initialisation, as transformers' PyTorch ``GPT2LMHeadModel`` draws it.

    Every matrix and embedding (``wte``, ``wpe``, ``c_attn``, ``c_fc``, ``c_proj``) from a
    normal(0, ``initializer_range``); the projections that write into the residual stream
    (attention and MLP ``c_proj``) 1/sqrt(2 x n_layer) smaller, so the stream's variance does
    not grow with depth. transformers' TF model draws from a truncated normal instead (cut at 2
    standard deviations, so 0.88 of the spread asked for) and does not scale ``c_proj``. Biases
    stay 0 and LayerNorm scales 1, as built. Draws from TF's global seed.
    """
    import tensorflow as tf

    std = config.initializer_range
    t = model.transformer
    weights = [(t.wte.embeddings, std), (t.wpe.embeddings, std)]
    for block in t.h:
        weights += [(block.attn.c_attn.weight, std), (block.mlp.c_fc.weight, std)]
        weights += [(proj.weight, std / math.sqrt(2 * config.n_layer))
                    for proj in (block.attn.c_proj, block.mlp.c_proj)]
    for var, spread in weights:
        var.assign(tf.random.normal(var.shape, stddev=spread, dtype=var.dtype))


def token_loss(model, inputs, labels, training: bool):
    """Summed float32 cross-entropy over ``labels`` and the number of tokens it covers."""
    import tensorflow as tf

    losses = token_losses(model, inputs, labels, training)
    return tf.reduce_sum(losses), tf.cast(tf.size(losses), tf.float32)


def token_losses(model, inputs, labels, training: bool):
    """Float32 cross-entropy (nats) of each label, flattened to ``[tokens]``.

    Traced without AutoGraph: the transformers model is graph-safe as written, and converting its
    whole call tree made tracing the train step several times slower.
    """
    import tensorflow as tf

    return tf.autograph.experimental.do_not_convert(_token_losses)(model, inputs, labels, training)


def _token_losses(model, inputs, labels, training: bool):
    """The LM head of ``TFGPT2LMHeadModel`` (tied ``wte``), as one 2-D matmul over all tokens.

    transformers multiplies ``[batch, block, embd]`` by ``wte.weights`` (a one-element list: a
    broadcast batched matmul), which XLA on the CPU runs ~1.6x slower than the same product
    flattened to ``[tokens, embd]``; the head's forward and backward are the largest matmuls in
    a small model's step. Same weights, same compute dtype, same logits.
    """
    import tensorflow as tf

    hidden = model.transformer(inputs, training=training, use_cache=False)[0]
    hidden = tf.reshape(hidden, [-1, hidden.shape[-1]])
    wte = tf.cast(model.transformer.wte.embeddings, hidden.dtype)
    logits = tf.matmul(hidden, wte, transpose_b=True)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.reshape(tf.cast(labels, tf.int32), [-1]), logits=tf.cast(logits, tf.float32))


def enable_recompute(model) -> None:
    """Recompute each transformer block's activations in the backward pass (``tf.recompute_grad``).

    Only a block's input is kept; its inside is rebuilt when its gradient is needed. Needs
    dropout 0: a recomputed block would draw new dropout masks.
    """
    import tensorflow as tf

    for block in model.transformer.h:
        call = block.call

        def wrapped(x, layer_past, attention_mask, head_mask, encoder_hidden_states,
                    encoder_attention_mask, use_cache, output_attentions, training=False,
                    _call=call):
            if use_cache or output_attentions or layer_past is not None:
                return _call(x, layer_past, attention_mask, head_mask, encoder_hidden_states,
                             encoder_attention_mask, use_cache, output_attentions,
                             training=training)

            @tf.recompute_grad
            def inner(h):
                return _call(h, None, attention_mask, head_mask, None, None, False, False,
                             training=training)[0]

            return [inner(x), None]

        block.call = wrapped


def dropout_generators(model) -> list:
    """The ``tf.random.Generator`` of each dropout layer, in a fixed order.

    tf_keras keeps them out of ``model.weights`` and checkpoints on purpose; the trainer adds them
    to its checkpoint so a resumed run draws the same dropout masks as an uninterrupted one.
    """
    gens = [getattr(layer._random_generator, "_generator", None)
            for layer in model.submodules if hasattr(layer, "_random_generator")]
    return [g for g in gens if g is not None]


def parameter_count(model) -> int:
    """Trainable parameters (tied LM head counted once)."""
    return int(sum(v.shape.num_elements() for v in model.trainable_variables))
