"""News extraction quality on two development sets, ours beside four peers, thresholds by CV.

Sets (``../shared/fixtures/extraction_benchmarks/``):

- Scrapinghub article-extraction benchmark (181 English news pages), scored like its published
  evaluate.py: per page, 4-token shingles of truth and prediction, tp = sum of min counts;
  precision and recall per page averaged over pages; F1 of the averages. Two tokenisations:
  whitespace-separated tokens (the published one) and ``\\w+`` words.
- One half of trafilatura's evaluation set (482 pages, many languages and layouts), scored like
  trafilatura's own evaluation: over all snippets, a ``with`` snippet found in the
  whitespace-collapsed text is a tp (else fn), a ``without`` snippet found is an fp.

Extractors: ours (``corpus.news_extract`` + ``normalize``, as the corpus keeps it; the path each
page took is counted), trafilatura with default settings, trafilatura with ``favor_precision``,
readability-lxml (``text_content`` of its summary) and the previous extractor (trafilatura,
``favor_precision``, without comments and tables, as the corpus ran it before the merge).

Each library runs once per page; its output (ours: ``news_extract.candidates``) and CPU time are
cached in ``$BG_EXTRACTION_CACHE`` (default ``/tmp/bg-extraction-cache``), keyed by the library
versions and the source of the code that ran, so the threshold search re-runs only ``combine``.

Cross-validation: the sites of both sets (a page's host; an archived page's original host) are
dealt into 5 folds, a site's pages in one fold. On each fold the grid point best on the other
four (the mean over the two sets of F1, Scrapinghub's on whitespace tokens) is scored on the
held-out fold, each set's figures apart.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import inspect
import itertools
import json
import os
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import regex
import trafilatura
from readability import Document
from tld import get_fld

from bench import harness
from common import markdown
from common.atomic import atomic_write
from common.errors import UserError, cli_main
from corpus import news_extract
from corpus.normalize import normalize

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(os.environ.get("BG_FIXTURES") or ROOT.parent / "shared" / "fixtures")
BENCHMARKS = FIXTURES / "extraction_benchmarks"
SCRAPINGHUB = BENCHMARKS / "scrapinghub_article_extraction_benchmark"
TRAFILATURA_EVAL = BENCHMARKS / "trafilatura_eval_half"
CACHE = Path(os.environ.get("BG_EXTRACTION_CACHE") or "/tmp/bg-extraction-cache")
OUT = ROOT / "bench" / "results" / "extraction.json"
SETS = ("scrapinghub", "trafilatura_eval")
PEERS = {"trafilatura": "trafilatura (default settings)",
         "favor_precision": "trafilatura, favor_precision",
         "readability": "readability-lxml (default settings)",
         "previous": "previous extractor (trafilatura, favor_precision, no comments or tables)"}
CV_FOLDS = 5

_WORDS = regex.compile(r"\w+").findall
TOKENISERS: dict[str, Callable[[str], list[str]]] = {"": str.split, "_words": _WORDS}


@dataclass
class Page:
    """One page of a development set: what to score an extraction against."""

    key: str
    site: str
    html: str | bytes
    truth: str = ""  # Scrapinghub: the article body
    with_: list[str] = field(default_factory=list)  # trafilatura eval: snippets to find
    without: list[str] = field(default_factory=list)  # ... and boilerplate not to find


def site_of(url: str) -> str:
    """The site a page belongs to: the registrable domain of its host (an archived page's
    original host), so ``edition.cnn.com`` and ``cnn.com`` are one site."""
    if url.startswith("hard::"):  # trafilatura's hand-named pages: "hard::<host>-<slug>.html"
        return registrable(url.removeprefix("hard::").removesuffix(".html").split("-")[0])
    host = urlsplit(url).hostname or url
    if host == "web.archive.org":
        inner = url.split("/", 5)[-1]
        host = urlsplit(inner if "://" in inner else f"http://{inner}").hostname or host
    return registrable(host)


def registrable(name: str) -> str:
    """The registrable domain (public-suffix list, ``tld``) of ``name``; a hand-named page's
    trailing slug labels ("pcgamer.com.skyrim") are dropped until one is found."""
    labels = name.lower().removeprefix("www.").split(".")
    while labels:
        found = get_fld(".".join(labels), fix_protocol=True, fail_silently=True)
        if found:
            return found
        labels.pop()
    return name


def load_scrapinghub() -> list[Page]:
    truth = json.loads((SCRAPINGHUB / "ground-truth.json").read_text(encoding="utf-8"))
    return [Page(key, site_of(item.get("url") or key),
                 gzip.decompress((SCRAPINGHUB / "html" / f"{key}.html.gz").read_bytes())
                 .decode("utf-8", errors="replace"), truth=item["articleBody"])
            for key, item in sorted(truth.items())]


def load_trafilatura_eval() -> list[Page]:
    data = json.loads((TRAFILATURA_EVAL / "evaldata.json").read_text(encoding="utf-8"))
    return [Page(url, site_of(url), gzip.decompress((TRAFILATURA_EVAL / "html" / item["file"])
                                                    .read_bytes()),  # bytes: some are not UTF-8
                 with_=item["with"], without=item["without"])
            for url, item in sorted(data.items())]


def load_sets() -> dict[str, list[Page]]:
    for folder in (SCRAPINGHUB, TRAFILATURA_EVAL):
        if not folder.is_dir():
            raise UserError(f"fixture {folder} not found (set BG_FIXTURES)")
    return {"scrapinghub": load_scrapinghub(), "trafilatura_eval": load_trafilatura_eval()}


# --- the extractors ---------------------------------------------------------------------------

def trafilatura_default(page: str | bytes) -> str:
    return trafilatura.extract(page) or ""


def trafilatura_precision(page: str | bytes) -> str:
    return trafilatura.extract(page, favor_precision=True) or ""


def readability_text(page: str | bytes) -> str:
    summary = Document(page).summary(html_partial=True)
    return lxml.html.fromstring(summary).text_content() if summary.strip() else ""


def previous_extractor(page: str | bytes) -> str:
    """The news extractor before the two libraries were combined: trafilatura, favor_precision."""
    return trafilatura.extract(
        page, favor_precision=True, include_comments=False, include_tables=False,
        include_images=False, include_links=False, deduplicate=False) or ""


def ours_candidates(page: str | bytes) -> dict:
    return vars(news_extract.candidates(page))


LIBRARIES: dict[str, Callable[[str | bytes], str | dict]] = {
    "ours": ours_candidates, "trafilatura": trafilatura_default,
    "favor_precision": trafilatura_precision, "readability": readability_text,
    "previous": previous_extractor}
# The code behind each library output (the cache key): for ours, the whole of news_extract (what
# ``candidates`` calls is its private helpers; any change there makes the cached outputs stale).
_CODE = {"ours": (news_extract,)}


def _cache_file(set_name: str, name: str) -> Path:
    code = "".join(inspect.getsource(f) for f in (LIBRARIES[name], *_CODE.get(name, ())))
    key = "|".join((code, version("trafilatura"),
                    version("readability-lxml"), version("lxml")))
    return CACHE / f"{set_name}-{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def library_outputs(set_name: str, pages: list[Page], name: str) -> dict[str, dict]:
    """{page key: {"out": output, "cpu_s": seconds}} of one library, from the cache or run now."""
    path = _cache_file(set_name, name)
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for page in pages:
        start = time.process_time()
        result = LIBRARIES[name](page.html)
        out[page.key] = {"out": result, "cpu_s": time.process_time() - start}
    with atomic_write(path) as fh:
        json.dump(out, fh, ensure_ascii=False)
    return out


def ours(c: dict, t: news_extract.Thresholds = news_extract.DEFAULT) -> tuple[str, str]:
    """(text as the corpus keeps it, path) from cached candidates."""
    text, path = news_extract.combine(news_extract.Candidates(**c), t)
    return normalize(text), path


# --- scoring ----------------------------------------------------------------------------------

def shingle_counts(text: str, n: int = 4, tokens: Callable[[str], list[str]] = str.split) -> Counter:
    words = tokens(text or "")
    return Counter(tuple(words[i:i + n]) for i in range(max(1, len(words) - n + 1)) if words[i:i + n])


def page_scores(truth: str, pred: str, tokens: Callable[[str], list[str]] = str.split,
                ) -> tuple[float | None, float | None]:
    """Scrapinghub: (precision, recall) of one page; None where the benchmark leaves it out."""
    t, p = shingle_counts(truth, tokens=tokens), shingle_counts(pred, tokens=tokens)
    tp = sum((t & p).values())
    fp = sum((p - t).values())
    fn = sum((t - p).values())
    if fp == fn == 0:
        return 1.0, 1.0
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def snippet_counts(page: Page, pred: str) -> tuple[int, int, int, int]:
    """trafilatura eval: (tp, fn, fp, tn) of one page's snippets in the extracted text."""
    text = " ".join(pred.split())
    found = sum(s in text for s in page.with_)
    wrong = sum(s in text for s in page.without)
    return found, len(page.with_) - found, wrong, len(page.without) - wrong


def page_score(set_name: str, page: Page, pred: str) -> tuple:
    """What one page adds to its set's score (see :func:`set_figures`)."""
    if set_name == "scrapinghub":
        return tuple(x for tokens in TOKENISERS.values() for x in page_scores(page.truth, pred, tokens))
    return snippet_counts(page, pred)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def set_figures(set_name: str, scores: Iterable[tuple]) -> dict[str, float]:
    """Precision, recall and F1 of a set from its pages' scores.

    Scrapinghub: per-page precision and recall averaged over pages (pages without a figure left
    out), for each tokenisation. trafilatura eval: snippet counts summed over pages."""
    scores = list(scores)
    out = {}
    if set_name == "scrapinghub":
        for n, suffix in enumerate(TOKENISERS):
            ps = [s[2 * n] for s in scores if s[2 * n] is not None]
            rs = [s[2 * n + 1] for s in scores if s[2 * n + 1] is not None]
            precision = statistics.mean(ps) if ps else 0.0
            recall = statistics.mean(rs) if rs else 0.0
            out.update({f"precision{suffix}": precision, f"recall{suffix}": recall,
                        f"f1{suffix}": _f1(precision, recall)})
        return out
    tp, fn, fp, _ = (sum(col) for col in zip(*scores, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": precision, "recall": recall, "f1": _f1(precision, recall)}


# --- cross-validation of the thresholds -------------------------------------------------------

OFF = news_extract.OFF
CV_AXES: dict[str, tuple] = {"lead_words": (12, 20, OFF), "inside_words": (5, 20, OFF),
                             "after_words": (15, 30, OFF), "cover": (0.5, 0.7),
                             "switch_prose": (8, 16, OFF)}
CV_GRID = [replace(news_extract.DEFAULT, **dict(zip(CV_AXES, values, strict=True)))
           for values in itertools.product(*CV_AXES.values())]
# The rules switched off one at a time (what each wins or loses on each set).
ABLATIONS = {"lead_words": OFF, "inside_words": OFF, "after_words": OFF, "switch_prose": OFF,
             "add_words": OFF, "body_words": OFF}
Scores = dict[str, dict[str, tuple]]  # set -> page key -> page_score


def folds(sets: dict[str, list[Page]], k: int = CV_FOLDS) -> dict[str, int]:
    """site -> fold: sites shuffled (fixed seed), each to the fold with the fewest pages so far."""
    size = Counter(page.site for pages in sets.values() for page in pages)
    sites = sorted(size)
    random.Random(0).shuffle(sites)
    load, out = [0] * k, {}
    for site in sites:
        out[site] = n = min(range(k), key=load.__getitem__)
        load[n] += size[site]
    return out


def figures_of(sets: dict[str, list[Page]], scores: Scores,
               keep: Callable[[Page], bool] = lambda _: True) -> dict[str, dict[str, float]]:
    return {s: set_figures(s, (scores[s][p.key] for p in pages if keep(p)))
            for s, pages in sets.items()}


def objective(figures: dict[str, dict[str, float]]) -> float:
    """What the threshold search maximises: F1 averaged over the sets (whitespace tokens)."""
    return statistics.mean(f["f1"] for f in figures.values())


def score_ours(sets: dict[str, list[Page]], cands: dict[str, dict[str, dict]],
               t: news_extract.Thresholds, memo: dict) -> tuple[Scores, Counter]:
    """Every page's score (and the paths taken) under thresholds ``t``; ``memo`` keeps the score
    of a text already seen, so grid points that change nothing on a page cost only ``combine``."""
    scores: Scores = {}
    paths: Counter = Counter()
    for s, pages in sets.items():
        scores[s] = {}
        for page in pages:
            text, path = news_extract.combine(news_extract.Candidates(**cands[s][page.key]), t)
            paths[path] += 1
            key = (s, page.key, hash(text))
            if key not in memo:
                memo[key] = page_score(s, page, normalize(text))
            scores[s][page.key] = memo[key]
    return scores, paths


def cross_validate(sets: dict[str, list[Page]], cands: dict[str, dict[str, dict]],
                   peers: dict[str, Scores], memo: dict) -> dict:
    """Per fold: the grid point best on the other folds, scored on the held-out pages (beside the
    peers on the same pages); and every page scored by the point chosen without it."""
    fold_of = folds(sets)
    grid = [score_ours(sets, cands, t, memo)[0] for t in CV_GRID]
    held_out: Scores = {s: {} for s in sets}
    out = []
    for n in range(CV_FOLDS):
        def train(p: Page, n: int = n) -> bool:
            return fold_of[p.site] != n

        def test(p: Page, n: int = n) -> bool:
            return fold_of[p.site] == n

        best = max(range(len(grid)), key=lambda i: objective(figures_of(sets, grid[i], train)))
        for s, pages in sets.items():
            held_out[s].update({p.key: grid[best][s][p.key] for p in pages if test(p)})
        out.append({"fold": n, "pages": {s: sum(map(test, pages)) for s, pages in sets.items()},
                    "sites": sum(f == n for f in fold_of.values()),
                    "chosen": {a: getattr(CV_GRID[best], a) for a in CV_AXES},
                    "ours": figures_of(sets, grid[best], test),
                    **{name: figures_of(sets, sc, test) for name, sc in peers.items()}})
    chosen = Counter(tuple(sorted(f["chosen"].items())) for f in out)
    return {"folds": out, "grid_points": len(CV_GRID), "axes": {a: list(v) for a, v in CV_AXES.items()},
            "held_out": figures_of(sets, held_out), "most_chosen": dict(chosen.most_common(1)[0][0]),
            "chosen_on_all": {a: getattr(CV_GRID[i], a) for a in CV_AXES for i in [max(
                range(len(grid)), key=lambda i: objective(figures_of(sets, grid[i])))]},
            "defaults": {a: getattr(news_extract.DEFAULT, a) for a in CV_AXES}}


# --- the run ----------------------------------------------------------------------------------

def page_gain(set_name: str, score: tuple) -> float:
    """One page's figure for comparing two extractors on it: F1 (Scrapinghub), tp - fp (snippets)."""
    if set_name == "scrapinghub":
        precision, recall = score[0] or 0.0, score[1] or 0.0
        return _f1(precision, recall)
    return score[0] - score[2]


def ablation(sets: dict[str, list[Page]], cands: dict, memo: dict, base: dict) -> dict:
    """Each rule switched off alone: its set figures, and the pages that move most."""
    out = {}
    for name, value in ABLATIONS.items():
        scores, _ = score_ours(sets, cands, replace(news_extract.DEFAULT, **{name: value}), memo)
        moved = {s: sorted(((page_gain(s, base[s][k]) - page_gain(s, scores[s][k]), k)
                            for k in scores[s]), reverse=True) for s in sets}
        out[name] = {"off": value, "figures": figures_of(sets, scores),
                     "pages_won": {s: [k for d, k in m if d > 0] for s, m in moved.items()},
                     "pages_lost": {s: [k for d, k in m if d < 0] for s, m in moved.items()}}
    return out


def run() -> dict:
    sets = load_sets()
    outputs = {s: {name: library_outputs(s, pages, name) for name in LIBRARIES}
               for s, pages in sets.items()}
    cands = {s: {k: v["out"] for k, v in o["ours"].items()} for s, o in outputs.items()}
    peers = {name: {s: {p.key: page_score(s, p, outputs[s][name][p.key]["out"]) for p in pages}
                    for s, pages in sets.items()} for name in PEERS}
    memo: dict = {}
    start = time.process_time()
    ours_scores, paths = score_ours(sets, cands, news_extract.DEFAULT, memo)
    combine_ms = 1000 * (time.process_time() - start) / sum(map(len, sets.values()))
    cpu_ms = {name: {s: 1000 * statistics.median(v["cpu_s"] for v in o[name].values())
                     for s, o in outputs.items()} for name in LIBRARIES}
    cpu_ms["ours"] = {s: v + combine_ms for s, v in cpu_ms.pop("ours").items()}
    worst = {s: sorted((page_gain(s, peers["trafilatura"][s][k]) - page_gain(s, ours_scores[s][k]), k)
                       for k in ours_scores[s])[::-1][:10] for s in sets}
    return {"pages": {s: len(p) for s, p in sets.items()},
            "sites": len({p.site for pages in sets.values() for p in pages}),
            "figures": {"ours": figures_of(sets, ours_scores),
                        **{name: figures_of(sets, sc) for name, sc in peers.items()}},
            "paths": {s: Counter(news_extract.combine(news_extract.Candidates(**c))[1]
                                 for c in cands[s].values()) for s in sets},
            "cpu_ms_per_page_median": cpu_ms,
            "worst_pages_vs_trafilatura": {s: [{"page": k, "gain": round(d, 4)} for d, k in w if d > 0]
                                           for s, w in worst.items()},
            "thresholds": vars(news_extract.DEFAULT),
            "ablation": ablation(sets, cands, memo, ours_scores),
            "cross_validation": cross_validate(sets, cands, peers, memo),
            "all_paths": dict(paths)}


NAMES = {"ours": "ours", **PEERS}
SET_NAMES = {"scrapinghub": "Scrapinghub (181 English news pages; shingles, whitespace tokens)",
             "trafilatura_eval": "trafilatura eval half (482 pages; snippets)"}


def _row(figures: dict) -> list[str]:
    return [f"{figures['precision']:.4f}", f"{figures['recall']:.4f}", f"{figures['f1']:.4f}"]


def section(result: dict) -> str:
    """The Markdown under the results table: every extractor on both sets, the CV folds, ablation."""
    head = ["extractor"] + [f"{s} {m}" for s in SETS for m in ("P", "R", "F1")]
    table = [[NAMES[name]] + [c for s in SETS for c in _row(figs[s])]
             for name, figs in result["figures"].items()]
    cv = result["cross_validation"]
    table.append(["ours, held-out folds pooled (CV)"]
                 + [c for s in SETS for c in _row(cv["held_out"][s])])
    folds_head = ["fold", "pages (SH / TE)", "chosen"] + [f"{s} {m}" for s in SETS
                                                          for m in ("P", "R", "F1")] + [
        "best peer F1 (SH / TE)"]
    fold_rows = []
    for f in cv["folds"]:
        best = {s: max(f[name][s]["f1"] for name in PEERS) for s in SETS}
        fold_rows.append([f["fold"], f"{f['pages']['scrapinghub']} / {f['pages']['trafilatura_eval']}",
                          ", ".join(f"{k}={'off' if v == OFF else v}" for k, v in f["chosen"].items()),
                          *[c for s in SETS for c in _row(f["ours"][s])],
                          f"{best['scrapinghub']:.4f} / {best['trafilatura_eval']:.4f}"])
    verdict = []
    for s in SETS:
        best = max(result["figures"][name][s]["f1"] for name in PEERS)
        floor = result["figures"]["favor_precision"][s]["precision"]
        verdict += [f"{s}: F1 {f[s]['f1']:.4f} vs the best peer's {best:.4f}, precision "
                    f"{f[s]['precision']:.4f} vs favor_precision's {floor:.4f} ({label})"
                    for label, f in (("all pages", result["figures"]["ours"]),
                                     ("held-out folds", cv["held_out"]))]
    abl_head = ["rule switched off"] + [f"{s} {m}" for s in SETS for m in ("P", "R", "F1")] + [
        "pages it wins / loses (SH; TE)"]
    abl_rows = [[name] + [c for s in SETS for c in _row(a["figures"][s])]
                + ["; ".join(f"{len(a['pages_won'][s])} / {len(a['pages_lost'][s])}" for s in SETS)]
                for name, a in result["ablation"].items()]
    return "\n".join([
        "### News extraction on two development sets (`bench/extraction.py`)", "",
        "P, R, F1: Scrapinghub (SH) scored like its evaluate.py on whitespace tokens; trafilatura "
        "eval half (TE) over its `with`/`without` snippets. Ours is the text the corpus keeps "
        "(`normalize`d).", "",
        *markdown.table(head, table), "",
        "Goal (F1 at least the best peer's, precision at least favor_precision's): "
        + "; ".join(verdict) + ".", "",
        f"Cross-validation: {cv['grid_points']} grid points, 5 folds by site over both sets; "
        "each fold's point is chosen on the other four (F1 averaged over the two sets).", "",
        *markdown.table(folds_head, fold_rows), "",
        "Each rule switched off alone (the others at their defaults): what it wins or loses where.",
        "", *markdown.table(abl_head, abl_rows)]) + "\n"


def result_figures(result: dict) -> list[dict]:
    out = []
    for s in SETS:
        ours = result["figures"]["ours"][s]
        for name, label in PEERS.items():
            theirs = result["figures"][name][s]["f1"]
            out.append({"figure": f"news extraction F1, {SET_NAMES[s]} (ours)",
                        "value": round(ours["f1"], 4), "unit": "", "peer": label,
                        "peer_value": round(theirs, 4), "ratio": round(ours["f1"] / theirs, 4)})
        theirs = result["figures"]["favor_precision"][s]["precision"]
        out.append({"figure": f"news extraction precision, {SET_NAMES[s]} (ours)",
                    "value": round(ours["precision"], 4), "unit": "",
                    "peer": PEERS["favor_precision"], "peer_value": round(theirs, 4),
                    "ratio": round(ours["precision"] / theirs, 4)})
    return out


@cli_main
def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    benchmark = harness.Run()
    result = run()
    text = section(result)
    benchmark.write(OUT, "extraction", result_figures(result), section=text, extraction=result)
    print(text)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
