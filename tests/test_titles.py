"""Titles-file rules of the bgwiki spider (crawler/titles.py)."""

from __future__ import annotations

import pytest

from common.errors import UserError
from crawler import titles


def write(tmp_path, text: str, encoding: str = "utf-8"):
    path = tmp_path / "titles.txt"
    path.write_bytes(text.encode(encoding))
    return path


def test_titles_urls_comments_underscores_case_and_duplicates(tmp_path):
    path = write(tmp_path, "\n".join([
        "# a comment line",
        "",
        "   ",
        "Васил_Левски",
        "васил Левски",                        # same page: first letter upper-cased
        "Васил левски",                        # another page: case matters after the first letter
        "https://bg.wikipedia.org/wiki/%D0%A0%D0%B8%D0%BB%D0%B0",  # Рила, percent-encoded
        "https://bg.wikipedia.org/wiki/Рила#История",               # same page, fragment dropped
        "  Черно   море  ",
        "Категория:Планини_в_България",
    ]) + "\n")
    names, skipped = titles.load(path)
    assert names == ["Васил Левски", "Васил левски", "Рила", "Черно море", "Категория:Планини в България"]
    assert skipped == []


def test_invalid_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    path = write(tmp_path, "Рила\nA|B\n{{шаблон}}\nx<y\nПирин [планина]\nhttps://example.com/wiki/X\nПирин\n")
    names, skipped = titles.load(path)
    assert names == ["Рила", "Пирин"]
    assert [number for number, _, _ in skipped] == [2, 3, 4, 5, 6]
    assert "forbidden character '|'" in skipped[0][2]
    assert "URL" in skipped[4][2]


def test_title_longer_than_255_bytes_is_skipped(tmp_path):
    names, skipped = titles.load(write(tmp_path, "Я" * 128 + "\nРила\n"))  # 256 bytes in UTF-8
    assert names == ["Рила"] and skipped[0][0] == 1


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    ("Рила\n".encode("cp1251"), "not UTF-8"),
    (b"# only comments\n\n", "no valid title"),
    (b"A|B\n[x]\n", "no valid title"),
])
def test_bad_titles_files_are_one_line_user_errors(tmp_path, content, message):
    path = tmp_path / "titles.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError) as err:
        titles.load(path)
    assert message in str(err.value) and str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_a_large_real_titles_list(fixtures, tmp_path):
    """14,218 real bg.wiktionary titles: all load, none skipped, header comments ignored."""
    source = fixtures / "wiktionary_bg_export" / "titles" / "all-verbs-references.txt"
    lines = [ln for ln in source.read_text(encoding="utf-8").splitlines() if ln.strip()
             and not ln.startswith("#")]
    names, skipped = titles.load(source)
    assert skipped == [] and len(names) == len(set(lines))
    assert names[0] == lines[0]
