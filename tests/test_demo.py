"""`make demo` end to end on the bundled site, with a smaller training budget.

Runs the same ``python -m demo.run`` the Makefile runs (real replay servers, real ``scrapy crawl``
with Chromium, corpus, tokenizer, tiny TF model, eval, generate) and checks each artifact.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re

import pytest

from common.formats import iter_docs
from tests.util import free_port, run_module


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    port = free_port(2)  # the wiki replay's port; the news site takes the next
    proc = run_module("demo.run", "--root", str(root), "--max-steps", "20", "--port", str(port),
                      timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root, proc, port


def test_raw_shards_hold_wiki_and_news_pages_one_via_selenium(demo):
    root, _, _ = demo
    records = {}
    for shard in (root / "data" / "demo" / "raw").glob("*/part-*.jsonl.gz"):
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            for line in fh:
                rec = json.loads(line)
                records[rec["canonical_url"]] = rec
    sources = [r["source"] for r in records.values()]
    assert sources.count("bgwiki") == 30 and sources.count("demo-news") == 14
    assert [r["via"] for r in records.values()].count("selenium") >= 1
    assert all(r["license"] for r in records.values())


def test_corpus_manifest_checksums_match(demo):
    root, _, _ = demo
    corpus = root / "data" / "demo" / "corpus"
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    shards = [s for split in manifest["splits"].values() for s in split["shards"]]
    assert shards
    for shard in shards:
        data = (corpus / shard["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard["sha256"]
    assert (corpus / "ATTRIBUTION.md").is_file()


def test_tokenizer_round_trips_the_valid_split(demo):
    from transformers import AutoTokenizer

    root, _, _ = demo
    tok = AutoTokenizer.from_pretrained(root / "artifacts" / "demo" / "tokenizer")
    docs = [d for shard in sorted((root / "data" / "demo" / "corpus" / "valid").glob("*.txt"))
            for d in iter_docs(shard)]
    assert docs
    for doc in docs:
        assert tok.decode(tok.encode(doc)) == doc


def test_model_generated_and_report_names_every_artifact(demo):
    root, proc, _ = demo
    art = root / "artifacts" / "demo"
    final = art / "runs" / "demo" / "final"
    assert (final / "config.json").is_file() and list(final.glob("*.safetensors"))
    assert json.loads((art / "runs" / "demo" / "eval-test.json").read_text())["loss"] > 0
    report = (art / "REPORT.md").read_text(encoding="utf-8")
    for needle in ("via selenium", "Corpus", "Tokenizer", str(final), "Рила е", "loss.png"):
        assert needle in report, needle
    assert "report      " in proc.stdout and str(art / "REPORT.md") in proc.stdout


def test_report_shows_bits_per_byte_of_validation_and_test(demo):
    root, _, _ = demo
    run = root / "artifacts" / "demo" / "runs" / "demo"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["kind"] == "valid"][-1]
    test = json.loads((run / "eval-test.json").read_text())
    report = (root / "artifacts" / "demo" / "REPORT.md").read_text(encoding="utf-8")
    assert (f"Validation at step 20: loss {valid['loss']:.4f}, "
            f"{valid['bits_per_byte']:.4f} bits per byte.") in report
    assert f"Bits per byte on the test split: {test['bits_per_byte']:.4f} " in report
    assert 0.5 < valid["bits_per_byte"] < 8 and 0.5 < test["bits_per_byte"] < 8


def test_stage_logs_hold_summary_lines_not_a_line_per_step(demo):
    """Piped output: the training log has one line per ``log_every`` steps (20 steps: every
    step) with its ETA, no progress-bar redraws; no stage log or screen has Keras' ``ETA:``."""
    root, proc, _ = demo
    logs = root / "artifacts" / "demo" / "logs"
    train = (logs / "train.log").read_text(encoding="utf-8")
    steps = re.findall(r"^step +(\d+)/20  loss [\d.]+  bits/byte [\d.]+ .* ETA \d", train, re.M)
    assert [int(s) for s in steps] == list(range(1, 21)), train
    assert len(train.splitlines()) < 60, train
    for log in logs.glob("*.log"):
        raw = log.read_bytes()  # bytes: read_text would turn a bar's "\r" into "\n"
        assert b"ETA:" not in raw and b"\r" not in raw, log
    assert "ETA:" not in proc.stdout


def test_second_run_reuses_and_resumes(demo):
    """Running the demo again crawls nothing new, reuses the tokenizer and resumes training."""
    root, _, port = demo
    first = json.loads((root / "artifacts" / "demo" / "runs" / "demo" / "eval-test.json").read_text())
    proc = run_module("demo.run", "--root", str(root), "--max-steps", "20", "--port", str(port),
                      timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "re-run" in out
    assert "resuming run demo" in out
    assert "reused" in out
    assert "already stored                30" in out and "already stored                14" in out
    again = json.loads((root / "artifacts" / "demo" / "runs" / "demo" / "eval-test.json").read_text())
    assert again["loss"] == pytest.approx(first["loss"], abs=1e-6)
