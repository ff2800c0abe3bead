"""bench/extraction.py scores both development sets as their own evaluations do."""

from __future__ import annotations

import pytest

from bench import extraction
from bench.extraction import (
    TOKENISERS,
    Page,
    folds,
    page_score,
    page_scores,
    set_figures,
    site_of,
    snippet_counts,
)

TRUTH = "Първо изречение на статията е тук. Второто изречение идва след него и е по-дълго."


@pytest.mark.parametrize("tokens", TOKENISERS.values())
def test_identical_text_scores_one_and_nothing_scores_zero_recall(tokens):
    assert page_scores(TRUTH, TRUTH, tokens) == (1.0, 1.0)
    assert page_scores(TRUTH, "", tokens) == (None, 0.0)  # no prediction: no precision
    assert page_scores("", "Меню Начало Контакти Вход", tokens) == (0.0, None)


def test_glued_paragraphs_cost_whitespace_tokens_only():
    glued = TRUTH.replace(". ", ".")  # text_content() of two paragraphs without a separator
    whitespace, words = TOKENISERS[""], TOKENISERS["_words"]
    assert page_scores(TRUTH, glued, words) == (1.0, 1.0)
    precision, recall = page_scores(TRUTH, glued, whitespace)
    assert precision < 1 and recall < 1


def test_extra_boilerplate_lowers_precision_and_keeps_recall():
    precision, recall = page_scores(TRUTH, TRUTH + "\nСподели във Facebook Twitter Viber")
    assert recall == 1.0
    assert 0.5 < precision < 1.0


def test_scrapinghub_figures_average_precision_and_recall_over_pages():
    page = Page("1", "a.bg", "", truth=TRUTH)
    scores = [page_score("scrapinghub", page, TRUTH), page_score("scrapinghub", page, ""),
              (0.5, 0.5, 0.5, 0.5)]
    figures = set_figures("scrapinghub", scores)
    assert figures["precision"] == pytest.approx(0.75)  # the page without output left out
    assert figures["recall"] == pytest.approx(0.5)
    assert figures["f1"] == pytest.approx(0.6)


def test_snippets_are_found_in_whitespace_collapsed_text_and_summed_over_pages():
    page = Page("u", "a.bg", "", with_=["Първо изречение на", "идва след него", "липсва"],
                without=["Меню Начало", "Вход"])
    counts = snippet_counts(page, "Първо\n  изречение на статията идва след него.\nМеню\nНачало")
    assert counts == (2, 1, 1, 1)  # tp, fn, fp, tn
    figures = set_figures("trafilatura_eval", [counts, (3, 0, 0, 2)])
    assert (figures["precision"], figures["recall"]) == (5 / 6, 5 / 6)


def test_sites_of_archived_and_hand_named_pages_are_their_original_hosts():
    assert site_of("https://www.nytimes.com/2019/01/x.html") == "nytimes.com"
    assert site_of("https://web.archive.org/web/2016/http://ordnungsrausch.com/a/") == "ordnungsrausch.com"
    assert site_of("https://edition.cnn.com/a.html") == site_of("https://cnn.com/b") == "cnn.com"
    assert site_of("http://news.bbc.co.uk/x") == "bbc.co.uk"
    assert site_of("hard::gofeminin.de.abnehmen.html") == site_of("https://www.gofeminin.de/") == "gofeminin.de"
    assert site_of("hard::blog.python.org.html") == "python.org"
    assert site_of("hard::jamaicaobserver.com-attacks.html") == "jamaicaobserver.com"


def test_folds_keep_a_sites_pages_together_and_balance_pages():
    sets = {"scrapinghub": [Page(str(n), f"s{n % 7}.bg", "") for n in range(40)],
            "trafilatura_eval": [Page(f"u{n}", f"s{n % 11}.bg", "") for n in range(60)]}
    fold_of = folds(sets, 5)
    assert set(fold_of) == {f"s{n}.bg" for n in range(11)}  # a site shared by both sets: one fold
    sizes = [sum(fold_of[p.site] == k for pages in sets.values() for p in pages) for k in range(5)]
    assert min(sizes) > 0 and max(sizes) <= 2 * min(sizes)


def test_library_outputs_run_once_per_page_and_come_back_from_the_cache(fixtures, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setattr(extraction, "TRAFILATURA_EVAL",
                        fixtures / "extraction_benchmarks/trafilatura_eval_half")
    monkeypatch.setattr(extraction, "CACHE", tmp_path)
    pages = extraction.load_trafilatura_eval()[:2]
    first = extraction.library_outputs("trafilatura_eval", pages, "ours")
    assert set(first) == {p.key for p in pages}
    for page in pages:
        text, _ = extraction.ours(first[page.key]["out"])
        tp, fn, _, _ = snippet_counts(page, text)
        assert tp + fn == len(page.with_) and tp > 0
    (cached,) = tmp_path.glob("trafilatura_eval-ours-*.json")
    cached.write_text(cached.read_text().replace(pages[0].key, "seen in the cache"))
    again = extraction.library_outputs("trafilatura_eval", pages, "ours")
    assert "seen in the cache" in again and pages[0].key not in again
