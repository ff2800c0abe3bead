"""Optimiser, learning-rate schedule and gradient clipping for the train step.

AdamW decays weights decoupled from the gradient (``w -= lr * weight_decay * w``) and not on
biases or LayerNorm scales/offsets; Adafactor keeps factored second moments (less memory): its
per-row and per-column statistics only, where tf_keras' own keeps a full-size slot beside them.
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


class FactoredAdafactor(tf_keras.optimizers.Adafactor):
    """tf_keras' Adafactor without its full-size ``v`` slot for matrices.

    tf_keras builds a ``v`` as large as each variable and, for a matrix, only writes the product
    of the factored row and column statistics into it before using it: 4 bytes a parameter
    (6 GB for GPT-2 xl) that the algorithm does not need. Here that product is a temporary of
    the update, so the state is the row and column vectors of each matrix and a full ``v`` for
    1-D weights only. The updates equal tf_keras' (a test compares them step by step).
    """

    def build(self, var_list):
        tf_keras.optimizers.Optimizer.build(self, var_list)
        if getattr(self, "_built", False):
            return
        self._built = True
        self._r, self._c, self._v = [], [], []
        for var in var_list:
            if len(var.shape) >= 2:
                self._r.append(self.add_variable(var.shape[:-1], var.dtype,
                                                 name=f"r/{var._shared_name}"))
                self._c.append(self.add_variable(var.shape[:-2] + var.shape[-1], var.dtype,
                                                 name=f"c/{var._shared_name}"))
                self._v.append(None)
            else:
                self._r.append(None)
                self._c.append(None)
                self._v.append(self.add_variable_from_reference(var, "v"))

    def update_step(self, gradient, variable):
        # Shazeer & Stern 2018 (Adafactor) with relative step sizes: the schedule's rate capped
        # at 1/sqrt(t), times the weight's RMS; decay of the second moment 1 - t^beta_2_decay.
        dtype = variable.dtype
        t = tf.cast(self.iterations + 1, dtype)
        rate = tf.minimum(tf.cast(self.learning_rate, dtype), tf.math.rsqrt(t))
        step_size = rate * tf.maximum(tf.cast(self.epsilon_2, dtype), self._rms(variable))
        keep = 1 - tf.pow(t, self.beta_2_decay)
        squared = tf.square(gradient) + self.epsilon_1
        i = self._index_dict[self._var_key(variable)]
        if self._v[i] is None:  # a matrix: running row and column means of the squared gradient
            rows, cols = self._r[i], self._c[i]
            rows.assign(keep * rows + (1 - keep) * tf.reduce_mean(squared, axis=-1))
            cols.assign(keep * cols + (1 - keep) * tf.reduce_mean(squared, axis=-2))
            row_share = rows / tf.reduce_mean(rows, axis=-1, keepdims=True)
            second_moment = row_share[..., :, None] * cols[..., None, :]
        else:
            second_moment = self._v[i]
            second_moment.assign(keep * second_moment + (1 - keep) * squared)
        update = tf.convert_to_tensor(gradient) * tf.math.rsqrt(second_moment)
        update /= tf.maximum(tf.cast(1.0, dtype), self._rms(update) / self.clip_threshold)
        variable.assign_sub(step_size * update)


def schedule(train: dict, total_steps: int) -> WarmupCosine:
    """The ``[train]`` schedule: warmup to ``lr``, cosine to ``min_lr`` at ``total_steps``."""
    return WarmupCosine(train["lr"], train["min_lr"], train["warmup_steps"], total_steps)


def build_optimizer(train: dict, schedule: WarmupCosine, variables, loss_scale: bool = False):
    """AdamW or Adafactor on ``schedule``, built for ``variables``; wrapped for fp16 loss scaling."""
    if train["optimizer"] == "adafactor":
        opt = FactoredAdafactor(learning_rate=schedule, weight_decay=train["weight_decay"] or None)
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
