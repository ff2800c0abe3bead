"""``make bench-scale`` at two tiny sizes (so it cannot rot), and its input generator.

The real CLIs run as subprocesses on generated raw shards: ``corpus.build`` into
``corpus.tokenizer``, so this is also the test that the token stage reads what the corpus stage
really writes (manifest, docs.jsonl, ATTRIBUTION.md). No wall time is asserted.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import pytest

from bench import report, scale
from crawler.items import RawPage
from tests.util import run_module

SIZES = (200, 400)


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> tuple[dict, Path]:
    tmp = tmp_path_factory.mktemp("scale")
    out = tmp / "scale.json"
    proc = run_module("bench.scale", "--sizes", ",".join(map(str, SIZES)), "--shard-docs", "100",
                      "-j", "2", "--out", str(out), "--work", str(tmp / "work"), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "bench-scale" in proc.stdout and "corpus_plus_1pct" in proc.stdout
    return json.loads(out.read_text(encoding="utf-8")), tmp


@pytest.mark.slow
def test_every_stage_measured_at_every_size(result):
    data, _ = result
    assert data["name"] == "scale" and data["settings"]["sizes"] == list(SIZES)
    assert set(data["runs"]) == {str(n) for n in SIZES}
    for n in SIZES:
        stages = data["runs"][str(n)]["stages"]
        assert tuple(stages) == scale.STAGES
        for name, s in stages.items():
            assert s["seconds"] > 0 and s["cpu_s"] > 0 and s["processes"] >= 1, name
            assert 20 < s["max_process_rss_mb"] <= s["peak_rss_mb"], name
            assert s["docs_per_s"] == pytest.approx(s["documents"] / s["seconds"]), name
        corpus, plus = stages["corpus"], stages["corpus_plus_1pct"]
        # its two pool workers (grandchildren, under the forkserver) are counted
        assert corpus["processes"] > 2 and corpus["peak_rss_mb"] > corpus["max_process_rss_mb"]
        assert corpus["documents"] == n and corpus["raw_shards"] == 2 * n // 100
        # about one document in ten is a copy; a few more may be dropped by the filters
        assert 0.8 * n < corpus["documents_out"] < 0.95 * n
        assert stages["tokenizer"]["documents"] == corpus["documents_out"]
        assert stages["tokenizer"]["tokens"] > 100 * corpus["documents_out"]
        assert stages["tokens_unchanged"]["reused"] == {"tokenizer": True, "tokens": True}
        for name in ("resume_first", "resume"):  # every page's URL is its canonical URL
            assert stages[name]["keys"] == n and stages[name]["seconds"] < stages[name]["process_seconds"]
        assert plus["added_documents"] == n // 100 and plus["documents"] == n + n // 100
        assert plus["raw_shards"] == corpus["raw_shards"] + 1
        assert corpus["documents_out"] < plus["documents_out"] <= corpus["documents_out"] + n // 100
        # the corpus stage caches raw shards: the +1% build processes only the new one
        assert corpus["shards_processed"] == corpus["raw_shards"]
        assert plus["shards_processed"] == 1 and plus["shards_reused"] == corpus["raw_shards"]
        # and reports its dedup index (two 64-bit hashes a band for 16 bands, at least)
        assert corpus["dedup_index_bytes_per_document"] > 16 * 8


@pytest.mark.slow
def test_growth_figures_and_report_section(result):
    data, tmp = result
    for name in scale.STAGES:
        (g,) = data["growth"][name]
        assert (g["from"], g["to"]) == SIZES
        assert all(math.isfinite(g[k]) for k in scale.EXPONENTS)
        a, b = (data["runs"][str(n)]["stages"][name] for n in SIZES)
        assert g["time_exponent"] == pytest.approx(math.log(b["seconds"] / a["seconds"]) / math.log(2))
    assert len(data["figures"]) == len(scale.STAGES) + 1
    path = tmp / "scale.json"
    table = report.rows(path)
    assert len(table) == len(data["figures"]) and table[-1][4] == "build from scratch"
    text = report.render([path])
    assert "## Scale (`make bench-scale`)" in text
    assert text.count("| corpus_plus_1pct |") == len(SIZES)


def test_generated_raw_shards(tmp_path):
    model = scale.TextModel(scale.DEMO_TEXT)
    made = scale.write_raw(model, tmp_path, 0, 300, 0)
    records = [json.loads(line) for source in ("bgwiki", scale.NEWS) for line in
               gzip.decompress((tmp_path / source / "part-00000.jsonl.gz").read_bytes()).splitlines()]
    assert len(records) == made["records"] == 300
    assert all(set(r) <= set(RawPage.fields) for r in records)  # the crawler's record fields
    assert all(r["url"] and r["canonical_url"] and r["license"] and r["html"] for r in records)
    assert sum(r["source"] == "bgwiki" for r in records) == 100
    assert 20 <= made["copies"] <= 40
    assert scale.content(model, 5) == scale.content(model, 5)  # the same at every size
    copies = [i for i in range(300) if scale.original_of(i) != i]
    exact = next(i for i in copies if i % 20 == 7)
    near = next(i for i in copies if i % 20 == 13)
    original = scale.content(model, scale.original_of(exact))
    assert scale.content(model, exact) == original
    assert scale.source_of(scale.original_of(near)) == scale.source_of(near)
    assert scale.content(model, near)[1] != scale.content(model, scale.original_of(near))[1]
    assert scale.source_of(scale.EXTRA_FIRST + 3) == scale.NEWS


def test_corpus_figures_come_from_the_manifest_and_the_summary_line(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"dedup_index_bytes": 1234, "splits": {"train": {"documents": 9}, "valid": {"documents": 1}}}),
        encoding="utf-8")
    assert scale.corpus_figures(tmp_path, "") == {"documents_out": 10, "dedup_index_bytes": 1234}
    output = "...\ncorpus: 40 raw shards reused from the cache, 1 processed (1 new)\n..."
    assert scale.corpus_figures(tmp_path, output) == {"documents_out": 10, "dedup_index_bytes": 1234,
                                                      "shards_reused": 40, "shards_processed": 1}


@pytest.mark.parametrize("sizes", ["100", "100,150", "a,b"])
def test_bad_sizes_exit_2(sizes, tmp_path):
    proc = run_module("bench.scale", "--sizes", sizes, "--shard-docs", "100",
                      "--out", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and proc.stderr.startswith("error: --sizes")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_corpus_only_measures_one_size_against_its_dedup_index(tmp_path):
    out = tmp_path / "scale-corpus.json"
    proc = run_module("bench.scale", "--sizes", "200", "--shard-docs", "100", "--corpus-only",
                      "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["settings"]["corpus_only"] and list(data["runs"]) == ["200"]
    corpus = data["runs"]["200"]["stages"].pop("corpus")
    assert data["runs"]["200"]["stages"] == {}  # nothing but the corpus build ran
    (figure,) = data["figures"]
    assert figure["value"] == round(corpus["peak_rss_mb"]) and corpus["dedup_index_bytes"] > 0
    assert figure["ratio"] == pytest.approx(corpus["peak_rss_mb"] * 2**20
                                            / corpus["dedup_index_bytes"], abs=0.01)
    assert "corpus build alone" in data["section"] and "| corpus | 200 |" in data["section"]
