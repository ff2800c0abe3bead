"""Multi-worker training on 127.0.0.1 (CPU): two ``python -m tftrain.train`` workers with
``TF_CONFIG`` against one process on the same global batch, and the per-worker input sharding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.train_fixtures import make_workspace, train_config
from tests.util import ROOT, free_port, run_module

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# tiny model, deterministic, no dropout; buffer_size = 1 (no shuffle) so that the two workers'
# DATA shards (blocks 0, 2, 4, ... and 1, 3, 5, ...) batched by 4 hold exactly the blocks of the
# single process's batches of 8: the same global batches, summed in another order. min_lr = lr:
# a schedule that does not depend on max_steps, so one 12-step run matches runs of 6 then 12.
TOL = 1e-4
SETTINGS = dict(deterministic=True, dropout=0.0, buffer_size=1, warmup_steps=2, lr=2e-3,
                min_lr=2e-3,
                eval_every=1000, checkpoint_every=1000, log_every=3, sample_tokens=4)


def _start(config: Path, run: str, dump: Path, *args: str, tf_config: dict | None = None,
           tmpdir: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("TF_CONFIG", None)
    if tf_config:
        env["TF_CONFIG"] = json.dumps(tf_config)
    if tmpdir:
        env["TMPDIR"] = str(tmpdir)
    return subprocess.Popen([sys.executable, "-m", "tftrain.train", "--config", str(config),
                             "--run", run, "--dump-weights", str(dump), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    try:
        for proc in procs:
            outs.append(proc.communicate(timeout=300)[0])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for proc, out in zip(procs, outs, strict=True):
        assert proc.returncode == 0, out[-3000:]
    return outs


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as npz:
        return dict(npz)


def _records(run: Path, kind: str) -> dict[int, dict]:
    lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["step"]: r for r in map(json.loads, lines) if r["kind"] == kind}


@pytest.fixture(scope="module")
def ws(tmp_path_factory, fixtures) -> Path:
    # one shard file a split: DATA sharding (TF's FILE policy would fail with 1 file < 2 workers)
    return make_workspace(tmp_path_factory.mktemp("mw"), fixtures, shard_tokens=10_000_000)


def test_two_workers_match_one_process_and_resume_from_the_chief(ws, tmp_path):
    """Two workers x batch 4 run 6 steps, then are re-run to 12 (both resume from the chief's
    ckpt-6 by skipping the data read so far); one process x batch 8 runs 12 steps.

    The workers end bit-identical: the all-reduce hands both the same sums. Against the single
    process the gradients are the same numbers summed in another order (two partial sums of 4
    sequences, then the ring all-reduce): float32 rounding, ~1e-7 relative. Losses and gradient
    norms therefore agree to ~1e-6. Weights less so: AdamW divides each gradient by its own RMS,
    so a near-zero gradient born of cancellation (rounding error large relative to it) moves its
    weight by up to lr (2e-3) a step either way; the largest weight difference measured after 12
    steps was 1.1e-5, while steps 7-12 alone move weights by up to 1.2e-2. TOL = 1e-4 sits 9x
    above the one and 100x below the other. Other data in a global batch (a worker training on its
    own 4 blocks, a lost or doubled replica) changes weights by about a step (~1e-3) and losses
    by ~1e-2; a wrong gradient scale shows in the gradient norms (Adam itself would hide it).
    """
    config = train_config(ws, **SETTINGS)
    first = free_port(2)
    ports = [first, first + 1]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    runs = ws / "artifacts" / "runs"
    temps = [tmp_path / "tmp0", tmp_path / "tmp1"]
    for t in temps:
        t.mkdir()
    outs = {}
    for steps in (6, 12):
        extra = ("--set", f"train.max_steps={steps}")
        procs = [_start(config, "mw", tmp_path / f"w{i}-{steps}.npz", *extra,
                        "--set", "train.batch_size=4", tmpdir=temps[i],
                        tf_config={"cluster": cluster, "task": {"type": "worker", "index": i}})
                 for i in (0, 1)]
        if steps == 6:
            procs.append(_start(config, "single", tmp_path / "single-12.npz",
                                "--set", "train.max_steps=12", "--set", "train.batch_size=8"))
        outs[steps] = _finish(procs)
    w0, w1, single = outs[6]
    assert "workers: 2 (worker 0, chief); input sharding DATA (1 train shard files)" in w0
    assert "workers: 2 (worker 1); input sharding DATA" in w1
    assert "global batch 8 (4 x 1 accumulated x 2 replicas)" in w0
    assert "global batch 8 (8 x 1 accumulated x 1 replicas)" in single
    for out in outs[12][:2]:
        assert "resuming run mw from ckpt-6 (step 6" in out

    mw = runs / "mw"
    ckpts = sorted(p.name for p in (mw / "checkpoints").glob("ckpt-*.index"))
    assert ckpts == ["ckpt-12.index", "ckpt-6.index"]
    assert (mw / "final" / "model.safetensors").is_file()
    assert [list(t.iterdir()) for t in temps] == [[], []]  # worker 1's folder was deleted
    assert json.loads((mw / "run.json").read_text())["data"]["replicas"] == 2

    a, b, one = (_load(tmp_path / f"{n}-12.npz") for n in ("w0", "w1", "single"))
    start = _load(tmp_path / "w0-6.npz")
    assert a.keys() == b.keys() == one.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    diff = max(float(np.abs(a[n] - one[n]).max()) for n in a)
    moved = max(float(np.abs(one[n] - start[n]).max()) for n in a)
    print(f"max |two workers - one process| = {diff:.2e}; steps 7-12 moved weights {moved:.2e}")
    assert diff < TOL and moved > 10 * TOL
    for kind, steps in (("train", [3, 6, 9, 12]), ("valid", [12])):  # valid: at each run's end
        ours, theirs = _records(mw, kind), _records(runs / "single", kind)
        assert sorted(theirs) == steps and set(steps) <= set(ours)
        for step in steps:
            record = ours[step]
            assert record["loss"] == pytest.approx(theirs[step]["loss"], abs=TOL), (kind, step)
            if kind == "train":
                assert record["grad_norm"] == pytest.approx(theirs[step]["grad_norm"], rel=TOL)
            assert record.get("tokens") == theirs[step].get("tokens")  # whole valid split


@pytest.mark.parametrize("files", [1, 3])
def test_each_worker_reads_its_share_of_the_blocks(tmp_path, files):
    """The two workers' streams (FILE with 3 files, DATA with 1) are disjoint and together hold
    every block; each repeats forever, so both can run any fixed number of steps."""
    import tensorflow as tf

    from tftrain import data

    block, per_file = 4, 12  # each file: 12 x 4 ids = 11 records of block + 1
    shards = []
    for f in range(files):
        ids = np.arange(f * 1000, f * 1000 + per_file * block, dtype=np.uint16)
        path = tmp_path / f"shard-{f}.bin"
        ids.tofile(path)
        shards.append((str(path), ids.size))
    blocks = (per_file - 1) * files
    assert data.shard_policy(files, 2) == ("FILE" if files >= 2 else "DATA")
    seen = []
    for i in (0, 1):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                         num_replicas_in_sync=2)
        ds = data.train_dataset(shards, "uint16", block, 1, 1, 0, ctx)
        firsts = [int(x[0, 0]) for x, _ in ds.take(3 * blocks)]  # several passes
        mine = set(firsts)
        assert len(firsts) == 3 * blocks and len(mine) < blocks
        seen.append(mine)
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == blocks


def test_bad_distribution_settings_fail_in_one_line(ws):
    """A TPU strategy without a TPU, and a malformed TF_CONFIG: one line, exit 2, no run folder."""
    config = train_config(ws, max_steps=2)
    cases = [((), {"TF_CONFIG": "{not json"}, "TF_CONFIG: malformed"),
             (("--set", 'train.strategy="tpu"'), {}, "needs train.tpu")]
    for args, env, message in cases:
        proc = run_module("tftrain.train", "--config", str(config), "--run", "bad", *args,
                          env=env)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-2000:]
        assert lines[0].startswith("error: ") and message in lines[0], lines
    assert not (ws / "artifacts" / "runs" / "bad").exists()
