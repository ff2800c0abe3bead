"""``bench.quality`` reduced: real Bulgarian text, both frameworks, a few steps."""

from __future__ import annotations

import json
import math

import pytest

from bench import quality, report
from bench.train import PT_PYTHON
from tests.util import unavailable

FIXTURE = ("bg_text", "hack_the_fake_news", "FN_Validation_Set.jsonl")


def _pt_venv() -> None:
    if not PT_PYTHON.exists():
        unavailable(str(PT_PYTHON), "run `make test`: it builds the PyTorch venv")


def test_reduced_run_both_frameworks_learn(fixtures, tmp_path):
    _pt_venv()
    out, png = tmp_path / "quality.json", tmp_path / "quality.png"
    quality.main(["--fixture", str(fixtures.joinpath(*FIXTURE)), "--docs", "150", "--vocab", "1000",
                  "--steps", "6", "--eval-every", "3", "--models", "tiny", "--seeds", "0",
                  "--lr", "1e-3", "--warmup-steps", "2", "--valid-blocks", "8", "--out", str(out),
                  "--png", str(png)])
    result = json.loads(out.read_text(encoding="utf-8"))
    (figure,) = result["figures"]
    assert figure["unit"] == "bits/byte" and "tiny" in figure["figure"]
    assert figure["ratio"] == pytest.approx(figure["value"] / figure["peer_value"], rel=1e-3)
    valid = result["data"]["valid"]
    assert valid["tokens"] == 8 * quality.BLOCK and valid["bytes"] > valid["tokens"]
    run = result["runs"]["tiny"]["0"]
    assert run["tf"]["params"] == run["torch"]["params"]
    curve = run["curve"]
    assert [p["step"] for p in curve] == [0, 3, 6]
    for side in ("tf", "torch"):
        assert curve[-1][f"{side}_loss"] < curve[0][f"{side}_loss"] - 0.05, (side, curve)
        # the same initialisation scheme: both start near a uniform guess over the vocabulary
        assert curve[0][f"{side}_loss"] == pytest.approx(math.log(1000), abs=0.1)
        assert curve[-1][f"{side}_bpb"] == pytest.approx(
            curve[-1][f"{side}_loss"] * valid["tokens"] / math.log(2) / valid["bytes"])
    assert png.read_bytes()[:4] == b"\x89PNG"
    lines = report.render([out]).split("\n## ", 1)[1].splitlines()  # its section under the table
    assert lines[0].startswith("Quality per step") and len(lines) == 2 + 2 + 3
    assert lines[-1].startswith("| tiny | 6 |")


def test_same_weights_and_blocks_give_the_same_losses_step_by_step(tmp_path):
    """Both sides of the benchmark start from one set of weights (the trainer's init, saved and
    exported to PyTorch's format) and train 4 steps on the same blocks: the schedule, AdamW with
    its decay groups, clipping and the loss are the same update rule when every step's training
    loss and validation nats agree to float32 rounding (they drift apart only by rounding)."""
    _pt_venv()
    import numpy as np
    import tf_keras
    from transformers import GPT2Config

    from common.config import SCHEMA
    from tftrain import export_pt
    from tftrain.model import build_model

    vocab, steps, batch = 300, 4, 4
    arch = quality.MODELS["tiny"]
    tf_keras.utils.set_random_seed(5)
    net = build_model(GPT2Config(**arch, vocab_size=vocab, n_positions=quality.BLOCK,
                                 resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False))
    net.save_pretrained(tmp_path / "tf", safe_serialization=True)
    export_pt.export(tmp_path / "tf", tmp_path / "pt")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.integers(0, vocab, (steps, batch, quality.BLOCK + 1)))
    np.save(tmp_path / "valid.npy", rng.integers(0, vocab, (batch, quality.BLOCK + 1)))
    train = {k: SCHEMA["train"][k].default for k in quality.HYPER}
    train.update(lr=3e-3, min_lr=3e-4, warmup_steps=2, clip_norm=0.5)  # warm-up, decay, clipping
    spec = {"model": arch, "vocab_size": vocab, "seed": 0, "batch": batch, "steps": steps,
            "eval_every": 1, "threads": 1, "xla": False, "hyper": train,
            "lrs": quality.learning_rates(train, steps), "train": str(tmp_path / "train.npy"),
            "valid": str(tmp_path / "valid.npy"),
            "init": {"tf": str(tmp_path / "tf"), "pt": str(tmp_path / "pt")}}
    out = quality.run_pair(tmp_path / "pair", spec)
    ours, theirs = out["tf"]["curve"], out["torch"]["curve"]
    assert [c["step"] for c in ours] == [c["step"] for c in theirs] == list(range(steps + 1))
    assert out["tf"]["first_loss"] == pytest.approx(out["torch"]["first_loss"], rel=1e-5)
    for a, b in zip(ours, theirs, strict=True):
        assert a["valid_nats"] == pytest.approx(b["valid_nats"], rel=1e-4), (a, b)
        if "train_loss" in a:
            assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4), (a, b)
    # and training moved the weights: the step-4 validation differs from the start
    assert abs(ours[-1]["valid_nats"] - ours[0]["valid_nats"]) > 1e-3 * ours[0]["valid_nats"]
