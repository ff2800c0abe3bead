"""The wiki cleaner on Parsoid HTML (the Enterprise dumps' ``article_body.html``).

The pages are written for these tests (project text about an invented village) in the shapes
Parsoid emits: ``<section data-mw-section-id>`` wrappers, templates as ``typeof="mw:Transclusion"``
node groups sharing an ``about``, ``sup.mw-ref`` citation marks, ``div.mw-references-wrap``.
"""

from __future__ import annotations

from corpus.document import Document
from corpus.extract import extract_wiki
from corpus.steps import extract_text
from demo.replay.dump import ParsoidRenderer, dump_articles
from demo.replay.pages import Page, synthetic_pages
from demo.replay.wikitext import Renderer

TEMPLATE = 'typeof="mw:Transclusion" data-mw="{&quot;parts&quot;:[]}"'

PAGE = f"""<!DOCTYPE html>
<html prefix="dc: http://purl.org/dc/terms/ mw: http://mediawiki.org/rdf/"><head><meta charset="utf-8"/>
<meta property="mw:pageNamespace" content="0"/><base href="//bg.wikipedia.org/wiki/"/><title>Горна Върбица</title>
</head><body id="mwAA" lang="bg" class="mw-content-ltr sitedir-ltr ltr mw-body-content parsoid-body mediawiki
mw-parser-output" dir="ltr">
<section data-mw-section-id="0" id="mwAQ">
<div class="hatnote navigation-not-searchable" role="note" about="#mwt1" {TEMPLATE}>Тази статия е за селото.
За реката вижте Върбица (река).</div>
<style data-mw-deduplicate="TemplateStyles:r77" typeof="mw:Extension/templatestyles mw:Transclusion"
 about="#mwt2" data-mw="{{}}">.infobox{{float:right}}</style><table class="infobox" about="#mwt2"><tbody>
<tr><th colspan="2">Горна Върбица</th></tr><tr><th>Население</th><td>412 души</td></tr></tbody></table>
<p id="mwAg"><b>Горна Върбица</b> е село в Северна България, разположено в долината на малка река
<span about="#mwt3" {TEMPLATE}>(на местния говор „Върбишка“)</span>.<sup about="#mwt4" class="mw-ref reference"
 id="cite_ref-1" rel="dc:references" typeof="mw:Extension/ref" data-mw="{{}}"><a href="./Горна_Върбица#cite_note-1">
<span class="mw-reflink-text"><span class="cite-bracket">[</span>1<span class="cite-bracket">]</span></span></a></sup>
Първите сведения за него са от <span about="#mwt5" {TEMPLATE}>1573 г.</span></p>
<div style="float:right" about="#mwt6" {TEMPLATE}><span>42°58′ с. ш. 25°12′ и. д.</span></div>
<span about="#mwt6">Карта на общината</span>
</section>
<section data-mw-section-id="1" id="mwBQ"><h2 id="История">История</h2>
<dl about="#mwt7" {TEMPLATE}><dd><i>Основна статия: История на Горна Върбица</i></dd></dl>
<p>Според преданието селото е основано от овчари, дошли от планината.<sup class="mw-ref reference"
 typeof="mw:Extension/ref" about="#mwt8"><a href="#cite_note-2">[2]</a></sup></p>
<section data-mw-section-id="2" id="mwCA"><h3 id="Училище">Училище</h3>
<p>Килийното училище е открито в средата на XIX век.</p>
<ul><li>Първият учител е местен свещеник.</li><li>Новата сграда е построена с дарения.</li></ul>
</section></section>
<section data-mw-section-id="3" id="mwDA"><h2 id="Забележителности">Забележителности</h2>
<p>Край селото има стар каменен мост и параклис.</p>
<ul about="#mwt9" {TEMPLATE}><li>Общомедия разполага с файлове за Горна Върбица</li></ul>
</section>
<section data-mw-section-id="-1"><h2 about="#mwt10" {TEMPLATE}>Бележки</h2>
<div class="mw-references-wrap" typeof="mw:Extension/references" about="#mwt10"><ol class="mw-references references">
<li about="#cite_note-1" id="cite_note-1"><span class="mw-cite-backlink"><a href="#cite_ref-1">↑</a></span>
<span class="mw-reference-text reference-text">Летопис на селото, с. 12.</span></li></ol></div>
<p>Справочните бележки са подредени по реда на цитиране.</p></section>
<section data-mw-section-id="4" id="mwEA"><h2 id="Източници">Източници</h2>
<ul><li>Местен летопис, ръкопис, 1931.</li></ul></section>
<section data-mw-section-id="5" id="mwFA"><h2 id="Външни_препратки">Външни препратки</h2>
<ul><li><a rel="mw:ExtLink" class="external text" href="https://example.bg/v">Сайт на кметството</a></li></ul>
<div role="navigation" class="navbox" about="#mwt11" {TEMPLATE}><table><tbody><tr><td>
<a href="./Долна_Върбица">Долна Върбица</a> • <a href="./Средна_Върбица">Средна Върбица</a></td></tr></tbody>
</table></div>
<link rel="mw:PageProp/Category" href="./Категория:Села_в_България"/></section>
</body></html>"""

PROSE = [
    "Горна Върбица е село в Северна България, разположено в долината на малка река (на местния говор "
    "„Върбишка“). Първите сведения за него са от 1573 г.",
    "История",
    "Според преданието селото е основано от овчари, дошли от планината.",
    "Училище",
    "Килийното училище е открито в средата на XIX век.",
    "Първият учител е местен свещеник.",
    "Новата сграда е построена с дарения.",
    "Забележителности",
    "Край селото има стар каменен мост и параклис.",
]


def test_parsoid_page_keeps_body_and_drops_templates_references_and_trailing_sections():
    assert extract_wiki(PAGE).splitlines() == PROSE


def test_parsoid_template_output_outside_prose_goes_even_without_a_telling_class():
    text = extract_wiki(PAGE)
    for furniture in ("Основна статия", "Общомедия", "42°58′", "Карта на общината", "412 души",
                      "за реката", "Долна Върбица", "[1]", "[2]", "Летопис на селото", "1931",
                      "кметството", "Справочните бележки", "Бележки"):
        assert furniture.lower() not in text.lower(), furniture


def test_inline_templates_inside_paragraphs_stay_text():
    text = extract_wiki(PAGE)
    assert "(на местния говор „Върбишка“)" in text and "от 1573 г." in text


def test_dump_record_goes_through_the_wiki_cleaner():
    doc = Document.from_record({"source": "bgwiki", "via": "dump", "html": PAGE}, {})
    assert extract_text(doc, {}) is None
    assert doc.text.splitlines() == PROSE


def test_parsoid_and_action_parse_html_of_one_page_give_the_same_text():
    """The generated dump pages and the replay API's action=parse pages: one page, one text."""
    pages = synthetic_pages(4, paragraphs=7)
    pages.append(Page("Малка статия", "Кратко въведение за '''малка статия''' от [[1881 г.]] насам.\n"
                      "== Развитие ==\n* първа точка от списъка.\n* втора точка.\nЗаключителен абзац.",
                      ["Проби"], ["Малка"]))
    parse_html = [Renderer(pages).render(p) for p in pages]
    parsoid = [a["article_body"]["html"] for a in dump_articles(pages)]
    for page, ours, theirs in zip(pages, parsoid, parse_html, strict=True):
        assert 'typeof="mw:Transclusion"' in ours and "data-mw-section-id" in ours
        text = extract_wiki(ours)
        assert text == extract_wiki(theirs), page.title
        assert "Бележки" not in text and "Външни препратки" not in text and "Енциклопедия" not in text
        assert "Основна статия" not in text and "Координати" not in text


def test_parsoid_renderer_nests_subsections_like_parsoid():
    page = Page("Проба", "Въведение.\n== Първи ==\nА.\n=== Под ===\nБ.\n== Втори ==\nВ.")
    page.pageid, page.revid = 1, 2
    html = ParsoidRenderer([page]).render(page)
    first = html.index('data-mw-section-id="1"')
    sub = html.index('data-mw-section-id="2"')
    second = html.index('data-mw-section-id="3"')
    assert html.count("<section") == html.count("</section>")
    assert html[first:second].count("</section>") == 2 and first < sub < second
    assert extract_wiki(html).splitlines() == ["Въведение.", "Първи", "А.", "Под", "Б.", "Втори", "В."]
