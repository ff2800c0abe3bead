"""``make bench-gpu``: its in-place detector on variables whose fate is known, the whole
script with ``ARGS=--smoke`` (on the CPU with a tiny model), as ``make`` runs it, and the stop
before the first row when TensorFlow sees no GPU."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from common.errors import UserError
from tests.util import ROOT, run_module


def test_detector_tells_an_update_in_place_from_a_copy():
    """An eager ``assign_add`` with no other reader updates in place; the same with the old
    value still held must copy; a variable read by ``tf.gather`` is copied at every read, so its
    own buffer cannot be seen (the embeddings)."""
    import tensorflow as tf

    from bench.gpu import buffer_moves

    def fresh(name: str):
        return tf.Variable(tf.zeros([256, 64]), name=name)

    alone = fresh("alone")
    assert buffer_moves([alone], lambda: alone.assign_add(tf.ones([256, 64])))["kept"] == ["alone"]

    held, kept = fresh("held"), []
    moves = buffer_moves([held], lambda: (kept.append(held.value()),
                                          held.assign_add(tf.ones([256, 64]))))
    assert moves["moved"] == ["held"] and float(kept[0][0, 0]) == 0.0

    gathered = fresh("gathered")

    @tf.function
    def sparse_step():
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(tf.gather(gathered, [1, 2, 3]))
        gathered.assign_sub(tf.convert_to_tensor(tape.gradient(y, gathered)))

    sparse_step()
    assert buffer_moves([gathered], sparse_step)["copied_on_read"] == ["gathered"]


def test_smoke_run_through_make(tmp_path):
    """``make bench-gpu ARGS=--smoke``: every row runs the trainer's step on the CPU and lands
    in the printed table and the result file, MFU as its formula says for the peak given."""
    from bench import gpu, report

    args = f"--smoke --warmup 1 --steps 2 --peak-tflops 0.5 --out {tmp_path}"
    dry = subprocess.run(["make", "-n", "--no-print-directory", "bench-gpu",
                          f"PY={sys.executable}", f"ARGS={args}"], cwd=ROOT,
                         env={k: v for k, v in os.environ.items()
                              if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "ARGS")},
                         capture_output=True, text=True, check=True)
    command = dry.stdout.strip().splitlines()[-1]
    assert command == f"{sys.executable} -m bench.gpu {args}", command
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_USE_LEGACY_KERAS": "1"}, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(Path(tmp_path / "gpu-cpu-smoke.json").read_text())
    rows = result["rows"]
    assert [(r["kind"], r["precision"], r["xla"]) for r in rows] == [
        ("speed", "bf16", "on"), ("speed", "bf16", "off"), ("speed", "fp16", "on"),
        ("speed", "fp16", "off"), ("memory", "fp32", "off"), ("memory", "fp32", "off")]
    assert [(r["optimizer"], r["recompute"]) for r in rows[4:]] == [("adamw", False),
                                                                  ("adafactor", True)]
    for r in rows:
        assert "error" not in r, r
        assert r["tokens_per_s"] > 0 and math.isfinite(r["loss_last"])
        assert sum(map(len, r["buffers"].values())) == r["weights"] == 16  # 1 layer: 12 + 4
        assert r["flops_per_token"] == 6 * r["params"] + 12 * 1 * 16 * 16
        mfu = r["flops_per_token"] * r["tokens_per_s"] / 0.5e12
        assert f"| {r['kind']} | {gpu.Row.of(r).label()} | {r['tokens_per_s']:,.0f} | " \
            f"{mfu:.1%} |" in done.stdout
    assert result["environment"]["peak_tflops"] == 0.5 and result["environment"]["tensorflow"]
    assert [f["unit"] for f in result["figures"]] == ["tokens/s", "tokens/s", "GiB", "GiB"]
    assert len(report.rows(tmp_path / "gpu-cpu-smoke.json")) == 4  # `make bench` can show it


def test_without_a_gpu_it_says_so_in_one_line():
    if shutil.which("nvidia-smi"):
        pytest.skip("this machine has nvidia-smi: the full run would start")
    done = run_module("bench.gpu", "--out", "/nonexistent")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no NVIDIA GPU" in done.stderr and "ARGS=--smoke" in done.stderr


def test_smoke_model_is_the_one_the_docstring_names():
    from bench import gpu

    doc = " ".join(gpu.__doc__.split())
    assert (f"{gpu.SMOKE_MODEL['n_layer']}-layer, {gpu.SMOKE_MODEL['n_embd']}-wide model "
            f"({gpu.SMOKE_MODEL['vocab_size']}-token vocabulary) at batch {gpu.SMOKE_BATCH} x "
            f"block {gpu.SMOKE_BLOCK}") in doc
    assert {r.size for r in gpu.rows(smoke=True) if r.kind == "speed"} == {"small"}
    assert {r.size for r in gpu.rows() if r.kind == "speed"} == {"small", "medium"}


def test_tensorflow_without_a_gpu_stops_the_run_before_its_first_row():
    """The ``tensorflow`` wheel the lock installs, without its CUDA libraries, lists no GPU: a
    full run stops in its first worker, before any row, with the command the README gives for
    the version the lock pins (this machine has no GPU, so its own TensorFlow shows it)."""
    import tensorflow as tf

    from bench import gpu

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("TensorFlow sees a GPU here")
    pinned = re.search(r"^tensorflow==(\S+)$", (ROOT / "requirements" / "main.lock").read_text(),
                       flags=re.M)[1]
    assert tf.__version__ == pinned
    assert gpu.cuda_install(pinned) in (ROOT / "README.md").read_text(encoding="utf-8")
    env = gpu.environment()
    assert env["gpus"] == 0 and gpu.gpu_missing({**env, "gpus": 1}) is None
    with pytest.raises(UserError) as stopped:
        gpu.run_rows(gpu.rows(), False, Namespace(warmup=1, steps=1))
    line = str(stopped.value)
    assert line == gpu.gpu_missing(env) and "\n" not in line
    assert line.startswith(f"TensorFlow {pinned} sees no GPU") and \
        line.endswith(gpu.cuda_install(pinned))
