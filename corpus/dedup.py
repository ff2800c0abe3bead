"""Step 5: drop repeated URLs, exact duplicates and near-duplicates.

Workers compute each document's keys (``keys``: SHA-256 of the text and a MinHash of its
word shingles); ``Deduper`` in the parent sees documents in the run's stable order (raw shards
sorted, records in file order), so the first copy is always the one kept, whatever ``-j`` is.
Near-duplicate candidates from MinHash LSH are confirmed by their estimated Jaccard similarity.
"""

from __future__ import annotations

import hashlib
import zlib

import numpy as np
import regex
from datasketch import MinHash, MinHashLSH

_WORD = regex.compile(r"\w+")
SCHEME = "affine32"  # datasketch hashing scheme: 32-bit values, fixed seed, inputs mixed (fmix)
# Candidates are confirmed by their estimated similarity, so LSH bands lean to recall.
LSH_WEIGHTS = (0.05, 0.95)  # (false positive, false negative) weights for choosing the bands


def shingles(text: str, size: int) -> set[bytes]:
    """Lower-cased word ``size``-grams (the whole text as one shingle when shorter)."""
    words = _WORD.findall(text.lower())
    if len(words) <= size:
        return {" ".join(words).encode()}
    return {" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)}


def keys(text: str, num_perm: int, shingle: int) -> tuple[bytes, bytes]:
    """(exact key, MinHash signature as uint32 bytes) of a normalised text."""
    exact = hashlib.sha256(text.encode()).digest()[:16]  # 128 bits: collisions are not a concern
    mh = MinHash(num_perm=num_perm, scheme=SCHEME, hashfunc=zlib.crc32)
    mh.update_batch(sorted(shingles(text, shingle)))
    return exact, mh.hashvalues.astype(np.uint32).tobytes()


class Deduper:
    """Remembers what was kept; ``check`` says why a new document is a duplicate, or None."""

    def __init__(self, threshold: float, num_perm: int):
        self.threshold = threshold
        self.num_perm = num_perm
        self.urls: set[str] = set()
        self.exact: set[bytes] = set()
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=LSH_WEIGHTS)
        self.signatures: dict[str, np.ndarray] = {}

    def check(self, doc_id: str, url: str, exact: bytes, signature: bytes) -> str | None:
        """None (and remember the document) when new, else the reason it is a duplicate."""
        if url in self.urls:
            return "same URL"
        if exact in self.exact:
            return "exact duplicate"
        values = np.frombuffer(signature, dtype=np.uint32)
        for other in sorted(self.lsh.query(self._minhash(values))):
            if np.mean(values == self.signatures[other]) >= self.threshold:
                return "near duplicate"
        self.urls.add(url)
        self.exact.add(exact)
        self.lsh.insert(doc_id, self._minhash(values))
        self.signatures[doc_id] = values
        return None

    def _minhash(self, values: np.ndarray) -> MinHash:
        return MinHash(num_perm=self.num_perm, hashvalues=values, scheme=SCHEME, hashfunc=zlib.crc32)
