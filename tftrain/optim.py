"""Optimiser, learning-rate schedule and gradient clipping for the train step.

AdamW decays weights decoupled from the gradient (``w -= lr * weight_decay * w``) and not on
biases or LayerNorm scales/offsets; Adafactor keeps factored second moments (less memory).
Clipping is done by the train step on the all-reduced, accumulated gradients (so it clips the
global batch's gradient), not inside the optimiser.
"""

from __future__ import annotations

import math

import tensorflow as tf
import tf_keras

# Substrings of variable names that get no weight decay: biases and LayerNorm gamma/beta.
NO_DECAY = ["bias", "gamma", "beta", "ln_"]


class WarmupCosine(tf_keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to ``peak`` over ``warmup`` steps, then cosine down to ``floor``."""

    def __init__(self, peak: float, floor: float, warmup: int, total: int):
        self.peak, self.floor, self.warmup, self.total = peak, floor, warmup, total

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / float(max(self.warmup, 1))
        span = float(max(self.total - self.warmup, 1))
        progress = tf.clip_by_value((step - self.warmup) / span, 0.0, 1.0)
        cosine = self.floor + 0.5 * (self.peak - self.floor) * (1.0 + tf.cos(math.pi * progress))
        return tf.where(step < self.warmup, warm, cosine)

    def get_config(self) -> dict:
        return dict(peak=self.peak, floor=self.floor, warmup=self.warmup, total=self.total)


def schedule(train: dict, total_steps: int) -> WarmupCosine:
    """The ``[train]`` schedule: warmup to ``lr``, cosine to ``min_lr`` at ``total_steps``."""
    return WarmupCosine(train["lr"], train["min_lr"], train["warmup_steps"], total_steps)


def build_optimizer(train: dict, schedule: WarmupCosine, variables, loss_scale: bool = False):
    """AdamW or Adafactor on ``schedule``, built for ``variables``; wrapped for fp16 loss scaling."""
    if train["optimizer"] == "adafactor":
        opt = tf_keras.optimizers.Adafactor(learning_rate=schedule,
                                            weight_decay=train["weight_decay"] or None)
    else:
        opt = tf_keras.optimizers.AdamW(learning_rate=schedule,
                                        weight_decay=train["weight_decay"],
                                        beta_1=train["beta1"], beta_2=train["beta2"],
                                        epsilon=train["eps"])
    if train["weight_decay"]:
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    if loss_scale:
        opt = tf_keras.mixed_precision.LossScaleOptimizer(opt)
    opt.build(variables)
    return opt


def clip(grads: list, clip_norm: float) -> tuple[list, tf.Tensor]:
    """Gradients clipped to ``clip_norm`` global norm (0: not clipped) and their norm before."""
    norm = tf.linalg.global_norm(grads)
    if clip_norm > 0:
        grads, _ = tf.clip_by_global_norm(grads, clip_norm, use_norm=norm)
    return grads, norm
