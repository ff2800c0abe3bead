"""The dump's runs as dumps.wikimedia.org serves them: the STATS md5 checked before the import,
room on disk checked before the first byte, an older run's unfinished download removed, an
offline re-run, and the dump row of the sources preflight (``crawler.wikidump.preflight``).

The disk check is tested with the real free space and ``crawl.bgwiki.dump_keep_free`` (the
headroom to leave) set beyond it, or, measured in-process just before the check, set so that a
few megabytes decide: nothing needs filling. Failures on the way (5xx, a refused or dropped
STATS fetch, a HEAD without a length, a STATS file of another shape) are answered by replays."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from common import config as config_module
from common.errors import UserError
from crawler import dumpruns
from crawler.wikidump import preflight, resolve_dump
from demo.replay.core import Faults, ReplayServer, Request, Response
from demo.replay.dump import DumpMirror, stats_file
from demo.replay.pages import synthetic_pages
from tests.crawl_util import records
from tests.test_wikidump import make_dump, wikidump
from tests.util import free_port, write_config

OLD, DATE, UNFINISHED = "20261001", "20261101", "20261115"
NAME = dumpruns.DUMP_NAME.format(date=DATE)
DUMP, STATS = f"{DATE}/{NAME}", f"{DATE}/bgwiki-NS0-{DATE}-ENTERPRISE-STATS.json"
AGENT = "BgGPT2Toolkit/0.1 (https://github.com/bg-gpt2/bg-gpt2; bg-gpt2@example.org)"


def mirror(tmp_path: Path, stats: bool = True, pages: int = 40) -> tuple[DumpMirror, bytes]:
    """A runs listing: an older run, the newest whole one (with its STATS file when ``stats``), and
    a newer one still being written (its dump a ``.tmp`` file not yet renamed, no STATS file)."""
    data = make_dump(tmp_path / "served.tar.gz", synthetic_pages(pages, paragraphs=4)).read_bytes()
    site = DumpMirror({f"{UNFINISHED}/{dumpruns.DUMP_NAME.format(date=UNFINISHED)}.tmp": data[:4096]})
    site.publish(OLD, make_dump(tmp_path / "older.tar.gz", synthetic_pages(5, paragraphs=4)).read_bytes())
    site.publish(DATE, data, stats)
    return site, data


def setup(tmp_path: Path, dump: str, keep_free: int = 0) -> tuple[Path, Path]:
    data = tmp_path / "data"
    return write_config(tmp_path, {
        "paths": {"data": data, "artifacts": tmp_path / "artifacts"},
        "crawl": {"download_delay": 0.0, "user_agent": AGENT},
        "crawl.bgwiki": {"api": "https://bg.wikipedia.org/w/api.php", "dump": dump, "dump_keep_free": keep_free},
    }), data


def one_error(done) -> str:
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr[-3000:]
    return errors[0]


def test_a_download_that_does_not_match_its_stats_file_is_set_aside(tmp_path):
    site, data = mirror(tmp_path)
    site.files[STATS] = stats_file(b"another file")
    with ReplayServer(site) as server:
        config, data_dir = setup(tmp_path, server.url(DumpMirror.prefix))
        done = wikidump(config)
        downloads = data_dir / "downloads"
        error = one_error(done)
        assert "does not match the run's STATS file" in error and f"{NAME}.bad" in error
        assert f"(delete it, or import it anyway with --dump {downloads / NAME}.bad)" in error
        assert (downloads / f"{NAME}.bad").read_bytes() == data
        assert not (downloads / NAME).exists() and not (downloads / f"{NAME}.partial").exists()
        assert not (data_dir / "raw").exists()  # nothing imported, no shard

        site.files[STATS] = stats_file(data)  # the mirror fixed: fetched afresh, not resumed
        again = wikidump(config)
    assert again.returncode == 0, again.stderr[-3000:]
    assert site.gets == [STATS, DUMP] * 2 and site.ranges == [None, None]
    assert f"md5 of {NAME} matches the run's STATS file" in again.stderr
    assert len(records(data_dir)) == 40


def test_a_run_without_stats_imports_with_a_notice_and_a_checked_file_is_not_hashed_again(tmp_path):
    site, _ = mirror(tmp_path, stats=False)
    with ReplayServer(site) as server:
        config, data_dir = setup(tmp_path, server.url(DumpMirror.prefix))
        done = wikidump(config)
        site.files[STATS] = stats_file(site.files[DUMP])
        checked = wikidump(config)
        again = wikidump(config)
    assert done.returncode == 0, done.stderr[-3000:]
    notices = [line for line in done.stderr.splitlines() if line.startswith("notice:")]
    assert notices == [f"notice: the run has no STATS file: {NAME} is imported without an md5 check"]
    assert len(records(data_dir)) == 40
    assert checked.returncode == 0 and "matches the run's STATS file" in checked.stderr
    assert again.returncode == 0 and "checked earlier" in again.stderr
    assert site.gets == [DUMP, STATS, STATS]  # one download for the three runs


def test_too_little_disk_is_refused_before_the_first_byte_with_both_numbers(tmp_path):
    site, data = mirror(tmp_path)
    with ReplayServer(site) as server:
        free = shutil.disk_usage(tmp_path).free
        config, data_dir = setup(tmp_path, server.url(DumpMirror.prefix), keep_free=free + 10**12)
        done = wikidump(config)
    error = one_error(done)
    match = re.search(r"not enough disk space for the dump: ([\d,]+) bytes free on .+?, ([\d,]+) needed", error)
    numbers = [int(n.replace(",", "")) for n in match.groups()]
    assert numbers[0] < numbers[1] and numbers[1] >= free + 10**12 + len(data)
    assert site.gets == [] and not (data_dir / "downloads").exists() and not (data_dir / "raw").exists()


def test_a_newer_run_replaces_the_partial_download_of_an_older_one(tmp_path):
    site, _ = mirror(tmp_path)
    with ReplayServer(site) as server:
        config, data_dir = setup(tmp_path, server.url(DumpMirror.prefix))
        downloads = data_dir / "downloads"
        downloads.mkdir(parents=True)
        older = downloads / (dumpruns.DUMP_NAME.format(date=OLD) + ".partial")
        older.write_bytes(b"x" * 5000)  # what a stopped download of last month's run left
        older.with_name(older.name + ".json").write_text("{}")
        done = wikidump(config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not older.exists() and not older.with_name(older.name + ".json").exists()
    assert f"removed the unfinished download of an older run: {older} (5,000 bytes)" in done.stdout
    assert (downloads / NAME).is_file()


def test_offline_rerun_uses_the_newest_checked_download(tmp_path):
    site, _ = mirror(tmp_path)
    with ReplayServer(site) as server:
        listing = server.url(DumpMirror.prefix)
        config, data_dir = setup(tmp_path, listing)
        done = wikidump(config)
    assert done.returncode == 0, done.stderr[-3000:]
    offline = wikidump(config)  # the server is gone
    assert offline.returncode == 0, offline.stderr[-3000:]
    notices = [line for line in offline.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and listing in notices[0]
    assert notices[0].endswith(f"using the newest checked download on disk, {data_dir / 'downloads' / NAME}")
    assert "already stored" in offline.stdout and len(records(data_dir)) == 40

    (data_dir / "downloads" / f"{NAME}.json").write_text(json.dumps({"url": "x", "size": 1}))  # not checked
    unchecked = wikidump(config)
    assert "network down?" in one_error(unchecked)


def test_raw_shards_take_at_most_the_stated_share_of_the_dump(tmp_path):
    """``dumpruns.RAW_PER_DUMP`` (what the disk check reserves for the import) against a real import."""
    dump = make_dump(tmp_path / "dump.tar.gz", synthetic_pages(300, paragraphs=6), per_file=100)
    config, data_dir = setup(tmp_path, str(dump))
    done = wikidump(config)
    assert done.returncode == 0, done.stderr[-3000:]
    written = sum(p.stat().st_size for p in (data_dir / "raw" / "bgwiki").iterdir())
    assert written <= dumpruns.RAW_PER_DUMP * dump.stat().st_size


# -- the preflight row ------------------------------------------------------------------------------

def check(config: Path) -> dict:
    row = preflight(config_module.load(config))
    assert set(row) == {"source", "tried", "result", "evidence", "fix"} and row["source"] == "bgwiki dump"
    return row


def test_preflight_on_the_replayed_runs(tmp_path):
    site, data = mirror(tmp_path)
    with ReplayServer(site) as server:
        listing = server.url(DumpMirror.prefix)
        config, data_dir = setup(tmp_path, listing)
        ok = check(config)
        del site.files[STATS]
        no_stats = check(config)
        full, _ = setup(tmp_path, listing, keep_free=shutil.disk_usage(tmp_path).free + 10**12)
        no_room = check(full)
        moved, _ = setup(tmp_path, server.url("/other/enterprise_html/gone/"))
        gone = check(moved)
    assert ok["result"] == "ok" and listing in ok["tried"], ok
    assert f"newest run {DATE}: {NAME}, {len(data):,} bytes, STATS md5 {hashlib.md5(data).hexdigest()}" \
        in ok["evidence"] and "bytes free" in ok["evidence"]
    assert no_stats["result"] == "ok" and "the run has no STATS file: make wikidump imports it without an md5 " \
        "check" in no_stats["evidence"], no_stats
    assert no_room["result"] == "blocked" and "not enough disk space" in no_room["evidence"], no_room
    assert gone["result"] == "moved" and "HTTP 404" in gone["evidence"]
    assert "crawl.bgwiki.dump" in gone["fix"]
    assert site.gets == [STATS] and not (data_dir / "downloads").exists()  # nothing downloaded

    config, _ = setup(tmp_path, f"http://127.0.0.1:{free_port()}/other/enterprise_html/runs/")
    unreachable = check(config)
    assert unreachable["result"] == "unreachable" and "network down?" in unreachable["evidence"]


def test_preflight_says_a_refused_agent_is_blocked(tmp_path):
    """dumps.wikimedia.org answers 403 to an agent its policy refuses."""
    def refusing(request: Request) -> Response:
        return Response(403, b"Please set a user-agent and respect our robot policy")

    with ReplayServer(refusing) as server:
        config, _ = setup(tmp_path, server.url(DumpMirror.prefix))
        blocked = check(config)
    assert blocked["result"] == "blocked" and "HTTP 403" in blocked["evidence"]
    assert "crawl.user_agent" in blocked["fix"]


def test_preflight_returns_a_row_whatever_the_stats_fetch_meets(tmp_path):
    """An HTML page, a refusal, a server error or a dropped connection where the STATS file
    should be: each is a row (changed, blocked, unreachable), not an exception."""
    site, data = mirror(tmp_path)
    answers = {"html": Response(200, b"<html><body>Sign in</body></html>", "text/html"),
               "403": Response(403, b"Please set a user-agent"), "429": Response(429, b"Too many requests"),
               "503": Response(503, b"maintenance")}
    answer: list[str] = []

    def stats_trouble(request: Request) -> Response | None:
        if request.path.endswith("STATS.json") and answer[0] in answers:
            return answers[answer[0]]
        return site(request)

    faults = Faults(only=r"STATS\.json$")
    with ReplayServer(stats_trouble, faults=faults) as server:
        config, _ = setup(tmp_path, server.url(DumpMirror.prefix))
        results = {}
        for case in [*answers, "drop"]:
            answer[:] = [case]
            faults.truncate_after = 10 if case == "drop" else None
            results[case] = check(config)
    found = f"newest run {DATE}: {NAME}, {len(data):,} bytes; STATS file: "
    assert results["html"]["result"] == "changed" and "not a STATS file" in results["html"]["evidence"]
    assert results["403"]["result"] == results["429"]["result"] == "blocked", results
    assert "crawl.user_agent" in results["403"]["fix"]
    assert results["503"]["result"] == "unreachable" and "HTTP 503" in results["503"]["evidence"]
    assert results["drop"]["result"] == "unreachable" and "connection dropped" in results["drop"]["evidence"]
    assert all(row["evidence"].startswith(found) for row in results.values()), results


def test_a_server_error_on_the_listing_falls_back_to_the_checked_download(tmp_path):
    """dumps.wikimedia.org answers 503 during maintenance: as unreachable, not as a changed layout."""
    site, _ = mirror(tmp_path)
    maintenance: list[bool] = []

    def maybe_down(request: Request) -> Response | None:
        return Response(503, b"Service Unavailable") if maintenance else site(request)

    with ReplayServer(maybe_down) as server:
        listing = server.url(DumpMirror.prefix)
        config, data_dir = setup(tmp_path, listing)
        done = wikidump(config)
        maintenance.append(True)
        during = wikidump(config)
        row = check(config)
    assert done.returncode == 0, done.stderr[-3000:]
    assert during.returncode == 0, during.stderr[-3000:]
    notices = [line for line in during.stderr.splitlines() if line.startswith("notice:")]
    assert len(notices) == 1 and "HTTP 503" in notices[0] and notices[0].endswith(
        f"using the newest checked download on disk, {data_dir / 'downloads' / NAME}")
    assert "already stored" in during.stdout and len(records(data_dir)) == 40
    assert row["result"] == "unreachable" and "HTTP 503" in row["evidence"] and NAME in row["evidence"], row


def test_stats_with_the_md5_under_another_key_or_none(tmp_path):
    """The STATS file's fields are known only from Wikimedia's notes: ``md5sum`` is expected; one
    32-hex value under another key naming md5 is taken; none: imported unchecked with a notice."""
    site, data = mirror(tmp_path)
    md5 = hashlib.md5(data).hexdigest()
    site.files[STATS] = json.dumps({"wiki": "bgwiki", "MD5": md5.upper(), "date_modified": "x"}).encode()
    with ReplayServer(site) as server:
        config, data_dir = setup(tmp_path, server.url(DumpMirror.prefix))
        other_key = wikidump(config)
        other_row = check(config)
        site.files[STATS] = json.dumps({"wiki": "bgwiki", "sha1sum": "0" * 40}).encode()
        site.files[DUMP] = data + bytes(512)  # republished: downloaded and checked again
        none_row = check(config)
        unchecked = wikidump(config)
    assert other_key.returncode == 0, other_key.stderr[-3000:]
    assert f"md5 of {NAME} matches the run's STATS file: {md5}" in other_key.stderr
    assert other_row["result"] == "ok" and f"STATS md5 {md5}" in other_row["evidence"], other_row
    says = "the run's STATS file names no md5 (keys: sha1sum, wiki)"
    assert unchecked.returncode == 0, unchecked.stderr[-3000:]
    notices = [line for line in unchecked.stderr.splitlines() if line.startswith("notice:")]
    assert notices == [f"notice: {says}: {NAME} is imported without an md5 check"]
    assert none_row["result"] == "ok" and f"{says}: make wikidump imports it without an md5 check" \
        in none_row["evidence"], none_row
    assert len(records(data_dir)) == 40


def test_a_head_without_content_length(tmp_path):
    """Some servers leave the length out of a HEAD answer: the room check says it is skipped, the
    finished download's size is recorded, so a re-run downloads nothing and an offline run uses it."""
    site, data = mirror(tmp_path)
    site.head_length = False
    with ReplayServer(site) as server:
        config, data_dir = setup(tmp_path, server.url(DumpMirror.prefix))
        done = wikidump(config)
        again = wikidump(config)
        row = check(config)
    offline = wikidump(config)
    for run in (done, again, offline):
        assert run.returncode == 0, run.stderr[-3000:]
    notice = "size unknown (no Content-Length): disk room not checked"
    assert notice in done.stderr and notice in again.stderr
    assert site.gets.count(DUMP) == 1 and (data_dir / "downloads" / NAME).read_bytes() == data
    assert "using the newest checked download on disk" in offline.stderr
    assert row["result"] == "ok" and notice in row["evidence"] and "size unknown" in row["evidence"], row
    assert len(records(data_dir)) == 40


def test_a_stopped_import_is_reserved_only_what_it_still_writes(tmp_path):
    """A re-run of a stopped (or finished) import of the same dump: the disk check subtracts the
    shards that import already wrote. ``dump_keep_free`` is set so that the whole reserve would not
    fit by half of what is written, and measured in-process just before the check."""
    dump = make_dump(tmp_path / NAME, synthetic_pages(600, paragraphs=8), per_file=100)
    full = int(dump.stat().st_size * dumpruns.RAW_PER_DUMP)
    config, data_dir = setup(tmp_path, str(dump))
    stopped = wikidump(config, "--limit", "300")  # stopped half-way, as a killed run is
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    raw = data_dir / "raw" / "bgwiki"
    written = sum(p.stat().st_size for p in raw.glob("*part-*"))
    assert 0 < written < full

    def with_headroom(*more: str) -> config_module.Section:
        keep_free = shutil.disk_usage(raw).free - full + written // 2  # free + written/2 with the whole reserve
        return config_module.load(config, [f"crawl.bgwiki.dump_keep_free={keep_free}", *more])

    assert resolve_dump(str(dump), with_headroom(), AGENT).path == dump  # needs free - written/2
    with pytest.raises(UserError, match="not enough disk space"):  # no import of it begun there
        resolve_dump(str(dump), with_headroom(f'paths.data="{tmp_path / "other"}"'), AGENT)
    rest = wikidump(config)
    assert rest.returncode == 0, rest.stderr[-3000:]
    assert len(records(data_dir)) == 600


def test_preflight_counts_the_older_partial_the_run_frees(tmp_path):
    """As ``make wikidump`` does: an older run's ``.partial`` is removed before the download, so
    its bytes count as free (``dump_keep_free`` set so the check passes by half of them only)."""
    site, data = mirror(tmp_path)
    with ReplayServer(site) as server:
        listing = server.url(DumpMirror.prefix)
        _, data_dir = setup(tmp_path, listing)
        older = data_dir / "downloads" / (dumpruns.DUMP_NAME.format(date=OLD) + ".partial")
        older.parent.mkdir(parents=True)
        older.write_bytes(bytes(8 << 20))
        full = len(data) + int(len(data) * dumpruns.RAW_PER_DUMP)
        config, _ = setup(tmp_path, listing, keep_free=shutil.disk_usage(tmp_path).free - full + (4 << 20))
        row = check(config)
    assert row["result"] == "ok", row
    assert older.exists()  # counted, not removed


def test_preflight_reads_absolute_run_links_and_keeps_the_delay(tmp_path):
    """A listing may link its run folders by absolute path; each request comes at least
    ``crawl.download_delay`` after the last (lower bounds only)."""
    site, _ = mirror(tmp_path)
    seen: list[float] = []

    def absolute(request: Request) -> Response | None:
        seen.append(time.monotonic())
        answer = site(request)
        if request.path == DumpMirror.prefix:
            answer.body = answer.body.replace(b'href="2026', f'href="{DumpMirror.prefix}2026'.encode())
        return answer

    with ReplayServer(absolute) as server:
        config, _ = setup(tmp_path, server.url(DumpMirror.prefix))
        row = preflight(config_module.load(config, ["crawl.download_delay=0.3"]))
    assert row["result"] == "ok" and f"newest run {DATE}" in row["evidence"], row
    assert len(seen) == 4  # the listing, the unfinished run's HEAD, the newest run's HEAD, its STATS
    assert all(later - earlier >= 0.3 for earlier, later in zip(seen, seen[1:], strict=False))
