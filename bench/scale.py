"""``make bench-scale``: the corpus and token stages, and crawl-resume start-up, at growing sizes.

Input: raw shards as the crawler writes them (``data/raw/<spider>/part-NNNNN.jsonl.gz``) from two
sources: bgwiki ``action=parse`` HTML from the replay wiki (``bench.corpus.wiki_page``) and a news site's
article pages (``NEWS_PAGE``, read by trafilatura as an unknown site's would be), one wiki page to
two news articles. The text recombines the words of the project's own demo texts
(``demo/site/``) with a bigram walk, with made-up names and numbers so that the vocabulary grows
with the corpus as real text's does. One document in 20 is an exact copy of an earlier one of its
source under another URL, one in 20 a near copy (one word in 100 changed). Document ``i`` is the
same at every size, so each size's shards are a prefix of the largest size's (hard links).

For each size every stage runs as its own process of the real CLI, on the wall clock, measured
by ``bench.harness.measure``: wall and CPU seconds and peak RSS of its whole process tree (the
corpus stage's pool workers are its grandchildren).

- ``corpus``: ``python -m corpus.build`` from scratch;
- ``tokenizer``: ``python -m corpus.tokenizer``, training and token shards;
- ``tokens``: token shards alone (``--reuse-tokenizer --force``);
- ``tokens_unchanged``: ``python -m corpus.tokenizer`` again, corpus unchanged (must reuse);
- ``resume_first``: a crawl's start-up, ``crawler.pipelines.done_keys`` over both raw folders
  (its own seconds, in a fresh process), the first over these shards: anything the crawler keeps
  beside its shards to start faster (keys files) is not there yet and gets made;
- ``resume``: the same start again, as every later crawl start finds the folders;
- ``corpus_plus_1pct``: ``python -m corpus.build`` after adding one raw shard of 1% new documents.

Growth exponent between sizes n1 < n2: ``log(x2 / x1) / log(n2 / n1)`` for seconds, CPU seconds
(steadier on a shared machine) and peak RSS (1: linear, 0: flat). Figures for
``bench/RESULTS.md``: each stage at the largest size beside the size before it, and the +1% build
beside the build from scratch. What the corpus stage reports is kept per run (``corpus_figures``):
documents written and the dedup index's bytes from its ``manifest.json``, and the raw shards it
reused and processed (its ``SHARDS_LINE`` on stdout).

``--wiki-real`` runs ``bench.wiki_real`` instead: the Wikipedia path on a dump of real-size pages.

``--corpus-only`` measures the ``corpus`` stage alone, at one size or more: the memory check at
sizes the whole benchmark would take too long for (``--sizes 1000000 --corpus-only``); its figure
is the build's peak RSS beside its own dedup index.

Documents carry about 900 characters of text (1.7 KB of UTF-8; 3.4 KB of HTML a news page, 7 KB
a wiki page). The corpus stage costs about 4.7 CPU-ms a document (measured at 2k and 8k, before
the wiki pages came from the replay renderer), so the default sizes take 15-20 minutes on 2 idle
cores; ``--sizes`` picks others.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from bench import harness
from bench.corpus import wiki_page
from common import markdown
from common.config import write as write_config
from common.errors import UserError, cli_main

ROOT = Path(__file__).resolve().parent.parent
DEMO_TEXT = ROOT / "demo" / "site"
OUT = ROOT / "bench" / "results" / "scale.json"
OUT_CORPUS_ONLY = OUT.with_name("scale-corpus.json")
SIZES = (10_000, 40_000, 160_000)
SHARD_DOCS = 2_000  # documents per raw shard (both sources together)
VOCAB = 32_000
NEWS = "vesti"
LICENSES = {"bgwiki": "CC BY-SA 4.0", NEWS: "All rights reserved (publisher); research use"}
EXTRA_FIRST = 10**9  # index of the first document of the +1% shard
STAGES = ("corpus", "tokenizer", "tokens", "tokens_unchanged", "resume_first", "resume",
          "corpus_plus_1pct")
SHARDS_LINE = re.compile(r"(?P<shards_reused>\d+) raw shards reused from the cache, "
                         r"(?P<shards_processed>\d+) processed")
SYLLABLES = ("ба", "бо", "ве", "ви", "га", "да", "де", "ди", "до", "жи", "за", "зо", "ка", "ко",
             "ку", "ла", "ле", "ли", "ло", "ма", "ме", "ми", "мо", "на", "не", "ни", "но", "па",
             "пе", "по", "ра", "ре", "ри", "ро", "са", "се", "си", "ста", "ти", "то", "ту", "фе",
             "хри", "цве", "че", "чо", "ша", "ю", "я")
NAME_ENDS = ("ов", "ев", "ова", "ева", "ски", "ска", "ово", "ево", "ец", "ица")
NEWS_PAGE = """<!DOCTYPE html><html lang="bg"><head><meta charset="utf-8">
<title>{title} | Вести</title><link rel="canonical" href="{url}"></head><body>
<header><a href="/">Вести</a><nav><a href="/obshtestvo">Общество</a> <a href="/sport">Спорт</a>
<a href="/kultura">Култура</a> <a href="/region">Регион</a></nav></header>
<main><article><h1>{title}</h1><p class="meta">{author} · <time datetime="{date}">{date}</time></p>
<div class="article-body">{body}</div></article>
<aside><h3>Още от рубриката</h3><ul>{related}</ul></aside></main>
<footer><p>© Вести. Всички права запазени.</p><p>Сайтът използва бисквитки.</p></footer>
</body></html>"""
RESUME_PROBE = """import json, sys, time
from crawler.pipelines import done_keys
start = time.perf_counter()
keys = sum(len(done_keys(folder)) for folder in sys.argv[1:])
print(json.dumps({"seconds": time.perf_counter() - start, "keys": keys}))
"""


class TextModel:
    """Sentences of a bigram walk over the demo texts, then made-up names and numbers put in."""

    def __init__(self, folder: Path, pool: int = 20_000):
        self.starts: list[str] = []
        self.next: dict[str, list[str]] = defaultdict(list)
        for path in sorted(folder.glob("*/*.txt")):
            body = path.read_text(encoding="utf-8").split("\n\n", 1)[-1]
            body = re.sub(r"\[\[(?:[^]|]*\|)?([^]]*)\]\]", r"\1", body).replace("'''", "")
            for line in body.splitlines():
                for sentence in re.split(r"(?<=[.!?])\s+", "" if line.startswith("==") else line):
                    words = sentence.split()
                    if len(words) >= 4:
                        self.starts.append(words[0])
                        for a, b in zip(words, words[1:], strict=False):
                            self.next[a].append(b)
        if len(self.starts) < 100:
            raise UserError(f"{folder}: too little demo text to build the benchmark's vocabulary")
        rng = random.Random("sentences")
        self.pool = [self._walk(rng) for _ in range(pool)]

    def _walk(self, rng: random.Random) -> list[str]:
        words = [rng.choice(self.starts)]
        while not (words[-1][-1] in ".!?" and len(words) >= 6) and len(words) < 30:
            following = self.next.get(words[-1])
            words.append(rng.choice(following) if following else rng.choice(self.starts).lower())
        if words[-1][-1] not in ".!?":
            words[-1] = words[-1].rstrip(",;:—–-") + "."
        return words

    def sentence(self, rng: random.Random) -> str:
        """A pooled sentence; every other one with a made-up name or a number in it."""
        words = self.pool[rng.randrange(len(self.pool))]
        if rng.random() < 0.5:
            words = list(words)
            new = made_up_name(rng) if rng.random() < 0.7 else str(rng.randint(2, 2030))
            words[rng.randrange(1, len(words) - 1)] = new
        return " ".join(words)


def made_up_name(rng: random.Random) -> str:
    stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
    return (stem + rng.choice(NAME_ENDS)).capitalize()


def source_of(i: int) -> str:
    """One wiki page to two news articles; the +1% shard is news (a later crawl of the site)."""
    return "bgwiki" if i % 3 == 0 and i < EXTRA_FIRST else NEWS


def original_of(i: int) -> int:
    """The earlier document of the same source that document ``i`` copies (``i`` if none)."""
    if i % 20 not in (7, 13) or i >= EXTRA_FIRST or i < 3:
        return i
    j = i - 3 * random.Random(f"copy-{i}").randint(1, min(300, i // 3))
    while j >= 0 and j % 20 in (7, 13):
        j -= 3
    return j if j >= 0 else i


def content(model: TextModel, i: int) -> tuple[str, list[str]]:
    """Title and paragraphs of document ``i`` (about 900 characters, 1.7 KB of UTF-8)."""
    j = original_of(i)
    rng = random.Random(f"doc-{j}")
    title = " ".join(model.sentence(rng).split()[:rng.randint(3, 7)]).rstrip(".!?,;:")
    paragraphs = [" ".join(model.sentence(rng) for _ in range(rng.randint(2, 3)))
                  for _ in range(rng.randint(2, 4))]
    if i != j and i % 20 == 13:  # a near copy: one word in 100 replaced
        edit = random.Random(f"edit-{i}")
        words = "\n".join(paragraphs).split(" ")
        for _ in range(max(1, len(words) // 100)):
            words[edit.randrange(len(words))] = made_up_name(edit)
        paragraphs = " ".join(words).split("\n")
    return title, paragraphs


def record(model: TextModel, i: int) -> dict:
    """The raw record the crawler would have written for document ``i``."""
    title, paragraphs = content(model, i)
    source = source_of(i)
    rng = random.Random(f"meta-{i}")
    date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    base = {"title": title, "source": source, "lang": "bg", "fetched_at": date + "T12:00:00+00:00",
            "http_status": 200, "via": "http", "license": LICENSES[source]}
    if source == "bgwiki":
        url = f"https://bg.wikipedia.org/wiki/Статия_{i}"
        return {**base, "url": url, "canonical_url": url, "revid": 1_000_000 + i,
                "html": wiki_page(title, paragraphs), "published": None, "author": None,
                "categories": ["Бенчмарк"]}
    url = f"https://vesti.example.bg/novini/{i}"
    author = f"{made_up_name(rng)} {made_up_name(rng)}"
    related = "".join(f'<li><a href="/novini/{rng.randrange(10**6)}">{html.escape(model.sentence(rng))}'
                      "</a></li>" for _ in range(4))
    page = NEWS_PAGE.format(title=html.escape(title), url=url, author=author, date=date,
                            body="".join(f"<p>{html.escape(p)}</p>" for p in paragraphs),
                            related=related)
    return {**base, "url": url, "canonical_url": url, "revid": None, "html": page,
            "published": date, "author": author, "categories": None}


def write_raw(model: TextModel, folder: Path, first: int, count: int, number: int) -> dict:
    """Raw shard ``number`` of each source under ``folder`` with documents first..first+count,
    compressed as the crawler's pipeline does (gzip level 6, no timestamp)."""
    lines: dict[str, list[str]] = defaultdict(list)
    html_bytes = 0
    for i in range(first, first + count):
        rec = record(model, i)
        html_bytes += len(rec["html"].encode())
        lines[rec["source"]].append(json.dumps(rec, ensure_ascii=False) + "\n")
    for source, text in lines.items():
        path = folder / source / f"part-{number:05d}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gzip.compress("".join(text).encode(), compresslevel=6, mtime=0))
    return {"records": count, "html_bytes": html_bytes,
            "copies": sum(original_of(i) != i for i in range(first, first + count))}


_model: list[TextModel] = []  # the generating process's model, inherited by forked workers


def _write_pool_shard(args: tuple[Path, int, int]) -> dict:
    folder, shard_docs, k = args
    return write_raw(_model[0], folder, k * shard_docs, shard_docs, k)


def run_stage(argv: list[str], log: Path) -> dict:
    """Run ``python argv`` from the repository root: wall and CPU seconds, peak RSS, output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = harness.measure([sys.executable, *argv], log, env)
    text = log.read_text(encoding="utf-8", errors="replace")
    if result.pop("returncode") != 0:
        tail = text.strip().splitlines()[-1:] or ["(no output)"]
        raise UserError(f"`python {' '.join(argv[:2])}` failed: {tail[0]} (log: {log})")
    return {**result, "output": text}


def corpus_figures(corpus: Path, output: str) -> dict:
    """What a corpus build reports: documents written and the dedup index's bytes (its
    ``manifest.json``), and the raw shards it reused and processed (``SHARDS_LINE`` in ``output``)."""
    manifest = json.loads((corpus / "manifest.json").read_text(encoding="utf-8"))
    line = SHARDS_LINE.search(output)
    return {"documents_out": sum(split["documents"] for split in manifest["splits"].values()),
            "dedup_index_bytes": manifest["dedup_index_bytes"],
            **({k: int(v) for k, v in line.groupdict().items()} if line else {})}


def measure_size(n: int, project: Path, pool: Path, model: TextModel, shard_docs: int,
                 jobs: int, bar: tqdm, corpus_only: bool = False) -> dict:
    """Every stage (or ``corpus_only``) at ``n`` documents, in ``project`` (its raw shards linked
    from ``pool``)."""
    project.mkdir(parents=True)
    config = write_config(project / "pipelines.toml", {
        "paths": {"data": "data", "artifacts": "artifacts"},
        "corpus": {"workers": jobs},
        "tokenizer": {"vocab_size": VOCAB, "heldout_dir": ""},
    }, news=[{"name": NEWS, "start_urls": ["https://vesti.example.bg/"],
              "allowed_domains": ["vesti.example.bg"], "license": LICENSES[NEWS]}])
    raw, corpus = project / "data" / "raw", project / "data" / "corpus"
    shards = n // shard_docs
    for source in LICENSES:
        (raw / source).mkdir(parents=True)
        for k in range(shards):
            os.link(pool / source / f"part-{k:05d}.jsonl.gz", raw / source / f"part-{k:05d}.jsonl.gz")
    cfg = ["--config", str(config)]
    stages: dict[str, dict] = {}

    def stage(name: str, argv: list[str], documents: int) -> dict:
        bar.set_postfix_str(f"{n:,} docs: {name}")
        result = run_stage(argv, project / f"{name}.log")
        result["documents"] = documents
        stages[name] = result
        bar.update()
        return result

    scratch = stage("corpus", ["-m", "corpus.build", *cfg, "-j", str(jobs)], n)
    scratch.update(raw_shards=2 * shards, **corpus_figures(corpus, scratch["output"]))
    scratch["dedup_index_bytes_per_document"] = scratch["dedup_index_bytes"] / n
    kept = scratch["documents_out"]
    if corpus_only:
        return {"documents": n, "stages": _finish(stages)}
    stage("tokenizer", ["-m", "corpus.tokenizer", *cfg], kept)
    stage("tokens", ["-m", "corpus.tokenizer", *cfg, "--reuse-tokenizer", "--force"], kept)
    stage("tokens_unchanged", ["-m", "corpus.tokenizer", *cfg], kept)
    report = json.loads((project / "artifacts" / "tokenizer" / "report.json").read_text("utf-8"))
    for name in ("resume_first", "resume"):
        probe = stage(name, ["-c", RESUME_PROBE, str(raw / "bgwiki"), str(raw / NEWS)], n)
        keys = json.loads(probe["output"].strip().splitlines()[-1])
        probe.update(process_seconds=probe["seconds"], seconds=keys["seconds"], keys=keys["keys"])
    extra = max(1, n // 100)
    added = write_raw(model, raw, EXTRA_FIRST + n, extra, shards)
    plus = stage("corpus_plus_1pct", ["-m", "corpus.build", *cfg, "-j", str(jobs)], n + extra)
    plus.update(added_documents=added["records"], raw_shards=2 * shards + 1,
                **corpus_figures(corpus, plus["output"]))
    stages["tokenizer"].update(train_seconds=report["training"]["train_seconds"],
                               tokens=sum(s["tokens"] for s in report["splits"].values()))
    stages["tokens_unchanged"]["reused"] = report["reused"]
    return {"documents": n, "stages": _finish(stages)}


def _finish(stages: dict[str, dict]) -> dict[str, dict]:
    for result in stages.values():
        result["docs_per_s"] = result["documents"] / result["seconds"]
        del result["output"]
    return stages


def measured(runs: dict[int, dict]) -> list[str]:
    """The stages the runs measured, in ``STAGES`` order (all, or the corpus alone)."""
    return [name for name in STAGES if name in runs[min(runs)]["stages"]]


def exponent(x1: float, x2: float, n1: int, n2: int) -> float:
    return math.log(x2 / x1) / math.log(n2 / n1)


def growth(runs: dict[int, dict]) -> dict[str, list[dict]]:
    """Growth exponents of seconds and peak RSS between consecutive sizes, per stage."""
    sizes = sorted(runs)
    out: dict[str, list[dict]] = {}
    for name in measured(runs):
        out[name] = []
        for n1, n2 in zip(sizes, sizes[1:], strict=False):
            a, b = runs[n1]["stages"][name], runs[n2]["stages"][name]
            out[name].append({"from": n1, "to": n2,
                              "time_exponent": exponent(a["seconds"], b["seconds"], n1, n2),
                              "cpu_exponent": exponent(a["cpu_s"], b["cpu_s"], n1, n2),
                              "rss_exponent": exponent(a["peak_rss_mb"], b["peak_rss_mb"], n1, n2)})
    return out


def figures(runs: dict[int, dict], grow: dict[str, list[dict]]) -> list[dict]:
    """Each stage at the largest size beside the size before; +1% beside scratch. The corpus
    stage alone: its peak RSS at each size beside its own dedup index."""
    if measured(runs) == ["corpus"]:
        return [{"figure": f"corpus: peak RSS of a whole build from scratch at {n:,} documents "
                           f"(process tree)", "value": round(s["peak_rss_mb"]), "unit": "MB",
                 "peer": "its dedup index at the end (manifest dedup_index_bytes)",
                 "peer_value": round(s["dedup_index_bytes"] / 2**20),
                 "ratio": round(s["peak_rss_mb"] * 2**20 / s["dedup_index_bytes"], 2)}
                for n in sorted(runs) for s in [runs[n]["stages"]["corpus"]]]
    n1, n2 = sorted(runs)[-2:]
    out = []
    for name in STAGES:
        a, b = runs[n1]["stages"][name], runs[n2]["stages"][name]
        g = grow[name][-1]
        out.append({"figure": f"{name}: seconds at {n2:,} documents (growth exponent "
                              f"{g['time_exponent']:.2f}; peak RSS {b['peak_rss_mb']:,.0f} MB, "
                              f"exponent {g['rss_exponent']:.2f})",
                    "value": round(b["seconds"], 3), "unit": "s", "peer": f"at {n1:,} documents",
                    "peer_value": round(a["seconds"], 3), "ratio": round(b["seconds"] / a["seconds"], 3)})
    stages = runs[n2]["stages"]
    out.append({"figure": f"corpus build after adding 1% new documents ({n2:,} documents)",
                "value": round(stages["corpus_plus_1pct"]["seconds"], 3), "unit": "s",
                "peer": "build from scratch", "peer_value": round(stages["corpus"]["seconds"], 3),
                "ratio": round(stages["corpus_plus_1pct"]["seconds"] / stages["corpus"]["seconds"], 3)})
    return out


def rows(runs: dict[int, dict], grow: dict[str, list[dict]]) -> list[list[str]]:
    """stage, documents, seconds, documents/s, CPU seconds, peak RSS, and the exponents from the
    size before."""
    out = []
    for name in measured(runs):
        for i, n in enumerate(sorted(runs)):
            s = runs[n]["stages"][name]
            g = grow[name][i - 1] if i else {}
            out.append([name, f"{s['documents']:,}", f"{s['seconds']:.2f}", f"{s['docs_per_s']:,.0f}",
                        f"{s['cpu_s']:.2f}", f"{s['peak_rss_mb']:,.0f}",
                        *(f"{g[k]:.2f}" if g else "" for k in EXPONENTS)])
    return out


EXPONENTS = ("time_exponent", "cpu_exponent", "rss_exponent")
HEAD = ["stage", "documents", "seconds", "documents/s", "CPU s", "peak RSS MB", "time exponent",
        "CPU exponent", "RSS exponent"]


def section(runs: dict[int, dict], grow: dict[str, list[dict]]) -> str:
    """The Markdown ``bench.report`` puts under the results table."""
    notes = []
    for n in sorted(runs):
        c = runs[n]["stages"]["corpus"]
        notes.append(f"{n:,} raw documents -> {c['documents_out']:,} in the corpus; dedup index "
                     f"{c['dedup_index_bytes_per_document']:,.0f} bytes per raw document")
    table = markdown.table(HEAD, rows(runs, grow))
    title = ("## Scale, corpus build alone (`make bench-scale ARGS=--corpus-only`)"
             if measured(runs) == ["corpus"] else "## Scale (`make bench-scale`)")
    return "\n".join([title, "",
                      "Each stage is its own process of the real CLI (see `bench/scale.py`); "
                      "exponent = log(x2/x1) / log(n2/n1) from the size before (1: linear, 0: flat).",
                      "", *table, "", *[f"- {note}" for note in notes]]) + "\n"


def print_summary(runs: dict[int, dict], grow: dict[str, list[dict]]) -> None:
    table = Table(*HEAD, title="bench-scale")
    for row in rows(runs, grow):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def run(sizes: list[int], shard_docs: int, jobs: int, work: Path, keep: bool,
        corpus_only: bool = False) -> dict:
    """Generate the largest size's raw shards, then measure every size (its folder removed after
    unless ``keep``: at 160k documents one size holds about 1 GB)."""
    start = time.perf_counter()
    model = TextModel(DEMO_TEXT)
    _model[:] = [model]
    pool = work / "pool"
    tasks = [(pool, shard_docs, k) for k in range(max(sizes) // shard_docs)]
    with multiprocessing.get_context("fork").Pool(jobs) as workers:
        raw_stats = list(tqdm(workers.imap(_write_pool_shard, tasks), total=len(tasks),
                              desc="raw shards", disable=None))
    generated = {"seconds": time.perf_counter() - start,
                 "records": sum(r["records"] for r in raw_stats),
                 "html_bytes": sum(r["html_bytes"] for r in raw_stats),
                 "copies": sum(r["copies"] for r in raw_stats)}
    runs = {}
    with tqdm(total=len(sizes) * (1 if corpus_only else len(STAGES)), desc="stages",
              disable=None) as bar:
        for n in sizes:
            runs[n] = measure_size(n, work / str(n), pool, model, shard_docs, jobs, bar,
                                   corpus_only)
            if not keep:
                shutil.rmtree(work / str(n))
    return {"generated": generated, "runs": runs}


def parse_sizes(text: str, shard_docs: int, least: int = 2) -> list[int]:
    try:
        sizes = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise UserError(f"--sizes {text!r}: give document counts separated by commas") from None
    if len(sizes) < least or any(n < shard_docs or n % shard_docs for n in sizes):
        raise UserError(f"--sizes {text!r}: at least {least} size(s), each a multiple of "
                        f"--shard-docs ({shard_docs})")
    return sizes


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)),
                        help="document counts, comma-separated (default %(default)s)")
    parser.add_argument("--shard-docs", type=int, default=SHARD_DOCS,
                        help="documents per raw shard (default %(default)s)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="corpus worker processes")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"result file (default {OUT}, or {OUT_CORPUS_ONLY} with --corpus-only)")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the generated data and logs in this (new) folder")
    parser.add_argument("--corpus-only", action="store_true",
                        help="measure the corpus build from scratch alone (one size is enough)")
    parser.add_argument("--wiki-real", action="store_true",
                        help="instead: the Wikipedia path on a generated dump of real-size pages (bench.wiki_real)")
    parser.add_argument("--wiki-articles", type=int, default=20_000, help="--wiki-real's articles (default %(default)s)")
    parser.add_argument("--wiki-sample", type=int, default=200,
                        help="--wiki-real's pages for the cleaner's speed (default %(default)s)")
    args = parser.parse_args(argv)
    if args.wiki_real:
        from bench import wiki_real  # it builds on this module's TextModel and run_stage
        wiki_real.main(args.wiki_articles, args.wiki_sample, args.jobs, args.out, args.work)
        return
    if args.shard_docs < 1 or args.jobs < 1:
        raise UserError("--shard-docs and --jobs must be at least 1")
    sizes = parse_sizes(args.sizes, args.shard_docs, 1 if args.corpus_only else 2)
    args.out = args.out or (OUT_CORPUS_ONLY if args.corpus_only else OUT)
    if args.work and args.work.exists():
        raise UserError(f"--work {args.work}: already exists; give a new folder")
    benchmark = harness.Run()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        result = run(sizes, args.shard_docs, args.jobs, work, keep=args.work is not None,
                     corpus_only=args.corpus_only)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    runs = result["runs"]
    grow = growth(runs)
    benchmark.write(args.out, "scale", figures(runs, grow),
                    settings={"sizes": sizes, "shard_docs": args.shard_docs, "jobs": args.jobs,
                              "vocab_size": VOCAB, "corpus_only": args.corpus_only},
                    section=section(runs, grow), generated=result["generated"], growth=grow,
                    runs={str(n): r for n, r in runs.items()})
    print_summary(runs, grow)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
