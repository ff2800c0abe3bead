"""Step 6: the split is a function of the canonical URL (and the seed) alone."""

from __future__ import annotations

from collections import Counter

from corpus.split import doc_id, split_of


def test_split_is_stable_and_follows_the_ratios():
    urls = [f"https://bg.wikipedia.org/wiki/Статия_{n}" for n in range(20000)]
    first = [split_of(u, 0.05, 0.1, "seed") for u in urls]
    assert first == [split_of(u, 0.05, 0.1, "seed") for u in urls]
    counts = Counter(first)
    assert abs(counts["valid"] / len(urls) - 0.05) < 0.01
    assert abs(counts["test"] / len(urls) - 0.10) < 0.01
    # a document's split does not depend on which other documents exist
    assert [split_of(u, 0.05, 0.1, "seed") for u in reversed(urls)] == first[::-1]


def test_seed_reshuffles_and_zero_ratios_put_everything_in_train():
    urls = [f"https://example.bg/{n}" for n in range(2000)]
    a = [split_of(u, 0.2, 0.2, "a") for u in urls]
    b = [split_of(u, 0.2, 0.2, "b") for u in urls]
    assert a != b
    assert {split_of(u, 0.0, 0.0, "a") for u in urls} == {"train"}


def test_doc_id_is_stable_and_distinct():
    assert doc_id("https://example.bg/1") == doc_id("https://example.bg/1")
    assert len({doc_id(f"https://example.bg/{n}") for n in range(1000)}) == 1000
