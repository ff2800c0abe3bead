"""The two sides of ``bench.quality``, each in its own process: the trainer's step (TensorFlow) and a
plain PyTorch GPT-2 loop (in the PyTorch venv ``.venv-pt``), on the blocks and schedule of a spec.

    python -m bench.quality_sides tf|torch SPEC.json     (writes tf.json / torch.json beside it)
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import tftrain  # noqa: F401 (sets TensorFlow's environment: tftrain.tfsetup; no TensorFlow import)
from common.atomic import atomic_write
from common.formats import BLOCK_SIZES

BLOCK = BLOCK_SIZES["tiny"]


def _evaluate(nats_of, valid, batch: int) -> float:
    return sum(nats_of(valid[i:i + batch]) for i in range(0, len(valid), batch))


def _loop(spec: dict, step, nats_of, valid) -> dict:
    """``steps`` training steps; the validation nats at step 0 and every ``eval_every``."""
    curve = [{"step": 0, "valid_nats": _evaluate(nats_of, valid, spec["batch"])}]
    losses, times = [], []
    for k in range(1, spec["steps"] + 1):
        start = time.perf_counter()
        losses.append(step(k - 1))
        times.append(time.perf_counter() - start)
        if k % spec["eval_every"] == 0 or k == spec["steps"]:
            window = losses[curve[-1]["step"]:]
            curve.append({"step": k, "valid_nats": _evaluate(nats_of, valid, spec["batch"]),
                          "train_loss": statistics.fmean(window)})
            print(f"step {k}/{spec['steps']}: train loss {curve[-1]['train_loss']:.4f}, "
                  f"{statistics.median(times):.3f} s/step", file=sys.stderr, flush=True)
    return {"curve": curve, "median_step_s": statistics.median(times), "first_loss": losses[0]}


def tf_worker(spec: dict) -> dict:
    """The trainer's step (``bench.train.trainer_step``) on the model ``tftrain.model`` builds."""
    import numpy as np
    import tensorflow as tf
    import tf_keras
    from transformers import GPT2Config

    from bench.train import trainer_step
    from tftrain import model as tfmodel

    tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(1)
    arch = dict(spec["model"], vocab_size=spec["vocab_size"], n_positions=BLOCK)
    tf_keras.utils.set_random_seed(spec["seed"])
    if spec.get("init"):  # the same starting weights on both sides (a TF and a PyTorch folder)
        from tftrain import runs

        net = runs.load_hf_model(Path(spec["init"]["tf"]))
    else:
        net = tfmodel.build_model(GPT2Config(**arch, resid_pdrop=0.0, embd_pdrop=0.0,
                                             attn_pdrop=0.0, use_cache=False))
    blocks = np.load(spec["train"])
    data = tf.data.Dataset.from_tensor_slices((blocks[..., :-1], blocks[..., 1:]))
    step, info = trainer_step(arch, spec["batch"], BLOCK, "fp32", spec["xla"], net=net, data=data,
                              max_steps=spec["steps"], **spec["hyper"])
    nats = tf.function(lambda x, y: tfmodel.token_loss(net, x, y, training=False)[0])
    result = _loop(spec, lambda k: step(), lambda b: float(nats(b[:, :-1], b[:, 1:])),
                   np.load(spec["valid"]))
    return {**info, **result, "xla": spec["xla"]}


def torch_worker(spec: dict) -> dict:
    """transformers 5 ``GPT2LMHeadModel``, ``torch.optim.AdamW``, the same lr at every step."""
    import numpy as np
    import torch
    import transformers
    from torch.nn import functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    h = spec["hyper"]
    if spec.get("init"):
        net = GPT2LMHeadModel.from_pretrained(spec["init"]["pt"], use_cache=False)
    else:
        net = GPT2LMHeadModel(GPT2Config(**spec["model"], vocab_size=spec["vocab_size"],
                                         n_positions=BLOCK, resid_pdrop=0.0, embd_pdrop=0.0,
                                         attn_pdrop=0.0, use_cache=False))
    params = list(net.parameters())  # the tied head once
    opt = torch.optim.AdamW([{"params": [p for p in params if p.ndim >= 2]},
                             {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}],
                            lr=spec["lrs"][0], betas=(h["beta1"], h["beta2"]), eps=h["eps"],
                            weight_decay=h["weight_decay"])
    blocks = torch.from_numpy(np.load(spec["train"])).long()

    def step(k: int) -> float:
        net.train()
        for group in opt.param_groups:
            group["lr"] = spec["lrs"][k]
        x, y = blocks[k, :, :-1], blocks[k, :, 1:]
        logits = net(input_ids=x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if h["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(params, h["clip_norm"])
        opt.step()
        return loss.item()

    @torch.no_grad()
    def nats(b) -> float:
        net.eval()
        b = torch.from_numpy(b).long()
        logits = net(input_ids=b[:, :-1]).logits.float()
        return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), b[:, 1:].reshape(-1),
                                     reduction="sum"))

    result = _loop(spec, step, nats, np.load(spec["valid"]))
    return {"framework": f"torch {torch.__version__} + transformers {transformers.__version__}",
            "attention": net.config._attn_implementation,
            "params": sum(p.numel() for p in params), **result}


def worker(spec_path: Path, side: str) -> None:
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    result = tf_worker(spec) if side == "tf" else torch_worker(spec)
    with atomic_write(spec_path.with_name(f"{side}.json")) as fh:
        json.dump(result, fh)



def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.quality_sides", description=__doc__)
    parser.add_argument("side", choices=["tf", "torch"])
    parser.add_argument("spec", type=Path)
    args = parser.parse_args(argv)
    worker(args.spec, args.side)


if __name__ == "__main__":
    main()
