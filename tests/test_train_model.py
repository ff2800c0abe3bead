"""The trainer's pieces in one process: model config, loss, recompute, schedule, weight decay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from common.errors import UserError
from common.formats import SEPARATOR
from tftrain.model import PRESETS, model_config

TRAIN = dict(size="tiny", n_layer=0, n_head=0, n_embd=0, block_size=0, dropout=-1.0)


class _Tok:
    def __init__(self, n: int):
        self.n, self.eos_token_id, self.bos_token_id, self.pad_token_id = n, 0, 0, None
        self.name_or_path = "tok"

    def __len__(self) -> int:
        return self.n


def test_presets_and_overrides():
    config, block = model_config(dict(TRAIN, size="medium"), _Tok(32000))
    assert (config.n_layer, config.n_head, config.n_embd, block) == (24, 16, 1024, 1024)
    assert config.vocab_size == 32000 and config.pad_token_id == 0 and config.bos_token_id == 0
    config, block = model_config(dict(TRAIN, n_layer=3, block_size=32, dropout=0.0), _Tok(900))
    assert (config.n_layer, config.n_head, block, config.attn_pdrop) == (3, 4, 32, 0.0)
    assert set(PRESETS) == {"tiny", "small", "medium", "large", "xl"}


@pytest.mark.parametrize("override, message", [
    (dict(size="huge"), "unknown size"),
    (dict(block_size=4096), "n_positions=256"),
    (dict(n_embd=130), "not a multiple"),
])
def test_bad_model_settings(override, message):
    with pytest.raises(UserError, match=message):
        model_config(dict(TRAIN, **override), _Tok(900))


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    return tf


def _tiny(tf, vocab: int, policy: str = "float32"):
    import tf_keras
    from transformers import GPT2Config

    from tftrain.model import build_model

    tf_keras.mixed_precision.set_global_policy(policy)
    try:
        tf_keras.utils.set_random_seed(0)
        config = GPT2Config(vocab_size=vocab, n_layer=2, n_head=4, n_embd=32, n_positions=64,
                            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
        return build_model(config)
    finally:
        tf_keras.mixed_precision.set_global_policy("float32")


def test_loss_is_float32_and_keeps_large_label_ids(tf):
    """Under mixed_bfloat16 the loss is float32 and matches a numpy cross-entropy on the float32
    logits, for label ids far above 2048 (float16 holds integers exactly only up to 2048)."""
    from tftrain.model import token_loss

    model = _tiny(tf, 5000, "mixed_bfloat16")
    rng = np.random.default_rng(0)
    x = tf.constant(rng.integers(0, 5000, (2, 16)), tf.int32)
    y = tf.constant(rng.integers(2049, 5000, (2, 16)), tf.int32)
    total, count = token_loss(model, x, y, training=False)
    assert total.dtype == tf.float32 and float(count) == 32
    logits = tf.cast(model(x).logits, tf.float32).numpy().astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    expected = -np.take_along_axis(logp, y.numpy()[..., None], -1).sum()
    assert float(total) == pytest.approx(expected, rel=1e-4)


def test_random_init_is_pytorch_gpt2s_scheme(tf):
    """As transformers' PyTorch ``GPT2LMHeadModel``: matrices and embeddings normal(0, 0.02) (not
    Keras' truncated normal, whose spread is 0.88 of that and which has no tail beyond 2 sigma),
    ``c_proj`` 1/sqrt(2 x n_layer) of that, biases 0, LayerNorm 1 and 0; seeded."""
    import tf_keras
    from scipy import stats
    from transformers import GPT2Config

    from tftrain.model import build_model

    config = GPT2Config(vocab_size=3000, n_layer=2, n_head=4, n_embd=128, n_positions=256)
    tf_keras.utils.set_random_seed(3)
    model = build_model(config)
    t = model.transformer
    kinds = {"c_proj": [], "matrix": []}
    for v in model.trainable_variables:
        name, values = v.name, v.numpy().ravel()
        if "ln_" in name:
            assert np.all(values == (1.0 if "gamma" in name else 0.0)), name
        elif "bias" in name:
            assert not values.any(), name
        else:
            kinds["c_proj" if "c_proj" in name else "matrix"].append(values)
    assert len(kinds["matrix"]) == 2 + 2 * config.n_layer  # wte, wpe, c_attn and c_fc per block
    assert len(kinds["c_proj"]) == 2 * config.n_layer
    for kind, std in (("matrix", 0.02), ("c_proj", 0.02 / math.sqrt(2 * config.n_layer))):
        values = np.concatenate(kinds[kind])
        assert values.std() == pytest.approx(std, rel=0.01), kind
        assert stats.kstest(values / std, "norm").pvalue > 1e-3, kind
        assert np.mean(np.abs(values) > 2 * std) == pytest.approx(0.0455, abs=0.004), kind
    tf_keras.utils.set_random_seed(3)
    again = build_model(config)
    np.testing.assert_array_equal(again.transformer.wte.embeddings.numpy(), t.wte.embeddings.numpy())


def test_flattened_head_gives_the_models_gradients(tf):
    """``token_loss`` runs the tied LM head as one 2-D matmul; every variable (``wte`` included,
    which gets gradient from the embedding lookup and from the head) gets the same gradient as
    through ``TFGPT2LMHeadModel``'s own logits."""
    from tftrain.model import token_loss

    model = _tiny(tf, 97)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.integers(0, 97, (3, 16)), tf.int32)
    y = tf.constant(rng.integers(0, 97, (3, 16)), tf.int32)
    with tf.GradientTape(persistent=True) as tape:
        ours, _ = token_loss(model, x, y, training=True)
        theirs = tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=y, logits=model(x, training=True).logits))
    assert float(ours) == pytest.approx(float(theirs), rel=1e-6)
    variables = model.trainable_variables
    pairs = zip(tape.gradient(ours, variables), tape.gradient(theirs, variables), strict=True)
    for v, (a, b) in zip(variables, pairs, strict=True):
        np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(),
                                   rtol=1e-4, atol=1e-6, err_msg=v.name)


def test_recompute_gives_the_same_gradients(tf):
    """Same gradients; the backward graph holds the blocks' forward ops a second time."""
    from tftrain.model import enable_recompute, token_loss

    x = tf.constant(np.arange(32).reshape(2, 16) % 97, tf.int32)
    grads, ops = [], []
    for recompute in (False, True):
        model = _tiny(tf, 97)
        if recompute:
            enable_recompute(model)

        @tf.function
        def step(model=model):
            with tf.GradientTape() as tape:
                total, _ = token_loss(model, x, x, training=True)
            return tape.gradient(total, model.trainable_variables)

        grads.append([tf.convert_to_tensor(g).numpy() for g in step()])
        ops.append(len(step.get_concrete_function().graph.get_operations()))
    assert ops[1] > ops[0] * 1.2, ops
    for a, b in zip(*grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_schedule_warms_up_then_decays_to_the_floor(tf):
    from tftrain.optim import WarmupCosine

    s = WarmupCosine(1e-3, 1e-4, warmup=10, total=110)
    lr = [float(s(i)) for i in (0, 4, 9, 10, 60, 110, 500)]
    assert lr[0] == pytest.approx(1e-4) and lr[1] == pytest.approx(5e-4)
    assert lr[2] == pytest.approx(1e-3) and lr[3] == pytest.approx(1e-3)
    assert lr[4] == pytest.approx(1e-4 + 0.5 * 9e-4 * (1 + math.cos(math.pi * 0.5)))
    assert lr[5] == pytest.approx(1e-4) and lr[6] == pytest.approx(1e-4)


def test_weight_decay_spares_biases_and_layer_norms(tf):
    """One AdamW step with zero gradients: only decayed weights move (w -= lr * wd * w)."""
    from tftrain.optim import build_optimizer, schedule

    model = _tiny(tf, 97)
    variables = model.trainable_variables
    train = dict(optimizer="adamw", lr=0.1, min_lr=0.1, warmup_steps=0, weight_decay=0.5,
                 beta1=0.9, beta2=0.95, eps=1e-8)
    opt = build_optimizer(train, schedule(train, 10), variables)
    before = [v.numpy().copy() for v in variables]
    opt.apply_gradients([(tf.zeros_like(v), v) for v in variables])
    for v, old in zip(variables, before, strict=True):
        moved = not np.allclose(v.numpy(), old)
        spared = any(k in v.name for k in ("bias", "ln_"))
        assert moved != spared, v.name


def test_weight_decay_groups_are_pytorch_gpt2s(tf):
    """The decayed variables are the PyTorch reference's (bench.quality): every tensor of two or
    more dimensions there, i.e. the matrices and the tied ``wte`` and ``wpe``; not biases (shaped
    (1, n) in TF's ``Conv1D``) or LayerNorm."""
    from tftrain.optim import build_optimizer, schedule

    model = _tiny(tf, 97)
    train = dict(optimizer="adamw", lr=0.1, min_lr=0.1, warmup_steps=0, weight_decay=0.1,
                 beta1=0.9, beta2=0.95, eps=1e-8)
    opt = build_optimizer(train, schedule(train, 10), model.trainable_variables)
    decayed = {v.name for v in model.trainable_variables if opt._use_weight_decay(v)}
    pytorch_rule = {v.name for v in model.trainable_variables
                    if len(v.shape) >= 2 and "bias" not in v.name}
    assert decayed == pytorch_rule
    assert {n.split("/", 1)[1] for n in decayed} >= {"transformer/wte/embeddings:0",
                                                      "transformer/wpe/embeddings:0"}


def test_factored_adafactor_matches_tf_keras_without_the_full_slot(tf):
    """The same updates as tf_keras' Adafactor over several steps, with state well under 1% of
    the parameters' size for a model of matrices (tf_keras keeps one full-size slot besides)."""
    import tf_keras

    from tftrain.model import token_loss
    from tftrain.optim import build_optimizer, schedule

    x = tf.constant(np.arange(64).reshape(4, 16) % 97, tf.int32)
    train = dict(optimizer="adafactor", lr=0.01, min_lr=0.001, warmup_steps=2, weight_decay=0.0)
    runs = []
    for ours in (True, False):
        tf_keras.utils.set_random_seed(0)
        model = _tiny(tf, 97)
        variables = model.trainable_variables
        if ours:
            opt = build_optimizer(train, schedule(train, 6), variables)
        else:
            opt = tf_keras.optimizers.Adafactor(learning_rate=schedule(train, 6))
            opt.build(variables)
        for _ in range(6):
            with tf.GradientTape() as tape:
                loss, _ = token_loss(model, x, x, training=False)
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        state = sum(v.shape.num_elements() for v in opt.variables if v.dtype == tf.float32)
        runs.append(([v.numpy() for v in variables], state))
    (ours_w, ours_state), (theirs_w, theirs_state) = runs
    params = sum(w.size for w in ours_w)
    for a, b in zip(ours_w, theirs_w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(ours_w[0], _tiny(tf, 97).trainable_variables[0].numpy())
    assert theirs_state > params
    assert ours_state < 0.2 * params, (ours_state, params)


def test_token_bytes_spell_the_text(tmp_path):
    """Bits per byte divide by these: the ids of a text spell exactly its UTF-8 bytes, the
    end-of-document token none (project-written text)."""
    from corpus.tokenizer import load_hf, save_hf, train
    from tftrain.data import token_bytes

    docs = ["Пловдив е град на хълмове, река и стари къщи.",
            "В събота пазарът се пълни с домати, чушки и мед от планината.", "Ёж и „кавички“ — 5 €."]
    save_hf(train(iter([docs * 3]), 300, 1, [SEPARATOR], progress=False), tmp_path)
    tok = load_hf(tmp_path)
    per_id = token_bytes(tok)
    text = docs[0] + SEPARATOR + docs[2]
    ids = tok(text)["input_ids"]
    assert tok.eos_token_id in ids and per_id[tok.eos_token_id] == 0
    assert sum(per_id[i] for i in ids) == len((docs[0] + docs[2]).encode("utf-8"))
