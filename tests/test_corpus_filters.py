"""Step 4: quality filters, one reason each; language found from the text, never the page's lang."""

from __future__ import annotations

import pytest

from common.config import SCHEMA, Section
from common.errors import UserError
from corpus import filters
from corpus.extract import extract_news

BG = ("Пловдив е вторият по големина град в България и един от най-старите градове в Европа. "
      "Разположен е на двата бряга на река Марица, в западната част на Горнотракийската низина. "
      "Градът е важен икономически, транспортен и културен център на страната.")
RU = ("Пловдив является вторым по величине городом Болгарии и одним из старейших городов Европы. "
      "Он расположен на обоих берегах реки Марица, в западной части Верхнефракийской низменности. "
      "Город является важным экономическим, транспортным и культурным центром страны.")
MK = ("Скопје е главен и најголем град во Република Северна Македонија. Градот се наоѓа на "
      "реката Вардар, во средишниот дел на Скопската Котлина. Тоа е политички, културен, "
      "економски и академски центар на државата.")
SR = ("Београд је главни и највећи град Републике Србије. Град лежи на ушћу реке Саве у Дунав, "
      "на месту где се Панонска низија спаја са Балканским полуострвом. Београд је политички, "
      "економски и културни центар земље.")
EN = ("Plovdiv is the second-largest city in Bulgaria and one of the oldest cities in Europe. "
      "It lies on both banks of the Maritsa river, in the western part of the Upper Thracian "
      "Plain. The city is an important economic, transport and cultural centre of the country.")


def corpus_cfg(**changes) -> Section:
    cfg = Section({key: field.default for key, field in SCHEMA["corpus"].items()})
    cfg.update(min_chars=100, **changes)
    return cfg


def test_bulgarian_prose_passes_every_filter():
    text, reason, removed = filters.apply(BG, corpus_cfg())
    assert (text, reason, removed) == (BG, None, 0)


@pytest.mark.parametrize("text, reason", [(RU, "not bg"), (MK, "not bg"), (SR, "not bg"),
                                          (EN, "few Cyrillic letters")])
def test_other_languages_are_dropped(text, reason):
    assert filters.apply(text, corpus_cfg())[1] == reason


def test_english_is_dropped_by_the_language_identifier_alone():
    assert filters.language(EN, corpus_cfg()) == "not bg"
    assert filters.language(BG, corpus_cfg()) is None


def test_real_page_declaring_lang_en_is_found_bulgarian(fixtures):
    html = (fixtures / "news_html/htmldate_test_set/1766087391.html").read_text()
    assert '<html class="ie8" lang="en">' in html  # what the page declares
    text = extract_news(html, ".td-post-content")
    assert filters.language(text, corpus_cfg()) is None
    assert filters.cyrillic_ratio(text, corpus_cfg()) is None


def test_real_bulgarian_web_documents_pass_language_checks(fixtures):
    for path in sorted((fixtures / "bg_text/culturax_samples_utf8").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert filters.language(text, corpus_cfg()) is None, path.name
        assert filters.cyrillic_ratio(text, corpus_cfg()) is None, path.name


def test_min_length():
    assert filters.too_short("Кратко.", corpus_cfg()) == "too short"
    assert filters.too_short(BG, corpus_cfg()) is None


def test_repeated_lines():
    text = "\n".join(["Прочетете още по темата."] * 4 + ["Едно изречение.", "Друго изречение."])
    assert filters.duplicate_lines(text, corpus_cfg()) == "repeated lines"
    assert filters.duplicate_lines(BG, corpus_cfg()) is None


def test_menu_like_lines_fail_the_sentence_share():
    menu = "\n".join(["Начало", "Новини", "Спорт", "Култура", "Контакти", BG])
    assert filters.punctuation_lines(menu, corpus_cfg()) == "few sentence lines"
    # one long paragraph that does not end in punctuation still reads as prose
    assert filters.punctuation_lines("Заглавие\n" + BG + " Източник: БТА", corpus_cfg()) is None


def test_boilerplate_lines_removed_and_mostly_boilerplate_pages_dropped():
    notice = "Този сайт използва бисквитки, за да подобри услугите си."
    text = "\n".join([BG, notice, "Моля, разрешете JavaScript.", "Всички права запазени © 2024"])
    cleaned, reason = filters.strip_boilerplate(text, corpus_cfg(max_boilerplate_lines=0.8))
    assert (cleaned, reason) == (BG, None)
    assert filters.strip_boilerplate(text, corpus_cfg(max_boilerplate_lines=0.5))[1] == "boilerplate"
    cleaned, reason, removed = filters.apply(text, corpus_cfg(max_boilerplate_lines=0.8))
    assert (cleaned, reason, removed) == (BG, None, len(text) - len(BG))
    # prose about biscuits is not a cookie notice
    food = "Бисквитките с масло се пекат десет минути."
    assert filters.strip_boilerplate(food, corpus_cfg())[0] == food


def test_unknown_language_code_is_a_user_error():
    with pytest.raises(UserError, match="corpus.lang"):
        filters.detector("xx")
