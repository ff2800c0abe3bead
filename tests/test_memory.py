"""The memory estimate printed before training: parameter count, monotonicity, savings."""

from __future__ import annotations

import pytest
from transformers import GPT2Config

from tftrain.memory import GIB, estimate, format_estimate, param_count

TINY = dict(vocab_size=1000, n_layer=2, n_head=4, n_embd=64, n_positions=128)
MEDIUM = dict(vocab_size=50257, n_layer=24, n_head=16, n_embd=1024, n_positions=1024)
XL = dict(vocab_size=50257, n_layer=48, n_head=25, n_embd=1600, n_positions=1024)


def test_param_count_matches_the_real_tf_model():
    import tensorflow as tf
    from transformers import TFGPT2LMHeadModel

    config = GPT2Config(**TINY)
    model = TFGPT2LMHeadModel(config)
    model(tf.constant([[1, 2, 3]]))
    assert param_count(config) == model.count_params()
    assert param_count(GPT2Config(**MEDIUM)) == pytest.approx(354.8e6, rel=0.01)  # GPT-2 medium


@pytest.mark.parametrize("knob", ["batch_size", "block_size"])
def test_grows_with_batch_and_block(knob):
    config = GPT2Config(**MEDIUM)
    base = dict(batch_size=4, block_size=256)
    small = estimate(config, **base)
    big = estimate(config, **{**base, knob: base[knob] * 2})
    assert big["activations"] > small["activations"] and big["total"] > small["total"]
    assert big["weights"] == small["weights"] and big["optimizer"] == small["optimizer"]


def test_recompute_adafactor_and_16bit_save_memory():
    config = GPT2Config(**MEDIUM)
    plain = estimate(config, 16, 1024, "fp32", "adamw", False)
    recompute = estimate(config, 16, 1024, "fp32", "adamw", True)
    bf16 = estimate(config, 16, 1024, "bf16", "adamw", False)
    adafactor = estimate(config, 16, 1024, "fp32", "adafactor", False)
    assert recompute["activations"] < plain["activations"] / 5
    assert bf16["activations"] < plain["activations"] and bf16["weights"] > plain["weights"]
    assert adafactor["optimizer"] < 0.01 * plain["optimizer"]  # factored: rows + columns only
    bf16_recompute = estimate(config, 16, 1024, "bf16", "adamw", True)
    # recomputed blocks re-cast their weights: only embeddings + one block keep 16-bit copies
    copies = bf16["weights"] - plain["weights"]  # 2 bytes a parameter without recompute
    assert plain["weights"] < bf16_recompute["weights"] < plain["weights"] + copies / 2
    accumulate = estimate(config, 16, 1024, accumulate=4)
    assert accumulate["gradients"] == 2 * plain["gradients"]
    for d in (plain, recompute, bf16, adafactor):
        assert d["total"] == d["weights"] + d["gradients"] + d["optimizer"] + d["activations"]


def test_xl_with_recompute_and_adafactor_is_far_below_plain_training():
    config = GPT2Config(**XL)
    plain = estimate(config, 1, 1024, "bf16", "adamw", False)
    light = estimate(config, 1, 1024, "bf16", "adafactor", True)
    assert light["total"] < plain["total"] - 5 * GIB
    assert 1.5e9 < light["params"] < 1.6e9


def test_format_lists_every_part_in_gib():
    text = format_estimate(estimate(GPT2Config(**TINY), 8, 128, "bf16", "adafactor", True, 2))
    for word in ("weights", "gradients", "optimizer state", "activations", "total", "GiB",
                 "bf16", "adafactor", "recompute", "accumulate 2"):
        assert word in text
