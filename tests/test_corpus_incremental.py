"""The corpus cache and the written order: a build that reuses cached shards gives the same bytes
as one from scratch; a setting invalidates only the shards it shapes; a bad or half-written cache
is never trusted; every corpus shard mixes the sources in proportion."""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from common import config
from common.atomic import stage_lock
from corpus import cache
from corpus.build import build
from corpus.read import write_shard
from tests.util import ROOT, write_config

# Project-written Bulgarian-like prose: every sentence drawn word group by word group.
SUBJECTS = ("Общинският съвет", "Министерството", "Регионалният музей", "Читалището", "Театърът",
            "Университетът", "Спортният клуб", "Областната управа", "Библиотеката", "Кметството",
            "Болницата", "Училището")
VERBS = ("обяви", "представи", "подготви", "обсъди", "одобри", "подкрепи", "организира", "откри",
         "финансира", "отложи")
ADJECTIVES = ("нов", "голям", "дългоочакван", "скромен", "амбициозен", "спешен", "годишен",
              "общ", "пилотен", "зимен", "летен", "първи")
NOUNS = ("проект", "ремонт", "конкурс", "фестивал", "план", "бюджет", "маршрут", "курс",
         "концерт", "договор", "турнир", "обход")
PLACES = ("Пловдив", "Варна", "Бургас", "Русе", "Стара Загора", "Плевен", "Сливен", "Добрич",
          "Шумен", "Перник", "Хасково", "Ямбол", "Видин", "Габрово", "Кърджали")
TIMES = ("вчера", "днес", "миналата седмица", "в понеделник", "във вторник", "в петък",
         "след обяд", "рано сутринта", "тази есен", "преди празниците")
ENDINGS = ("поканени са {n} гости", "участват {n} души", "цената е {n} лева",
           "срокът е {n} дни", "записаха се {n} деца", "дойдоха {n} жители")
SOURCES = {"alpha": "article", "beta": "main .body"}  # news site -> CSS selector of its text


def sentence(rng: random.Random) -> str:
    ending = rng.choice(ENDINGS).format(n=rng.randint(3, 999))
    return (f"{rng.choice(SUBJECTS)} в {rng.choice(PLACES)} {rng.choice(VERBS)} "
            f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)} {rng.choice(TIMES)}, {ending}.")


def _article(rng: random.Random, source: str, n: int) -> dict:
    paragraphs = [" ".join(sentence(rng) for _ in range(3)) for _ in range(4)]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    wrapped = f"<article>{body}</article>" if source == "alpha" else f"<main><div class='body'>{body}</div></main>"
    url = f"https://{source}.example.bg/news/{n}"
    return {"url": url, "canonical_url": url, "title": f"Новина {n}", "source": source,
            "html": f"<html><body><nav>Начало | Новини</nav>{wrapped}</body></html>"}


def raw_shards(seed: int = 7, per_shard: int = 30) -> dict[str, list[dict]]:
    """Raw shards by name: three of alpha, then three of beta (one source after the other), then
    one holding both; with exact copies and near copies of earlier articles."""
    rng = random.Random(seed)
    shards: dict[str, list[dict]] = {}
    n = 0
    for number, source in enumerate(["alpha"] * 3 + ["beta"] * 3):
        records = []
        for _ in range(per_shard):
            records.append(_article(rng, source, n))
            n += 1
        shards[f"news/part-{number:05d}.jsonl.gz"] = records
    earlier = shards["news/part-00000.jsonl.gz"]
    mixed = [_article(rng, "alpha", n), _article(rng, "beta", n + 1)]
    copy = dict(earlier[0], url="https://beta.example.bg/copy", canonical_url="https://beta.example.bg/copy")
    near = dict(earlier[1], url="https://alpha.example.bg/near", canonical_url="https://alpha.example.bg/near",
                html=earlier[1]["html"].replace("</p>", " Снимка: архив.</p>", 1))
    shards["news/part-00006.jsonl.gz"] = [*mixed, copy, near]
    return shards


def make_project(root: Path, shards: dict[str, list[dict]], selectors: dict[str, str] = SOURCES,
                 **corpus) -> Path:
    for name, records in shards.items():
        write_shard(root / "data" / "raw" / name, records)
    return write_config(root, {
        "paths": {"data": "data", "artifacts": "artifacts"},
        "corpus": {"min_chars": 200, "shard_bytes": 40_000, "valid_ratio": 0.05, "test_ratio": 0.05,
                   **corpus},
    }, news=[{"name": s, "start_urls": [f"https://{s}.example.bg/"], "allowed_domains": [f"{s}.example.bg"],
              "selector": sel} for s, sel in selectors.items()])


def run_build(config_path: Path, capsys, *overrides: str, workers: int = 1) -> tuple[str, str]:
    build(config.load(config_path, overrides), workers)
    captured = capsys.readouterr()
    return captured.out, captured.err


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def reuse_line(out: str) -> str:
    return next(line for line in out.splitlines() if "raw shards reused" in line)


SMALL = 8  # articles a raw shard in the cache tests


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """The corpus built from scratch over all seven (small) raw shards."""
    root = tmp_path_factory.mktemp("scratch")
    build(config.load(make_project(root, raw_shards(per_shard=SMALL))), 1)
    return root / "data" / "corpus"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A corpus big enough for its train shards to hold about 50 documents each."""
    root = tmp_path_factory.mktemp("mixed")
    build(config.load(make_project(root, raw_shards(per_shard=45), shard_bytes=100_000)), 1)
    return root / "data" / "corpus"


def test_adding_a_shard_processes_only_it_and_gives_the_scratch_bytes(scratch, tmp_path, capsys):
    shards = raw_shards(per_shard=SMALL)
    added = "news/part-00001.jsonl.gz"  # sorts in the middle: dedup order must still be canonical
    cfg = make_project(tmp_path, {k: v for k, v in shards.items() if k != added})
    out, _ = run_build(cfg, capsys)
    assert reuse_line(out) == "corpus: 0 raw shards reused from the cache, 6 processed (6 new)"
    write_shard(tmp_path / "data" / "raw" / added, shards[added])
    out, err = run_build(cfg, capsys)
    assert reuse_line(out) == "corpus: 6 raw shards reused from the cache, 1 processed (1 new)"
    assert err == ""
    assert tree(tmp_path / "data" / "corpus") == tree(scratch)
    report = (scratch / "report.md").read_text(encoding="utf-8")
    assert "| dedup | dropped: exact duplicate | 1 |" in report
    assert "| dedup | dropped: near duplicate | 1 |" in report
    assert f"| extract | path: selector | {6 * SMALL + 4} |" in report


def test_a_setting_invalidates_exactly_the_shards_it_shapes(tmp_path, capsys):
    cfg = make_project(tmp_path, raw_shards(per_shard=SMALL))
    run_build(cfg, capsys)
    out, _ = run_build(cfg, capsys, "corpus.dedup_threshold=0.7", "corpus.order_seed=other")
    assert reuse_line(out) == "corpus: 7 raw shards reused from the cache, 0 processed"
    # beta's selector shapes the three beta shards and the mixed one, not alpha's
    make_project(tmp_path, {}, selectors={"alpha": "article", "beta": "main"})
    out, _ = run_build(cfg, capsys)
    assert reuse_line(out) == "corpus: 3 raw shards reused from the cache, 4 processed (4 site settings changed)"
    out, _ = run_build(cfg, capsys, "corpus.min_chars=150")
    assert reuse_line(out) == "corpus: 0 raw shards reused from the cache, 7 processed (7 settings changed)"
    out, _ = run_build(cfg, capsys, "corpus.min_chars=150")
    assert reuse_line(out) == "corpus: 7 raw shards reused from the cache, 0 processed"
    entries = sorted((tmp_path / "data" / "cache" / "corpus").iterdir())
    assert len(entries) == 7 and all(p.name.endswith(".jsonl.gz") for p in entries)
    # a raw shard that is gone takes its entry with it
    (tmp_path / "data" / "raw" / "news" / "part-00006.jsonl.gz").unlink()
    out, _ = run_build(cfg, capsys, "corpus.min_chars=150")
    assert reuse_line(out) == "corpus: 6 raw shards reused from the cache, 0 processed"
    assert len(list((tmp_path / "data" / "cache" / "corpus").iterdir())) == 6


def test_other_code_redoes_every_shard(tmp_path, capsys, monkeypatch):
    cfg = make_project(tmp_path, raw_shards(per_shard=2))
    run_build(cfg, capsys)
    monkeypatch.setattr(cache, "code_version", lambda: "an edited extractor")
    out, _ = run_build(cfg, capsys)
    assert reuse_line(out) == "corpus: 0 raw shards reused from the cache, 7 processed (7 code changed)"


def test_a_raw_shard_rewritten_with_its_size_and_mtime_is_processed_again(tmp_path, capsys):
    name = "news/part-00000.jsonl.gz"
    records = raw_shards(per_shard=4)[name]
    cfg = make_project(tmp_path / "cached", {name: records})
    run_build(cfg, capsys)
    path = tmp_path / "cached" / "data" / "raw" / name
    before = path.stat()
    html = records[0]["html"]
    for at, digit in ((at, d) for at, c in enumerate(html) if c.isdigit() for d in "0123456789"):
        changed = [dict(records[0], html=html[:at] + digit + html[at + 1:]), *records[1:]]
        write_shard(path, changed)
        if changed[0]["html"] != html and path.stat().st_size == before.st_size:
            break
    assert path.stat().st_size == before.st_size  # a one-digit edit that compresses to the same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    out, _ = run_build(cfg, capsys)
    assert reuse_line(out) == "corpus: 0 raw shards reused from the cache, 1 processed (1 raw shard changed)"
    run_build(make_project(tmp_path / "scratch", {name: changed}), capsys)
    assert tree(tmp_path / "cached" / "data" / "corpus") == tree(tmp_path / "scratch" / "data" / "corpus")


def _entries(root: Path) -> list[Path]:
    return sorted((root / "data" / "cache" / "corpus").glob("*.jsonl.gz"))


def test_corrupt_or_foreign_cache_entries_are_said_and_rebuilt(scratch, tmp_path, capsys):
    cfg = make_project(tmp_path, raw_shards(per_shard=SMALL))
    run_build(cfg, capsys)
    truncated, truncated_too, foreign, bad_body = _entries(tmp_path)[:4]
    for entry in (truncated, truncated_too):
        entry.write_bytes(entry.read_bytes()[:40])
    with gzip.open(foreign, "rb") as fh:
        lines = fh.read().split(b"\n")
    header = json.loads(lines[0])
    with gzip.open(foreign, "wb") as fh:
        fh.write(b"\n".join([json.dumps({**header, "format": 0}).encode(), *lines[1:]]))
    with gzip.open(bad_body, "rb") as fh:
        lines = fh.read().split(b"\n")
    with gzip.open(bad_body, "wb") as fh:  # header intact, a document line broken
        fh.write(b"\n".join([*lines[:1], lines[1][:50], *lines[2:]]))
    out, err = run_build(cfg, capsys)
    said = err.strip().splitlines()
    # one line a kind of fault: two truncated, one of another format, one broken inside
    assert len(said) == 3 and all(line.startswith("corpus cache: ignoring ") for line in said), err
    assert " and 1 more: unreadable (EOFError)" in said[0]
    assert said[1].endswith(": another cache format; rebuilding")
    assert "unreadable at document 1" in said[2]
    assert reuse_line(out) == "corpus: 3 raw shards reused from the cache, 4 processed (4 unreadable)"
    assert tree(tmp_path / "data" / "corpus") == tree(scratch)
    out, err = run_build(cfg, capsys)
    assert err == "" and reuse_line(out).endswith("7 raw shards reused from the cache, 0 processed")


def test_killed_build_leaves_the_previous_corpus_and_a_usable_cache(scratch, tmp_path, capsys):
    shards = raw_shards(per_shard=SMALL)
    cfg = make_project(tmp_path, shards)
    previous = tmp_path / "data" / "corpus"
    previous.mkdir(parents=True)
    (previous / "marker.txt").write_text("the previous corpus\n", encoding="utf-8")
    proc = subprocess.Popen([sys.executable, "-m", "corpus.build", "--config", str(cfg), "-j", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while not _entries(tmp_path) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = _entries(tmp_path)
    assert 1 <= len(written) < len(shards)  # killed mid-way
    assert tree(previous) == {"marker.txt": hashlib.sha256(b"the previous corpus\n").hexdigest()}
    out, err = run_build(cfg, capsys)
    assert err == ""
    assert reuse_line(out).startswith(f"corpus: {len(written)} raw shards reused from the cache, ")
    assert tree(previous) == tree(scratch)
    assert not [p for p in (tmp_path / "data").rglob("*") if ".tmp-" in p.name]


def test_leftovers_of_a_killed_write_go_and_empty_or_emptied_shards_are_cached(tmp_path, capsys):
    """A run killed while spilling leaves its temp corpus (with ``.spill`` buckets) and temp cache
    files: the next run removes them. An empty raw shard and one whose every page is dropped get
    entries of no documents, reused as such."""
    name = "news/part-00000.jsonl.gz"
    records = raw_shards(per_shard=4)[name]
    stubs = [dict(r, html="<html><body><p>Кратко.</p></body></html>") for r in records]
    cfg = make_project(tmp_path, {name: records, "news/part-00001.jsonl.gz": stubs})
    (tmp_path / "data" / "raw" / "news" / "part-00002.jsonl.gz").write_bytes(b"")
    spill = tmp_path / "data" / ".corpus.tmp-1-deadbeef" / ".spill"
    spill.mkdir(parents=True)
    (spill / "bucket-0000.jsonl").write_text("[1, {}]\n", encoding="utf-8")
    cache_dir = tmp_path / "data" / "cache" / "corpus"
    cache_dir.mkdir(parents=True)
    (cache_dir / ".abc.jsonl.gz.tmp-1-deadbeef").write_bytes(b"half an entry")
    out, _ = run_build(cfg, capsys)
    assert not [p for p in (tmp_path / "data").rglob("*") if ".tmp-" in p.name]
    report = (tmp_path / "data" / "corpus" / "report.md").read_text(encoding="utf-8")
    assert "| extract | dropped: no main text | 4 |" in report
    first = tree(tmp_path / "data" / "corpus")
    out, err = run_build(cfg, capsys)
    assert "corpus cache" not in err
    assert reuse_line(out).endswith("3 raw shards reused from the cache, 0 processed")
    assert tree(tmp_path / "data" / "corpus") == first
    counts = [cache.read_header(entry)["documents"] for entry in _entries(tmp_path)]
    assert sorted(counts) == [0, 0, 4]


def test_a_url_in_two_raw_shards_is_kept_from_the_first_in_canonical_order(tmp_path, capsys):
    shards = raw_shards(per_shard=3)
    first, second = shards["news/part-00000.jsonl.gz"], shards["news/part-00003.jsonl.gz"]
    again = dict(second[0], url=first[0]["url"], canonical_url=first[0]["canonical_url"],
                 title="Повторен адрес")
    cfg = make_project(tmp_path, {"news/part-00000.jsonl.gz": first,
                                  "news/part-00003.jsonl.gz": [again, *second[1:]]})
    run_build(cfg, capsys)
    report = (tmp_path / "data" / "corpus" / "report.md").read_text(encoding="utf-8")
    assert "| dedup | dropped: same URL | 1 |" in report
    docs = [json.loads(line) for line in
            (tmp_path / "data" / "corpus" / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    titles = [d["title"] for d in docs if d["url"] == first[0]["url"]]
    assert titles == [first[0]["title"]]


def test_every_corpus_shard_mixes_the_sources_in_proportion(mixed):
    """Raw data is alpha, then beta; every full train shard holds each source within 3 binomial
    standard deviations of its share of the whole (in crawl order most would hold one only)."""
    docs = [json.loads(line) for line in (mixed / "docs.jsonl").read_text(encoding="utf-8").splitlines()]
    train = [d for d in docs if d["split"] == "train"]
    share = sum(d["source"] == "alpha" for d in train) / len(train)
    assert 0.3 < share < 0.7
    by_shard: dict[str, Counter] = {}
    for d in train:
        by_shard.setdefault(d["shard"], Counter())[d["source"]] += 1
    assert len(by_shard) >= 4
    for shard, count in sorted(by_shard.items())[:-1]:  # the last holds what was left over
        n = sum(count.values())
        tolerance = 3 * math.sqrt(share * (1 - share) / n)
        assert tolerance < 0.35  # shards big enough for the check to mean something
        assert abs(count["alpha"] / n - share) <= tolerance, (shard, count, share)
    # the whole order is the keyed hash of the id, not the crawl order
    ids = [d["id"] for d in train]
    keys = [int.from_bytes(hashlib.sha256(f"bg-gpt2\0{i}".encode()).digest()[:8], "big") for i in ids]
    assert keys == sorted(keys)
    manifest = json.loads((mixed / "manifest.json").read_text(encoding="utf-8"))
    assert [s["path"] for s in manifest["splits"]["train"]["shards"]] == sorted(by_shard)


def test_cache_lives_outside_the_corpus_folder(scratch):
    assert not list(scratch.rglob("*.jsonl.gz"))
    assert not (scratch / ".spill").exists()
    assert len(_entries(scratch.parent.parent)) == 7
    shutil.rmtree(scratch.parent / "cache")  # the corpus stays whole without its cache:
    manifest = json.loads((scratch / "manifest.json").read_text(encoding="utf-8"))
    shards = [s for split in manifest["splits"].values() for s in split["shards"]]
    assert shards and all(hashlib.sha256((scratch / s["path"]).read_bytes()).hexdigest() == s["sha256"]
                          for s in shards)  # no shard is a link into the cache, none is missing


def _project_imports(module: str) -> set[str]:
    """The project modules (common.*, corpus.*) that ``module`` imports, directly or not."""
    import ast

    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = ROOT / (name.replace(".", "/") + ".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            todo += [n for n in names if n.split(".")[0] in ("common", "corpus")
                     and (ROOT / (n.replace(".", "/") + ".py")).exists()]
    return seen


def test_cache_code_version_covers_every_module_the_shard_steps_run():
    # a module missing from cache.CODE could change extraction without invalidating the cache
    # (config loading and writing, errors and atomic file writes shape no document)
    needed = _project_imports("corpus.steps") - {"common.atomic", "common.config", "common.errors"}
    assert needed <= set(cache.CODE), sorted(needed - set(cache.CODE))


def test_a_second_build_while_one_runs_stops_in_one_line_and_touches_nothing(scratch, tmp_path):
    """A running build holds ``data/.corpus.lock``; another one would clear its temp folder."""
    cfg = make_project(tmp_path, raw_shards(per_shard=SMALL))
    first = [sys.executable, "-m", "corpus.build", "--config", str(cfg), "-j", "1"]
    with stage_lock(tmp_path / "data" / ".corpus.lock", "make corpus"):  # this test is the first run
        (tmp_path / "data" / ".corpus.tmp-running").mkdir()  # its work in progress
        proc = subprocess.run(first, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and proc.stdout == ""
        assert proc.stderr == (f"error: another make corpus run (pid {os.getpid()}) is working on "
                               f"{tmp_path / 'data'}; wait for it to end (lock "
                               f"{tmp_path / 'data' / '.corpus.lock'})\n")
        assert (tmp_path / "data" / ".corpus.tmp-running").is_dir()
        assert not (tmp_path / "data" / "corpus").exists() and _entries(tmp_path) == []
    (tmp_path / "data" / ".corpus.tmp-running").rmdir()
    proc = subprocess.run(first, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert tree(tmp_path / "data" / "corpus") == tree(scratch)
