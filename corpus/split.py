"""Step 6: train/valid/test by a keyed hash of the canonical URL, so a document never moves;
the order of documents in the corpus shards by a keyed hash of their id, so sources mix."""

from __future__ import annotations

import hashlib


def split_of(url: str, valid_ratio: float, test_ratio: float, seed: str) -> str:
    """The split of the document at ``url``: a uniform draw in [0, 1) from SHA-256(seed, url)."""
    digest = hashlib.sha256(f"{seed}\0{url}".encode()).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    if draw < valid_ratio:
        return "valid"
    if draw < valid_ratio + test_ratio:
        return "test"
    return "train"


def doc_id(url: str) -> str:
    """A document's stable id: the start of SHA-256 of its canonical URL."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def order_key(doc_id: str, seed: str) -> int:
    """Where a document goes in the written order: 64 bits of SHA-256(seed, id)."""
    return int.from_bytes(hashlib.sha256(f"{seed}\0{doc_id}".encode()).digest()[:8], "big")
