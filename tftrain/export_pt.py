"""Write a PyTorch-format copy of a trained run: ``make export-pt RUN=tiny`` -> ``runs/<run>/pt/``.

TensorFlow's ``save_pretrained`` writes safetensors with TF names (``transformer/h_._0/attn/c_attn/
weight:0``), (1, n)-shaped biases and metadata format "tf". transformers 5 (PyTorch only) loads such
a file without an error and hands back randomly initialised weights. This export renames every
tensor to the PyTorch name, squeezes the biases and writes metadata format "pt". GPT-2's Conv1D
stores weights as (in, out) in both frameworks, so nothing is transposed; ``lm_head.weight`` is tied
to ``transformer.wte.weight`` and is not stored. TensorFlow and torch are not imported: the tensors
are read from the saved folder (safetensors, sharded or not, or ``tf_model.h5``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from common import config as cfglib
from common.atomic import atomic_dir
from common.errors import UserError, cli_main
from common.formats import ATTRIBUTION
from tftrain import logs, runs
from tftrain.memory import param_shapes

COPY = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json", "README.md",
        ATTRIBUTION)
_LAYER = re.compile(r"h_\._(\d+)")


def pt_name(tf_name: str) -> str:
    """``transformer/h_._0/ln_1/gamma:0`` -> ``transformer.h.0.ln_1.weight``."""
    name = re.sub(r":\d+$", "", tf_name)
    name = _LAYER.sub(r"h.\1", name)
    # strip a leading model scope ("tfgpt2lm_head_model/transformer/...") if the file has one
    name = name[name.index("transformer/"):] if "transformer/" in name else name
    name = name.replace("/", ".")
    for tf_part, pt_part in ((".gamma", ".weight"), (".beta", ".bias"), (".embeddings", ".weight")):
        if name.endswith(tf_part):
            name = name[: -len(tf_part)] + pt_part
    return name


def read_tf_weights(folder: Path) -> dict[str, np.ndarray]:
    """Every tensor of a TF ``save_pretrained`` folder, by its TF name."""
    from safetensors.numpy import load_file

    index = folder / "model.safetensors.index.json"
    single = folder / "model.safetensors"
    h5 = folder / "tf_model.h5"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        out: dict[str, np.ndarray] = {}
        for name in files:
            out.update(load_file(folder / name))
        return out
    if single.is_file():
        return load_file(single)
    if h5.is_file():
        import h5py

        out = {}
        with h5py.File(h5, "r") as fh:
            fh.visititems(lambda n, obj: out.__setitem__(n, obj[()])
                          if isinstance(obj, h5py.Dataset) else None)
        return out
    raise UserError(f"no TensorFlow weights in {folder} (model.safetensors or tf_model.h5)")


def _metadata(folder: Path) -> dict:
    path = folder / "model.safetensors"
    if not path.is_file():
        return {}
    from safetensors import safe_open

    with safe_open(path, "np") as fh:
        return fh.metadata() or {}


def convert(tf_weights: dict[str, np.ndarray], config) -> dict[str, np.ndarray]:
    """TF tensors -> PyTorch ``GPT2LMHeadModel`` state dict (checked against the config's shapes)."""
    expected = param_shapes(config)
    out: dict[str, np.ndarray] = {}
    for name, array in tf_weights.items():
        new = pt_name(name)
        if new not in expected:
            raise UserError(f"unexpected TF weight {name!r} (-> {new!r}) for a GPT-2 of this config")
        array = np.ascontiguousarray(array.reshape(expected[new]) if array.ndim == 2
                                     and array.shape[0] == 1 and len(expected[new]) == 1 else array)
        if array.shape != expected[new]:
            raise UserError(f"weight {name!r} has shape {array.shape}, expected {expected[new]}")
        out[new] = array
    missing = sorted(set(expected) - set(out))
    if missing:
        raise UserError(f"{len(missing)} GPT-2 weights missing from the TF checkpoint, e.g. "
                        f"{missing[0]!r}")
    return out


def export(src: Path, dst: Path) -> dict:
    """Write the PyTorch-format folder ``dst`` from the TF folder ``src``; returns a summary."""
    from safetensors.numpy import save_file
    from transformers import GPT2Config

    if not (src / "config.json").is_file():
        raise UserError(f"no Hugging Face model folder at {src} (config.json missing)")
    if _metadata(src).get("format") == "pt":
        raise UserError(f"{src} already holds PyTorch-format weights; nothing to convert")
    config = GPT2Config.from_pretrained(src)
    state = convert(read_tf_weights(src), config)
    with atomic_dir(dst) as tmp:
        save_file(state, tmp / "model.safetensors", metadata={"format": "pt"})
        for name in COPY:
            if (src / name).is_file():
                shutil.copy2(src / name, tmp / name)
    return {"tensors": len(state), "params": sum(a.size for a in state.values()),
            "bytes": (dst / "model.safetensors").stat().st_size}


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tftrain.export_pt", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    cfglib.add_config_args(parser)
    parser.add_argument("--run", help="run name (default: train.run_name or train.size)")
    parser.add_argument("--src",
                        help="TF model folder or run folder (default: artifacts/runs/<run>/final)")
    parser.add_argument("--out", help="output folder (default: artifacts/runs/<run>/pt)")
    args = parser.parse_args(argv)
    cfg = cfglib.from_args(args)
    src = runs.hf_folder(cfg, args.src, args.run)
    dst = Path(args.out).resolve() if args.out else runs.run_dir(cfg, args.run, "pt")
    summary = export(src, dst)
    rows = [("from", str(src)), ("to", str(dst)), ("tensors", str(summary["tensors"])),
            ("parameters", f"{summary['params']:,}"),
            ("model.safetensors", f"{summary['bytes'] / 2**20:.1f} MiB, format pt"),
            ("load with", f"GPT2LMHeadModel.from_pretrained({str(dst)!r})")]
    logs.print_columns(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
