"""Step 4: quality filters, one reason each; language found from the text, never the page's lang."""

from __future__ import annotations

import functools

import pytest

from common.config import SCHEMA, Section, load
from common.errors import UserError
from corpus import filters
from corpus.document import Document
from corpus.extract import extract_news
from corpus.stats import Stats
from corpus.steps import Pipeline, Step

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


def doc(text: str, source: str = "site", url: str = "https://example.bg/a") -> Document:
    return Document(id="a", url=url, title="", source=source, licence="x", text=text)


def apply(text: str, cfg: Section) -> tuple[str, str | None, Stats]:
    """Every filter in order as the build runs them: (text left, reason dropped or None, counts)."""
    stats = Stats()
    steps = [Step("filter", f.__name__, functools.partial(f, cfg=cfg)) for f in filters.FILTERS]
    document = doc(text)
    kept = Pipeline(steps, stats)(document)
    dropped = [reason for (_, reason) in stats.docs if reason.startswith("dropped: ")]
    assert (kept is None) == bool(dropped)
    return document.text, dropped[0].removeprefix("dropped: ") if dropped else None, stats


def test_bulgarian_prose_passes_every_filter():
    text, reason, stats = apply(BG, corpus_cfg())
    assert (text, reason) == (BG, None)
    assert stats.rows() == [("filter", "kept", 1, len(BG))]


@pytest.mark.parametrize("text, reason", [(RU, "not bg"), (MK, "not bg"), (SR, "not bg"),
                                          (EN, "few Cyrillic letters")])
def test_other_languages_are_dropped(text, reason):
    assert apply(text, corpus_cfg())[1] == reason


def test_english_is_dropped_by_the_language_identifier_alone():
    assert filters.language(doc(EN), corpus_cfg()) == "not bg"
    assert filters.language(doc(BG), corpus_cfg()) is None


def test_real_page_declaring_lang_en_is_found_bulgarian(fixtures):
    html = (fixtures / "news_html/htmldate_test_set/1766087391.html").read_text()
    assert '<html class="ie8" lang="en">' in html  # what the page declares
    text = extract_news(html, ".td-post-content")
    assert filters.language(doc(text), corpus_cfg()) is None
    assert filters.cyrillic_ratio(doc(text), corpus_cfg()) is None


def test_real_bulgarian_web_documents_pass_language_checks(fixtures):
    for path in sorted((fixtures / "bg_text/culturax_samples_utf8").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert filters.language(doc(text), corpus_cfg()) is None, path.name
        assert filters.cyrillic_ratio(doc(text), corpus_cfg()) is None, path.name


def test_min_length():
    assert filters.too_short(doc("Кратко."), corpus_cfg()) == "too short"
    assert filters.too_short(doc(BG), corpus_cfg()) is None


def test_repeated_lines():
    text = "\n".join(["Прочетете още по темата."] * 4 + ["Едно изречение.", "Друго изречение."])
    assert filters.duplicate_lines(doc(text), corpus_cfg()) == "repeated lines"
    assert filters.duplicate_lines(doc(BG), corpus_cfg()) is None


def test_menu_like_lines_fail_the_sentence_share():
    menu = "\n".join(["Начало", "Новини", "Спорт", "Култура", "Контакти", BG])
    assert filters.punctuation_lines(doc(menu), corpus_cfg()) == "few sentence lines"
    # one long paragraph that does not end in punctuation still reads as prose
    assert filters.punctuation_lines(doc("Заглавие\n" + BG + " Източник: БТА"), corpus_cfg()) is None


def test_boilerplate_lines_removed_and_mostly_boilerplate_pages_dropped():
    notice = "Този сайт използва бисквитки, за да подобри услугите си."
    text = "\n".join([BG, notice, "Моля, разрешете JavaScript.", "Всички права запазени © 2024"])
    page = doc(text)
    assert filters.strip_boilerplate(page, corpus_cfg(max_boilerplate_lines=0.8)) is None
    assert page.text == BG
    page = doc(text)
    assert filters.strip_boilerplate(page, corpus_cfg(max_boilerplate_lines=0.5)) == "boilerplate"
    cleaned, reason, stats = apply(text, corpus_cfg(max_boilerplate_lines=0.8))
    assert (cleaned, reason) == (BG, None)
    assert ("filter", "removed characters (strip_boilerplate)", 1, len(text) - len(BG)) in stats.rows()
    # prose about biscuits is not a cookie notice
    food = doc("Бисквитките с масло се пекат десет минути.")
    assert filters.strip_boilerplate(food, corpus_cfg()) is None
    assert food.text == "Бисквитките с масло се пекат десет минути."


def test_stop_word_rule_of_fineweb2():
    # Bulgarian-looking words without the function words of running text
    keywords = "Пловдив Марица Тракия Европа градове центрове транспорт култура икономика " * 5
    assert filters.stop_words(doc(keywords), corpus_cfg()) == "few stop words"
    assert filters.stop_words(doc(BG), corpus_cfg()) is None
    # "г." counts as the abbreviation it is; one stop word alone is not enough
    assert filters.stop_words(doc("Основан 1878 г. Пловдив"), corpus_cfg()) == "few stop words"
    assert filters.stop_words(doc("Основан 1878 г. в Пловдив"), corpus_cfg()) is None
    assert filters.stop_words(doc(keywords), corpus_cfg(min_stop_words=0)) is None


def test_gopher_word_length_and_words_with_letters():
    assert filters.word_length(doc(BG), corpus_cfg()) is None
    assert filters.word_length(doc("а б в г д е ж з и й к л м н о п р с т у ф"), corpus_cfg()) == "short words"
    hashes = "Ключове: " + " ".join("а1б2в3г4д5е6ж7з8и9к0л" for _ in range(20))
    assert filters.word_length(doc(hashes), corpus_cfg()) == "long words"
    table = "Резултати: " + " ".join(f"{n} | {n * 7} | {n * 13}" for n in range(30))
    assert filters.letter_words(doc(table), corpus_cfg()) == "few words with letters"
    assert filters.letter_words(doc(BG), corpus_cfg()) is None


def test_gopher_repetition_of_word_ngrams():
    assert filters.repeated_ngrams(doc(BG), corpus_cfg()) is None
    # a slogan said again and again: its 2-gram covers too much of the text
    slogan = " ".join(["Гласувайте днес!"] * 5 + [BG])
    assert filters.repeated_ngrams(doc(slogan), corpus_cfg()) == "repeated 2-word phrase"
    # a paragraph pasted twice: its 5-grams are seen before
    assert filters.repeated_ngrams(doc(BG + "\n" + BG), corpus_cfg()) == "repeated 5-word spans"
    assert filters.repeated_ngrams(doc(BG + "\n" + BG), corpus_cfg(
        max_top_ngram_share=[], max_dup_ngram_share=[])) is None


def test_ngram_share_settings_are_checked(tmp_path):
    path = tmp_path / "pipelines.toml"
    path.write_text("[corpus]\nmax_dup_ngram_share = [[5, 1.5]]\n", encoding="utf-8")
    with pytest.raises(UserError, match="corpus.max_dup_ngram_share"):
        load(path)


def test_pipeline_counts_each_step_and_lists_a_failing_step_as_bad_input():
    def explode(document: Document) -> str | None:
        raise ValueError("broken page")

    stats = Stats()
    steps = [Step("filter", "too short", functools.partial(filters.too_short, cfg=corpus_cfg())),
             Step("filter", "explode", explode)]
    pipeline = Pipeline(steps, stats)
    assert pipeline(doc("Кратко.")) is None
    page = doc(BG)
    page.metadata["where"] = "news/part-00000.jsonl.gz#7"
    assert pipeline(page) is None
    assert stats.rows() == [("filter", "dropped: too short", 1, 7),
                            ("filter", "skipped: explode failed", 1, 0)]
    # in and out of each step: the short page stopped at the first, the other failed in the second
    assert stats.step_rows() == [("too short", 2, 1, 1), ("explode", 1, 1, 0)]
    assert stats.problems == ["news/part-00000.jsonl.gz#7: ValueError: broken page"]


def test_unknown_language_code_is_a_user_error():
    with pytest.raises(UserError, match="corpus.lang"):
        filters.detector("xx")
