"""bench/corpus.py scores extraction like the Scrapinghub benchmark: 4-token shingles per page."""

from __future__ import annotations

import pytest

from bench.corpus import TOKENISERS, page_scores, prf

TRUTH = "Първо изречение на статията е тук. Второто изречение идва след него и е по-дълго."


@pytest.mark.parametrize("tokens", TOKENISERS.values())
def test_identical_text_scores_one_and_nothing_scores_zero_recall(tokens):
    assert page_scores(TRUTH, TRUTH, tokens) == (1.0, 1.0)
    assert page_scores(TRUTH, "", tokens) == (None, 0.0)  # no prediction: no precision
    assert page_scores("", "Меню Начало Контакти Вход", tokens) == (0.0, None)


def test_glued_paragraphs_cost_whitespace_tokens_only():
    glued = TRUTH.replace(". ", ".")  # text_content() of two paragraphs without a separator
    words, whitespace = TOKENISERS[""], TOKENISERS["_whitespace"]
    assert page_scores(TRUTH, glued, words) == (1.0, 1.0)
    precision, recall = page_scores(TRUTH, glued, whitespace)
    assert precision < 1 and recall < 1


def test_extra_boilerplate_lowers_precision_and_keeps_recall():
    precision, recall = page_scores(TRUTH, TRUTH + "\nСподели във Facebook Twitter Viber", TOKENISERS[""])
    assert recall == 1.0
    assert 0.5 < precision < 1.0


def test_f1_comes_from_precision_and_recall_averaged_over_pages():
    f1, precision, recall = prf([(1.0, 0.5), (0.5, None), (None, 1.0)])
    assert (precision, recall) == (0.75, 0.75)
    assert f1 == pytest.approx(0.75)
