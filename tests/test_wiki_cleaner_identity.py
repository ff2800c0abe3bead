"""The lxml wiki cleaner gives, page for page, the text the BeautifulSoup cleaner it replaced gave.

``reference`` below is that cleaner's rule set on BeautifulSoup's tree (decompose the junk and
the template furniture, then ``get_text`` of the outermost blocks), kept here as the oracle: every
wiki page the tests use and a spread of real pages from the fixtures go through both.
"""

from __future__ import annotations

import gzip
import re

from bs4 import BeautifulSoup

from corpus import wiki_extract as w
from demo.replay.dump import dump_articles
from demo.replay.pages import synthetic_pages
from demo.replay.real_size import real_size_articles
from demo.replay.wikitext import Renderer
from tests import test_corpus_extract, test_corpus_parsoid
from tests.util import ROOT

_SPACE = re.compile(r"\s+")


def reference(html: str) -> str:
    soup = BeautifulSoup(html, "lxml")
    root = soup.select_one(".mw-parser-output") or soup.body or soup
    elements = root.find_all(True)
    junk = [el for el in elements if el.name in w.JUNK_TAGS or el.get("id") in w.JUNK_IDS
            or not w.JUNK_CLASSES.isdisjoint(el.get("class") or ())
            or not w.JUNK_TYPEOF.isdisjoint((el.get("typeof") or "").split())]
    abouts = {el["about"] for el in elements if el.get("about") is not None
              and w.TRANSCLUSION in (el.get("typeof") or "").split() and el.find_parent(w.BLOCKS) is None}
    junk += [el for el in elements if el.get("about") in abouts and el.name != "p"
             and el.name not in w.HEADINGS and el.find_parent(w.BLOCKS) is None]
    for el in junk:
        el.decompose()
    out, taken, skip_level = [], set(), 0
    for el in root.find_all(w.BLOCKS):
        if any(id(parent) in taken for parent in el.parents):
            continue
        taken.add(id(el))
        text = _SPACE.sub(" ", el.get_text()).strip()
        if el.name in w.HEADINGS:
            level = int(el.name[1])
            if skip_level and level > skip_level:
                continue
            skip_level = level if text.lower() in w.STOP_SECTIONS else 0
        if text and not skip_level:
            out.append(text)
    return "\n".join(out)


def _same(pages: dict[str, str]) -> None:
    for name, html in pages.items():
        assert w.extract_wiki(html) == reference(html), name


def test_same_text_on_the_tests_wiki_pages():
    pages = synthetic_pages(12, paragraphs=7)
    _same({"parsoid": test_corpus_parsoid.PAGE, "action=parse": test_corpus_extract.BG_PARSE_HTML,
           **{f"render {p.title}": Renderer(pages).render(p) for p in pages},
           **{f"dump {a['name']}": a["article_body"]["html"] for a in dump_articles(pages)},
           **{f"real-size {a['name']}": a["article_body"]["html"] for a in real_size_articles(12)}})


def test_same_text_on_real_pages(fixtures):
    """The served Wikipedia page, the tests' news pages and every 8th benchmark page (any HTML)."""
    bench = sorted((fixtures / "extraction_benchmarks").rglob("*.html*"))[::8]
    pages = {p.name: p.read_text() for p in (ROOT / "tests" / "pages").glob("*.html")}
    pages["wikipedia"] = (fixtures / "wikipedia_html/en_reference_trafilatura/en.wikipedia.org.tsne.html").read_text()
    pages |= {p.name: (gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes())
              .decode("utf-8", "replace") for p in bench}
    assert len(pages) > 80
    _same(pages)


def test_markup_edge_cases_match():
    """Strings BeautifulSoup leaves out of get_text (ruby, template, comments) and empty input."""
    _same({"ruby": "<p>漢<rp>(</rp><rt>kan</rt><rp>)</rp> after</p><h2><rt>Бележки</rt></h2><p>kept</p>",
           "template": "<div><template><p>hidden</p></template><p>a<!-- c -->b<?pi x?>c</p></div>",
           "empty": "", "bare text": "just text", "nested blocks": "<li>a<p>b</p><ul><li>c</li></ul></li>",
           "muted block": "<rt><h2>Бележки</h2><p>x</p></rt><h2>Източници</h2><p>y</p><h3>z</h3>"})
