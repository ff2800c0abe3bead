"""The bgwiki spider through real ``scrapy crawl`` runs against the MediaWiki replay API on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections import Counter
from urllib.parse import unquote

import lxml.html
import pytest

from crawler.pipelines import FIELDS
from demo.replay.pages import Page, synthetic_pages
from demo.replay.wiki import WikiReplay
from tests.crawl_util import crawl_config, records, scrapy_crawl


def test_titles_resolve_in_batches_redirects_collapse_and_backoff_succeeds(tmp_path):
    pages = synthetic_pages(70)
    lines = ["# 70 pages named four ways, a missing one, an invalid line"]
    for n, page in enumerate(pages):
        name = [page.title, page.redirects[0], page.redirects[1], page.title.lower()][n % 4]
        lines.append(name)
    lines += [pages[0].redirects[0], pages[1].title.replace(" ", "_"), "Няма такава статия", "Лош|ред",
              "https://bg.wikipedia.org/wiki/" + pages[2].title.replace(" ", "_")]
    titles = tmp_path / "titles.txt"
    titles.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = tmp_path / "summary.json"
    broken = pages[5].title  # its parse always answers an internal API error
    with WikiReplay(pages, maxlag_faults=1, ratelimit_faults=1, retry_after=1, broken=(broken,)) as server:
        config = crawl_config(tmp_path, server.api, titles)
        proc = scrapy_crawl(config, "bgwiki", "-s", f"SUMMARY_JSON={summary}")
        wiki = server.wiki
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = records(tmp_path / "data")
    # every page exactly once, under its canonical title, whatever name the titles file used
    assert Counter(r["title"] for r in got) == Counter(p.title for p in pages if p.title != broken)
    stats = json.loads(summary.read_text())
    assert stats["pages/ok"] == 69 and stats["pages/missing"] == 1 and stats["pages/failed"] == 1
    assert "API error internal_api_error_DBQueryError" in proc.stderr
    assert "titles file line 75 skipped" in proc.stderr  # "Лош|ред": after a comment, 70+3 lines
    # faults were served, waited out and retried
    assert wiki.counts["fault=maxlag"] == 1 and wiki.counts["fault=429"] == 1
    assert re.search(r"backoff: maxlag from .* waiting 1\.0 s", proc.stderr)
    assert re.search(r"backoff: 429 from .* waiting 1\.0 s", proc.stderr)
    # polite API use: batches of <= 50 titles by POST, one parse per page, no generic agent refused
    assert max(wiki.batch_sizes) <= 50 and wiki.counts["POST /w/api.php"] >= 2
    assert wiki.counts["action=parse"] == 70  # the faults hit the first requests: title batches
    assert wiki.counts["refused-agent"] == 0 and wiki.counts["GET /robots.txt"] == 0
    assert wiki.counts["without-maxlag"] == 0 and wiki.counts["gzip"] >= 70
    for record in got:
        assert list(record) == FIELDS
        assert record["canonical_url"].isascii()  # percent-encoded, as MediaWiki writes it
        assert unquote(record["canonical_url"]) == f"{server.base}/wiki/" + record["title"].replace(" ", "_")
        assert record["source"] == "bgwiki" and record["via"] == "http" and record["lang"] == "bg"
        assert record["license"] == "CC BY-SA 4.0" and isinstance(record["revid"], int)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["fetched_at"])
        assert record["html"].startswith('<div class="mw-content-ltr mw-parser-output"')
        assert "Населени места" in record["categories"]
    # nothing half-written or stale is left behind
    raw = tmp_path / "data" / "raw" / "bgwiki"
    assert not list(raw.glob(".*.partial")) and not (tmp_path / "data" / "jobs" / "bgwiki").exists()


def category_site() -> list[Page]:
    mountains = [Page(f"Връх {n}", f"Връх {n} е връх в планината.", ["Планини"]) for n in range(5)]
    subcat = Page("Категория:Езера в планините", "Езерата.", ["Планини"])
    lakes = [Page(f"Езеро {n}", f"Езеро {n} е ледниково езеро.", ["Езера в планините"]) for n in range(4)]
    other = [Page("Град", "Град е населено място.", ["Градове"])]
    return mountains + [subcat] + lakes + other


@pytest.mark.parametrize("depth, limit, expected", [("0", "0", 5), ("1", "0", 9), ("1", "3", 3)])
def test_category_mode_walks_subcategories_to_the_given_depth(tmp_path, depth, limit, expected):
    with WikiReplay(category_site()) as server:
        config = crawl_config(tmp_path, server.api)
        proc = scrapy_crawl(config, "bgwiki", "-a", "category=Планини", "-a", f"depth={depth}",
                            "-a", f"limit={limit}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = sorted(r["title"] for r in records(tmp_path / "data"))
    assert len(got) == expected and len(set(got)) == expected
    assert all(t.startswith(("Връх", "Езеро")) for t in got)
    if limit == "0":
        assert any(t.startswith("Езеро") for t in got) == (depth == "1")
    # the summary shows what the limit left out, and no such row without a limit
    over = re.search(r"^  over the limit +(\d+)$", proc.stdout, flags=re.M)
    assert (over is not None and int(over.group(1)) > 0) == (limit != "0"), proc.stdout


def test_real_parser_output_and_real_bulgarian_text(fixtures, tmp_path):
    """A real Wikipedia page's parser output and real Bulgarian titles/text go through unchanged."""
    page_html = (fixtures / "wikipedia_html" / "en_reference_trafilatura" / "en.wikipedia.org.tsne.html")
    tree = lxml.html.fromstring(page_html.read_bytes())
    output = lxml.html.tostring(tree.xpath('//div[contains(@class, "mw-parser-output")]')[0],
                                encoding="unicode")
    lines = (fixtures / "wiktionary_bg_export" / "titles" / "all-verbs-references.txt").read_text(
        encoding="utf-8").splitlines()
    verbs = [ln.rsplit("/", 1)[1] for ln in lines if ln.startswith("Шаблон:Словоформи/")][:40]
    news = [json.loads(ln)["Content"] for ln in (fixtures / "bg_text" / "hack_the_fake_news" /
            "FN_Validation_Set.jsonl").read_text(encoding="utf-8").splitlines()[:40]]
    pages = [Page("T-distributed stochastic neighbor embedding", html=output)]
    pages += [Page(verb[0].upper() + verb[1:], text, ["Глаголи"]) for verb, text in zip(verbs, news, strict=True)]
    titles = tmp_path / "titles.txt"
    titles.write_text("T-distributed_stochastic_neighbor_embedding\n" + "\n".join(verbs) + "\n", encoding="utf-8")
    with WikiReplay(pages) as server:
        proc = scrapy_crawl(crawl_config(tmp_path, server.api, titles), "bgwiki")
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = {r["title"]: r for r in records(tmp_path / "data")}
    assert len(got) == 41
    assert got["T-distributed stochastic neighbor embedding"]["html"] == output
    first = verbs[0][0].upper() + verbs[0][1:]
    assert news[0].split(".")[0][:40] in got[first]["html"]
