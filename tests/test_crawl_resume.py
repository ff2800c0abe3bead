"""A crawl stopped by ``kill -9`` or Ctrl-C and re-run with the same command: every page exactly once.

Also the done-keys files: written beside every finished shard, and all a crawl start reads.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import time
import zlib
from collections import Counter
from pathlib import Path

import pytest

from crawler.pipelines import (
    ShardWriter,
    done_keys,
    finished_shards,
    iter_records,
    keys_path,
    partial_path,
    read_keys,
    record_keys,
    recover,
    salvage,
    shard_path,
)
from crawler.render import group_members, start_time
from demo.replay.pages import synthetic_pages
from demo.replay.wiki import WikiReplay
from tests.crawl_util import crawl_config, records, scrapy_cmd, scrapy_crawl, scrapy_env
from tests.util import ROOT

PAGES = 120


def _open_shard_records(raw: Path) -> int:
    """Records in the open (partial) shards; one finished and renamed meanwhile counts 0 here
    and is counted among the stored shards at the next poll."""
    count = 0
    for path in raw.glob(".*.partial"):
        with contextlib.suppress(FileNotFoundError):
            count += len(salvage(path.read_bytes()))
    return count


def start_and_wait(config: Path, raw: Path, at_least: int, frozen_with_open_shard: bool = False
                   ) -> subprocess.Popen:
    """Start ``scrapy crawl bgwiki``; return once ``at_least`` records are on disk.

    ``frozen_with_open_shard``: return it stopped (SIGSTOP) at a moment a shard is open with records
    in it, so that a kill then certainly lands mid-shard.
    """
    proc = subprocess.Popen(scrapy_cmd("bgwiki"), cwd=ROOT, env=scrapy_env(config),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if frozen_with_open_shard:
            proc.send_signal(signal.SIGSTOP)
        stored = len(records(raw.parent.parent)) if raw.is_dir() else 0
        open_shard = _open_shard_records(raw)
        if stored + open_shard >= at_least and (open_shard or not frozen_with_open_shard):
            return proc
        if frozen_with_open_shard:
            proc.send_signal(signal.SIGCONT)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the crawl stored too little in 60 s")


def setup(tmp_path: Path, server: WikiReplay) -> tuple[Path, Path]:
    titles = tmp_path / "titles.txt"
    titles.write_text("\n".join(p.title for p in server.wiki.pages.values()) + "\n", encoding="utf-8")
    # small shards: the kill lands after several rotations, with a partial shard open
    config = crawl_config(tmp_path, server.api, titles, shard_bytes=60_000, concurrency_per_domain=2)
    return config, tmp_path / "data" / "raw" / "bgwiki"


def test_kill_9_then_rerun_loses_nothing_and_duplicates_nothing(tmp_path):
    pages = synthetic_pages(PAGES)
    with WikiReplay(pages, delay=0.02) as server:
        config, raw = setup(tmp_path, server)
        proc = start_and_wait(config, raw, at_least=25, frozen_with_open_shard=True)
        proc.kill()  # SIGKILL: no handler runs
        proc.communicate()
        assert list(raw.glob(".*.partial"))  # the kill left an open shard behind
        assert (tmp_path / "data" / "jobs" / "bgwiki" / "RUNNING").exists()
        assert server.wiki.counts["action=parse"] < PAGES
        stored_before = {r["title"] for r in records(tmp_path / "data")} | {
            json.loads(line)["title"] for path in raw.glob(".*.partial")
            for line in salvage(path.read_bytes())}
        assert len(stored_before) >= 25
        parsed_before = Counter(server.wiki.counts)

        again = scrapy_crawl(config, "bgwiki")
        parsed_again = {key.removeprefix("parse ") for key, n in server.wiki.counts.items()
                        if key.startswith("parse ") and n > parsed_before[key]}
    assert again.returncode == 0, again.stderr[-3000:]
    assert "did not stop cleanly" in again.stderr and "recovered" in again.stderr
    assert Counter(r["title"] for r in records(tmp_path / "data")) == Counter(p.title for p in pages)
    assert not list(raw.glob(".*.partial")) and len(list(raw.glob("part-*.jsonl.gz"))) > 2
    for shard in finished_shards(raw):  # written, recovered or rotated: each has its keys file
        with gzip.open(shard, "rt", encoding="utf-8") as fh:
            assert read_keys(shard) == set().union(*(record_keys(json.loads(line)) for line in fh))
    # pages stored before the kill (its open shard's, recovered, among them) were not fetched
    # again, every other page was (those in flight at the kill too); retries do not matter here
    assert parsed_again == {p.title for p in pages} - stored_before


def test_ctrl_c_then_rerun_resumes_from_the_jobdir(tmp_path):
    pages = synthetic_pages(PAGES)
    with WikiReplay(pages, delay=0.02) as server:
        config, raw = setup(tmp_path, server)
        proc = start_and_wait(config, raw, at_least=25)
        proc.send_signal(signal.SIGINT)  # one Ctrl-C: graceful stop
        _, err = proc.communicate(timeout=60)
        assert "shutdown" in err
        jobdir = tmp_path / "data" / "jobs" / "bgwiki"
        assert (jobdir / "requests.seen").exists() and not (jobdir / "RUNNING").exists()
        assert not list(raw.glob(".*.partial"))  # the open shard was finished on the way out

        again = scrapy_crawl(config, "bgwiki")
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming crawl" in again.stderr
    assert Counter(r["title"] for r in records(tmp_path / "data")) == Counter(p.title for p in pages)
    assert not jobdir.exists()  # a finished crawl drops its job state


def _browser_group(jobs: Path, spider: str, owner: int, owner_start: int | None
                   ) -> tuple[subprocess.Popen, Path, Path]:
    """A stand-in browser recorded in ``jobs/<spider>``: a process group of its own that names its
    driver folder only in its environment (TMPDIR), as chromedriver does; (it, folder, record)."""
    folder = jobs.parent / f"driver-{spider}"
    folder.mkdir(parents=True)
    (jobs / spider).mkdir(parents=True)
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True,
                            env={**os.environ, "TMPDIR": str(folder)})
    record = jobs / spider / f"browser-{proc.pid}.json"
    record.write_text(json.dumps({"pgid": proc.pid, "tmp": str(folder), "owner": owner,
                                  "owner_start": owner_start}))
    return proc, folder, record


def test_a_crawl_ends_the_browsers_another_spiders_killed_crawl_left(tmp_path):
    jobs = tmp_path / "data" / "jobs"
    gone = subprocess.Popen(["true"])
    gone.wait()  # the killed crawl: its process no longer exists
    orphan, orphan_tmp, orphan_record = _browser_group(jobs, "news", gone.pid, 1)
    live, live_tmp, live_record = _browser_group(jobs, "other", os.getpid(), start_time(os.getpid()))
    try:
        with WikiReplay(synthetic_pages(5)) as server:
            config, raw = setup(tmp_path, server)
            again = scrapy_crawl(config, "bgwiki")
        assert again.returncode == 0, again.stderr[-3000:]
        assert "browser process(es) a stopped crawl left running" in again.stderr
        assert orphan.wait(timeout=10) == -signal.SIGKILL and group_members(orphan.pid) == []
        assert not orphan_tmp.exists() and not orphan_record.exists()
        # a live crawl's browser (its owner is this test) is left alone
        assert live.poll() is None and live_tmp.exists() and live_record.exists()
        assert len(records(tmp_path / "data")) == 5
    finally:
        for proc in (orphan, live):
            proc.kill()
            proc.wait()


def test_recover_salvages_a_cut_shard_and_leaves_a_live_writers_shard_alone(tmp_path):
    live = ShardWriter(tmp_path, shard_bytes=10**9)
    lines = [(json.dumps({"url": f"u{n}", "html": "текст " * 50}, ensure_ascii=False) + "\n").encode()
             for n in range(5)]
    for line in lines:
        live.write(line)
    written = partial_path(tmp_path, 1).read_bytes()
    # a writer killed in the middle of its sixth record: the bytes on disk stop mid-stream
    partial_path(tmp_path, 7).write_bytes(written + b"\x00\x01garbage-cut-short")
    assert recover(tmp_path) == (1, 5)
    with gzip.open(shard_path(tmp_path, 7)) as fh:
        assert fh.read().splitlines(keepends=True) == lines
    assert read_keys(shard_path(tmp_path, 7)) == {f"u{n}" for n in range(5)}  # the salvaged shard's keys
    assert partial_path(tmp_path, 1).exists()  # flock held: a live writer's shard is not touched
    live.close()
    assert not partial_path(tmp_path, 1).exists()
    with gzip.open(shard_path(tmp_path, 1)) as fh:
        assert fh.read().splitlines(keepends=True) == lines


def test_a_shard_of_the_threaded_writer_cut_anywhere_salvages_to_whole_records(tmp_path):
    writer = ShardWriter(tmp_path, shard_bytes=1_000_000, threaded=True)  # blocks of 125 KB
    lines = [(json.dumps({"url": f"u{n}", "html": "текст " * (50 + n * 37 % 900)}, ensure_ascii=False) + "\n"
              ).encode() for n in range(120)]
    for line in lines[:80]:
        writer.write(line)
    partial = partial_path(tmp_path, 1)
    deadline = time.monotonic() + 60
    while not salvage(partial.read_bytes()):  # the thread writes the full blocks meanwhile
        assert time.monotonic() < deadline, "the writer thread wrote no block in 60 s"
        time.sleep(0.01)
    live = salvage(partial.read_bytes())
    assert live == lines[:len(live)] and len(live) < 80  # whole records, in order; the last block still open
    for line in lines[80:]:
        writer.write(line)
    writer.close()
    data = shard_path(tmp_path, 1).read_bytes()
    assert salvage(data) == lines
    found = []
    for cut in sorted({*range(1, len(data), len(data) // 37), len(data) - 9, len(data) - 1}):
        salvaged = salvage(data[:cut])
        assert salvaged == lines[:len(salvaged)], cut
        assert len(salvaged) >= len(found[-1] if found else [])
        found.append(salvaged)
    assert 0 < len(found[len(found) // 2]) < len(lines)


def _write_shards(folder: Path, count: int) -> set[str]:
    """``count`` pages through a ShardWriter rotating every few records; returns their keys."""
    writer = ShardWriter(folder, shard_bytes=3_000)
    keys = set()
    for n in range(count):
        # canonical URLs as pages state them: Cyrillic, and a stray line separator or CR kept
        record = {"url": f"http://127.0.0.1/news/{n}.html?utm_source=rss",
                  "canonical_url": f"http://127.0.0.1/новини/{n}\u2028\r.html", "html": "новина " * 100}
        writer.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
        keys |= record_keys(record)
    writer.close()
    return keys


def test_a_crawl_start_reads_the_keys_files_not_the_shards(tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    keys = _write_shards(folder, 20)
    shards = finished_shards(folder)
    assert len(shards) > 3 and all(keys_path(s).is_file() for s in shards)
    # damage every shard's compressed records in place (same size): only the keys files can tell
    for shard in shards:
        data = bytearray(shard.read_bytes())
        data[20:-20] = bytes(len(data) - 40)
        shard.write_bytes(bytes(data))
    with pytest.raises((OSError, EOFError, zlib.error)):  # the records cannot be read any more
        list(iter_records(folder))
    assert done_keys(folder) == keys


def test_missing_or_stale_keys_files_are_rebuilt_once_from_the_shards(tmp_path):
    folder = tmp_path / "bgwiki"
    folder.mkdir()
    keys = _write_shards(folder, 12)
    first, second, *_ = finished_shards(folder)
    expected = read_keys(first)
    keys_path(first).unlink()  # a shard written before keys files existed
    keys_path(second).write_text("# bg-gpt2 done-keys v1 part-00002.jsonl.gz 1\nhttp://other\n")  # stale
    assert done_keys(folder) == keys
    assert read_keys(first) == expected and read_keys(second) is not None
    assert "http://other" not in read_keys(second)


def test_a_damaged_shard_without_keys_file_gives_the_keys_of_its_readable_records(tmp_path):
    folder = tmp_path / "news"
    folder.mkdir()
    writer = ShardWriter(folder, shard_bytes=10**9)
    for n in range(6):
        writer.write((json.dumps({"url": f"u{n}", "html": "текст " * 300}, ensure_ascii=False) + "\n").encode())
    writer.close()
    (shard,) = finished_shards(folder)
    keys_path(shard).unlink()
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) * 2 // 3])  # cut short: no gzip trailer, last records gone
    found = done_keys(folder)
    assert found and found < {f"u{n}" for n in range(6)}
    assert read_keys(shard) == found
