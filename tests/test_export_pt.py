"""``make export-pt``: a TF run folder -> PyTorch-format folder that transformers 5 loads for real.

The PyTorch side runs in the separate ``.venv-pt`` (torch 2.13 CPU + transformers 5), built by
``make test``; the main venv never imports torch.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from bench.train import PT_PYTHON
from tests.tinymodel import build_tiny_model
from tests.util import ROOT, run_module, unavailable, write_config

IDS = [5, 17, 300, 42, 7, 999, 0, 123]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, fixtures) -> Path:
    """A config whose run ``tiny`` has a final/ folder written by TF ``save_pretrained``."""
    root = tmp_path_factory.mktemp("export")
    write_config(root, {"paths": {"artifacts": str(root / "artifacts")}, "train": {"size": "tiny"}})
    build_tiny_model(root / "artifacts" / "runs" / "tiny" / "final", fixtures)
    return root


def _pt_python() -> Path:
    if not PT_PYTHON.exists():
        unavailable(str(PT_PYTHON), "run `make test`: it builds the PyTorch venv")
    return PT_PYTHON


def test_export_matches_tf_logits_in_transformers5(run_dir):
    config = run_dir / "pipelines.toml"
    done = run_module("tftrain.export_pt", "--run", "tiny", config=config)
    assert done.returncode == 0, done.stderr
    final, pt = run_dir / "artifacts/runs/tiny/final", run_dir / "artifacts/runs/tiny/pt"
    with safe_open(pt / "model.safetensors", "np") as fh:
        assert fh.metadata() == {"format": "pt"}
        names = set(fh.keys())
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.json",
                 "merges.txt", "special_tokens_map.json"):
        assert (pt / name).is_file(), name

    out = run_dir / "pt_check.npz"
    check = subprocess.run([str(_pt_python()), str(ROOT / "tests" / "pt_check.py"), str(out),
                            str(pt), str(final), *map(str, IDS)],
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr[-3000:]
    got = np.load(out)
    report = json.loads(str(got["report"]))

    import tensorflow as tf
    from transformers import TFAutoModelForCausalLM

    tf_model = TFAutoModelForCausalLM.from_pretrained(final)
    reference = tf_model(tf.constant([IDS]), training=False).logits.numpy()

    # the export: every weight loaded, names are transformers 5's own, logits identical
    assert report["pt_info"] == {"missing_keys": [], "unexpected_keys": [],
                                 "mismatched_keys": [], "error_msgs": []}
    assert set(report["state_dict"]) == names | {"lm_head.weight"}
    assert report["tied"]
    assert np.abs(got["pt"] - reference).max() < 1e-4
    assert report["text"].startswith("България е") and len(report["text"]) > len("България е")
    # the trap the export exists for: the TF-format folder loads "fine" with random weights
    assert report["tf_info"]["missing_keys"]
    assert np.abs(got["tf"] - reference).max() > 1e-2


def test_export_refuses_missing_run_and_pt_input(run_dir, tmp_path):
    config = run_dir / "pipelines.toml"
    done = run_module("tftrain.export_pt", "--run", "nosuch", config=config)
    assert done.returncode == 2
    assert "artifacts/runs/nosuch/final" in done.stderr and len(done.stderr.strip().splitlines()) == 1

    pt = run_dir / "artifacts/runs/tiny/pt"
    if not pt.is_dir():
        assert run_module("tftrain.export_pt", "--run", "tiny", config=config).returncode == 0
    out = tmp_path / "again"
    done = run_module("tftrain.export_pt", "--src", str(pt), "--out", str(out), config=config)
    assert done.returncode == 2 and "already holds PyTorch-format" in done.stderr
    assert not out.exists()
