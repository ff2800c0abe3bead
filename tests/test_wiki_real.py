"""Real-size generated Wikipedia pages (``demo.replay.real_size``) and the rehearsal on them
(``make bench-scale ARGS=--wiki-real``) at a tiny size, so neither can rot. No wall time is asserted."""

from __future__ import annotations

import json
import random
import statistics

import lxml.html
import pytest

from bench import wiki_real, wiki_rehearsal
from corpus.wiki_extract import extract_wiki
from demo.replay.pages import number_pages, synthetic_pages
from demo.replay.real_size import (
    FIXED_BYTES,
    MEDIAN_BYTES,
    PARAGRAPH_BYTES,
    real_size_articles,
    real_size_body,
    target_bytes,
)
from demo.replay.wikitext import Renderer
from tests.util import run_module


def test_page_sizes_are_drawn_like_real_articles():
    """A median of tens of KB, a mean of 80–170 KB, a tail past 500 KB."""
    sizes = [target_bytes(random.Random(f"0-{n}")) for n in range(2000)]
    assert 30_000 < statistics.median(sizes) < 70_000
    assert 80_000 < statistics.mean(sizes) < 170_000
    assert 0.01 < sum(s > 500_000 for s in sizes) / len(sizes) < 0.05


def test_rendered_pages_carry_their_drawn_size_and_parsoid_furniture():
    articles = list(real_size_articles(24))
    for n, item in enumerate(articles):
        page = item["article_body"]["html"]
        target = max(target_bytes(random.Random(f"0-{n}")), FIXED_BYTES + PARAGRAPH_BYTES)
        assert 0.6 < len(page.encode("utf-8")) / target < 1.6, item["name"]
        templates = [el for el in lxml.html.document_fromstring(page).iter()
                     if "mw:Transclusion" in (el.get("typeof") or "").split()]
        assert len(templates) > 3 and all(json.loads(el.get("data-mw"))["parts"] for el in templates)
        assert "<figure" in page and "<figcaption>" in page and 'class="wikitable' in page
        paragraphs = item["article_body"]["wikitext"].count("\n") + 1
        assert page.count('<li about="#cite_note-') >= paragraphs // 2  # a reference a paragraph
    largest = max(articles, key=lambda a: len(a["article_body"]["html"]))["article_body"]["html"]
    assert largest.count('<li about="#cite_note-') >= 100 and largest.count('class="navbox"') >= 2
    assert statistics.median(len(a["article_body"]["html"]) for a in articles) > MEDIAN_BYTES / 3


def test_real_size_furniture_adds_no_text():
    """The cleaner's text of a real-size Parsoid page is the API renderer's text of the same page."""
    pages = synthetic_pages(8, paragraphs=1)
    for n, page in enumerate(number_pages(pages)):
        page.body = real_size_body(n)
    api = Renderer(pages)
    for page, item in zip(pages, real_size_articles(8), strict=True):
        text = extract_wiki(item["article_body"]["html"])
        assert text == extract_wiki(api.render(page)), page.title
        assert "Посетен на" not in text and "Изглед към" not in text and "Място " not in text


@pytest.mark.slow
def test_rehearsal_at_a_tiny_size(tmp_path):
    out, temp = tmp_path / "wiki-real.json", tmp_path / "temp"
    temp.mkdir()
    proc = run_module("bench.scale", "--wiki-real", "--wiki-articles", "12", "--wiki-sample", "3",
                      "-j", "1", "--out", str(out), env={"TMPDIR": str(temp)}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["generated"]["articles"] == 12 and data["settings"]["sample"] == 3
    assert set(data["speed"]) == {"wiki cleaner", "mwparserfromhtml", "BeautifulSoup tree", "lxml parse"}
    stages = data["stages"]
    assert set(stages) == set(wiki_rehearsal.OUTPUTS)
    assert set(data["dump"]) == {"wikidump import", "bare stream read", "bare stream read, same libraries"}
    ext = data["extrapolated"]
    assert ext["scale"] == wiki_real.BGWIKI / 12
    for name in wiki_rehearsal.OUTPUTS:
        assert stages[name]["cpu_s"] > 0 and stages[name]["peak_rss_mb"] > 0 and stages[name]["disk_bytes"] > 0
        assert ext["stages"][name]["cpu_s"] == pytest.approx(stages[name]["cpu_s"] * wiki_real.BGWIKI / 12)
    hours = ext["hours_on_cores"]
    assert hours["2"] > hours["8"] > hours["16"] > 0
    assert "x(300k) = x(12) × 300,000 / 12" in data["section"] and "## Wikipedia at real page sizes" in proc.stdout
    assert data["texts"]["lines_in_both"] > 0
    assert not list(temp.iterdir())  # the dump and the project went with their temporary folder


def test_bad_rehearsal_sizes_exit_2(tmp_path):
    proc = run_module("bench.scale", "--wiki-real", "--wiki-articles", "5", "--wiki-sample", "9",
                      "--out", str(tmp_path / "x.json"))
    assert proc.returncode == 2 and not (tmp_path / "x.json").exists()
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
