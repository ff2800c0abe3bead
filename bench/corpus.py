"""Benchmark ``make corpus``: throughput, memory at two input sizes, and extraction quality.

- Throughput: ``python -m corpus.build -j 1`` (one process, the whole step from raw shards to
  the written corpus) in MB of raw HTML (10^6 bytes) per CPU-second of that process
  (``bench.harness.measure``; wall seconds are kept in ``runs``: on a shared machine they measure
  the neighbours too). Input:
  the real actualno.com article page with its body replaced by Bulgarian sentences drawn from the
  fake-news fixture (news path: trafilatura), and bg.wikipedia ``action=parse`` HTML rendered by
  the replay wiki (wiki path: ``corpus.wiki_extract``). Peer: plain ``trafilatura.extract`` (default settings) alone on the same
  news pages in this process (CPU time, median of 3 passes). The marginal rate (size B minus
  size A) leaves out start-up.
- Memory: peak RSS of that process tree (``bench.harness.measure``) at size A and at size B =
  4 x A; raw shards are the same size at both, so the peak must not grow with the input.
- Extraction speed: ours and the previous extractor on the throughput input's news pages, MB per
  CPU-second. Extraction quality is ``bench/extraction.py`` (``make bench-corpus`` runs both).
"""

from __future__ import annotations

import gzip
import html
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import lxml.html
import trafilatura

from bench import harness
from bench.extraction import previous_extractor
from common.config import write as write_config
from common.errors import UserError, cli_main
from corpus.extract import extract_news
from corpus.read import write_shard
from demo.replay.pages import Page
from demo.replay.wikitext import Renderer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BG_FIXTURES") or ROOT.parent / "shared" / "fixtures")
NEWS_PAGE = FIXTURES / "news_html/htmldate_test_set/1740081165.html"
FAKE_NEWS = FIXTURES / "bg_text/hack_the_fake_news/FN_Validation_Set.jsonl"
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
    """Run the corpus step in one process; its wall and CPU time, peak RSS and output."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = project / "build.log"
    m = harness.measure([sys.executable, "-m", "corpus.build", "--config",
                         str(project / "pipelines.toml"), "-j", "1"], log, env)
    if m["returncode"] != 0:
        raise UserError(f"corpus.build failed in {project}")
    return {"wall_s": m["seconds"], "cpu_s": m["cpu_s"], "peak_rss_mb": m["peak_rss_mb"],
            "summary": log.read_text(encoding="utf-8")}


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
    for path in (NEWS_PAGE, FAKE_NEWS):
        if not path.exists():
            raise UserError(f"fixture {path} not found (set BG_FIXTURES)")
    benchmark = harness.Run()
    runs = throughput_and_memory()
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
    benchmark.write(OUT, "corpus", figures,
                    runs={k: {kk: vv for kk, vv in v.items() if kk != "summary"} if isinstance(v, dict) else v
                          for k, v in runs.items()},
                    build_summary_size_B=b["summary"])
    for f in figures:
        print(f"{f['figure']}: {f['value']} {f['unit']}  |  {f['peer']}: {f['peer_value']}  "
              f"(ratio {f['ratio']})")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
