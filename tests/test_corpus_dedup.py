"""Step 5: exact and near-duplicates dropped, distinct documents kept, first copy wins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from corpus import dedup

PERM, SHINGLE, THRESHOLD = 128, 5, 0.8
ROOT = Path(__file__).resolve().parent.parent


def _run(texts: list[str]) -> list[str | None]:
    deduper = dedup.Deduper(THRESHOLD, PERM)
    out = []
    for n, text in enumerate(texts):
        exact, signature = dedup.keys(text, PERM, SHINGLE)
        out.append(deduper.check(f"https://x.bg/{n}", exact, signature))
    return out


def test_exact_near_and_url_duplicates():
    base = " ".join(f"Изречение номер {i} разказва нещо различно за град Пловдив." for i in range(40))
    near = base.replace("номер 7 ", "номер седем ")
    other = " ".join(f"Съвсем друг текст {i} описва река Дунав и нейните притоци." for i in range(40))
    assert _run([base, base, near, other]) == [None, "exact duplicate", "near duplicate", None]
    assert dedup.keys(base, PERM, SHINGLE) == dedup.keys(base, PERM, SHINGLE)
    deduper = dedup.Deduper(THRESHOLD, PERM)
    exact, signature = dedup.keys(base, PERM, SHINGLE)
    assert deduper.check("https://x.bg/a", exact, signature) is None
    exact2, signature2 = dedup.keys(other, PERM, SHINGLE)
    assert deduper.check("https://x.bg/a", exact2, signature2) == "same URL"


def test_signature_equal_in_a_fresh_interpreter():
    code = ("from corpus import dedup; print(dedup.keys('Едно и също изречение в друг процес.', "
            f"{PERM}, {SHINGLE})[1].hex())")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""}, cwd=ROOT)
    assert fresh.stdout.strip() == dedup.keys("Едно и също изречение в друг процес.", PERM,
                                              SHINGLE)[1].hex()


@pytest.fixture(scope="module")
def fake_news(fixtures) -> list[str]:
    path = fixtures / "bg_text/hack_the_fake_news/FN_Validation_Set.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    texts = [row["Content"].strip() for row in rows]
    return [t for t in texts if len(t) >= 300]


def _jaccard_matrix(texts: list[str]) -> np.ndarray:
    """Exact Jaccard similarity of every pair of shingle sets."""
    vocab: dict[bytes, int] = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for sh in dedup.shingles(text, SHINGLE):
            rows.append(i)
            cols.append(vocab.setdefault(sh, len(vocab)))
    m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts), len(vocab)))
    inter = (m @ m.T).toarray()
    size = np.diag(inter)
    return inter / (size[:, None] + size[None, :] - inter)


def test_real_near_duplicates_collapsed_and_distinct_articles_kept(fake_news):
    verdicts = _run(fake_news)
    sim = _jaccard_matrix(fake_news)
    np.fill_diagonal(sim, 0)
    kept = np.array([v is None for v in verdicts])
    # the fixture really has near-duplicates that are not exact copies
    near_pairs = np.argwhere(np.triu((sim >= 0.9) & (sim < 1.0)))
    assert len(near_pairs) >= 20
    # no two kept documents are near-duplicates of each other
    assert sim[np.ix_(kept, kept)].max() < 0.9
    # every dropped document resembles an earlier kept one: distinct articles were not dropped
    for i in np.flatnonzero(~kept):
        earlier_kept = kept[:i]
        assert sim[i, :i][earlier_kept].max() >= 0.5, (i, verdicts[i])
    assert "near duplicate" in verdicts and "exact duplicate" in verdicts
    assert kept.sum() > len(fake_news) // 2


def test_first_copy_in_run_order_is_the_one_kept():
    base = " ".join(f"Изречение номер {i} разказва нещо различно за град Пловдив." for i in range(40))
    near = base.replace("номер 7 ", "номер седем ")
    assert _run([near, base]) == [None, "near duplicate"]
    assert _run([base, near]) == [None, "near duplicate"]


def test_bands_keep_recall_at_the_threshold():
    assert dedup.bands(0.8, 128) == (16, 8)  # what datasketch's MinHashLSH chose for these weights
    for threshold in (0.5, 0.7, 0.8, 0.9):
        count, rows = dedup.bands(threshold, 128)
        assert count * rows <= 128
        assert 1 - (1 - threshold ** rows) ** count >= dedup.RECALL
        # one row more per band would lose the recall: the fewest bands that keep it
        if rows < 128:
            more = 128 // (rows + 1)
            assert 1 - (1 - threshold ** (rows + 1)) ** more < dedup.RECALL


def test_index_is_compact_and_finds_pairs_across_merges(monkeypatch):
    """Synthetic signatures: a planted near-copy of an early document is found after merges."""
    monkeypatch.setattr(dedup, "MERGE_MIN", 512)
    rng = np.random.default_rng(0)
    signatures = rng.integers(0, 2**32, size=(6000, PERM), dtype=np.uint32)
    deduper = dedup.Deduper(THRESHOLD, PERM)
    for n, values in enumerate(signatures):
        assert deduper.check(f"https://x.bg/{n}", n.to_bytes(16, "big"), values.tobytes()) is None
    assert len(deduper.index.hashes) >= 5000 * deduper.bands  # most of it merged into the arrays
    assert (deduper.index.hashes[1:] >= deduper.index.hashes[:-1]).all()
    near = signatures[3].copy()
    near[:10] += 1  # 118 of 128 values equal: estimated similarity 0.92
    assert deduper.check("https://x.bg/new", b"new".ljust(16), near.tobytes()) == "near duplicate"
    far = signatures[3].copy()
    far[::3] += 1  # 85 of 128 equal: 0.66, below the threshold
    assert deduper.check("https://x.bg/far", b"far".ljust(16), far.tobytes()) is None
    per_doc = deduper.index_bytes / deduper.kept
    assert per_doc <= PERM * 4 + deduper.bands * 12  # the signature plus 12 bytes a band


def test_band_index_keeps_every_document_of_a_shared_bucket(monkeypatch):
    monkeypatch.setattr(dedup, "MERGE_MIN", 4)
    index = dedup.BandIndex()
    for number in range(3):  # band hash 7 shared by all three, one of its own each
        index.add(np.array([7, 100 + number], dtype=np.uint64), number)
        assert index.query(np.array([7], dtype=np.uint64)) == set(range(number + 1))
    assert not index.recent and index.hashes.tolist() == [7, 7, 7, 100, 101, 102]  # merged at 4
    index.add(np.array([7], dtype=np.uint64), 3)
    assert index.query(np.array([7, 102], dtype=np.uint64)) == {0, 1, 2, 3}
