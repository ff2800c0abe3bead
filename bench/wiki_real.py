"""``make bench-scale ARGS=--wiki-real``: the Wikipedia path at real page sizes.

A generated Enterprise dump of ``--wiki-articles`` real-size pages (``demo.replay.real_size``:
a median of tens of KB of Parsoid HTML, a tail past 500 KB, ``data-mw`` on every template node,
a citation template behind every reference, navboxes, tables, figures; the prose from
``bench.scale.TextModel``) is written to a temporary folder, removed after.

1. The cleaner, in this process, on the dump's first ``--wiki-sample`` pages, in MB of HTML per
   CPU-second: the wiki cleaner (``corpus.wiki_extract``), mwparserfromhtml's plain text
   (``Article(html).get_plaintext()``, Wikimedia's library for these dumps), BeautifulSoup
   building its tree over lxml (what the cleaner did before it walked lxml's tree) and a bare lxml
   parse (the floor). The two texts are compared line by line on every sample page.
2. ``make wikidump``'s import (``crawler.wikidump.import_dump``) beside ``bench.crawl``'s bare
   stream read of the same dump (gzip, tar, ``json.loads``) and ``fast_bare_read`` (the import's
   own libraries: ISA-L gzip, ``orjson``), all in this process, in MB of the dump's HTML per second
   and per CPU-second.
3. The rehearsal (``bench.wiki_rehearsal``): ``wikidump``, ``corpus``, ``tokenizer`` and
   ``tokens``, each a process of the real CLI, on the dump: seconds, CPU seconds, peak RSS, disk.
4. Extrapolated to bgwiki's ``BGWIKI`` articles: x(300k) = x(N) × 300,000 / N for seconds, CPU
   seconds and disk; peak RSS as measured. bgwiki on c cores: the sum over stages (``tokens``
   left out: it repeats the tokenizer stage's token step) of CPU-s(300k) / min(c, p), p = 1 for ``wikidump`` (one process) and c for the others (their
   worker pools and Rust thread pools): ideal scaling, so a lower bound on the wall time.
"""

from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
from bs4 import BeautifulSoup
from isal import igzip
from lxml import etree
from mwparserfromhtml import Article

from bench import harness
from bench.crawl import bare_read
from bench.scale import DEMO_TEXT, ROOT, TextModel
from bench.wiki_rehearsal import rehearse
from common import markdown
from common.errors import UserError
from corpus.wiki_extract import HEADINGS, extract_wiki
from crawler.wikidump import Selection, import_dump
from demo.replay.dump import write_dump
from demo.replay.real_size import real_size_articles

BGWIKI = 300_000
CORES = (2, 8, 16)
OUT = ROOT / "bench" / "results" / "wiki-real.json"
_MARK = re.compile(r"\[\d+\]")


def write_real_dump(path: Path, articles: int, sample: int) -> tuple[dict, list[str]]:
    """The dump of ``articles`` real-size pages at ``path``: (its figures, the first ``sample``
    pages' HTML)."""
    model = TextModel(DEMO_TEXT)
    pages: list[str] = []
    sizes: list[int] = []

    def counted() -> Iterator[dict]:
        for item in real_size_articles(articles, model.sentence):
            page = item["article_body"]["html"]
            sizes.append(len(page.encode("utf-8")))
            if len(pages) < sample:
                pages.append(page)
            yield item

    start = time.perf_counter()
    write_dump(path, counted())
    sizes.sort()
    return ({"articles": articles, "seconds": time.perf_counter() - start, "html_bytes": sum(sizes),
             "dump_bytes": path.stat().st_size, "median_page_bytes": sizes[len(sizes) // 2],
             "mean_page_bytes": sum(sizes) / len(sizes), "largest_page_bytes": sizes[-1],
             "pages_over_500kb": sum(s > 500_000 for s in sizes)}, pages)


def mwparser_text(html: str) -> str:
    return "\n".join(Article(html).get_plaintext())


def cpu_rate(function: Callable[[str], object], pages: list[str]) -> dict:
    """MB of HTML per CPU-second of ``function`` over ``pages`` (at least one second of CPU)."""
    megabytes = sum(len(p.encode("utf-8")) for p in pages) / 1e6
    rounds, start = 0, time.process_time()
    while not rounds or time.process_time() - start < 1.0:
        for page in pages:
            function(page)
        rounds += 1
    cpu = time.process_time() - start
    return {"mb_per_cpu_s": rounds * megabytes / cpu, "cpu_s": cpu, "rounds": rounds}


def cleaner_speed(pages: list[str]) -> dict[str, dict]:
    parser = etree.HTMLParser(encoding="utf-8")
    return {"wiki cleaner": cpu_rate(extract_wiki, pages),
            "mwparserfromhtml": cpu_rate(mwparser_text, pages),
            "BeautifulSoup tree": cpu_rate(lambda p: BeautifulSoup(p, "lxml"), pages),
            "lxml parse": cpu_rate(lambda p: etree.fromstring(p.encode("utf-8"), parser), pages)}


def _headings_and_items(page: str) -> set[str]:
    """Texts of the page's headings and list items (citation marks left out), spaces collapsed."""
    doc = etree.fromstring(page.encode("utf-8"), etree.HTMLParser(encoding="utf-8"))
    return {" ".join(_MARK.sub("", "".join(el.itertext())).split()) for el in doc.iter(*HEADINGS, "li")}


def compare_texts(pages: list[str], examples: int = 12) -> dict:
    """Ours against mwparserfromhtml's, line by line: counts (ours-only lines that are headings or
    list items apart: its plain text leaves those out) and up to ``examples`` differing lines, the
    first two of each page."""
    counts = dict.fromkeys(("lines_in_both", "lines_ours_only", "ours_only_headings_or_items",
                            "lines_theirs_only"), 0)
    sample: dict[str, list[str]] = {"ours_only": [], "theirs_only": []}
    for page in pages:
        ours, theirs = extract_wiki(page).splitlines(), mwparser_text(page).splitlines()
        only_ours, only_theirs = set(ours) - set(theirs), set(theirs) - set(ours)
        counts["lines_in_both"] += len(set(ours) & set(theirs))
        counts["lines_ours_only"] += len(only_ours)
        counts["ours_only_headings_or_items"] += len(only_ours & _headings_and_items(page))
        counts["lines_theirs_only"] += len(only_theirs)
        sample["ours_only"] += [line for line in ours if line in only_ours][:2]
        sample["theirs_only"] += [line for line in theirs if line in only_theirs][:2]
    return {**counts, "examples": {k: v[:examples] for k, v in sample.items()}}


def fast_bare_read(dump: Path) -> int:
    """The import's same-library peer: every line of every member parsed with the import's
    libraries (ISA-L's gzip, ``orjson``), nothing else."""
    count = 0
    with igzip.open(dump, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as tar:
        for info in tar:
            for line in tar.extractfile(info):
                orjson.loads(line)
                count += 1
    return count


PEERS = (("bare stream read", bare_read), ("bare stream read, same libraries", fast_bare_read))


def dump_speed(dump: Path, folder: Path, html_bytes: int) -> dict[str, dict]:
    """MB of the dump's HTML per second and per CPU-second, in this process: ``make wikidump``'s
    import (into a new raw folder) beside ``bench.crawl``'s bare stream read (gzip, tar, JSON) and
    ``fast_bare_read`` (the import's own gzip and JSON libraries)."""
    def ours() -> None:
        import_dump(dump, folder, "https://bg.wikipedia.org", Selection(), 32_000_000, progress=False)

    out = {}
    for name, read in (("wikidump import", ours), *((peer, lambda f=f: f(dump)) for peer, f in PEERS)):
        wall, cpu = time.perf_counter(), time.process_time()
        read()
        out[name] = {"html_mb_per_s": html_bytes / 1e6 / (time.perf_counter() - wall),
                     "html_mb_per_cpu_s": html_bytes / 1e6 / (time.process_time() - cpu)}
    return out


REPEATS = ("tokens",)  # the tokenizer stage's token step run alone again: not part of the total


def extrapolate(stages: dict[str, dict], articles: int) -> dict:
    """The pipeline stages at ``BGWIKI`` articles, and bgwiki's wall time on ``CORES``."""
    scale = BGWIKI / articles
    out = {name: {"seconds": s["seconds"] * scale, "cpu_s": s["cpu_s"] * scale,
                  "disk_bytes": s["disk_bytes"] * scale, "peak_rss_mb": s["peak_rss_mb"]}
           for name, s in stages.items()}
    walls = {c: sum(s["cpu_s"] / min(c, 1 if name == "wikidump" else c) for name, s in out.items()
                    if name not in REPEATS) for c in CORES}
    return {"scale": scale, "stages": out, "hours_on_cores": {str(c): w / 3600 for c, w in walls.items()}}


def section(data: dict) -> str:
    """The Markdown for RESULTS.md and the README."""
    gen, speed, cmp, stages, ext = (data[k] for k in ("generated", "speed", "texts", "stages", "extrapolated"))
    at = ext["stages"]  # the same stages at BGWIKI articles
    n = gen["articles"]
    lines = ["## Wikipedia at real page sizes (`make bench-scale ARGS=--wiki-real`)", "",
             f"Generated dump: {n:,} real-size articles, {gen['html_bytes'] / 1e9:.2f} GB of Parsoid HTML "
             f"({gen['dump_bytes'] / 1e6:,.0f} MB compressed); a page's HTML: median "
             f"{gen['median_page_bytes'] / 1e3:.0f} KB, mean {gen['mean_page_bytes'] / 1e3:.0f} KB, "
             f"largest {gen['largest_page_bytes'] / 1e3:,.0f} KB, {gen['pages_over_500kb']} over 500 KB.", "",
             f"Cleaning the first {data['settings']['sample']} pages, MB of HTML per CPU-second:", "",
             *markdown.table(["", "MB/CPU-s"], [[name, f"{r['mb_per_cpu_s']:.1f}"] for name, r in speed.items()],
                             right=(1,))]
    lines += ["", f"Text lines, ours against mwparserfromhtml's on those pages: {cmp['lines_in_both']:,} in both, "
              f"{cmp['lines_ours_only']:,} only ours ({cmp['ours_only_headings_or_items']:,} of them headings or list items, "
              f"which its plain text leaves out), {cmp['lines_theirs_only']:,} only theirs.", "",
              f"Rehearsal at {n:,} articles (-j {data['settings']['jobs']}), extrapolated ×{ext['scale']:,.1f} to "
              f"{BGWIKI:,} (x(300k) = x({n:,}) × {BGWIKI:,} / {n:,}; peak RSS as measured):", "",
              *markdown.table(
                  ["stage", "seconds", "CPU-s", "MB of HTML per CPU-s", "peak RSS MB", "disk MB",
                   "seconds at 300k", "CPU-h at 300k", "disk GB at 300k"],
                  [[name, f"{s['seconds']:,.1f}", f"{s['cpu_s']:,.1f}",
                    f"{gen['html_bytes'] / 1e6 / s['cpu_s']:.1f}", f"{s['peak_rss_mb']:,.0f}",
                    f"{s['disk_bytes'] / 1e6:,.0f}", f"{at[name]['seconds']:,.0f}",
                    f"{at[name]['cpu_s'] / 3600:.2f}", f"{at[name]['disk_bytes'] / 1e9:.2f}"]
                   for name, s in stages.items()],
                  right=range(1, 9))]
    bare, fast, dump = (data["dump"][k] for k in ("bare stream read", "bare stream read, same libraries",
                                                  "wikidump import"))
    lines += ["", f"`make wikidump`'s import reads {dump['html_mb_per_s']:.1f} MB of HTML/s, a bare stream read of the same "
              f"dump (gzip, tar, `json.loads`) {bare['html_mb_per_s']:.1f} MB/s: {dump['html_mb_per_s'] / bare['html_mb_per_s']:.2f}×; "
              f"per CPU-second {dump['html_mb_per_cpu_s']:.1f} against {bare['html_mb_per_cpu_s']:.1f} MB: "
              f"{dump['html_mb_per_cpu_s'] / bare['html_mb_per_cpu_s']:.2f}×. Against a bare read with the import's own "
              f"libraries (ISA-L gzip, `orjson`), {fast['html_mb_per_s']:.1f} MB/s: "
              f"{dump['html_mb_per_s'] / fast['html_mb_per_s']:.2f}×; per CPU-second {fast['html_mb_per_cpu_s']:.1f} MB: "
              f"{dump['html_mb_per_cpu_s'] / fast['html_mb_per_cpu_s']:.2f}×.", "",
              "bgwiki (300,000 articles), all four stages, on c cores: Σ CPU-s(300k) / min(c, p), p = 1 for "
              "wikidump, c for the rest (ideal scaling): "
              + ", ".join(f"{c} cores {h:.1f} h" for c, h in ext["hours_on_cores"].items()) + "."]
    return "\n".join(lines)


def figures(data: dict) -> list[dict]:
    speed, dump = data["speed"], data["dump"]
    ours = speed["wiki cleaner"]["mb_per_cpu_s"]
    return [{"figure": "wiki cleaner, real-size pages", "value": ours, "unit": "MB/CPU-s",
             "peer": "mwparserfromhtml", "peer_value": speed["mwparserfromhtml"]["mb_per_cpu_s"],
             "ratio": ours / speed["mwparserfromhtml"]["mb_per_cpu_s"], "device": "CPU"},
            {"figure": "wiki cleaner, real-size pages", "value": ours, "unit": "MB/CPU-s",
             "peer": "bare lxml parse", "peer_value": speed["lxml parse"]["mb_per_cpu_s"],
             "ratio": ours / speed["lxml parse"]["mb_per_cpu_s"], "device": "CPU"},
            {"figure": "make wikidump, real-size pages", "value": dump["wikidump import"]["html_mb_per_s"],
             "unit": "MB HTML/s", "peer": "bare stream read (gzip, tar, json.loads)",
             "peer_value": dump["bare stream read"]["html_mb_per_s"],
             "ratio": dump["wikidump import"]["html_mb_per_s"] / dump["bare stream read"]["html_mb_per_s"],
             "device": "CPU"},
            {"figure": "make wikidump, real-size pages", "value": dump["wikidump import"]["html_mb_per_s"],
             "unit": "MB HTML/s", "peer": "bare stream read, same libraries (ISA-L gzip, tar, orjson)",
             "peer_value": dump["bare stream read, same libraries"]["html_mb_per_s"],
             "ratio": dump["wikidump import"]["html_mb_per_s"]
             / dump["bare stream read, same libraries"]["html_mb_per_s"], "device": "CPU"}]


def run(work: Path, articles: int, sample: int, jobs: int) -> dict:
    """The whole benchmark in ``work`` (the dump left for the caller to remove)."""
    dump = work / "bgwiki-NS0-20261101-ENTERPRISE-HTML.json.tar.gz"
    generated, pages = write_real_dump(dump, articles, sample)
    print(f"dump: {articles:,} articles, {generated['html_bytes'] / 1e6:,.0f} MB of HTML", flush=True)
    speed = cleaner_speed(pages)
    texts = compare_texts(pages)
    speed_dump = dump_speed(dump, work / "import", generated["html_bytes"])
    stages = rehearse(dump, work / "project", jobs)
    data = {"generated": generated, "speed": speed, "texts": texts, "dump": speed_dump, "stages": stages,
            "extrapolated": extrapolate(stages, articles),
            "settings": {"articles": articles, "sample": sample, "jobs": jobs}}
    return {**data, "figures": figures(data), "section": section(data)}


def main(articles: int, sample: int, jobs: int, out: Path | None, work: Path | None) -> None:
    """Run, write ``out`` (default ``OUT``) and print the section; ``work`` keeps the data."""
    if articles < 1 or not 1 <= sample <= articles or jobs < 1:
        raise UserError("--wiki-articles, --wiki-sample and -j must be at least 1, the sample at most the articles")
    if work and work.exists():
        raise UserError(f"--work {work}: already exists; give a new folder")
    benchmark = harness.Run()
    folder = work or Path(tempfile.mkdtemp(prefix="bench-wiki-real-"))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        data = run(folder, articles, sample, jobs)
    finally:
        if not work:
            shutil.rmtree(folder, ignore_errors=True)
    out = benchmark.write(out or OUT, "wiki-real", data.pop("figures"), **data)
    print(data["section"])
    print(f"wrote {out}")

