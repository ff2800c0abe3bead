"""Step 2: main text of Wikipedia parse HTML and of news pages (two libraries or a site selector)."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest

from corpus import news_extract
from corpus.document import Document
from corpus.extract import extract_news, extract_news_with_path, extract_wiki
from corpus.news_extract import Candidates, combine
from corpus.normalize import normalize
from corpus.steps import extract_text

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


def test_extract_step_routes_bgwiki_records_to_the_wiki_cleaner():
    record = {"source": "bgwiki", "title": "Пловдив", "html": BG_PARSE_HTML}
    doc = Document.from_record(record, {})
    assert extract_text(doc, {"bgwiki": "p"}) is None  # a selector never applies to the wiki
    assert doc.text == "Пловдив\n" + extract_wiki(BG_PARSE_HTML)  # the title first
    assert doc.metadata["extract_path"] == "wiki"


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
    # ...and the extract step looks the selector up by the document's source
    doc = Document.from_record({"source": "vratza", "html": html, "url": "https://vratza.com/x/"}, {})
    assert extract_text(doc, {"vratza": "h1.entry-title"}) is None
    assert doc.text.startswith("ОБЩИНА ВРАЦА СПЕЧЕЛИ ПРОЕКТ")
    assert doc.metadata["extract_path"] == "selector"


def test_stub_page_gives_its_one_sentence_not_the_menu_around_it(fixtures):
    # vratza.com serves this article as a one-sentence excerpt; trafilatura adds menu words
    html = (fixtures / "news_html/htmldate_test_set/1766087391.html").read_text()
    text, path = extract_news_with_path(html)
    assert (text, path) == (extract_news(html, ".td-post-content"), news_extract.TOO_LITTLE)


def test_selector_text_keeps_paragraphs_and_drops_scripts():
    html = ("<html><body><nav>Начало</nav><div class='story'><h1>Заглавие</h1>"
            "<script>var x = 1;</script><p>Първи абзац.</p><p>Втори <b>абзац</b>.</p></div>"
            "<div class='story'><p>Трети.</p></div></body></html>")
    assert extract_news(html, "div.story") == "Заглавие\nПърви абзац.\nВтори абзац.\nТрети."
    assert extract_news(html, "div.missing") == ""


def test_selector_on_a_bare_text_element_keeps_its_lines():
    html = "<div id='body'>Първи ред на статията.<br>Втори ред.</div>"
    assert extract_news(html, "#body") == "Първи ред на статията.\nВтори ред."


PAGES = Path(__file__).parent / "pages"


def _body_paragraphs(html: str, body_xpath: str) -> list[str]:
    """The article paragraphs as marked up in the page (the text the extractor must keep)."""
    tree = lxml.html.fromstring(html)
    found = (p if isinstance(p, str) else p.text_content() for p in tree.xpath(body_xpath))
    return [line for line in (" ".join(text.split()) for text in found) if line]


@pytest.mark.parametrize(("page", "body_xpath", "boilerplate"), [
    ("bg_news_related.html", '//div[@class="post-content"]/p',
     ["Този сайт използва бисквитки", "Приемам", "Начало", "Автор:", "Сподели", "Facebook",
      "Етикети", "Свързани новини", "Започва ремонтът на големия мост", "Абонирайте се",
      "Получавайте най-важните новини", "Коментари (12)", "Най-накрая и нашият квартал",
      "Най-четени", "Времето утре", "Всички права запазени", "Общи условия"]),
    ("bg_news_inline_boilerplate.html", '//div[@class="text"]/p[not(strong)]',
     ["Вход", "Земеделие", "Коментари (12)", "Сподели", "Viber", "Прочетете още",
      "Земеделците искат компенсации", "Градушка унищожи реколтата", "Прочети повече",
      "Абонирайте се за бюлетина", "Най-важното от региона", "Подкрепете местната журналистика",
      "Всяко дарение", "Дари сега", "IBAN", "Тагове", "Ние тази година изобщо",
      "Изпрати коментар", "бисквитки"]),
    # the body in two containers around an ad: trafilatura keeps only the first
    ("bg_news_split_body.html", '//div[@class="article-text"]/text()',
     ["Начало", "бисквитки", "Съгласен съм", "Публикувана", "Коментари (3)", "Сподели", "Email",
      "Реклама", "Още от категорията", "Театърът открива сезона", "Габровец", "Дано не ги",
      "Последни новини", "Затварят улица", "Всички права запазени"]),
])
def test_project_written_bg_pages_keep_the_body_and_drop_the_boilerplate(page, body_xpath,
                                                                         boilerplate):
    html = (PAGES / page).read_text(encoding="utf-8")
    text, path = extract_news_with_path(html, url=f"https://news.example.bg/{page}")
    assert path == "merged"
    assert text.split("\n") == _body_paragraphs(html, body_xpath)
    for junk in boilerplate:
        assert junk not in text


# Paragraphs written for these tests (10 to 70 words).
LEAD = ("Градският съвет прие днес плана за обновяване на старите училищни дворове, който "
        "предвижда нови игрища, пейки и засаждане на дървета във всички квартали до края на годината.")
MIDDLE = ("Според заместник-кмета по образованието първите осем двора ще бъдат готови още през "
          "септември, а останалите ще бъдат ремонтирани по време на зимната ваканция, за да не "
          "пречат на учебния процес и на извънкласните занимания на децата в следобедните часове, "
          "когато дворовете се използват най-много от учениците и техните родители, а вечер "
          "и от по-големите младежи от квартала, които досега нямаха къде да играят баскетбол.")
END = "Родителите могат да изпращат предложения до общината до края на месеца."


def test_lines_both_libraries_find_are_merged_with_long_prose_only_one_finds():
    tra = [LEAD, "Сподели във Facebook", END, "Още по темата: нови детски площадки"]
    reader_note = ("Пишете ни, ако искате да споделите мнението си за новите училищни дворове "
                   "във вашия квартал.")
    rea = [LEAD, MIDDLE, END, reader_note, "Дарете за нашата редакция"]
    text, path = combine(Candidates(tra, rea, []))
    assert path == news_extract.MERGED
    # readability's long paragraph goes where readability has it; lines only one library keeps
    # that are short (a share label, a reader's note, a donation call) go.
    assert text.split("\n") == [LEAD, MIDDLE, END]
    # ...unless they sit in a container (class, id) that holds lines both libraries have
    containers = ["div.text#", "div.text#", "div.text#", "div.text#", "div.donate#"]
    text, _ = combine(Candidates(tra, rea, [], containers))
    assert text.split("\n") == [LEAD, MIDDLE, END, reader_note]


def test_json_ld_body_vouches_for_a_line_only_trafilatura_keeps():
    tra = [LEAD, "Снимка: архив на общината", END]
    rea = [LEAD, END]
    assert combine(Candidates(tra, rea, []))[0].split("\n") == [LEAD, END]
    json_ld = [f"{LEAD} Снимка: архив на общината {END}"]
    assert combine(Candidates(tra, rea, json_ld))[0].split("\n") == tra


def test_fallback_paths_when_a_library_returns_too_little_or_they_disagree():
    body = [LEAD, MIDDLE, END]
    other = ["Времето утре ще бъде слънчево в цялата страна, с температури между двадесет и "
             "двадесет и пет градуса, а вятърът ще е слаб, от северозапад, и ще отслабва вечерта.",
             "Най-ниските температури ще бъдат в котловините, където сутринта ще има мъгла."]
    assert combine(Candidates(body, ["Вход"], [])) == ("\n".join(body), news_extract.TRAFILATURA)
    assert combine(Candidates([], body, [])) == ("\n".join(body), news_extract.READABILITY)
    assert combine(Candidates(body, other, [])) == ("\n".join(body), news_extract.DISAGREE)
    json_ld = [" ".join(body)]
    assert combine(Candidates([END], [], json_ld)) == (json_ld[0], news_extract.JSONLD)
    assert combine(Candidates([], [], [])) == ("", news_extract.TOO_LITTLE)


def test_xml_declared_and_byte_pages_parse_like_plain_ones():
    html = (PAGES / "bg_news_related.html").read_text(encoding="utf-8")
    expected = extract_news_with_path(html)
    declared = '<?xml version="1.0" encoding="utf-8"?>\n' + html.removeprefix("<!DOCTYPE html>\n")
    assert extract_news_with_path(declared) == expected
    assert extract_news_with_path(html.encode("utf-8")) == expected
    assert extract_news_with_path("") == ("", news_extract.TOO_LITTLE)


def test_too_little_text_keeps_what_was_found_and_says_so():
    assert combine(Candidates(["Кратка бележка."], [], [])) == ("Кратка бележка.",
                                                                news_extract.TOO_LITTLE)


STANDFIRST = ("Общината ще обнови двадесет училищни двора в града, съобщиха от пресцентъра след "
              "заседанието на съвета.")
CAPTION = "Снимка: архив на общината, пресцентър"


def test_trafilatura_only_lines_stay_by_place_and_length():
    tra = ["Вход", STANDFIRST, LEAD, CAPTION, "Сподели", END, MIDDLE, "Най-четени"]
    rea = [LEAD, END]
    off = news_extract.Thresholds(lead_words=news_extract.OFF, inside_words=news_extract.OFF,
                                  after_words=news_extract.OFF)
    assert combine(Candidates(tra, rea, []), off)[0].split("\n") == [LEAD, END]
    # a prose line before the first line both have (a standfirst), any line of enough words
    # between them (a caption), long prose after the last; a widget label goes on every path
    rules = news_extract.Thresholds(lead_words=12, inside_words=5, after_words=30)
    assert combine(Candidates(tra, rea, []), rules)[0].split("\n") == [STANDFIRST, LEAD, CAPTION,
                                                                       END, MIDDLE]
    assert combine(Candidates(tra, rea, []),
                   news_extract.Thresholds(lead_words=30, inside_words=6, after_words=100)
                   )[0].split("\n") == [LEAD, END]



def test_disagreeing_readability_wins_when_it_has_far_more_paragraphs():
    teaser = [LEAD, END]  # trafilatura took a teaser block: one paragraph of prose
    article = [MIDDLE.replace("септември", month) for month in (
        "януари", "февруари", "март", "април", "май", "юни", "юли", "август")]
    assert combine(Candidates(teaser, article, [])) == ("\n".join(article),
                                                        news_extract.DISAGREE_PROSE)
    # seven paragraphs are not enough, and neither are eight against trafilatura's three
    assert combine(Candidates(teaser, article[:7], []))[1] == news_extract.DISAGREE
    three = [LEAD, STANDFIRST, LEAD.replace("днес", "вчера")]
    assert combine(Candidates(three, article, []))[1] == news_extract.DISAGREE
