"""``python -m crawler.wikidump``: a generated Enterprise HTML dump (Parsoid-shaped Bulgarian pages
with redirects) read into the raw shards, as a user runs it; kill -9 and re-run; bad input."""

from __future__ import annotations

import gzip
import io
import json
import signal
import subprocess
import sys
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest

from crawler import wikidump as wikidump_module
from crawler.agent import URLLIB
from crawler.pipelines import salvage
from demo.replay.core import Faults, ReplayServer
from demo.replay.core import Request as ReplayRequest
from demo.replay.core import Response as ReplayResponse
from demo.replay.dump import DumpMirror, dump_articles, write_dump
from demo.replay.pages import Page, synthetic_pages
from demo.replay.wiki import GENERIC_AGENTS, WikiReplay
from tests.crawl_util import crawl_config, records, scrapy_crawl, scrapy_env
from tests.util import ROOT, TEST_AGENT, run_module

PAGES = 60


def wikidump(config: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_module("crawler.wikidump", *args, config=config, timeout=timeout)


def make_dump(path: Path, pages: list[Page], extra: list[bytes] = (), per_file: int = 25) -> Path:
    """A dump of ``pages`` in members of ``per_file`` lines; ``extra`` raw lines go in the middle."""
    lines: list = list(dump_articles(pages))
    lines[len(lines) // 2:len(lines) // 2] = list(extra)
    return write_dump(path, lines, per_file=per_file)


@pytest.fixture
def pages() -> list[Page]:
    return synthetic_pages(PAGES, paragraphs=4)


def setup(tmp_path: Path, api: str = "https://bg.wikipedia.org/w/api.php", dump: str = "", **crawl
          ) -> tuple[Path, Path]:
    config = crawl_config(tmp_path, api, **crawl)
    if dump:
        config.write_text(config.read_text(encoding="utf-8") + f'dump = "{dump}"\n', encoding="utf-8")
    return config, tmp_path / "data"


def by_url(data: Path) -> Counter:
    return Counter(r["canonical_url"] for r in records(data))


def test_every_article_stored_once_with_the_api_crawls_fields(tmp_path, pages):
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "bgwiki-NS0-20261101-ENTERPRISE-HTML.json.tar.gz", pages)
    done = wikidump(config, "--dump", str(dump))
    assert done.returncode == 0, done.stderr[-3000:]
    stored = records(data)
    assert len(stored) == PAGES and max(by_url(data).values()) == 1
    first = next(r for r in stored if r["title"] == pages[0].title)
    assert first["source"] == "bgwiki" and first["via"] == "dump" and first["lang"] == "bg"
    assert first["revid"] == pages[0].revid and first["license"] == "CC BY-SA 4.0"  # as the API crawl's
    assert first["canonical_url"] == "https://bg.wikipedia.org/wiki/%D0%A1%D1%82%D0%B0%D1%82%D0%B8%D1%8F_00000"
    assert first["categories"] == pages[0].categories
    assert 'data-mw-section-id="0"' in first["html"] and first["fetched_at"]
    assert "articles read" in done.stdout and f"{PAGES:>14,}" in done.stdout

    again = wikidump(config, "--dump", str(dump))  # an earlier dump run: nothing stored twice
    assert again.returncode == 0, again.stderr[-3000:]
    assert len(records(data)) == PAGES
    assert "already stored" in again.stdout and f"already stored    {PAGES:>14,}" in again.stdout


def test_titles_select_by_name_or_redirect_and_missing_titles_are_listed(tmp_path, pages):
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "dump.tar.gz", pages)
    titles = tmp_path / "titles.txt"
    titles.write_text("# chosen\n"
                      f"{pages[3].title}\n"
                      f"{pages[7].redirects[0]}\n"                     # a redirect's name
                      f"{pages[11].redirects[1]}\n"                    # "статия_00011_стара": underscores, lower case
                      "https://bg.wikipedia.org/wiki/%D0%A1%D1%82%D0%B0%D1%82%D0%B8%D1%8F_00020\n"
                      "Несъществуваща статия\n"
                      "Лош [ред\n", encoding="utf-8")
    done = wikidump(config, "--dump", str(dump), "--titles", str(titles))
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(r["title"] for r in records(data)) == [pages[n].title for n in (3, 7, 11, 20)]
    assert "titles not found (1): Несъществуваща статия" in done.stdout
    assert "line 7 skipped" in done.stderr


def test_category_filter_and_limit(tmp_path, pages):
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "dump.tar.gz", pages)
    done = wikidump(config, "--dump", str(dump), "--category", "Категория:Група 3")
    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(r["title"] for r in records(data)) == [p.title for p in pages if "Група 3" in p.categories]
    more = wikidump(config, "--dump", str(dump), "--limit", "20")
    assert more.returncode == 0, more.stderr[-3000:]
    assert len(records(data)) == 6 + 20 - 2  # the first 20 articles, two of them already stored


def test_no_duplicates_with_an_earlier_api_crawl(tmp_path, pages):
    """Pages the bgwiki spider stored through the API are not stored again from the dump, and a
    later API crawl fetches none of the pages the dump stored."""
    with WikiReplay(pages) as server:
        titles = tmp_path / "titles.txt"
        titles.write_text("\n".join(p.title for p in pages[:15]) + "\n", encoding="utf-8")
        config, data = setup(tmp_path, server.api, titles=titles)
        crawl = scrapy_crawl(config, "bgwiki")
        assert crawl.returncode == 0, crawl.stderr[-3000:]
        assert len(records(data)) == 15 and server.wiki.counts["action=parse"] == 15

        dump = make_dump(tmp_path / "dump.tar.gz", pages)
        done = wikidump(config, "--dump", str(dump))
        assert done.returncode == 0, done.stderr[-3000:]
        stored = records(data)
        assert len(stored) == PAGES and max(by_url(data).values()) == 1
        assert Counter(r["via"] for r in stored) == {"http": 15, "dump": PAGES - 15}
        assert {r["license"] for r in stored} == {"CC BY-SA 4.0"}  # one licence, one spelling
        assert f"already stored    {15:>14,}" in done.stdout

        titles.write_text("\n".join(p.title for p in pages[10:30]) + "\n", encoding="utf-8")
        later = scrapy_crawl(config, "bgwiki")
        assert later.returncode == 0, later.stderr[-3000:]
        assert server.wiki.counts["action=parse"] == 15  # every page already stored: none fetched
    assert len(records(data)) == PAGES


def test_bad_lines_and_articles_without_html_are_counted(tmp_path, pages):
    config, data = setup(tmp_path)
    no_html = next(dump_articles([Page("Празна статия", "x")]))
    no_html["article_body"] = {"wikitext": "x"}
    talk = next(dump_articles([Page("Беседа:Нещо", "x")]))
    talk["namespace"] = {"identifier": 1}
    extra = [b"{not json\n", b"[1, 2]\n", b'{"name": 42, "namespace": {"identifier": 0}}\n',
             '{"name": "Статия", "namespace": "нула"}\n'.encode(),
             json.dumps(no_html).encode() + b"\n", json.dumps(talk).encode() + b"\n",
             b'{"identifier": 9, "event": {"type": "delete"}, "namespace": {"identifier": 0}}\n']  # no name
    dump = make_dump(tmp_path / "dump.tar.gz", pages, extra)
    done = wikidump(config, "--dump", str(dump))
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(records(data)) == PAGES
    assert f"bad lines         {4:>14,}" in done.stdout
    assert f"without HTML      {1:>14,}" in done.stdout
    assert f"not articles      {1:>14,}" in done.stdout
    assert f"deleted (moves)   {1:>14,}" in done.stdout


def refused_as_damaged(done: subprocess.CompletedProcess, data: Path) -> list[dict]:
    """Check a damaged dump's import: exit 2, one error line, whole shards only; the records stored."""
    assert done.returncode == 2, done.stdout[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "truncated or corrupt" in errors[0] and "dump.tar.gz" in errors[0]
    assert "Traceback" not in done.stderr
    folder = data / "raw" / "bgwiki"
    assert not list(folder.glob(".*.partial"))  # the open shard was finished, not left half-written
    stored = records(data)
    assert f"stored            {len(stored):>14,}" in done.stdout
    for shard in folder.glob("part-*.jsonl.gz"):
        with gzip.open(shard) as fh:
            fh.read()  # whole gzip streams with their trailers
    return stored


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_damaged_dump_one_line_error_keeps_whole_shards(tmp_path, damage):
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "dump.tar.gz", synthetic_pages(300, paragraphs=8), per_file=50)
    raw = dump.read_bytes()
    if damage == "truncated":
        dump.write_bytes(raw[:len(raw) * 2 // 3])
    else:
        middle = len(raw) * 2 // 3
        dump.write_bytes(raw[:middle] + bytes(b ^ 0x5A for b in raw[middle:middle + 4000]) + raw[middle + 4000:])
    stored = refused_as_damaged(wikidump(config, "--dump", str(dump)), data)
    assert 0 < len(stored) < 300



def test_dump_whose_gzip_checksum_is_wrong_is_refused(tmp_path, pages):
    """Every byte decompresses, but the gzip trailer's CRC-32 does not match: a damaged download."""
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "dump.tar.gz", pages)
    raw = dump.read_bytes()
    dump.write_bytes(raw[:-8] + bytes([raw[-8] ^ 1]) + raw[-7:])  # the trailer: CRC-32, then length
    assert refused_as_damaged(wikidump(config, "--dump", str(dump)), data)  # what came before is kept

def test_tar_cut_at_a_member_boundary_in_a_whole_gzip_is_refused(tmp_path, pages):
    """A tar stream that stops right after a member (no end-of-archive blocks), gzipped whole:
    tarfile's stream mode ends quietly there, so the later members would go missing unnoticed."""
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "dump.tar.gz", pages, per_file=20)
    tar_bytes = gzip.decompress(dump.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        second = tar.getmembers()[1]
    cut = second.offset_data + (second.size + 511) // 512 * 512  # the end of the 2nd of 3 members
    dump.write_bytes(gzip.compress(tar_bytes[:cut]))
    assert len(refused_as_damaged(wikidump(config, "--dump", str(dump)), data)) == 40  # the first two members


def test_bad_arguments_exit_2_with_one_line(tmp_path, pages, capsys):
    config, data = setup(tmp_path)
    dump = make_dump(tmp_path / "dump.tar.gz", pages[:3])
    cases = [(["--dump", str(tmp_path / "nope.tar.gz")], "dump file not found"),
             (["--dump", str(dump), "--limit", "-1"], "--limit"),
             (["--dump", str(dump), "--titles", "t.txt", "--category", "X"], "not both"),
             (["--dump", str(dump), "--titles", str(tmp_path / "none.txt")], "titles file not found"),
             (["--dump", str(dump), "--category", "Лош [ред"], "--category")]
    for args, says in cases:
        with pytest.raises(SystemExit) as exit_info:
            wikidump_module.main(["--config", str(config), *args])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2, (args, err)
        assert says in err and "Traceback" not in err, (args, err)
    assert not (data / "raw").exists()


def _open_shard_records(folder: Path) -> int:
    return sum(len(salvage(p.read_bytes())) for p in folder.glob(".*.partial"))


def test_import_killed_with_kill_9_resumes_without_loss_or_duplicates(tmp_path):
    pages = synthetic_pages(600, paragraphs=8)
    config, data = setup(tmp_path, shard_bytes=200_000)
    dump = make_dump(tmp_path / "dump.tar.gz", pages, per_file=200)
    folder = data / "raw" / "bgwiki"
    proc = subprocess.Popen([sys.executable, "-m", "crawler.wikidump", "--dump", str(dump)], cwd=ROOT,
                            env=scrapy_env(config), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        proc.send_signal(signal.SIGSTOP)  # look at the files with the writer frozen
        finished = list(folder.glob("part-*.jsonl.gz")) if folder.is_dir() else []
        if finished and _open_shard_records(folder):
            break
        proc.send_signal(signal.SIGCONT)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        time.sleep(0.02)
    else:
        proc.kill()
        raise AssertionError("the import finished no shard in 60 s")
    proc.kill()  # SIGKILL mid-shard
    proc.communicate()
    assert list(folder.glob(".*.partial"))
    before = len(records(data))
    assert 0 < before < len(pages)

    again = wikidump(config, "--dump", str(dump))
    assert again.returncode == 0, again.stderr[-3000:]
    assert "salvaged" in again.stdout
    counts = by_url(data)
    assert len(counts) == len(pages) and max(counts.values()) == 1
    assert not list(folder.glob(".*.partial"))


# -- the download: a dump mirror on the replay server ---------------------------------------------

DATE = "20261101"
NAME = f"bgwiki-NS0-{DATE}-ENTERPRISE-HTML.json.tar.gz"


def mirror_setup(tmp_path: Path, pages: list[Page], **faults) -> tuple[DumpMirror, ReplayServer, bytes]:
    data = make_dump(tmp_path / "served.tar.gz", pages, per_file=100).read_bytes()
    mirror = DumpMirror({f"{DATE}/{NAME}": data}, dates=["20261115"])  # the newest run is unfinished
    return mirror, ReplayServer(mirror, faults=Faults(only=r"\.tar\.gz$", **faults)), data


def start(config: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "crawler.wikidump", *args], cwd=ROOT, env=scrapy_env(config),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_bytes(proc: subprocess.Popen, partial: Path, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size >= at_least):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the download did not get far enough in 60 s"
        time.sleep(0.02)


def test_download_stopped_by_ctrl_c_and_kill_9_resumes_with_range(tmp_path):
    pages = synthetic_pages(400, paragraphs=8)
    mirror, server, data = mirror_setup(tmp_path, pages, rate=150_000)
    with server:
        listing = server.url(DumpMirror.prefix)
        config, data_dir = setup(tmp_path, dump=listing)
        partial = data_dir / "downloads" / f"{NAME}.partial"

        proc = start(config)
        wait_for_bytes(proc, partial, 60_000)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 130 and "download continues from its .partial" in err, err[-2000:]
        first = partial.stat().st_size

        proc = start(config)
        wait_for_bytes(proc, partial, first + 60_000)
        proc.kill()  # kill -9
        proc.communicate()
        second = partial.stat().st_size
        assert 0 < first < second < len(data)

        server.faults.rate = 0
        done = wikidump(config)
        again = wikidump(config)  # downloaded and unchanged: no GET, nothing stored twice
    assert done.returncode == 0, done.stderr[-3000:]
    assert mirror.ranges == [None, f"bytes={first}-", f"bytes={second}-"]
    assert f"newest dump: {listing}{DATE}/{NAME}" in done.stderr
    assert (data_dir / "downloads" / NAME).read_bytes() == data and not partial.exists()
    assert mirror.agents == {f"{TEST_AGENT} {URLLIB}"}  # the library token appended
    assert len(by_url(data_dir)) == len(pages) == len(records(data_dir))
    assert again.returncode == 0 and len(mirror.ranges) == 3 and len(records(data_dir)) == len(pages)


def test_a_changed_file_on_the_server_starts_over(tmp_path):
    mirror, server, data = mirror_setup(tmp_path, synthetic_pages(300, paragraphs=8), rate=150_000)
    newer = make_dump(tmp_path / "newer.tar.gz", [Page(f"Нова статия {n}", "Нов текст за проба.\n" * 3)
                                                  for n in range(40)]).read_bytes()
    with server:
        url = server.url(f"{DumpMirror.prefix}{DATE}/{NAME}")
        config, data_dir = setup(tmp_path)
        partial = data_dir / "downloads" / f"{NAME}.partial"
        proc = start(config, "--dump", url)
        wait_for_bytes(proc, partial, 50_000)
        proc.kill()
        proc.communicate()
        mirror.files[f"{DATE}/{NAME}"] = newer  # republished: new size, new ETag
        server.faults.rate = 0
        done = wikidump(config, "--dump", url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert mirror.ranges == [None, None]
    assert (data_dir / "downloads" / NAME).read_bytes() == newer
    assert sorted(r["title"] for r in records(data_dir)) == sorted(f"Нова статия {n}" for n in range(40))
    offline = wikidump(config, "--dump", url)  # the server is gone: the whole copy on disk is used
    assert offline.returncode == 0 and "unreachable" in offline.stderr, offline.stderr[-3000:]
    assert len(records(data_dir)) == 40


def test_dropped_connections_are_resumed_in_one_run(tmp_path):
    pages = synthetic_pages(300, paragraphs=8)
    mirror, server, data = mirror_setup(tmp_path, pages)
    third = len(data) // 3 + 1
    server.faults.truncate_after = third  # every body stops short of its Content-Length
    with server:
        config, data_dir = setup(tmp_path)
        done = wikidump(config, "--dump", server.url(f"{DumpMirror.prefix}{DATE}/{NAME}"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert mirror.ranges == [None, f"bytes={third}-", f"bytes={2 * third}-"]
    assert len(records(data_dir)) == len(pages)


def test_missing_dump_url_is_one_line_and_leaves_nothing(tmp_path):
    mirror, server, _ = mirror_setup(tmp_path, synthetic_pages(3))
    with server:
        config, data_dir = setup(tmp_path)
        done = wikidump(config, "--dump", server.url(f"{DumpMirror.prefix}{DATE}/bgwiki-NS0-nope.json.tar.gz"))
        empty = server.url("/other/enterprise_html/empty/")
        listing = wikidump(config, "--dump", empty)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        f"error: {server.url(DumpMirror.prefix)}{DATE}/bgwiki-NS0-nope.json.tar.gz: HTTP 404 Not Found"]
    assert listing.returncode == 2 and "HTTP 404" in listing.stderr
    assert not (data_dir / "downloads").exists() and not (data_dir / "raw").exists()


def test_a_dump_server_refusing_the_agent_names_the_fix(tmp_path):
    """dumps.wikimedia.org, like every Wikimedia site, answers 403 to a generic User-Agent."""
    mirror, _, _ = mirror_setup(tmp_path, synthetic_pages(3))

    def policy(request: ReplayRequest) -> ReplayResponse | None:
        if GENERIC_AGENTS.match(request.headers.get("User-Agent", "")):
            return ReplayResponse(403, b"Please set a user-agent and respect our robot policy")
        return mirror(request)

    with ReplayServer(policy) as server:
        config, data_dir = setup(tmp_path, user_agent="Scrapy/2.19 (+https://scrapy.org)")  # passes the config check
        done = wikidump(config, "--dump", server.url(f"{DumpMirror.prefix}{DATE}/{NAME}"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "HTTP 403 Forbidden" in errors[0], done.stderr[-2000:]
    assert "set crawl.user_agent to name you and a contact" in errors[0]
    assert not (data_dir / "downloads").exists() and not (data_dir / "raw").exists()


def test_a_url_that_is_no_dump_file_is_said_in_one_line_before_any_download(tmp_path):
    """A runs listing without its trailing "/" (the server redirects it to the listing, an HTML
    page), and a .tar.gz URL answered with an HTML page (a captive portal): neither is downloaded."""
    mirror, _, _ = mirror_setup(tmp_path, synthetic_pages(3))

    def portal(request: ReplayRequest) -> ReplayResponse | None:
        if request.path.startswith("/portal/"):
            return ReplayResponse(200, b"<html><body>Sign in to the network</body></html>", "text/html")
        return mirror(request)

    with ReplayServer(portal) as server:
        config, data_dir = setup(tmp_path)
        listing = server.url(DumpMirror.prefix.rstrip("/"))
        no_slash = wikidump(config, "--dump", listing)
        html_page = wikidump(config, "--dump", server.url(f"/portal/{NAME}"))
    for done in (no_slash, html_page):
        assert done.returncode == 2 and "Traceback" not in done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "not a dump file" in errors[0], done.stderr[-2000:]
    assert errors[0] == f"error: {server.url(f'/portal/{NAME}')}: not a dump file (the server answers text/html)"
    assert f'for a runs listing, end the URL with "/": {listing}/' in no_slash.stderr
    assert not (data_dir / "downloads").exists() and not (data_dir / "raw").exists()
