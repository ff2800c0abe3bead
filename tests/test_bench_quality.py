"""``bench.quality`` reduced: real Bulgarian text, both frameworks, a few steps."""

from __future__ import annotations

import json
import math
import os

import pytest

from bench import quality, report
from bench.train import PT_PYTHON

FIXTURE = ("bg_text", "hack_the_fake_news", "FN_Validation_Set.jsonl")


def _pt_venv() -> None:
    if not PT_PYTHON.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{PT_PYTHON} missing under CI")
        pytest.skip(f"{PT_PYTHON} not built: run `make test` (it builds the PyTorch venv)")


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
