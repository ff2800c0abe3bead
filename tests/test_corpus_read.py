"""Step 1: raw shards are streamed; corrupt input is counted with its place and skipped."""

from __future__ import annotations

import gzip
import json

from corpus.read import raw_shards, read_shard, write_shard
from corpus.stats import Stats


def _record(n: int) -> dict:
    return {"url": f"https://example.bg/{n}", "source": "site", "html": f"<p>Текст {n}</p>"}


def test_reads_records_in_order_and_counts_html(tmp_path):
    path = tmp_path / "site" / "part-00000.jsonl.gz"
    write_shard(path, [_record(n) for n in range(3)])
    stats = Stats()
    assert [r["url"] for r in read_shard(path, stats)] == [f"https://example.bg/{n}" for n in range(3)]
    assert stats.docs["read", "in (HTML characters)"] == 3
    assert stats.chars["read", "in (HTML characters)"] == sum(len(_record(n)["html"]) for n in range(3))


def test_bad_lines_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "site" / "part-00000.jsonl.gz"
    lines = [json.dumps(_record(0)), "{not json", json.dumps({"url": "x"}),
             json.dumps({**_record(3), "url": ""}), json.dumps(_record(4))]
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    stats = Stats()
    got = list(read_shard(path, stats, "site/part-00000.jsonl.gz"))
    assert [r["url"] for r in got] == ["https://example.bg/0", "https://example.bg/4"]
    assert stats.docs["read", "skipped: bad JSON line"] == 1
    assert stats.docs["read", "skipped: record without html"] == 1
    assert stats.docs["read", "skipped: record without url"] == 1  # else every one would share id
    assert stats.problems[0].startswith("site/part-00000.jsonl.gz:2: ")
    assert stats.problems[1].startswith("site/part-00000.jsonl.gz:3: ")
    assert stats.problems[2].startswith("site/part-00000.jsonl.gz:4: ")


def test_truncated_gzip_keeps_what_was_readable(tmp_path):
    path = tmp_path / "site" / "part-00000.jsonl.gz"
    write_shard(path, [_record(n) for n in range(200)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    stats = Stats()
    got = list(read_shard(path, stats))
    assert 0 < len(got) < 200
    assert stats.docs["read", "skipped: corrupt file (rest of it)"] == 1
    assert stats.problems[0].startswith(f"{path}:{len(got) + 1}: ")


def test_not_gzip_at_all_is_one_problem(tmp_path):
    path = tmp_path / "site" / "part-00001.jsonl.gz"
    path.parent.mkdir()
    path.write_bytes(b"this is not gzip data")
    stats = Stats()
    assert list(read_shard(path, stats)) == []
    assert stats.docs["read", "skipped: corrupt file (rest of it)"] == 1


def test_shard_listing_is_sorted_and_skips_temp_files(tmp_path):
    for name in ("b/part-00001.jsonl.gz", "a/part-00000.jsonl.gz", "b/part-00000.jsonl.gz",
                 "b/.part-00002.jsonl.gz.tmp-1-ab.jsonl.gz", "a/notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    got = [p.relative_to(tmp_path).as_posix() for p in raw_shards(tmp_path)]
    assert got == ["a/part-00000.jsonl.gz", "b/part-00000.jsonl.gz", "b/part-00001.jsonl.gz"]
    assert raw_shards(tmp_path / "missing") == []
