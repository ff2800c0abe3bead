"""Step 2: main text of Wikipedia parse HTML and of news pages (two libraries or a site selector)."""

from __future__ import annotations

from corpus.extract import extract, extract_news, extract_news_with_path, extract_wiki
from corpus.normalize import normalize

# What bg.wikipedia's action=parse returns for an article, in its current markup (headings in
# div.mw-heading with an edit link beside them), written for this test.
BG_PARSE_HTML = """<div class="mw-content-ltr mw-parser-output" lang="bg" dir="ltr">
<div role="note" class="hatnote navigation-not-searchable">Вижте също пояснителната страница.</div>
<table class="infobox"><tr><th>Столица</th><td>Пловдив</td></tr></table>
<span id="coordinates" class="coordinates">42°09′ с. ш. 24°45′ и. д.</span>
<p><b>Пловдив</b> е вторият по големина град в България.<sup id="cite_ref-1" class="reference">
<a href="#cite_note-1">[1]</a></sup> Разположен е на река Марица.</p>
<div id="toc" class="toc"><div class="toctitle"><h2 id="mw-toc-heading">Съдържание</h2></div>
<ul><li class="toclevel-1"><a href="#История">1 История</a></li></ul></div>
<div class="mw-heading mw-heading2"><h2 id="История">История</h2><span class="mw-editsection">
<span class="mw-editsection-bracket">[</span><a href="/w/index.php?action=edit">редактиране</a>
<span class="mw-editsection-bracket">]</span></span></div>
<p>Градът е основан в древността.</p>
<ul><li>Античен театър</li><li>Стария град</li></ul>
<p>Формулата <span class="mwe-math-element"><math>x^2</math></span> тук няма място.</p>
<div class="mw-heading mw-heading2"><h2 id="Бележки">Бележки</h2></div>
<div class="reflist"><ol class="references"><li id="cite_note-1">Източник на бележката.</li></ol></div>
<div class="mw-heading mw-heading2"><h2 id="Външни_препратки">Външни препратки</h2></div>
<ul><li><a href="https://plovdiv.bg">Официален сайт</a></li></ul>
<div class="navbox"><div class="navbox-title">Градове в България</div><ul><li>София</li></ul></div>
</div>"""


def test_wiki_parse_html_keeps_prose_and_drops_apparatus():
    text = extract_wiki(BG_PARSE_HTML)
    assert text.split("\n") == [
        "Пловдив е вторият по големина град в България. Разположен е на река Марица.",
        "История",
        "Градът е основан в древността.",
        "Античен театър",
        "Стария град",
        "Формулата тук няма място.",
    ]


def test_extract_routes_bgwiki_records_to_the_wiki_cleaner():
    record = {"source": "bgwiki", "title": "Пловдив", "html": BG_PARSE_HTML}
    assert extract(record, {"bgwiki": "p"}) == extract_wiki(BG_PARSE_HTML)


def test_real_wikipedia_page_loses_navbox_references_toc(fixtures):
    html = (fixtures / "wikipedia_html/en_reference_trafilatura/en.wikipedia.org.tsne.html").read_text()
    text = extract_wiki(html)
    lines = text.split("\n")
    assert lines[0].startswith("T-distributed Stochastic Neighbor Embedding (t-SNE) is a machine")
    assert "Details" in lines  # section headings kept
    assert "Contents" not in text  # table of contents
    assert "[1]" not in text and "edit" not in lines  # citation marks, edit links
    assert "Retrieved" not in text and "doi" not in text.lower()  # reference list
    assert "Dimensionality reduction" not in lines  # navbox title
    assert '"TSNE" redirects here' not in text  # hatnote
    assert "References" not in lines and "External links" not in lines  # trailing sections
    assert "Machine learning algorithms" not in lines  # category links
    assert len(text) > 3000


def test_news_page_body_kept_menus_donation_and_teasers_dropped(fixtures):
    html = (fixtures / "news_html/htmldate_test_set/1740081165.html").read_text()
    text, path = extract_news_with_path(html)
    text = normalize(text)
    assert path == "merged"  # trafilatura and readability agreed on the body
    assert text.startswith("Нови технически средства получиха децата и младежите, настанени в социални")
    assert text.endswith("лишени от родителска грижа.")
    assert "Осигурените по проекта девет преносими компютри" in text
    for boilerplate in ("Близък изток и Азия", "Футбол Свят", "НАЙ-КОМЕНТИРАНИ",
                        "Основан е град Пхенян", "КЪСМЕТЧЕ", "Гледна точка",
                        "Етикети",  # tag list
                        "Помогнете на новините", "Дари сега", "IBAN",  # donation box
                        "Само за няколко месеца", "Прочети повече"):  # related-article teaser
        assert boilerplate not in text
    assert extract_news(html) == extract_news_with_path(html)[0]


def test_site_selector_overrides_trafilatura(fixtures):
    html = (fixtures / "news_html/htmldate_test_set/1766087391.html").read_text()
    text = extract_news(html, ".td-post-content")
    assert text == ("Проектното предложение на местната администрация за изграждане на "
                    "допълнителен корпус на ППМГ „Акад. Иван Ценов“ е сред …")
    # ...and extract() looks the selector up by the record's source name
    record = {"source": "vratza", "html": html, "url": "https://vratza.com/x/"}
    assert extract(record, {"vratza": "h1.entry-title"}).startswith("ОБЩИНА ВРАЦА СПЕЧЕЛИ ПРОЕКТ")


def test_selector_text_keeps_paragraphs_and_drops_scripts():
    html = ("<html><body><nav>Начало</nav><div class='story'><h1>Заглавие</h1>"
            "<script>var x = 1;</script><p>Първи абзац.</p><p>Втори <b>абзац</b>.</p></div>"
            "<div class='story'><p>Трети.</p></div></body></html>")
    assert extract_news(html, "div.story") == "Заглавие\nПърви абзац.\nВтори абзац.\nТрети."
    assert extract_news(html, "div.missing") == ""


def test_selector_on_a_bare_text_element_keeps_its_lines():
    html = "<div id='body'>Първи ред на статията.<br>Втори ред.</div>"
    assert extract_news(html, "#body") == "Първи ред на статията.\nВтори ред."
