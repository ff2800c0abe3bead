"""Benchmark ``make corpus``: throughput, memory at two input sizes, and extraction quality.

- Throughput: ``python -m corpus.build -j 1`` (one process, the whole step from raw shards to
  the written corpus) in MB of raw HTML (10^6 bytes) per CPU-second of that process (``wait4``;
  wall seconds are kept in ``runs``: on a shared machine they measure the neighbours too). Input:
  the real actualno.com article page with its body replaced by Bulgarian sentences drawn from the
  fake-news fixture (news path: trafilatura), and bg.wikipedia ``action=parse`` HTML rendered by
  the replay wiki (wiki path: ``corpus.wiki_extract``). Peer: plain ``trafilatura.extract`` (default settings) alone on the same
  news pages in this process (CPU time, median of 3 passes). The marginal rate (size B minus
  size A) leaves out start-up.
- Memory: peak RSS of that process (``wait4``) at size A and at size B = 4 x A; raw shards are the
  same size at both, so the peak must not grow with the input.
- Extraction F1 on the Scrapinghub article-extraction benchmark (181 English news pages), scored
  like its published evaluate.py: per page, 4-token shingles of truth and prediction, tp = sum of
  min counts; precision and recall per page averaged over pages; F1 of the averages. Two
  tokenisations: ``\\w+`` words, and whitespace-separated tokens (the published one). Ours
  (``corpus.extract.extract_news`` + ``normalize``; the path each page took is counted) beside
  plain trafilatura (default settings), readability-lxml (``text_content`` of its summary, which
  glues paragraphs together: that costs it whitespace tokens) and the previous extractor
  (trafilatura with ``favor_precision``), in the same run. The extractor's thresholds are checked
  by 5-fold cross-validation: on each fold the grid point best on the other four folds (mean of
  the two F1s) is scored on the held-out fold. Extraction speed: ours and the previous extractor
  on the throughput input's news pages, MB per CPU-second.
"""

from __future__ import annotations

import gzip
import html
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import lxml.html
import regex
import trafilatura
from readability import Document

from bench.report import machine
from common.atomic import atomic_write
from common.config import write as write_config
from common.errors import UserError, cli_main
from corpus import news_extract
from corpus.extract import extract_news, extract_news_with_path
from corpus.normalize import normalize
from corpus.read import write_shard
from demo.replay.pages import Page
from demo.replay.wikitext import Renderer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BG_FIXTURES") or ROOT.parent / "shared" / "fixtures")
NEWS_PAGE = FIXTURES / "news_html/htmldate_test_set/1740081165.html"
FAKE_NEWS = FIXTURES / "bg_text/hack_the_fake_news/FN_Validation_Set.jsonl"
SCRAPINGHUB = FIXTURES / "extraction_benchmarks/scrapinghub_article_extraction_benchmark"
OUT = ROOT / "bench" / "results" / "corpus.json"
SIZE_A_MB = 6.0
SIZE_B_MB = 4 * SIZE_A_MB
SHARD_MB = 2.0  # uncompressed raw shard size, the same at both input sizes
PEER_PAGES = 25
PEER_PASSES = 3
_BODY = "@@BODY@@"
_TITLE = "@@TITLE@@"


def news_template() -> str:
    """The real actualno.com article page with its headline and body turned into placeholders."""
    tree = lxml.html.fromstring(NEWS_PAGE.read_text(encoding="utf-8"))
    lead = next(e for e in tree.iter("div") if (e.text or "").strip().startswith("Нови технически"))
    body = lead.getparent()  # the lead paragraph and the rest of the article
    for child in list(body):
        body.remove(child)
    body.text = _BODY
    headline = next(e for e in tree.iter("h1"))
    for child in list(headline):
        headline.remove(child)
    headline.text = _TITLE
    return lxml.html.tostring(tree, encoding="unicode")


def wiki_page(title: str, paragraphs: list[str]) -> str:
    """bg.wikipedia ``action=parse`` HTML of a page of these paragraphs (a heading before every
    third), rendered by the replay wiki (``demo.replay.wikitext.Renderer``)."""
    body = "\n".join((f"== Раздел {n // 3} ==\n" if n and n % 3 == 0 else "") + paragraph
                     for n, paragraph in enumerate(paragraphs))
    page = Page(title, body, ["Бенчмарк"])
    return Renderer([page]).render(page)


def sentences() -> list[str]:
    """Real Bulgarian sentences from the fake-news fixture."""
    out = []
    for line in FAKE_NEWS.read_text(encoding="utf-8").splitlines():
        content = json.loads(line)["Content"]
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", content) if 40 <= len(s.strip()) <= 400]
    return sorted(set(out))


def make_raw(data: Path, target_mb: float, pool: list[str], template: str) -> tuple[int, int]:
    """Raw shards of unique synthetic pages (3 news : 1 wiki) under ``data/raw``: (bytes, records)."""
    rng = random.Random(7)
    total = records = shard_bytes = 0
    batch: dict[str, list[dict]] = {"news": [], "bgwiki": []}
    shard_no = Counter()

    def flush(source: str) -> None:
        if batch[source]:
            write_shard(data / "raw" / source / f"part-{shard_no[source]:05d}.jsonl.gz", batch[source])
            shard_no[source] += 1
            batch[source] = []

    while total < target_mb * 1e6:
        paragraphs = [" ".join(rng.sample(pool, 4)) for _ in range(rng.randint(3, 12))]
        title = rng.choice(pool)[:80]
        if records % 4 == 3:
            source, page = "bgwiki", wiki_page(title, paragraphs)
            url = f"https://bg.wikipedia.org/wiki/Статия_{records}"
        else:
            body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
            source = "news"
            page = template.replace(_BODY, body).replace(_TITLE, html.escape(title))
            url = f"https://www.actualno.com/bench/{records}.html"
        batch[source].append({"url": url, "canonical_url": url, "title": title, "source": source,
                              "html": page, "license": "bench"})
        size = len(page.encode("utf-8"))
        total += size
        shard_bytes += size
        records += 1
        if shard_bytes >= SHARD_MB * 1e6:
            flush("news")
            flush("bgwiki")
            shard_bytes = 0
    flush("news")
    flush("bgwiki")
    return total, records


def run_build(project: Path) -> dict:
    """Run the corpus step in one process; its wall time and peak RSS."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "corpus.build", "--config",
                             str(project / "pipelines.toml"), "-j", "1"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise UserError(f"corpus.build failed in {project}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mb": usage.ru_maxrss / 1024, "summary": out}


def news_pages(project: Path) -> list[str]:
    """The first PEER_PAGES news pages of the input."""
    pages = []
    for shard in sorted((project / "data/raw/news").glob("part-*.jsonl.gz")):
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            pages += [json.loads(line)["html"] for line in fh]
    return pages[:PEER_PAGES]


def trafilatura_peer(project: Path) -> dict:
    """Plain ``trafilatura.extract`` on news pages of the input: median MB/s of 3 passes."""
    pages = news_pages(project)
    trafilatura.extract(pages[0])  # warm-up
    size_mb = sum(len(p.encode("utf-8")) for p in pages) / 1e6
    cpu_rates, wall_rates = [], []
    for _ in range(PEER_PASSES):
        wall, cpu = time.perf_counter(), time.process_time()
        for page in pages:
            trafilatura.extract(page)
        cpu_rates.append(size_mb / (time.process_time() - cpu))
        wall_rates.append(size_mb / (time.perf_counter() - wall))
    return {"mb_per_cpu_s": statistics.median(cpu_rates), "mb_per_s": statistics.median(wall_rates),
            "pages": len(pages), "passes": PEER_PASSES}


def throughput_and_memory() -> dict:
    pool = sentences()
    template = news_template()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as tmp:
        for name, size in (("A", SIZE_A_MB), ("B", SIZE_B_MB)):
            project = Path(tmp) / name
            project.mkdir()
            write_config(project / "pipelines.toml", {"paths": {"data": "data", "artifacts": "artifacts"},
                                   "corpus": {"min_chars": 200}})
            html_bytes, records = make_raw(project / "data", size, pool, template)
            result = run_build(project)
            result.update(html_mb=html_bytes / 1e6, records=records,
                          mb_per_s=html_bytes / 1e6 / result["wall_s"],
                          mb_per_cpu_s=html_bytes / 1e6 / result["cpu_s"])
            runs[name] = result
            if name == "A":
                runs["peer"] = trafilatura_peer(project)
                runs["extraction_speed"] = extraction_speed(project)
    a, b = runs["A"], runs["B"]
    runs["marginal_mb_per_cpu_s"] = (b["html_mb"] - a["html_mb"]) / (b["cpu_s"] - a["cpu_s"])
    return runs


_WORDS = regex.compile(r"\w+").findall
TOKENISERS: dict[str, Callable[[str], list[str]]] = {"": _WORDS, "_whitespace": str.split}
CV_FOLDS = 5
CV_GRID = [news_extract.Thresholds(add_words=words, cover=cover)
           for words in (20, 30, 40, 60, 80, 120) for cover in (0.5, 0.7)]


def shingle_counts(text: str, n: int = 4, tokens: Callable[[str], list[str]] = _WORDS) -> Counter:
    words = tokens(text or "")
    return Counter(tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1)) if words[i:i + n])


def page_scores(truth: str, pred: str, tokens: Callable[[str], list[str]] = _WORDS,
                ) -> tuple[float | None, float | None]:
    """(precision, recall) of one page; None where the benchmark leaves the page out."""
    t, p = shingle_counts(truth, tokens=tokens), shingle_counts(pred, tokens=tokens)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    if fp == fn == 0:
        return 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def prf(scores: list[tuple[float | None, float | None]]) -> tuple[float, float, float]:
    """(F1, precision, recall) of per-page scores: precision and recall averaged over pages."""
    precision = statistics.mean(p for p, _ in scores if p is not None)
    recall = statistics.mean(r for _, r in scores if r is not None)
    return 2 * precision * recall / (precision + recall), precision, recall


def score_texts(preds: dict[str, str], truth: dict) -> dict:
    """F1, precision and recall over the pages of ``preds``, for each tokenisation."""
    out = {}
    for suffix, tokens in TOKENISERS.items():
        f1, precision, recall = prf([page_scores(truth[key]["articleBody"], pred, tokens)
                                     for key, pred in preds.items()])
        out.update({f"f1{suffix}": f1, f"precision{suffix}": precision, f"recall{suffix}": recall})
    return out


def score(extractor: Callable[[str], str], pages: dict[str, str], truth: dict) -> dict:
    preds, seconds = {}, []
    for key, page in pages.items():
        start = time.perf_counter()
        preds[key] = extractor(page)
        seconds.append(time.perf_counter() - start)
    return {**score_texts(preds, truth), "median_ms_per_page": 1000 * statistics.median(seconds)}


def readability_text(page: str) -> str:
    summary = Document(page).summary(html_partial=True)
    return lxml.html.fromstring(summary).text_content() if summary.strip() else ""


def previous_extractor(page: str) -> str:
    """The news extractor before the two libraries were combined: trafilatura, favor_precision."""
    return trafilatura.extract(
        page, favor_precision=True, include_comments=False, include_tables=False,
        include_images=False, include_links=False, deduplicate=False) or ""


def cross_validate(pages: dict[str, str], truth: dict) -> dict:
    """5-fold CV of ``news_extract.combine``'s thresholds over CV_GRID (library outputs run once)."""
    cands = {key: news_extract.candidates(page) for key, page in pages.items()}
    scores = [{suffix: {key: page_scores(truth[key]["articleBody"],
                                         normalize(news_extract.combine(c, t)[0]), tokens)
                        for key, c in cands.items()}
               for suffix, tokens in TOKENISERS.items()} for t in CV_GRID]
    keys = sorted(pages)
    random.Random(0).shuffle(keys)
    folds = [keys[i::CV_FOLDS] for i in range(CV_FOLDS)]

    def fit(point: int, subset: list[str], suffix: str) -> float:
        return prf([scores[point][suffix][key] for key in subset])[0]

    out = []
    for n, held_out in enumerate(folds):
        train = [key for key in keys if key not in set(held_out)]
        best = max(range(len(CV_GRID)), key=lambda i: sum(fit(i, train, s) for s in TOKENISERS))
        out.append({"fold": n, "pages": len(held_out), "chosen": vars(CV_GRID[best]),
                    "f1": fit(best, held_out, ""),
                    "f1_whitespace": fit(best, held_out, "_whitespace")})
    return {"folds": out, "grid_points": len(CV_GRID),
            "mean_f1": statistics.mean(f["f1"] for f in out),
            "mean_f1_whitespace": statistics.mean(f["f1_whitespace"] for f in out),
            "defaults": vars(news_extract.DEFAULT)}


def extraction_f1() -> dict:
    truth = json.loads((SCRAPINGHUB / "ground-truth.json").read_text(encoding="utf-8"))
    pages = {}
    for key in sorted(truth):
        raw = gzip.decompress((SCRAPINGHUB / "html" / f"{key}.html.gz").read_bytes())
        pages[key] = raw.decode("utf-8", errors="replace")
    paths = Counter()

    def ours(page: str) -> str:
        text, path = extract_news_with_path(page)
        paths[path] += 1
        return normalize(text)

    return {
        "ours": score(ours, pages, truth),
        "trafilatura": score(lambda p: trafilatura.extract(p) or "", pages, truth),
        "readability": score(readability_text, pages, truth),
        "previous": score(previous_extractor, pages, truth),
        "paths": dict(paths.most_common()),
        "cross_validation": cross_validate(pages, truth),
        "pages": len(pages),
    }


def extraction_speed(project: Path) -> dict:
    """Ours and the previous extractor on the throughput input's news pages: MB per CPU-second."""
    pages = news_pages(project)
    size_mb = sum(len(p.encode("utf-8")) for p in pages) / 1e6
    out = {}
    for name, extractor in (("ours", extract_news), ("previous", previous_extractor)):
        extractor(pages[0])  # warm-up
        rates = []
        for _ in range(PEER_PASSES):
            cpu = time.process_time()
            for page in pages:
                extractor(page)
            rates.append(size_mb / (time.process_time() - cpu))
        out[name] = statistics.median(rates)
    return {"mb_per_cpu_s": out, "pages": len(pages), "passes": PEER_PASSES}


@cli_main
def main() -> None:
    for path in (NEWS_PAGE, FAKE_NEWS, SCRAPINGHUB):
        if not path.exists():
            raise UserError(f"fixture {path} not found (set BG_FIXTURES)")
    started = datetime.now(UTC).replace(microsecond=0).isoformat()
    load = os.getloadavg()[0]
    runs = throughput_and_memory()
    f1 = extraction_f1()
    a, b, peer = runs["A"], runs["B"], runs["peer"]
    peer_rate = peer["mb_per_cpu_s"]
    figures = [
        {"figure": f"corpus step, MB raw HTML per CPU-second, one process (size B, "
                   f"{b['html_mb']:.0f} MB)",
         "value": round(b["mb_per_cpu_s"], 3), "unit": "MB/s", "peer": "trafilatura.extract alone",
         "peer_value": round(peer_rate, 3), "ratio": round(b["mb_per_cpu_s"] / peer_rate, 3)},
        {"figure": "corpus step, marginal MB per CPU-second (B - A, start-up left out)",
         "value": round(runs["marginal_mb_per_cpu_s"], 3), "unit": "MB/s",
         "peer": "trafilatura.extract alone", "peer_value": round(peer_rate, 3),
         "ratio": round(runs["marginal_mb_per_cpu_s"] / peer_rate, 3)},
        {"figure": f"peak RSS at size B ({b['html_mb']:.0f} MB HTML)",
         "value": round(b["peak_rss_mb"], 1), "unit": "MB",
         "peer": f"peak RSS at size A ({a['html_mb']:.0f} MB HTML)",
         "peer_value": round(a["peak_rss_mb"], 1), "ratio": round(b["peak_rss_mb"] / a["peak_rss_mb"], 3)},
    ]
    speed = runs["extraction_speed"]["mb_per_cpu_s"]
    figures.append({
        "figure": "news extraction alone, MB raw HTML per CPU-second (ours)",
        "value": round(speed["ours"], 3), "unit": "MB/s",
        "peer": "previous extractor (trafilatura, favor_precision)",
        "peer_value": round(speed["previous"], 3), "ratio": round(speed["ours"] / speed["previous"], 3)})
    peers = {"trafilatura": "trafilatura (default settings)",
             "readability": "readability-lxml (default settings)",
             "previous": "previous extractor (trafilatura, favor_precision)"}
    for suffix, tokens in (("", "\\w+ tokens"), ("_whitespace", "whitespace tokens")):
        ours = f1["ours"][f"f1{suffix}"]
        for peer_name, peer_label in peers.items():
            theirs = f1[peer_name][f"f1{suffix}"]
            figures.append({
                "figure": f"news extraction F1, {tokens} (Scrapinghub benchmark, ours)",
                "value": round(ours, 4), "unit": "", "peer": peer_label,
                "peer_value": round(theirs, 4), "ratio": round(ours / theirs, 4)})
    result = {"name": "corpus", "date": started,
              "machine": {**machine(), "load_avg_1min_at_start": load},
              "figures": figures,
              "runs": {k: {kk: vv for kk, vv in v.items() if kk != "summary"} if isinstance(v, dict) else v
                       for k, v in runs.items()},
              "build_summary_size_B": b["summary"],
              "extraction": f1}
    with atomic_write(OUT) as fh:
        json.dump(result, fh, ensure_ascii=False, indent=2)
        fh.write("\n")
    for f in figures:
        print(f"{f['figure']}: {f['value']} {f['unit']}  |  {f['peer']}: {f['peer_value']}  "
              f"(ratio {f['ratio']})")
    cv = f1["cross_validation"]
    for fold in cv["folds"]:
        print(f"CV fold {fold['fold']} ({fold['pages']} pages): F1 {fold['f1']:.4f} (\\w+), "
              f"{fold['f1_whitespace']:.4f} (whitespace) with {fold['chosen']}")
    print(f"extraction paths: {f1['paths']}")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
