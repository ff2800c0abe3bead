"""Step 3: mojibake fixed, NFC, invisible characters gone, typography kept."""

from __future__ import annotations

import unicodedata

from common.formats import SEPARATOR
from corpus.normalize import normalize


def test_mojibake_is_repaired():
    broken = "Здравей, свят!".encode().decode("latin-1")  # UTF-8 read as Latin-1
    assert broken != "Здравей, свят!"
    assert normalize(broken) == "Здравей, свят!"


def test_nfc_and_decomposed_short_i():
    decomposed = unicodedata.normalize("NFD", "Йордан и ѝ")
    assert decomposed != "Йордан и ѝ"
    assert normalize(decomposed) == "Йордан и ѝ"


def test_invisible_and_control_characters_removed():
    text = "Бъл\u00adга\u200bрия\ufeff е\u2060 тук\x07\x1b."
    assert normalize(text) == "България е тук."


def test_bulgarian_typography_kept():
    text = "Той каза: „Ще дойда“ — и дойде… «Добре»."
    assert normalize(text) == text


def test_whitespace_collapsed_and_paragraphs_one_newline_apart():
    text = "  Първи\u00a0\u00a0ред \t с интервали  \r\n\r\n\n   \nВтори ред  \n"
    assert normalize(text) == "Първи ред с интервали\nВтори ред"


def test_html_entities_left_by_extractors_are_decoded():
    assert normalize("Л&amp;К &bdquo;Тест&ldquo;") == "Л&К „Тест“"


def test_document_separator_cannot_survive_inside_a_document():
    assert SEPARATOR not in normalize(f"преди {SEPARATOR} след")
    assert normalize(f"преди {SEPARATOR} след") == "преди след"
