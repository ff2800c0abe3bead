"""Pick the numeric precision and whether to XLA-compile, from the config and the hardware.

``auto``: bf16 on TPUs and on GPUs of compute capability 8.0 or newer (Ampere, Hopper), fp16 with
dynamic loss scaling on older GPUs (T4, V100: no fast bf16), fp32 on CPUs. ``xla = "auto"``
compiles the train step on GPUs and TPUs only (on a CPU, XLA's first compile costs more than it
saves on a short run).
"""

from __future__ import annotations

import tensorflow as tf
import tf_keras

POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


def _gpus() -> list:
    return tf.config.list_physical_devices("GPU")


def _capability(gpu) -> tuple[int, int]:
    return tuple(tf.config.experimental.get_device_details(gpu).get("compute_capability", (0, 0)))


def resolve(precision: str, xla: str, tpu: bool = False) -> tuple[str, bool, str]:
    """``(precision, jit, device description)`` with ``auto`` resolved."""
    gpus = _gpus()
    if tpu:
        device = "TPU"
    elif gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"{len(gpus)} x {details.get('device_name', 'GPU')}"
    else:
        device = "CPU"
    if precision == "auto":
        if tpu or (gpus and min(_capability(g) for g in gpus) >= (8, 0)):
            precision = "bf16"
        elif gpus:
            precision = "fp16"
        else:
            precision = "fp32"
    jit = xla == "on" or (xla == "auto" and (tpu or bool(gpus)))
    return precision, jit, device


def apply(precision: str) -> None:
    """Set the tf_keras global policy (before the model is built)."""
    tf_keras.mixed_precision.set_global_policy(POLICIES[precision])
