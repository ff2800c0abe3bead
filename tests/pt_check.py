"""Run in the PyTorch venv (``.venv-pt``): load exported folders with transformers 5, write results.

``python tests/pt_check.py OUT.npz PT_DIR TF_DIR IDS...``: logits of ``PT_DIR`` and of ``TF_DIR``
loaded the same way (the TF-format trap), the loading report, state-dict names, a pipeline sample.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
from transformers import GPT2LMHeadModel, pipeline


def logits(folder: str, ids: list[int]) -> tuple[np.ndarray, dict]:
    model, info = GPT2LMHeadModel.from_pretrained(folder, output_loading_info=True)
    model.eval()
    with torch.no_grad():
        out = model(torch.tensor([ids])).logits.numpy()
    return out, {k: sorted(map(str, v)) for k, v in info.items()}, model


def main() -> None:
    out_path, pt_dir, tf_dir, *ids = sys.argv[1:]
    ids = [int(i) for i in ids]
    pt_logits, pt_info, model = logits(pt_dir, ids)
    tf_logits, tf_info, _ = logits(tf_dir, ids)
    gen = pipeline("text-generation", model=pt_dir)
    text = gen("България е", max_new_tokens=12, do_sample=False)[0]["generated_text"]
    report = {"pt_info": pt_info, "tf_info": tf_info, "state_dict": sorted(model.state_dict()),
              "tied": model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(),
              "text": text}
    np.savez(out_path, pt=pt_logits, tf=tf_logits, report=json.dumps(report))


if __name__ == "__main__":
    main()
