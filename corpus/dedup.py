"""Step 5: drop repeated URLs, exact duplicates and near-duplicates.

Workers compute each document's keys (``keys``: SHA-256 of the text and a MinHash of its
word shingles); ``Deduper`` in the parent sees documents in the run's canonical order (raw
shards sorted, records in file order), so the first copy is always the one kept, whatever ``-j``
is. Near-duplicate candidates come from MinHash LSH (``bands`` × ``rows`` of the signature, the
most rows that still find a pair at the threshold with probability ``RECALL``) and are confirmed
by their estimated Jaccard similarity. The index is numpy arrays, not Python objects: a sorted
array of 64-bit band hashes with the document numbers, a small dict of recent inserts merged
into it now and then, and the kept signatures in uint32 blocks: 12 bytes a band plus 4 a
permutation, about 0.7 KB a kept document at 128 permutations (1.1 KB of RSS measured).
"""

from __future__ import annotations

import functools
import hashlib
import zlib

import numpy as np
from datasketch import MinHash

from corpus.document import lower_words

SCHEME = "affine32"  # datasketch hashing scheme: 32-bit values, fixed seed, inputs mixed (fmix)
RECALL = 0.9  # chance that a pair exactly at the threshold shares a band (more above it)
MERGE_MIN = 1 << 16  # recent band hashes held in a dict before they join the sorted array
BLOCK = 1 << 14  # kept signatures a block


def shingles(text: str, size: int, words: list[str] | None = None) -> set[bytes]:
    """Lower-cased word ``size``-grams (the whole text as one shingle when shorter); ``words``:
    the text's ``lower_words`` when the caller has them already."""
    words = lower_words(text) if words is None else words
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)}


def keys(text: str, num_perm: int, shingle: int,
         words: list[str] | None = None) -> tuple[bytes, bytes]:
    """(exact key, MinHash signature as uint32 bytes) of a normalised text (``words``: as for
    ``shingles``)."""
    exact = hashlib.sha256(text.encode()).digest()[:16]  # 128 bits: collisions are not a concern
    mh = MinHash(num_perm=num_perm, scheme=SCHEME, hashfunc=zlib.crc32)
    mh.update_batch(sorted(shingles(text, shingle, words)))
    return exact, mh.hashvalues.astype(np.uint32).tobytes()


def bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band): the most rows whose candidate chance at ``threshold`` is >= RECALL."""
    for rows in range(num_perm, 0, -1):
        count = num_perm // rows
        if 1 - (1 - threshold ** rows) ** count >= RECALL:
            return count, rows
    return num_perm, 1


@functools.cache
def _multipliers(count: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261129)
    return (rng.integers(1, 2**63, size=rows, dtype=np.uint64) | np.uint64(1),
            rng.integers(1, 2**63, size=count, dtype=np.uint64))


def band_hashes(values: np.ndarray, count: int, rows: int) -> np.ndarray:
    """One 64-bit hash per band of a signature (the band number mixed in)."""
    mult, offset = _multipliers(count, rows)
    bands_ = values[:count * rows].astype(np.uint64).reshape(count, rows)
    h = (bands_ * mult).sum(axis=1, dtype=np.uint64) + offset
    return h ^ (h >> np.uint64(29))


class BandIndex:
    """Band hash -> numbers of the documents that have it: a sorted array plus recent inserts.

    A recent hash maps to one number, or to a list of them in the rare case of a shared bucket.
    """

    def __init__(self) -> None:
        self.hashes = np.empty(0, dtype=np.uint64)
        self.numbers = np.empty(0, dtype=np.int32)
        self.recent: dict[int, int | list[int]] = {}

    def query(self, hashes: np.ndarray) -> set[int]:
        found: set[int] = set()
        lo = np.searchsorted(self.hashes, hashes, "left").tolist()
        hi = np.searchsorted(self.hashes, hashes, "right").tolist()
        for start, end in zip(lo, hi, strict=True):
            if end > start:
                found.update(self.numbers[start:end].tolist())
        recent = self.recent
        for h in hashes.tolist():
            numbers = recent.get(h)
            if numbers is not None:
                found.update(numbers if isinstance(numbers, list) else (numbers,))
        return found

    def add(self, hashes: np.ndarray, number: int) -> None:
        recent = self.recent
        for h in hashes.tolist():
            had = recent.get(h)
            if had is None:
                recent[h] = number
            elif isinstance(had, list):
                had.append(number)
            else:
                recent[h] = [had, number]
        if len(recent) >= max(MERGE_MIN, len(self.hashes) // 8):
            self._merge()

    def _merge(self) -> None:
        """Insert the recent hashes into the sorted arrays (no full re-sort, little extra memory)."""
        pairs = sorted((h, n) for h, numbers in self.recent.items()
                       for n in (numbers if isinstance(numbers, list) else (numbers,)))
        new_hashes = np.fromiter((h for h, _ in pairs), np.uint64, len(pairs))
        new_numbers = np.fromiter((n for _, n in pairs), np.int32, len(pairs))
        at = np.searchsorted(self.hashes, new_hashes, "right") + np.arange(len(pairs))
        old = np.ones(len(self.hashes) + len(pairs), dtype=bool)
        old[at] = False
        hashes = np.empty(len(old), dtype=np.uint64)
        hashes[at], hashes[old] = new_hashes, self.hashes
        self.hashes = hashes
        numbers = np.empty(len(old), dtype=np.int32)
        numbers[at], numbers[old] = new_numbers, self.numbers
        self.numbers = numbers
        self.recent.clear()

    @property
    def nbytes(self) -> int:
        """Bytes of the sorted arrays (recent inserts, at most an eighth more, not counted)."""
        return self.hashes.nbytes + self.numbers.nbytes


class Deduper:
    """Remembers what was kept; ``check`` says why a new document is a duplicate, or None."""

    def __init__(self, threshold: float, num_perm: int):
        self.threshold = threshold
        self.bands, self.rows = bands(threshold, num_perm)
        self.urls: set[int] = set()     # 64-bit hashes of kept URLs
        self.exact: set[int] = set()    # exact keys of kept texts
        self.index = BandIndex()
        self.num_perm = num_perm
        self.blocks: list[np.ndarray] = []  # kept signatures, BLOCK a block (never copied)
        self.kept = 0

    def check(self, url: str, exact: bytes, signature: bytes) -> str | None:
        """None (and remember the document) when new, else the reason it is a duplicate."""
        url_key = int.from_bytes(hashlib.blake2b(url.encode(), digest_size=8).digest(), "big")
        exact_key = int.from_bytes(exact, "big")
        if url_key in self.urls:
            return "same URL"
        if exact_key in self.exact:
            return "exact duplicate"
        values = np.frombuffer(signature, dtype=np.uint32)
        hashes = band_hashes(values, self.bands, self.rows)
        candidates = self.index.query(hashes)
        for number in candidates:
            if np.mean(self.blocks[number // BLOCK][number % BLOCK] == values) >= self.threshold:
                return "near duplicate"
        self.urls.add(url_key)
        self.exact.add(exact_key)
        self.index.add(hashes, self.kept)
        if self.kept % BLOCK == 0:
            self.blocks.append(np.empty((BLOCK, self.num_perm), dtype=np.uint32))
        self.blocks[-1][self.kept % BLOCK] = values
        self.kept += 1
        return None

    @property
    def index_bytes(self) -> int:
        """Bytes of the LSH index and the kept signatures (the part that grows with the corpus)."""
        return self.index.nbytes + self.kept * self.num_perm * 4
