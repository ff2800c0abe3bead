"""Write a PyTorch-format copy of a trained run: ``make export-pt RUN=tiny`` -> ``runs/<run>/pt/``.

TensorFlow's ``save_pretrained`` writes safetensors with TF names (``transformer/h_._0/attn/c_attn/
weight:0``), (1, n)-shaped biases and metadata format "tf". transformers 5 (PyTorch only) loads such
a file without an error and hands back randomly initialised weights. This export renames every
tensor to the PyTorch name, squeezes the biases and writes metadata format "pt". GPT-2's Conv1D
stores weights as (in, out) in both frameworks, so nothing is transposed; ``lm_head.weight`` is tied
to ``transformer.wte.weight`` and is not stored. TensorFlow and torch are not imported: the tensors
are read from the saved folder (safetensors, sharded or not, or ``tf_model.h5``) by
``tftrain.hf_load``, whose name mapping (``pt_name``) ``--init`` uses the other way.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from common import config as cfglib
from common.atomic import atomic_dir
from common.errors import UserError, cli_main
from common.formats import ATTRIBUTION
from tftrain import hf_load, logs, runs
from tftrain.memory import param_shapes

COPY = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "special_tokens_map.json", "vocab.json", "merges.txt", "added_tokens.json", "README.md",
        ATTRIBUTION)


def convert(tf_tensors, config) -> dict[str, np.ndarray]:
    """TF ``(name, tensor)`` pairs -> PyTorch ``GPT2LMHeadModel`` state dict (names through
    ``hf_load.pt_name``, checked against the config's shapes)."""
    expected = param_shapes(config)
    out: dict[str, np.ndarray] = {}
    for name, array in tf_tensors:
        new = hf_load.pt_name(name)
        if new not in expected:
            raise UserError(f"unexpected TF weight {name!r} (-> {new!r}) for a GPT-2 of this config")
        out[new] = np.ascontiguousarray(hf_load.fit(name, array, expected[new]))
    missing = sorted(set(expected) - set(out))
    if missing:
        raise UserError(f"{len(missing)} GPT-2 weights missing from the TF checkpoint, e.g. "
                        f"{missing[0]!r}")
    return out


def export(src: Path, dst: Path) -> dict:
    """Write the PyTorch-format folder ``dst`` from the TF folder ``src``; returns a summary."""
    from safetensors.numpy import save_file

    config = hf_load.check_folder(src)
    if hf_load.file_format(src) == "pt":
        raise UserError(f"{src} already holds PyTorch-format weights; nothing to convert")
    state = convert(hf_load.tensors(src), config)
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
