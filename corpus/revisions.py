"""Each wiki page's newest revision: the one document of a page stored in several revisions.

A page is stored again when a newer dump (or the API crawl) has a newer revision of it
(``crawler.wikidump``); the raw shards keep every stored revision, and the corpus keeps the newest.
Each shard's worker notes the highest ``revid`` of every page it reads (``note``) in its cache
entry's header; the build merges those headers (``newest``: header lines only, so only changed
raw shards are processed again) and drops a document whose page has a newer revision elsewhere
(``older``), counted as ``UPDATED``. Pages without a revision id (news) are never dropped here.
"""

from __future__ import annotations

from collections.abc import Iterable

UPDATED = "updated: older revision dropped"


def note(revids: dict[str, int], url: str, revid: object) -> None:
    """Remember ``revid`` for the page at ``url`` when it is the highest seen."""
    if isinstance(revid, int) and not isinstance(revid, bool) and revid > revids.get(url, -1):
        revids[url] = revid


def newest(headers: Iterable[dict]) -> dict[str, int]:
    """Page URL -> its highest revision id in the whole raw data, from the cache entries'
    headers (an unreadable entry's, ``{}``, adds nothing)."""
    revids: dict[str, int] = {}
    for header in headers:
        for url, revid in (header.get("revisions") or {}).items():
            note(revids, url, revid)
    return revids


def older(doc: dict, revids: dict[str, int]) -> bool:
    """Whether ``doc`` is an older revision of a page that has a newer one in the raw data."""
    revid = doc.get("revid")
    return isinstance(revid, int) and revid < revids.get(doc["url"], revid)
