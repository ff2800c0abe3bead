"""Run in the PyTorch venv (``.venv-pt``): write GPT-2 folders as transformers 5 saves them.

``python tests/pt_gpt2.py SPEC.json``: SPEC is ``{"ids": [...], "folders": {path: options}}``;
each folder gets a seeded ``GPT2LMHeadModel`` (options: vocab, layers, embd, heads, positions,
dtype fp32|fp16|bf16, shard_kb, lm_head (store the tied head too), bare (a ``GPT2Model``'s
names without ``transformer.``, with the old causal-mask buffers ``h.N.attn.bias``), upcast
(``reorder_and_upcast_attn``, with the eager attention, the only one that honours it)) and
``logits.npy`` beside it: the logits on ``ids`` of the weights as saved, computed in float32.
``python tests/pt_gpt2.py --logits OUT.npy FOLDER IDS...``: logits of a saved folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2LMHeadModel

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def make(folder: Path, ids: list[int], vocab: int, layers: int, embd: int, heads: int,
         positions: int, dtype: str = "fp32", shard_kb: int = 0, lm_head: bool = False,
         bare: bool = False, upcast: bool = False, seed: int = 0) -> None:
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocab, n_layer=layers, n_embd=embd, n_head=heads,
                        n_positions=positions, bos_token_id=0, eos_token_id=0, pad_token_id=0,
                        reorder_and_upcast_attn=upcast)
    if upcast:
        config._attn_implementation = "eager"
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # non-trivial LayerNorms and biases, so every tensor matters
        for name, param in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                param.add_(torch.randn_like(param) * 0.1)
    model = model.to(DTYPES[dtype])
    with torch.no_grad():
        logits = model.float()(torch.tensor([ids])).logits.numpy()
    np.save(folder.parent / f"{folder.name}-logits.npy", logits)
    model.to(DTYPES[dtype]).save_pretrained(folder, max_shard_size=f"{shard_kb}KB" if shard_kb
                                            else "5GB")
    if lm_head or bare:
        path = folder / "model.safetensors"
        state = load_file(path)
        if lm_head:
            state["lm_head.weight"] = state["transformer.wte.weight"].clone()
        if bare:
            state = {k.removeprefix("transformer."): v for k, v in state.items()}
            for i in range(layers):
                state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, positions, positions))
        save_file(state, path, metadata={"format": "pt"})


def main() -> None:
    if sys.argv[1] == "--logits":
        out, folder, *ids = sys.argv[2:]
        model = GPT2LMHeadModel.from_pretrained(folder).eval()
        with torch.no_grad():
            np.save(out, model(torch.tensor([[int(i) for i in ids]])).logits.numpy())
        return
    spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    for folder, options in spec["folders"].items():
        make(Path(folder), spec["ids"], **options)


if __name__ == "__main__":
    main()
