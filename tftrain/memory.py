"""Estimate the training memory of a GPT-2 before it is allocated.

Bytes per part, for P parameters, micro-batch b, block s, width h, heads a, layers L, vocab V,
compute element size e (4 for fp32, 2 for bf16/fp16):

- weights: 4P (float32 variables, also under mixed precision) + 2P under mixed precision for the
  16-bit copies the casts make and the backward pass keeps; with ``recompute`` a block's copies
  are made again when its gradient is needed, so only the embeddings' and one block's are kept;
- gradients: 4P, plus another 4P for the accumulator when ``accumulate > 1``;
- optimizer state: AdamW 8P (m and v); Adafactor (``optim.FactoredAdafactor``) the factored second
  moment only: rows + columns of each matrix, the full vector for 1-D weights (well under 1% of 4P
  for GPT-2; tf_keras' own Adafactor would add a full-size 4P slot);
- activations, per transformer block: ``b*s*(34*h + 5*a*s) * e/2`` bytes, the estimate of Korthikanti
  et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", eq. 2) written for
  16-bit and scaled by the element size; plus the embedding output ``b*s*h*e`` and the logits:
  ``b*s*V*(e + 8)`` (logits, their float32 copy for the loss and its gradient; ``b*s*V*8`` in fp32).
  With ``recompute`` a block keeps only its input ``b*s*h*e`` and one block's full activations
  exist at a time during the backward pass.

It is an estimate: allocator slack, XLA buffers and temporaries are not counted; add 10-20%.
"""

from __future__ import annotations

from typing import Any

GIB = 1024**3
PRECISIONS = ("fp32", "bf16", "fp16")
OPTIMIZERS = ("adamw", "adafactor")


def param_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Every GPT-2 weight by its PyTorch name, with the PyTorch shape (lm_head is tied to wte)."""
    h, v, n = config.n_embd, config.vocab_size, config.n_positions
    inner = getattr(config, "n_inner", None) or 4 * h
    shapes = {"transformer.wte.weight": (v, h), "transformer.wpe.weight": (n, h)}
    for i in range(config.n_layer):
        p = f"transformer.h.{i}."
        shapes.update({
            p + "ln_1.weight": (h,), p + "ln_1.bias": (h,),
            p + "attn.c_attn.weight": (h, 3 * h), p + "attn.c_attn.bias": (3 * h,),
            p + "attn.c_proj.weight": (h, h), p + "attn.c_proj.bias": (h,),
            p + "ln_2.weight": (h,), p + "ln_2.bias": (h,),
            p + "mlp.c_fc.weight": (h, inner), p + "mlp.c_fc.bias": (inner,),
            p + "mlp.c_proj.weight": (inner, h), p + "mlp.c_proj.bias": (h,),
        })
    shapes.update({"transformer.ln_f.weight": (h,), "transformer.ln_f.bias": (h,)})
    return shapes


def _size(shape: tuple[int, ...]) -> int:
    out = 1
    for d in shape:
        out *= d
    return out


def param_count(config: Any) -> int:
    """Number of trainable parameters (the tied lm_head counted once)."""
    return sum(_size(s) for s in param_shapes(config).values())


def _outside_blocks(config: Any) -> int:
    """Parameters outside the transformer blocks: embeddings and the final LayerNorm."""
    return sum(_size(s) for n, s in param_shapes(config).items() if ".h." not in n)


def _adafactor_factored(config: Any) -> int:
    total = 0
    for shape in param_shapes(config).values():
        total += sum(shape) if len(shape) >= 2 else _size(shape)
    return total


def estimate(config: Any, batch_size: int, block_size: int, precision: str = "fp32",
             optimizer: str = "adamw", recompute: bool = False, accumulate: int = 1) -> dict:
    """Bytes for weights, gradients, optimizer state, activations and their total.

    ``batch_size`` is the micro-batch held in memory at once (one step of ``accumulate``).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    p = param_count(config)
    e = 4 if precision == "fp32" else 2
    b, s, h, a = batch_size, block_size, config.n_embd, config.n_head
    block_params = p - _outside_blocks(config)
    kept_copies = p - block_params + block_params // config.n_layer if recompute else p
    weights = 4 * p + (2 * kept_copies if e == 2 else 0)
    gradients = 4 * p * (2 if accumulate > 1 else 1)
    opt_state = 8 * p if optimizer == "adamw" else 4 * _adafactor_factored(config)
    block_full = b * s * (34 * h + 5 * a * s) * e // 2
    block_input = b * s * h * e
    # recompute: every block keeps its input; one block is rebuilt in full during backward
    blocks = config.n_layer * (block_input if recompute else block_full) + (
        block_full if recompute else 0)
    logits = b * s * config.vocab_size * (e + 8 if e == 2 else 8)
    activations = blocks + block_input + logits
    total = weights + gradients + opt_state + activations
    return {"params": p, "weights": weights, "gradients": gradients, "optimizer": opt_state,
            "activations": activations, "total": total, "precision": precision,
            "optimizer_name": optimizer, "recompute": recompute, "batch_size": b,
            "block_size": s, "accumulate": accumulate}


def format_estimate(d: dict) -> str:
    """A few lines in GiB, for printing before training."""
    def gib(n: int) -> str:
        return f"{n / GIB:8.2f} GiB"

    head = (f"memory estimate: {d['params'] / 1e6:.1f}M parameters, {d['precision']}, "
            f"{d['optimizer_name']}, micro-batch {d['batch_size']} x block {d['block_size']}"
            + (f", accumulate {d['accumulate']}" if d["accumulate"] > 1 else "")
            + (", recompute" if d["recompute"] else ""))
    rows = [("weights", d["weights"]), ("gradients", d["gradients"]),
            ("optimizer state", d["optimizer"]), ("activations", d["activations"]),
            ("total (+10-20% slack)", d["total"])]
    return "\n".join([head] + [f"  {name:<22}{gib(n)}" for name, n in rows])


def peak_bytes() -> tuple[int, str]:
    """The memory peak so far and what it is: the first GPU's allocator peak, else peak RSS.

    On a CPU the process's peak resident size also holds the TensorFlow runtime and the data
    pipeline; subtract ``resident_bytes()`` taken before the model was built to compare with
    ``estimate``.
    """
    import resource

    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return tf.config.experimental.get_memory_info("GPU:0")["peak"], "GPU allocator peak"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "process peak RSS"


def resident_bytes() -> int:
    """This process's resident memory now (Linux)."""
    import os

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
