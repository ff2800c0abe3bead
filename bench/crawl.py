"""Crawl throughput: the real ``bgwiki`` spider with its pipeline beside a no-op Scrapy spider.

``make bench-crawl`` (``python -m bench.crawl``) serves a replay MediaWiki API of ``--pages``
generated Bulgarian pages (``demo.replay.wiki.WikiReplay``; HTML pre-rendered so the server is not
the bottleneck) on 127.0.0.1, then, ``--runs`` times, each in a fresh ``scrapy`` process:

- ``bgwiki``: ``scrapy crawl bgwiki`` as a user runs it: titles resolved 50 per POST, one
  ``action=parse`` per page, backoff/resume middlewares, the raw shard pipeline (gzip, flush per
  record), the summary extension;
- ``noop`` (the peer): a bare ``scrapy.Spider`` fetching the same ``action=parse`` URLs with the
  same engine settings (concurrency, ``CONCURRENT_ITEMS``), downloading and discarding the
  responses: no pipeline, no project middlewares, no JOBDIR.

Both are timed from spider open to close (process start-up left out), in wall time and in the
crawler process's CPU time; the two run in alternating order. The figure is pages/s; the ratio is
bgwiki / noop per run, and medians are reported. On a shared machine the wall-time ratio swings
with other load; the ratio of pages per CPU second is the steadier companion.

Each run also times the Selenium fallback: seconds per page for headless Chromium
(``crawler.render.selenium_seconds_per_page``, one warm-up, then the median of ``--renders``) on the
JavaScript-only article of the bundled news site (``demo.replay.news.NewsReplay``), beside a plain
HTTP fetch of the same page. Results: ``bench/results/crawl.json`` (``figures`` as ``bench.report`` reads them).

``make wikidump``'s reader is timed on a local generated Enterprise HTML dump of ``--dump-articles``
Parsoid-shaped pages (``demo.replay.dump``): articles/s of ``crawler.wikidump.import_dump`` (gzip
+ tar stream, JSON, selection, done-keys, the raw shard writer) beside a bare stream read of the same
file (gzip + tar stream + ``json.loads`` of each line, nothing kept), ``--runs`` times alternately.

Resume at size (``--resume-gb``, default 1): raw shards of generated pages (distinct URLs, ~60 kB
of HTML of made-up Cyrillic words each, 32 MB uncompressed a shard like ``crawl.shard_bytes``) are written to
a temporary ``data/raw/bgwiki`` until they hold that many GB on disk, each with its keys file. To
write a GB in seconds a record is two gzip members, its own small head and an HTML body from a
pool of pre-compressed ones: readers decompress and parse every byte as in a crawler's shard.
Figures, ``--runs`` each, before/after alternating: the done-keys load (every record's JSON
parsed, as a start did before keys files, vs the keys files only), and the time from starting
``scrapy crawl bgwiki`` over those shards to its first request at a replay API (keys files
removed before each "before" run, so that start rebuilds them from the shards).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from common.atomic import atomic_write
from common.config import write as write_config
from common.errors import UserError, cli_main
from crawler import render
from crawler.pipelines import (
    finished_shards,
    keys_path,
    read_keys,
    shard_keys,
    shard_path,
    write_keys,
)
from crawler.wikidump import Selection, import_dump
from demo.replay.dump import dump_articles, write_dump
from demo.replay.news import NewsReplay
from demo.replay.pages import synthetic_pages
from demo.replay.wiki import WikiReplay

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "crawl.json"
NEWS_SITE = ROOT / "demo" / "site" / "news"
JS_ARTICLE = "12-observatoria-vecher"  # the bundled article rendered only by JavaScript
PARSE_PARAMS = "prop=text%7Crevid%7Cdisplaytitle%7Ccategories&format=json&formatversion=2&maxlag=5"


def machine() -> dict:
    """``bench.report.machine()`` plus the load when the benchmark started."""
    return {**report.machine(), "load_avg_1min_at_start": round(os.getloadavg()[0], 2),
            "python": platform.python_version()}


def run_noop(urls_file: str, out: str, concurrency: int) -> None:
    """The peer, inside its own process: fetch every URL, keep nothing, write timing to ``out``."""
    import scrapy
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from crawler.settings import CONCURRENT_ITEMS  # the project's engine setting, for a like peer

    class NoopSpider(scrapy.Spider):
        name = "noop"
        custom_settings = {"ROBOTSTXT_OBEY": False}

        async def start(self):
            for url in Path(urls_file).read_text().split():
                yield scrapy.Request(url)

        def parse(self, response):
            return None

    times: dict[str, float] = {}
    process = CrawlerProcess({
        "USER_AGENT": "BgGPT2Toolkit-bench/0.1 (https://github.com/bg-gpt2/bg-gpt2; bench@example.org)",
        "CONCURRENT_REQUESTS": 16, "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency, "DOWNLOAD_DELAY": 0,
        "CONCURRENT_ITEMS": CONCURRENT_ITEMS,
        "AUTOTHROTTLE_ENABLED": False, "REMOTE_CONTROL_ENABLED": False, "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
    })
    crawler = process.create_crawler(NoopSpider)
    for key, signal in (("open", signals.spider_opened), ("close", signals.spider_closed)):
        crawler.signals.connect(lambda key=key: times.setdefault(key, (time.monotonic(), time.process_time())),
                                signal=signal, weak=False)
    process.crawl(crawler)
    process.start()
    pages = crawler.stats.get_value("response_received_count", 0)
    (wall0, cpu0), (wall1, cpu1) = times["open"], times["close"]
    Path(out).write_text(json.dumps({"pages": pages, "elapsed_s": wall1 - wall0, "cpu_s": cpu1 - cpu0}))


def timed_bgwiki(work: Path, api: str, titles: Path, concurrency: int) -> dict:
    config = write_config(work / "pipelines.toml", {
        "paths": {"data": work / "data", "artifacts": work / "artifacts"},
        "crawl": {"download_delay": 0.0, "autothrottle": False, "concurrency_per_domain": concurrency},
        "crawl.bgwiki": {"api": api, "titles": titles},
    })
    summary = work / "summary.json"
    env = {**os.environ, "BG_CONFIG": str(config)}
    env.pop("REDIS_URL", None)
    proc = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "bgwiki", "-s", f"SUMMARY_JSON={summary}"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"bgwiki crawl failed:\n{proc.stderr[-3000:]}")
    data = json.loads(summary.read_text())
    raw = work / "data" / "raw" / "bgwiki"
    return {"pages": data["pages/ok"], "elapsed_s": data["elapsed_s"], "cpu_s": data["cpu_s"],
            "shard_bytes_gz": sum(p.stat().st_size for p in raw.glob("part-*.jsonl.gz"))}


def timed_noop(work: Path, urls: list[str], concurrency: int) -> dict:
    urls_file, out = work / "urls.txt", work / "noop.json"
    urls_file.write_text("\n".join(urls))
    subprocess.run([sys.executable, "-m", "bench.crawl", "--noop", str(urls_file), str(out),
                    "--concurrency", str(concurrency)], cwd=ROOT, check=True, capture_output=True)
    return json.loads(out.read_text())


def plain_seconds_per_page(url: str, fetches: int) -> dict:
    """Median seconds of a plain HTTP GET of ``url`` (after one warm-up fetch) and the body it got."""
    def fetch() -> tuple[float, str]:
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read().decode("utf-8")
        return time.perf_counter() - start, body

    _, body = fetch()
    times = [fetch()[0] for _ in range(fetches)]
    return {"fetches": fetches, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "body": body}


def selenium_seconds_per_page(renders: int, chromium_first: bool = True) -> dict:
    """Seconds per page of the Selenium fallback on the JS-only demo article, beside a plain fetch."""
    with NewsReplay(NEWS_SITE) as site:
        article = site.site.by_slug[JS_ARTICLE]
        url = site.url(f"/news/{JS_ARTICLE}.html")
        if chromium_first:
            chromium = render.selenium_seconds_per_page(url, renders=renders)
            plain = plain_seconds_per_page(url, renders)
        else:
            plain = plain_seconds_per_page(url, renders)
            chromium = render.selenium_seconds_per_page(url, renders=renders)
    if not article.js or article.paragraphs[0] in plain.pop("body"):
        raise RuntimeError(f"{url} is not JavaScript-only: the plain fetch already holds its text")
    return {"url_path": f"/news/{JS_ARTICLE}.html", "selenium": chromium, "plain_http": plain,
            "ratio": chromium["median_s"] / plain["median_s"]}


def write_raw_shards(folder: Path, gigabytes: float, shard_bytes: int = 32_000_000) -> dict:
    """Raw shards of generated pages in ``folder`` until they hold ``gigabytes`` GB on disk."""
    rng = random.Random(13)
    # 20,000 made-up Cyrillic words: text that gzip shrinks about 2.8 times, like prose
    words = ["".join(rng.choice("бвгджзклмнпрстфхцчшщ") + rng.choice("аеиоуъяю")
                     for _ in range(rng.randint(1, 4))) for _ in range(20_000)]
    bodies = []  # (uncompressed bytes, gzip member): the end of a record, from "html" on
    for _ in range(32):
        html = "".join(f"<p>{' '.join(rng.choices(words, k=120))}</p>" for _ in range(45))
        tail = (json.dumps(html, ensure_ascii=False)[1:] + ', "categories": []}\n').encode()
        bodies.append((len(tail), gzip.compress(tail, compresslevel=6, mtime=0)))
    folder.mkdir(parents=True, exist_ok=True)
    total = records = number = 0
    while total < gigabytes * 1e9:
        number += 1
        path, keys, size = shard_path(folder, number), set(), 0
        with open(path, "wb") as fh:
            while size < shard_bytes:
                records += 1
                canonical = f"https://bg.wikipedia.org/wiki/Статия_{records:07d}"
                url = f"https://bg.wikipedia.org/w/api.php?action=parse&pageid={records}"
                head = json.dumps({"url": url, "canonical_url": canonical, "title": f"Статия {records}",
                                   "source": "bgwiki", "lang": "bg", "fetched_at": "2026-11-29T12:00:00Z",
                                   "http_status": 200, "via": "http", "revid": records,
                                   "license": "CC BY-SA 4.0"}, ensure_ascii=False)[:-1] + ', "html": "'
                length, member = rng.choice(bodies)
                fh.write(gzip.compress(head.encode(), compresslevel=6, mtime=0) + member)
                size += len(head.encode()) + length
                keys |= {url, canonical}
        write_keys(path, keys, path.stat().st_size)
        total += path.stat().st_size
    return {"shards": number, "records": records, "gz_bytes": total}


def first_request_seconds(work: Path, server: WikiReplay, title: str) -> float:
    """Seconds from starting ``scrapy crawl bgwiki`` (data under ``work``) to its first request."""
    titles = work / "one-title.txt"
    titles.write_text(title + "\n", encoding="utf-8")
    config = write_config(work / "pipelines.toml", {"paths": {"data": work / "data", "artifacts": work / "artifacts"},
                                 "crawl": {"download_delay": 0.0, "autothrottle": False},
                                 "crawl.bgwiki": {"api": server.api, "titles": titles}})
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    seen = len(server.requests)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "scrapy", "crawl", "bgwiki"], cwd=ROOT,
                            env={**env, "BG_CONFIG": str(config)}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    while len(server.requests) == seen and proc.poll() is None:
        time.sleep(0.005)
    elapsed = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode or len(server.requests) == seen:
        raise RuntimeError(f"bgwiki crawl failed:\n{err[-3000:]}")
    return elapsed


def resume_start(gigabytes: float, runs: int) -> dict:
    """Crawl start over ``gigabytes`` GB of raw shards: done keys from every record vs from the
    keys files, and the time to the first request without vs with keys files (see the docstring)."""
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp, \
            WikiReplay(synthetic_pages(1)) as server:
        work = Path(tmp)
        raw = work / "data" / "raw" / "bgwiki"
        made = write_raw_shards(raw, gigabytes)
        print(f"resume: {made['gz_bytes'] / 1e9:.2f} GB of raw shards, {made['records']:,} pages",
              file=sys.stderr)
        rounds = []
        for number in range(runs):
            row = {}
            for kind in (("parse", "keys") if number % 2 == 0 else ("keys", "parse")):
                shards = finished_shards(raw)
                start = time.perf_counter()
                keys = set().union(*((shard_keys if kind == "parse" else read_keys)(s) for s in shards))
                row[f"load_{kind}_s"] = time.perf_counter() - start
                row["keys"] = len(keys)
                if kind == "parse":
                    for shard in shards:
                        keys_path(shard).unlink()
                row[f"first_request_{kind}_s"] = first_request_seconds(work, server, "Статия 00001")
            rounds.append(row)
            print(f"resume run {number + 1}/{runs}: done keys {row['load_parse_s']:.2f} s -> "
                  f"{row['load_keys_s']:.3f} s; first request {row['first_request_parse_s']:.2f} s -> "
                  f"{row['first_request_keys_s']:.2f} s", file=sys.stderr)
    median = {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}
    return {**made, "runs": rounds, "median": median}


def resume_figures(resume: dict, runs: int) -> list[dict]:
    """``bench.report`` figures of ``resume_start``'s result."""
    size, m = f"{resume['gz_bytes'] / 1e9:.2f} GB of raw shards, {resume['records']:,} pages", resume["median"]
    return [
        {"figure": f"crawl start: done keys from keys files ({size}, median of {runs} runs)",
         "value": float(f"{m['load_keys_s']:.4g}"), "unit": "s",
         "peer": "every stored record decompressed and parsed (before keys files)",
         "peer_value": float(f"{m['load_parse_s']:.4g}"),
         "ratio": float(f"{m['load_keys_s'] / m['load_parse_s']:.4g}"), "device": "CPU"},
        {"figure": f"crawl start: time to the first request, scrapy crawl bgwiki ({size}, median of {runs} runs)",
         "value": float(f"{m['first_request_keys_s']:.4g}"), "unit": "s",
         "peer": "same crawl, shards without keys files", "peer_value": float(f"{m['first_request_parse_s']:.4g}"),
         "ratio": float(f"{m['first_request_keys_s'] / m['first_request_parse_s']:.4g}"), "device": "CPU"},
    ]


def figures(median: dict, runs: int, pages: int, renders: int) -> list[dict]:
    """The figures of ``bench.report``: medians over ``runs``, ratio = median of per-run ratios."""
    of = f"median of {runs} runs"
    return [
        {"figure": f"crawl pages/s, bgwiki spider + raw shard pipeline ({pages} pages, {of})",
         "value": median["bgwiki_pages_per_s"], "unit": "pages/s",
         "peer": "no-op Scrapy spider, same URLs", "peer_value": median["noop_pages_per_s"],
         "ratio": median["ratio"], "device": "CPU"},
        {"figure": f"crawl pages per CPU-second, bgwiki spider + raw shard pipeline ({of})",
         "value": median["bgwiki_pages_per_cpu_s"], "unit": "pages/CPU-s",
         "peer": "no-op Scrapy spider, same URLs", "peer_value": median["noop_pages_per_cpu_s"],
         "ratio": median["cpu_ratio"], "device": "CPU"},
        {"figure": f"Selenium fallback, headless Chromium on the JS-only demo article "
                   f"(median of {renders} renders, {of})",
         "value": median["selenium_s_per_page"], "unit": "s/page",
         "peer": "plain HTTP fetch of the same page", "peer_value": median["plain_s_per_page"],
         "ratio": median["selenium_ratio"], "device": "CPU"},
    ]


def bare_read(dump: Path) -> int:
    """The peer of the dump import: every line of every member parsed, nothing else."""
    count = 0
    with tarfile.open(dump, mode="r|gz") as tar:
        for info in tar:
            for line in tar.extractfile(info):
                json.loads(line)
                count += 1
    return count


# VmHWM, not ru_maxrss: the latter keeps the forking parent's RSS across exec
PEAK_RSS_CHILD = """import re, sys
from crawler.wikidump import main
try:
    main(sys.argv[1:])
finally:
    hwm = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
    print("peak_rss_kb", hwm, file=sys.stderr)
"""


def wikidump_peak_rss_mb(work: Path, dump: Path) -> float:
    """Peak RSS of ``python -m crawler.wikidump --dump DUMP`` (a fresh process, fresh raw folder)."""
    work.mkdir()
    config = write_config(work / "pipelines.toml", {"paths": {"data": work / "data", "artifacts": work / "artifacts"}})
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS_CHILD, "--config", str(config), "--dump", str(dump)],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"wikidump failed:\n{proc.stderr[-3000:]}")
    return int(proc.stderr.rsplit("peak_rss_kb", 1)[1].split()[0]) / 1024


def dump_import(work: Path, articles: int, runs: int) -> dict:
    """articles/s of ``crawler.wikidump`` reading a local dump into raw shards, beside a bare read."""
    dump = write_dump(work / "bgwiki-bench.json.tar.gz", dump_articles(synthetic_pages(articles, paragraphs=6)))
    rows = []
    for number in range(runs):
        def ours(number=number) -> int:
            counts = import_dump(dump, work / f"dump-raw{number}", "https://bg.wikipedia.org", Selection(),
                                 32_000_000, progress=False)
            assert counts["stored"] == articles, counts
            return counts["read"]

        row = {}
        order = [("import", ours), ("bare", lambda: bare_read(dump))]
        for name, read in order[::-1] if number % 2 else order:  # alternate, as the crawl runs do
            wall, cpu = time.perf_counter(), time.process_time()
            count = read()
            row[f"{name}_articles_per_s"] = count / (time.perf_counter() - wall)
            row[f"{name}_articles_per_cpu_s"] = count / (time.process_time() - cpu)
        row["ratio"] = row["import_articles_per_s"] / row["bare_articles_per_s"]
        row["cpu_ratio"] = row["import_articles_per_cpu_s"] / row["bare_articles_per_cpu_s"]
        rows.append(row)
        print(f"dump run {number + 1}/{runs}: import {row['import_articles_per_s']:.0f} articles/s, bare read "
              f"{row['bare_articles_per_s']:.0f} articles/s (per CPU second: {row['cpu_ratio']:.2f})",
              file=sys.stderr)
    median = {key: float(f"{statistics.median(r[key] for r in rows):.4g}") for key in rows[0]}
    what = (f"local Enterprise HTML dump of {articles} generated articles ({dump.stat().st_size / 1e6:.0f} MB) "
            f"into raw shards (median of {runs} runs)")
    peer = "bare stream read of the same dump (gzip + tar + json.loads)"
    figures = [{"figure": f"wikidump articles/s, {what}", "value": median["import_articles_per_s"],
                "unit": "articles/s", "peer": peer, "peer_value": median["bare_articles_per_s"],
                "ratio": median["ratio"], "device": "CPU"},
               {"figure": f"wikidump articles per CPU-second, {what}", "value": median["import_articles_per_cpu_s"],
                "unit": "articles/CPU-s", "peer": peer, "peer_value": median["bare_articles_per_cpu_s"],
                "ratio": median["cpu_ratio"], "device": "CPU"}]
    # memory stays flat with the dump's size: the same command on a dump a quarter the size
    small = write_dump(work / "bgwiki-bench-small.json.tar.gz",
                       dump_articles(synthetic_pages(max(articles // 4, 1), paragraphs=6)))
    rss = {"small": wikidump_peak_rss_mb(work / "rss-small", small), "big": wikidump_peak_rss_mb(work / "rss-big", dump)}
    figures.append({"figure": f"wikidump peak RSS, `python -m crawler.wikidump` on the {articles}-article dump",
                    "value": round(rss["big"], 1), "unit": "MB",
                    "peer": f"the same on a {max(articles // 4, 1)}-article dump", "peer_value": round(rss["small"], 1),
                    "ratio": round(rss["big"] / rss["small"], 3), "device": "CPU"})
    print(f"wikidump peak RSS: {rss['big']:.0f} MB ({articles} articles), {rss['small']:.0f} MB "
          f"({max(articles // 4, 1)} articles)", file=sys.stderr)
    return {"articles": articles, "dump_bytes": dump.stat().st_size, "figures": figures, "median": median,
            "runs": rows, "peak_rss_mb": rss}


@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="crawl throughput: bgwiki spider vs a no-op spider")
    parser.add_argument("--pages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight to the one host")
    parser.add_argument("--renders", type=int, default=10, help="Chromium renders (and plain fetches) per run")
    parser.add_argument("--dump-articles", type=int, default=20000, help="articles in the generated dump")
    parser.add_argument("--resume-gb", type=float, default=1.0, help="GB of raw shards for the crawl-start figures")
    parser.add_argument("--noop", nargs=2, metavar=("URLS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.noop:
        return run_noop(*args.noop, args.concurrency)
    for name in ("pages", "runs", "concurrency", "renders", "dump_articles"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.resume_gb <= 0:
        raise UserError(f"--resume-gb must be above 0, got {args.resume_gb}")

    pages = synthetic_pages(args.pages, paragraphs=12)
    with WikiReplay(pages) as server, tempfile.TemporaryDirectory(prefix="bench-crawl-") as tmp:
        wiki = server.wiki
        for page in pages:
            wiki.parse({"pageid": str(page.pageid)})  # render once, before any timing
        html_bytes = statistics.mean(len(b) for b in wiki.parse_cache.values())
        titles = Path(tmp, "titles.txt")
        titles.write_text("\n".join(p.title for p in pages) + "\n", encoding="utf-8")
        urls = [f"{server.api}?action=parse&pageid={p.pageid}&{PARSE_PARAMS}" for p in pages]
        runs = []
        for number in range(args.runs):
            work = Path(tmp, f"run{number}")
            work.mkdir()
            if number % 2:  # alternate the order, so drifting machine load favours neither
                peer = timed_noop(work, urls, args.concurrency)
                ours = timed_bgwiki(work, server.api, titles, args.concurrency)
            else:
                ours = timed_bgwiki(work, server.api, titles, args.concurrency)
                peer = timed_noop(work, urls, args.concurrency)
            run = {"bgwiki_pages_per_s": ours["pages"] / ours["elapsed_s"],
                   "noop_pages_per_s": peer["pages"] / peer["elapsed_s"],
                   "bgwiki_pages_per_cpu_s": ours["pages"] / ours["cpu_s"],
                   "noop_pages_per_cpu_s": peer["pages"] / peer["cpu_s"], "bgwiki": ours, "noop": peer}
            run["ratio"] = run["bgwiki_pages_per_s"] / run["noop_pages_per_s"]
            run["cpu_ratio"] = run["bgwiki_pages_per_cpu_s"] / run["noop_pages_per_cpu_s"]
            run["selenium"] = selenium_seconds_per_page(args.renders, chromium_first=not number % 2)
            run["selenium_s_per_page"] = run["selenium"]["selenium"]["median_s"]
            run["plain_s_per_page"] = run["selenium"]["plain_http"]["median_s"]
            run["selenium_ratio"] = run["selenium"]["ratio"]
            runs.append(run)
            print(f"run {number + 1}/{args.runs}: bgwiki {run['bgwiki_pages_per_s']:.1f} pages/s, "
                  f"no-op {run['noop_pages_per_s']:.1f} pages/s, ratio {run['ratio']:.2f} "
                  f"(per CPU second: {run['cpu_ratio']:.2f}); Chromium {run['selenium_s_per_page']:.3f} "
                  f"s/page, plain fetch {run['plain_s_per_page']:.4f} s/page", file=sys.stderr)
        dump = dump_import(Path(tmp), args.dump_articles, args.runs)
    median = {key: float(f"{statistics.median(r[key] for r in runs):.4g}")
              for key in ("bgwiki_pages_per_s", "noop_pages_per_s", "ratio", "bgwiki_pages_per_cpu_s",
                          "noop_pages_per_cpu_s", "cpu_ratio", "selenium_s_per_page", "plain_s_per_page",
                          "selenium_ratio")}
    resume = resume_start(args.resume_gb, args.runs)
    result = {
        "name": "crawl", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "site": {"pages": args.pages, "mean_parse_json_bytes": round(html_bytes), "concurrency": args.concurrency,
                 "selenium_page": f"/news/{JS_ARTICLE}.html", "renders": args.renders},
        "figures": figures(median, args.runs, args.pages, args.renders) + dump.pop("figures"), "median": median,
        "runs": runs, "wikidump": dump,
    }
    result["figures"] += resume_figures(resume, args.runs)
    result["resume"] = resume
    with atomic_write(RESULTS) as fh:
        json.dump(result, fh, indent=1)
    print(f"crawl benchmark ({args.pages} pages, {args.runs} runs, medians)\n"
          f"  bgwiki spider + pipeline   {median['bgwiki_pages_per_s']:>8.1f} pages/s\n"
          f"  no-op Scrapy spider        {median['noop_pages_per_s']:>8.1f} pages/s\n"
          f"  ratio                      {median['ratio']:>8.2f}\n"
          f"  ratio per CPU second       {median['cpu_ratio']:>8.2f}  (load-robust: crawler CPU time)\n"
          f"  Chromium render            {median['selenium_s_per_page']:>8.3f} s/page (JS-only article)\n"
          f"  plain HTTP fetch           {median['plain_s_per_page']:>8.4f} s/page (same page)\n"
          f"  ratio                      {median['selenium_ratio']:>8.1f}\n"
          f"  wikidump import            {dump['median']['import_articles_per_s']:>8.0f} articles/s "
          f"({args.dump_articles} in a local dump)\n"
          f"  bare stream read           {dump['median']['bare_articles_per_s']:>8.0f} articles/s\n"
          f"  ratio                      {dump['median']['ratio']:>8.2f}\n"
          f"  ratio per CPU second       {dump['median']['cpu_ratio']:>8.2f}\n"
          f"  crawl start, {resume['gz_bytes'] / 1e9:.2f} GB of shards: done keys "
          f"{resume['median']['load_parse_s']:.2f} s -> {resume['median']['load_keys_s']:.3f} s, first request "
          f"{resume['median']['first_request_parse_s']:.2f} s -> {resume['median']['first_request_keys_s']:.2f} s\n"
          f"written {RESULTS}")


if __name__ == "__main__":
    main()
