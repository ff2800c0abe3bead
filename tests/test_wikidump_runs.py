"""The dump's runs as dumps.wikimedia.org serves them: the STATS md5 checked before the import,
room on disk checked before the first byte, an older run's unfinished download removed, an
offline re-run, and the dump row of the sources preflight (``crawler.wikidump.preflight``).

The disk check is tested with the real free space and ``crawl.bgwiki.dump_keep_free`` (the
headroom to leave) set beyond it: nothing needs filling."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from common import config as config_module
from crawler import dumpruns
from crawler.wikidump import preflight
from demo.replay.core import ReplayServer, Request, Response
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
