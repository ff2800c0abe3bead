"""End to end: ``python -m corpus.build`` on raw shards made from real fixtures."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
from pathlib import Path

import pytest

from common.formats import SEPARATOR, iter_docs
from corpus import news_extract
from corpus.read import write_shard
from tests.test_corpus_extract import BG_PARSE_HTML
from tests.util import run_module, write_config

N_NEWS = 90  # fake-news articles used (of 761), with their real near-duplicates


def _news_page(row: dict) -> str:
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in row["Content"].split("\n") if p.strip())
    title = html.escape(row["Content Title"])
    return (f"<html lang='en'><head><title>{title}</title></head><body>"
            "<nav><a href='/'>Начало</a> | <a href='/n'>Новини</a> | <a href='/c'>Контакти</a></nav>"
            f"<article><h1>{title}</h1>{paragraphs}</article>"
            "<footer>Всички права запазени. Сайтът използва бисквитки.</footer></body></html>")


def _wiki_record(title: str, html_text: str, url: str) -> dict:
    return {"url": url, "canonical_url": url, "title": title, "source": "bgwiki", "lang": "bg",
            "license": "CC BY-SA 4.0", "revid": 1, "html": html_text}


@pytest.fixture(scope="module")
def raw_project(fixtures, tmp_path_factory) -> Path:
    """A project folder: config + data/raw with wiki, news, a truncated shard and a temp file."""
    root = tmp_path_factory.mktemp("corpus")
    raw = root / "data" / "raw"
    plovdiv = BG_PARSE_HTML.replace("</div>\n</div>", "</div>" + "".join(
        f"<p>Пловдив има богата история и култура, а параграф {n} разказва за нея.</p>"
        for n in range(8)) + "</div>")
    wiki = [_wiki_record("Пловдив", plovdiv, "https://bg.wikipedia.org/wiki/Пловдив"),
            _wiki_record("T-distributed stochastic neighbor embedding", (
                fixtures / "wikipedia_html/en_reference_trafilatura/en.wikipedia.org.tsne.html"
            ).read_text(), "https://en.wikipedia.org/wiki/T-SNE")]
    write_shard(raw / "bgwiki" / "part-00000.jsonl.gz", wiki)
    rows = [json.loads(line) for line in (fixtures / "bg_text/hack_the_fake_news/FN_Validation_Set.jsonl")
            .read_text(encoding="utf-8").splitlines()[:N_NEWS + 30]]
    news = [{"url": r["Content Url"], "canonical_url": r["Content Url"], "title": r["Content Title"],
             "source": "fakenews", "lang": "en", "html": _news_page(r)} for r in rows]
    for n in range(3):
        write_shard(raw / "news" / f"part-{n:05d}.jsonl.gz", news[n:N_NEWS:3])
    vratza = (fixtures / "news_html/htmldate_test_set/1766087391.html").read_text()
    actualno = (fixtures / "news_html/htmldate_test_set/1740081165.html").read_text()
    write_shard(raw / "news" / "part-00003.jsonl.gz", [
        {"url": "https://vratza.com/a/", "source": "vratza", "title": "Враца", "html": vratza},
        {"url": "https://www.actualno.com/a.html", "source": "actualno", "title": "", "html": actualno},
        {"url": "https://vratza.com/b/", "source": "vratza", "title": "Кратко",
         "html": "<div class='td-post-content'><p>Твърде кратка статия.</p></div>"},
    ])
    truncated = raw / "news" / "part-00004.jsonl.gz"
    write_shard(truncated, news[N_NEWS:])
    truncated.write_bytes(truncated.read_bytes()[:-300])
    (raw / "news" / ".part-00005.jsonl.gz.tmp-1-abcd.jsonl.gz").write_bytes(b"half-written")
    write_config(root, {
        "paths": {"data": "data", "artifacts": "artifacts"},
        "corpus": {"min_chars": 100, "shard_bytes": 60_000, "valid_ratio": 0.1, "test_ratio": 0.1,
                   "workers": 2},
    }, news=[{"name": "vratza", "start_urls": ["https://vratza.com/"],
              "allowed_domains": ["vratza.com"], "selector": ".td-post-content"},
             {"name": "actualno", "start_urls": ["https://www.actualno.com/"],
              "allowed_domains": ["actualno.com"], "license": "© Actualno.com"}])
    return root


def _tree_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(raw_project) -> tuple[Path, str]:
    done = run_module("corpus.build", "--config", str(raw_project / "pipelines.toml"), "-j", "2")
    assert done.returncode == 0, done.stderr
    return raw_project / "data" / "corpus", done.stdout


def test_outputs_are_consistent(built):
    out, _ = built
    docs = [json.loads(line) for line in (out / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    texts = {}
    for split, info in manifest["splits"].items():
        for shard in info["shards"]:
            path = out / shard["path"]
            data = path.read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"]
            assert len(data) == shard["bytes"] <= 60_000
            shard_docs = list(iter_docs(path))
            assert len(shard_docs) == shard["documents"]
            assert sum(map(len, shard_docs)) == shard["characters"]
            texts[shard["path"]] = shard_docs
        assert info["documents"] == sum(d["split"] == split for d in docs)
    assert len(manifest["splits"]["train"]["shards"]) >= 2  # rotated at shard_bytes
    assert sum(len(v) for v in texts.values()) == len(docs)
    # docs.jsonl walks the shards in order, one line per document
    by_shard: dict[str, int] = {}
    for d in docs:
        text = texts[d["shard"]][by_shard.setdefault(d["shard"], 0)]
        by_shard[d["shard"]] += 1
        assert d["chars"] == len(text) and SEPARATOR not in text
        assert set(d) == {"id", "split", "shard", "url", "title", "source", "license", "chars"}
    assert len({d["id"] for d in docs}) == len(docs)


def test_wiki_article_kept_with_licence_and_english_page_dropped(built):
    out, _ = built
    docs = [json.loads(line) for line in (out / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    wiki = [d for d in docs if d["source"] == "bgwiki"]
    assert [(d["url"], d["license"]) for d in wiki] == [
        ("https://bg.wikipedia.org/wiki/Пловдив", "CC BY-SA 4.0")]
    text = next(t for t in iter_docs(out / wiki[0]["shard"]) if t.startswith("Пловдив\n"))
    assert "Източник на бележката" not in text and "Официален сайт" not in text
    assert {d["source"] for d in docs} == {"bgwiki", "fakenews", "actualno", "vratza"}
    vratza = next(d for d in docs if d["source"] == "vratza")  # by the site's selector
    assert next(t for t in iter_docs(out / vratza["shard"]) if "ППМГ" in t).startswith("Проектното")
    assert next(d for d in docs if d["source"] == "actualno")["license"] == "© Actualno.com"
    attribution = (out / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "CC BY-SA" in attribution and "| bgwiki | CC BY-SA 4.0 | 1 |" in attribution
    # the page menus and the footer notice of the news pages were not kept
    all_text = "\n".join(t for p in sorted(out.glob("*/shard-*.txt")) for t in iter_docs(p))
    assert "Начало | Новини" not in all_text and "бисквитки" not in all_text


def test_report_accounts_for_every_step(built):
    out, stdout = built
    report = (out / "report.md").read_text(encoding="utf-8")
    for row in ("| read | in (HTML characters) |", "| read | skipped: corrupt file (rest of it) | 1 |",
                "| filter | dropped: few Cyrillic letters |", "| filter | dropped: too short |",
                "| dedup | dropped: near duplicate |", "| dedup | dropped: exact duplicate |",
                "| extract | path: wiki | 2 |", "| extract | path: selector | 2 |",
                "| write | out: train |", "| write | out: valid |", "| write | out: test |"):
        assert row in report, row
    # every news page without a selector went through the combined extractor, which names its path
    news_paths = {line.split("|")[2].strip() for line in report.splitlines()
                  if line.startswith("| extract | path: ") and "wiki" not in line
                  and "selector" not in line}
    assert news_paths and news_paths <= {"path: " + p for p in news_extract.PATHS}, news_paths
    assert "`news/part-00004.jsonl.gz:" in report  # the bad shard, named with its line
    # documents through each step: one step's out is the next one's in, and the last one's out
    # is what the filter stage kept
    steps = [line.split(" | ") for line in report.split("## Documents through each step")[1]
             .split("\n\n## ")[0].splitlines() if line.startswith("| ") and "---" not in line][1:]
    counts = [[int(cell.strip(" |").replace(",", "")) for cell in row[1:]] for row in steps]
    assert [row[0].strip("| ") for row in steps][:2] == ["extraction", "normalize"] and len(steps) > 5
    assert all(n_in - dropped == n_out for n_in, dropped, n_out in counts)
    assert all(a[2] == b[0] for a, b in zip(counts, counts[1:], strict=False))
    kept = int(report.split("| filter | kept | ")[1].split(" |")[0].replace(",", ""))
    assert counts[-1][2] == kept and sum(row[1] for row in counts) > 0
    assert ".tmp-" not in report
    assert "![document lengths](lengths.png)" in report
    assert (out / "lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "dropped: near duplicate" in stdout and "out: train" in stdout
    records_in = int(report.split("| read | in (HTML characters) | ")[1].split(" |")[0].replace(",", ""))
    assert N_NEWS + 5 < records_in < N_NEWS + 5 + 30  # part of the truncated shard was read
    outs = sum(int(line.split(" | ")[2].replace(",", "")) for line in report.splitlines()
               if line.startswith("| write | out: "))
    docs = (out / "docs.jsonl").read_text(encoding="utf-8").count("\n")
    assert outs == docs


def test_rerun_is_byte_identical_whatever_the_worker_count(built, raw_project):
    out, _ = built
    before = _tree_hashes(out)
    shutil.rmtree(raw_project / "data" / "cache")  # every shard processed again, by one worker
    done = run_module("corpus.build", "--config", str(raw_project / "pipelines.toml"), "-j", "1")
    assert done.returncode == 0, done.stderr
    assert "0 raw shards reused from the cache, 6 processed (6 new)" in done.stdout
    assert _tree_hashes(out) == before
    assert not list(out.parent.glob(".*tmp-*"))


def _fails(args: list[str], cwd_config: Path) -> str:
    done = run_module("corpus.build", "--config", str(cwd_config), *args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    return lines[0]


def test_bad_settings_are_one_line_exit_2_and_leave_output_alone(built, raw_project):
    out, _ = built
    before = _tree_hashes(out)
    config = raw_project / "pipelines.toml"
    assert "valid_ratio + corpus.test_ratio" in _fails(
        ["--set", "corpus.valid_ratio=0.5", "--set", "corpus.test_ratio=0.5"], config)
    assert "corpus.dedup_threshold" in _fails(["--set", "corpus.dedup_threshold=1.5"], config)
    assert "corpus.lang" in _fails(["--set", "corpus.lang=xx"], config)
    assert _tree_hashes(out) == before


def test_no_raw_data_or_empty_result_is_exit_2_and_nothing_replaced(tmp_path):
    config = write_config(tmp_path, {"paths": {"data": "data"}})
    assert "no raw shards" in _fails([], config)
    assert not (tmp_path / "data" / "corpus").exists()
    write_shard(tmp_path / "data" / "raw" / "site" / "part-00000.jsonl.gz", [
        {"url": "https://example.bg/1", "source": "site", "html": "<p>Само едно изречение.</p>"}])
    previous = tmp_path / "data" / "corpus" / "train" / "shard-00000.txt"
    previous.parent.mkdir(parents=True)
    previous.write_text("earlier corpus\n", encoding="utf-8")
    assert "empty corpus" in _fails([], config)
    assert previous.read_text(encoding="utf-8") == "earlier corpus\n"
    # the run's lock file stays (unlocked): nothing else is added
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [".corpus.lock", "cache", "corpus", "raw"]
    assert [p.name.endswith(".jsonl.gz") for p in (tmp_path / "data/cache/corpus").iterdir()] == [True]


def test_the_pipeline_lists_the_shard_steps_as_they_run():
    """``corpus.build.SHARD_STEPS`` names the functions ``corpus.steps.corpus_steps`` runs, between
    reading the raw shard and the dedup keys, in their order."""
    import functools

    from common import config
    from corpus import build, dedup, steps
    from corpus.read import read_shard

    cfg = config.load()
    run = [s.run.func if isinstance(s.run, functools.partial) else s.run
           for s in steps.corpus_steps(cfg.corpus, {})]
    assert (read_shard, *run, dedup.keys) == build.SHARD_STEPS
    assert [step.__name__ for step in build.GLOBAL_STEPS] == ["deduplicate", "order", "split", "write"]


def test_the_output_does_not_depend_on_the_bucket_count(built, raw_project, monkeypatch):
    """The spill's buckets are a monotone function of the order key, each sorted by (key, id):
    as many buckets as the build allows give the same bytes as the one or two it chose."""
    from corpus import build

    out, _ = built
    before = _tree_hashes(out)
    monkeypatch.setattr(build, "BUCKET_BYTES", 1)  # every entry's text over it: MAX_BUCKETS
    build.main(["--config", str(raw_project / "pipelines.toml"), "-j", "1"])
    assert _tree_hashes(out) == before
