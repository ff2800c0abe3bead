"""Step 6: train/valid/test by a keyed hash of the canonical URL, so a document never moves."""

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
