"""The generated Enterprise dump and its mirror in Wikimedia's real shape: member names and size
cap, the tar's end (Go's ``archive/tar``: exactly 1,024 zero bytes), one gzip stream, the licence,
repeated revisions in any order, delete records, STATS files and run folders."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
import urllib.request
import zlib
from collections import defaultdict

from demo.replay.core import ReplayServer
from demo.replay.dump import DumpMirror, dump_articles, write_dump
from demo.replay.pages import synthetic_pages
from tests.util import run_module


def members(data: bytes) -> tuple[list[tarfile.TarInfo], bytes]:
    tar_bytes = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        return tar.getmembers(), tar_bytes


def test_members_are_named_and_capped_and_the_archive_ends_as_gos(tmp_path):
    cap = 60_000
    dump = write_dump(tmp_path / "dump.tar.gz", dump_articles(synthetic_pages(60, paragraphs=4)), member_bytes=cap)
    data = dump.read_bytes()
    infos, tar_bytes = members(data)
    assert [i.name for i in infos] == [f"bgwiki_namespace_0_{n}.ndjson" for n in range(len(infos))]
    assert len(infos) > 3 and all(i.size <= cap for i in infos)
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        longest = max(len(line) for info in infos for line in tar.extractfile(info))
    assert all(i.size + longest > cap for i in infos[:-1])  # filled until the next line would not fit
    last = infos[-1]
    end = last.offset_data + (last.size + 511) // 512 * 512
    assert len(tar_bytes) == end + 1024 and tar_bytes[end:] == bytes(1024)  # no padding to a 10 KiB record
    stream = zlib.decompressobj(wbits=31)
    assert stream.decompress(data) == tar_bytes and stream.eof and stream.unused_data == b""  # one gzip stream
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        first = json.loads(tar.extractfile(infos[0]).readline())
    assert first["license"] == [{"name": "Creative Commons Attribution-ShareAlike License 4.0",
                                 "identifier": "CC-BY-SA-4.0",
                                 "url": "https://creativecommons.org/licenses/by-sa/4.0/"}]
    assert first["event"]["type"] == "update"


def test_repeated_revisions_come_in_any_order_and_moves_leave_delete_records():
    pages = synthetic_pages(400, paragraphs=3)
    stream = list(dump_articles(pages, repeats=0.1, moves=0.05))
    revisions = defaultdict(list)
    deletes = [a for a in stream if a.get("event", {}).get("type") == "delete"]
    for a in stream:
        if a not in deletes:
            revisions[a["name"]].append(a["version"]["identifier"])
    assert set(revisions) == {p.title for p in pages}
    repeated = {name: revs for name, revs in revisions.items() if len(revs) > 1}
    assert 20 < len(repeated) < 70 and all(len(set(revs)) == 2 for revs in repeated.values())
    orders = {revs[0] > revs[1] for revs in repeated.values()}
    assert orders == {True, False}  # the newest first for some pages, last for others
    positions = {a["name"]: n for n, a in enumerate(stream)}
    apart = [positions[name] - min(n for n, a in enumerate(stream) if a["name"] == name) for name in repeated]
    assert max(apart) > 50  # copies some way off, not side by side
    assert 5 < len(deletes) < 40 and all("article_body" not in d for d in deletes)
    assert not {d["name"] for d in deletes} & set(revisions)


def test_the_mirror_serves_run_folders_stats_files_and_an_unfinished_run(tmp_path):
    data = write_dump(tmp_path / "dump.tar.gz", dump_articles(synthetic_pages(5))).read_bytes()
    site = DumpMirror({}, dates=["20261201"])  # a run folder whose files are not there yet
    site.publish("20261001", b"older dump")
    name = site.publish("20261101", data)
    with ReplayServer(site) as server:
        with urllib.request.urlopen(server.url(DumpMirror.prefix)) as response:
            listing = response.read().decode()
        with urllib.request.urlopen(server.url(DumpMirror.prefix + name.replace("HTML.json.tar.gz", "STATS.json"))
                                    ) as response:
            stats = json.loads(response.read())
    assert re.findall(r'href="(\d{8})/"', listing) == ["20261001", "20261101", "20261201"]
    assert name == "20261101/bgwiki-NS0-20261101-ENTERPRISE-HTML.json.tar.gz"
    assert stats["wiki"] == "bgwiki" and stats["md5sum"] == hashlib.md5(data).hexdigest() and stats["date_modified"]


def test_the_generator_command_writes_the_real_shape(tmp_path):
    out = tmp_path / "bgwiki-demo.json.tar.gz"
    done = run_module("demo.replay.dump", "--pages", "300", "--paragraphs", "2", str(out), timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    infos, tar_bytes = members(out.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        lines = [json.loads(line) for info in infos for line in tar.extractfile(info)]
    assert len({a["name"] for a in lines if a["event"]["type"] == "update"}) == 300
    assert len(lines) > 300 and any(a["event"]["type"] == "delete" for a in lines)
    stats = json.loads((tmp_path / "bgwiki-NS0-20261101-ENTERPRISE-STATS.json").read_text())
    assert stats["md5sum"] == hashlib.md5(out.read_bytes()).hexdigest() and stats["wiki"] == "bgwiki"
    named = tmp_path / "bgwiki-NS0-20261201-ENTERPRISE-HTML.json.tar.gz"  # the run date in the name
    assert run_module("demo.replay.dump", "--pages", "2", str(named), timeout=60).returncode == 0
    assert json.loads((tmp_path / "bgwiki-NS0-20261201-ENTERPRISE-STATS.json").read_text())["md5sum"] == \
        hashlib.md5(named.read_bytes()).hexdigest()
    bad = run_module("demo.replay.dump", "--repeats", "2", str(out), timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: --repeats and --moves")
