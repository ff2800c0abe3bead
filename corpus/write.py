"""Step 7: corpus shards, ``docs.jsonl``, ``manifest.json`` and ``ATTRIBUTION.md``; and the
reader of ``manifest.json`` for the stages after (``read_manifest``, ``fingerprints``).

Everything is written into the (temporary) output folder it is given; nothing carries a time
or an absolute path, so the same raw data always gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import IO

from common import markdown
from common.atomic import read_record
from common.errors import UserError
from common.formats import ATTRIBUTION, DOC_END, SPLITS
from corpus.report import LengthHistogram


class SplitWriter:
    """Appends documents to ``<split>/shard-NNNNN.txt`` files of at most ``shard_bytes`` each."""

    def __init__(self, out: Path, split: str, shard_bytes: int):
        self.folder = out / split
        self.folder.mkdir(parents=True, exist_ok=True)  # there even when the split stays empty
        self.split = split
        self.shard_bytes = shard_bytes
        self.shards: list[dict] = []
        self._fh: IO[bytes] | None = None
        self._hash = hashlib.sha256()

    def add(self, text: str) -> str:
        """Write one document; return its shard's path relative to the output folder."""
        data = (text + DOC_END).encode("utf-8")
        if self._fh is None or (self.shards[-1]["bytes"] and
                                self.shards[-1]["bytes"] + len(data) > self.shard_bytes):
            self._open()
        self._fh.write(data)
        self._hash.update(data)
        shard = self.shards[-1]
        shard["documents"] += 1
        shard["characters"] += len(text)
        shard["bytes"] += len(data)
        return shard["path"]

    def _open(self) -> None:
        self._finish()
        path = f"{self.split}/shard-{len(self.shards):05d}.txt"
        self.shards.append({"path": path, "documents": 0, "characters": 0, "bytes": 0})
        self._fh = open(self.folder.parent / path, "wb")  # noqa: SIM115 - closed in _finish
        self._hash = hashlib.sha256()

    def _finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self.shards[-1]["sha256"] = self._hash.hexdigest()
            self._fh = None

    def close(self) -> list[dict]:
        """Close the open shard; return the manifest entries of this split's shards."""
        self._finish()
        return self.shards


class CorpusWriter:
    """The whole output: one SplitWriter per split plus the per-document index."""

    def __init__(self, out: Path, shard_bytes: int):
        self.out = out
        self.splits = {split: SplitWriter(out, split, shard_bytes) for split in SPLITS}
        self.index = open(out / "docs.jsonl", "w", encoding="utf-8")  # noqa: SIM115
        self.sources: dict[tuple[str, str], Counter] = {}
        self.lengths = LengthHistogram()

    def add(self, doc: dict, split: str) -> None:
        """Write ``doc`` (id, text, url, title, source, licence) to ``split``."""
        shard = self.splits[split].add(doc["text"])
        entry = {"id": doc["id"], "split": split, "shard": shard, "url": doc["url"],
                 "title": doc["title"], "source": doc["source"], "license": doc["licence"],
                 "chars": len(doc["text"])}
        self.index.write(json.dumps(entry, ensure_ascii=False) + "\n")
        tally = self.sources.setdefault((doc["source"], doc["licence"]), Counter())
        tally["documents"] += 1
        tally["characters"] += len(doc["text"])
        self.lengths.add(len(doc["text"]))

    def close(self, settings: dict, measured: dict | None = None) -> dict:
        """Finish every file; write manifest.json (with ``measured`` figures of the build, e.g.
        the dedup index's bytes) and ATTRIBUTION.md; return the manifest."""
        self.index.close()
        manifest = {"format": {"separator_line": DOC_END.strip("\n"), "doc_end": DOC_END},
                    "settings": settings, **(measured or {}), "splits": {}}
        for split, writer in self.splits.items():
            shards = writer.close()
            manifest["splits"][split] = {
                "documents": sum(s["documents"] for s in shards),
                "characters": sum(s["characters"] for s in shards),
                "bytes": sum(s["bytes"] for s in shards),
                "shards": shards,
            }
        (self.out / "manifest.json").write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        (self.out / ATTRIBUTION).write_text(attribution(self.sources), encoding="utf-8")
        return manifest


def attribution(sources: dict[tuple[str, str], Counter]) -> str:
    """ATTRIBUTION.md: every source with its licence and how much of the corpus it gave."""
    lines = [
        "# Sources and licences of this corpus", "",
        "Every document's URL, title, source and licence is listed in `docs.jsonl`. The text was",
        "extracted from the pages and cleaned (boilerplate removed, Unicode normalised, duplicates",
        "dropped); it is a modified version of the original.", "",
        *markdown.table(["source", "licence", "documents", "characters"],
                        [[source, license_, tally["documents"], tally["characters"]]
                         for (source, license_), tally in sorted(sources.items())], right=(2, 3)),
    ]
    if any(source == "bgwiki" for source, _ in sources):
        lines += ["", "Wikipedia articles: © their contributors, licensed under Creative Commons",
                  "Attribution-ShareAlike (https://creativecommons.org/licenses/by-sa/4.0/); the",
                  "contributors are listed in each article's history at its URL in `docs.jsonl`.",
                  "Works made from this text must credit them and keep the licence."]
    news = [(s, lic) for s, lic in sources if s != "bgwiki"]
    if news:
        lines += ["", "News sites: copyright their publishers; collected for research use. Check",
                  "each publisher's terms before sharing this text or models trained on it."]
    return "\n".join(lines) + "\n"


def corpus_shards(corpus: Path, split: str) -> list[Path]:
    """The corpus shards of one split, in order."""
    return sorted((corpus / split).glob("shard-*.txt"))


def read_manifest(corpus: Path) -> tuple[dict, int]:
    """The corpus's ``manifest.json`` and its document count, checked against the shard files on
    disk (names, sizes)."""
    path = corpus / "manifest.json"
    manifest = read_record(path)
    if not manifest:
        raise UserError(f"{path}: missing or unreadable (run `make corpus`)")
    try:
        listed = {s["path"]: (s["bytes"], s["sha256"])
                  for split in SPLITS for s in manifest["splits"][split]["shards"]}
        documents = sum(int(manifest["splits"][split]["documents"]) for split in SPLITS)
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: malformed ({type(exc).__name__}: {exc}); "
                        "re-run `make corpus`") from None
    on_disk = {p.relative_to(corpus).as_posix(): p.stat().st_size
               for split in SPLITS for p in corpus_shards(corpus, split)}
    for name in sorted(set(listed) ^ set(on_disk)):
        where = "listed in manifest.json but missing" if name in listed else "not in manifest.json"
        raise UserError(f"{corpus / name}: {where}; re-run `make corpus`")
    for name, size in on_disk.items():
        if size != listed[name][0]:
            raise UserError(f"{corpus / name}: {size} bytes, manifest.json says {listed[name][0]} "
                            "(changed after the build); re-run `make corpus`")
    return manifest, documents


def fingerprints(manifest: dict) -> dict[str, str]:
    """sha256 over the names and manifest sha256 of each split's shards, and of all ("corpus")."""
    out = {}
    for split in SPLITS:
        digest = hashlib.sha256()
        for shard in sorted(manifest["splits"][split]["shards"], key=lambda s: s["path"]):
            digest.update(f"{Path(shard['path']).name}:{shard['sha256']}\n".encode())
        out[split] = digest.hexdigest()
    out["corpus"] = hashlib.sha256("".join(out[s] for s in SPLITS).encode()).hexdigest()
    return out
