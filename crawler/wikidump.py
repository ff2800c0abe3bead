"""``make wikidump``: Bulgarian Wikipedia from Wikimedia's Enterprise HTML dump into the raw shards.

    python -m crawler.wikidump [--config F] [--dump URL|PATH] [--titles FILE] [--category NAME] [--limit N]

The dump (``crawl.bgwiki.dump``: a runs listing, whose newest ``bgwiki-NS0-<date>-ENTERPRISE-HTML
.json.tar.gz`` is taken, a dump URL, or a local file) is downloaded resumably to
``data/downloads/`` (``crawler.download``), then read as a stream: tar member by member
(``bgwiki_namespace_0_<N>.ndjson``), line by line, one Enterprise "article" a line. Each chosen
article becomes a raw record in ``data/raw/bgwiki/`` beside the API spider's (``via = "dump"``,
``revid`` from ``version.identifier``, licence from ``license[]``, ``html`` the Parsoid HTML),
through the pipeline's own shard writer and done-keys: a page already stored in the same or a
newer revision, by the API crawl or an earlier dump run, is not stored again, and a killed import
resumes without loss or duplicates.

A page can come more than once (Wikimedia builds the snapshot from a compacted stream read in
parallel): a copy is stored when its revision (``version.identifier``) is newer than every one
stored of that page, by the API crawl, an earlier dump or earlier in this one, so the newest wins
wherever it comes and next month's dump stores exactly the pages that changed (``make corpus``
keeps each page's newest revision). Records of page moves (``event.type == "delete"``, no
``article_body``) are counted as deletions.

``--titles`` takes a titles file by the spider's rules (``crawler.titles``); a title selects the
article of that name or the one it redirects to (``redirects[]``). ``--category`` keeps the
articles listed in that category (``categories[]``, direct members). With neither, every
article. A line that is not JSON and an article without HTML are counted, not fatal.

Before the first byte the disk is checked for room (for a re-run of the same dump's import, only
what it still writes) and the run's STATS file fetched (``crawler.dumpruns``); the finished
download is checked against the STATS md5 before the import.
``preflight`` is the dump's row of the sources check: the same questions, nothing downloaded.
"""

from __future__ import annotations

import argparse
import re
import sys
import tarfile
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson
from isal import igzip, isal_zlib
from tqdm import tqdm

from common import config
from common.errors import UserError, cli_main
from crawler import agent as user_agent
from crawler import download, dumpruns
from crawler import titles as titles_file
from crawler.blocking import BLOCK_STATUSES
from crawler.pipelines import RawStore, encode, record_keys
from crawler.spiders.bgwiki import CATEGORY_PREFIX, canonical_url

SOURCE = "bgwiki"
CHUNK = 1 << 20
ROWS = [("articles read", "read"), ("selected", "selected"), ("stored", "stored"), ("updated", "updated"),
        ("already stored", "already_stored"), ("repeated copies", "repeated"), ("deleted (moves)", "deleted"),
        ("without HTML", "no_html"), ("bad lines", "bad_lines"), ("not articles", "not_articles")]


class DumpError(UserError):
    """The dump file itself is damaged (truncated or corrupt)."""


@dataclass
class Selection:
    """Which articles to take: chosen titles (names or redirect names), a category, or all."""

    titles: list[str] = field(default_factory=list)
    category: str = ""
    found: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.wanted = set(self.titles)

    def __call__(self, article: dict) -> bool:
        if self.category:
            return any(_name(c.get("name", "")).removeprefix(CATEGORY_PREFIX) == self.category
                       for c in article.get("categories") or [] if isinstance(c, dict))
        if not self.wanted:
            return True
        names = {_name(article.get("name", ""))}
        names |= {_name(r.get("name", "")) for r in article.get("redirects") or [] if isinstance(r, dict)}
        hits = names & self.wanted
        self.found |= hits
        return bool(hits)

    @property
    def missing(self) -> list[str]:
        return [t for t in self.titles if t not in self.found]


def _name(title: str) -> str:
    try:
        return titles_file.normalize(title)
    except ValueError:
        return title


class _Counting:
    """A read-only file wrapper that counts the bytes read (and moves a progress bar, if given)."""

    def __init__(self, fh, bar: tqdm | None = None):
        self.fh, self.bar, self.bytes = fh, bar, 0

    def read(self, size: int = -1) -> bytes:
        data = self.fh.read(size)
        self._count(len(data))
        return data

    def readinto(self, buffer) -> int:
        size = self.fh.readinto(buffer)
        self._count(size)
        return size

    def _count(self, size: int) -> None:
        self.bytes += size
        if self.bar is not None:
            self.bar.update(size)


def articles(path: Path, counts: Counter, progress: bool | None = None) -> Iterator[dict]:
    """The dump's articles in order, streamed; bad lines counted, a damaged file a DumpError."""
    size = path.stat().st_size
    member, line_no, end = "", 0, 0
    with open(path, "rb") as raw, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024,
                                       desc=f"read {path.name}",
                                       disable=None if progress is None else not progress) as bar:
        stream = _Counting(raw, bar)
        try:
            # ISA-L's gzip (faster than tarfile's own "r|gz") checks the CRC and length at the end
            with igzip.IGzipFile(fileobj=stream, mode="rb") as gz, \
                    tarfile.open(fileobj=(tar_bytes := _Counting(gz)), mode="r|") as tar:
                for info in tar:
                    end = info.offset_data + (info.size + 511) // 512 * 512
                    if not info.isfile() or not info.name.endswith(".ndjson"):
                        continue
                    member, line_no = info.name, 0
                    for line in tar.extractfile(info):
                        line_no += 1
                        try:
                            article = orjson.loads(line)
                        except ValueError:
                            counts["bad_lines"] += 1
                            continue
                        if not isinstance(article, dict):
                            counts["bad_lines"] += 1
                            continue
                        yield article
                # tarfile ends quietly at a damaged header or at the end of the data: a whole archive
                # has only zero padding left, at least the two 512-byte end blocks after its last member
                while rest := tar_bytes.read(CHUNK):
                    if rest.count(0) != len(rest):
                        raise tarfile.ReadError(f"damaged tar header after {member or 'the start'}")
                if tar_bytes.bytes < end + 1024:
                    raise tarfile.ReadError(f"the tar stops after {member or 'the start'} without its end blocks")
        except (tarfile.TarError, EOFError, zlib.error, isal_zlib.error, OSError) as exc:
            where = f"{member} line {line_no}" if member else "its start"
            raise DumpError(f"dump {path} is truncated or corrupt at {where} ({exc}); delete it and "
                            "run again to fetch it afresh") from None
        finally:
            counts["dump_bytes"] = stream.bytes


def _licence(licence: dict) -> str:
    """A ``license[]`` entry as the API crawl writes licences: ``CC-BY-SA-4.0`` -> ``CC BY-SA 4.0``."""
    identifier = licence.get("identifier") or ""
    match = re.fullmatch(r"CC-([A-Z-]+)-(\d\.\d)", identifier)
    return f"CC {match.group(1)} {match.group(2)}" if match else identifier or licence.get("name") or ""


def record(article: dict, wiki_base: str) -> dict:
    """The raw record of one Enterprise article (the API spider's fields, ``via = "dump"``)."""
    title = article["name"]
    url = canonical_url(wiki_base, title)
    licences = [_licence(lic) for lic in article.get("license") or [] if isinstance(lic, dict)]
    return encode({
        "url": article.get("url") or url, "canonical_url": url, "title": title, "source": SOURCE,
        "lang": (article.get("in_language") or {}).get("identifier") or "bg",
        "http_status": None, "via": "dump", "revid": (article.get("version") or {}).get("identifier"),
        "license": "; ".join(filter(None, licences)), "html": (article.get("article_body") or {}).get("html"),
        "categories": [_name(c["name"]).removeprefix(CATEGORY_PREFIX)
                       for c in article.get("categories") or [] if isinstance(c, dict) and c.get("name")],
    })


def import_dump(path: Path, folder: Path, wiki_base: str, selection: Selection, shard_bytes: int,
                limit: int = 0, progress: bool | None = None, counts: Counter | None = None) -> Counter:
    """Store the selected articles of the dump at ``path`` that ``folder``'s shards lack, or hold
    in an older revision.

    Returns the counts (``counts``, when given, is filled as it goes: a caller sees them after an error).
    """
    counts = Counter() if counts is None else counts
    store = RawStore(folder, shard_bytes, threaded=True)  # compression off the reading thread
    counts["recovered"] = store.recovered
    met: set[str] = set()  # pages met in this dump
    try:
        for article in articles(path, counts, progress):
            counts["read"] += 1
            try:
                if (article.get("namespace") or {}).get("identifier", 0) != 0:
                    counts["not_articles"] += 1
                    continue
                if (article.get("event") or {}).get("type") == "delete":
                    counts["deleted"] += 1
                    continue
                if not isinstance(article.get("name"), str) or not article["name"].strip():
                    raise TypeError("no name")
                if not selection(article):
                    continue
                rec = record(article, wiki_base)
            except (TypeError, AttributeError, KeyError, ValueError):  # JSON, but not an article's shape
                counts["bad_lines"] += 1
                continue
            counts["selected"] += 1
            _take(rec, store, met, counts)
            if limit and counts["selected"] >= limit:
                counts["stopped_at_limit"] = 1
                break
    finally:
        counts["shards"] = store.close()
    return counts


def _take(rec: dict, store: RawStore, met: set[str], counts: Counter) -> None:
    """Store one selected article's record unless a copy as new is stored; count what happened."""
    url, revid = rec["canonical_url"], rec["revid"]
    repeated = url in met
    met.add(url)
    counts["repeated"] += repeated
    keys = record_keys(rec)
    stored = store.has(keys)
    if stored and not (isinstance(revid, int) and (newest := store.revision(url)) is not None
                       and revid > newest):
        counts["already_stored"] += not repeated
    elif not isinstance(rec["html"], str) or not rec["html"].strip():
        counts["no_html"] += 1
    else:
        counts["raw_bytes"] += store.store(rec, keys)
        if not repeated:
            counts["updated" if stored else "stored"] += 1


@dataclass
class Dump:
    """The local dump file to import, and what was done to get it (lines for the summary)."""

    path: Path
    notes: list[str] = field(default_factory=list)


def resolve_dump(source: str, cfg: config.Section, agent: str, progress: bool | None = None) -> Dump:
    """A local dump file: ``source`` itself, or the checked download of its URL (a runs listing:
    the newest run; unreachable: the newest checked download on disk). Disk room is checked first."""
    downloads, raw = config.data_dir(cfg, "downloads"), config.data_dir(cfg, "raw", SOURCE)
    keep_free = cfg.crawl.bgwiki.dump_keep_free

    def on_disk(path: Path) -> Dump:
        size = path.stat().st_size
        dumpruns.check_room(0, dumpruns.to_import(raw, path.name, size), downloads, raw, keep_free)
        return Dump(path)

    if not source.startswith(("http://", "https://")):
        path = Path(source).expanduser()
        if not path.is_file():
            raise UserError(f"dump file not found: {path}")
        return on_disk(path)
    if urlsplit(source).path.endswith("/"):
        try:
            info = download.newest(source, dumpruns.DUMP_NAME, agent, delay=cfg.crawl.download_delay)
        except download.DownloadError as exc:
            path = dumpruns.newest_on_disk(downloads)
            if path is None:
                raise
            print(f"notice: {exc}; using the newest checked download on disk, {path}", file=sys.stderr)
            return on_disk(path)
        print(f"newest dump: {info.url}", file=sys.stderr)
    elif not urlsplit(source).path.endswith(".tar.gz"):
        raise UserError(f'{source}: not a dump file (.tar.gz); for a runs listing, end the URL with "/": '
                        f"{source}/")
    else:
        try:
            info = download.remote(source, agent)
        except download.DownloadError:  # fetch uses a whole copy on disk, or says the server is gone
            path = download.fetch(source, downloads, agent, progress=progress)
            print(dumpruns.verify(path, dumpruns.saved_stats(downloads, source), progress), file=sys.stderr)
            return Dump(path)
    name = Path(urlsplit(info.url).path).name
    older = dumpruns.older_partials(downloads, name)
    if info.size is None:
        print(f"notice: {info.url}: size unknown (no Content-Length): disk room not checked", file=sys.stderr)
    else:
        dumpruns.check_room(download.missing_bytes(downloads, info), dumpruns.to_import(raw, name, info.size),
                            downloads, raw, keep_free, freed=sum(p.stat().st_size for p in older))
    stats = dumpruns.stats_url(info.url)
    md5, why = dumpruns.fetch_stats(stats, agent) if stats else (None, dumpruns.NO_STATS)
    notes = dumpruns.remove(older)
    if stats:
        dumpruns.save_stats(downloads, stats, md5)
    path = download.fetch(info.url, downloads, agent, progress=progress, info=info)
    print(dumpruns.verify(path, md5, progress, why), file=sys.stderr)
    return Dump(path, notes)


def summary(counts: Counter, name: str, elapsed: float, missing: list[str], notes: list[str] = ()) -> str:
    lines = [f"wikidump summary: {name}"]
    lines += [f"  {label:<18}{counts[key]:>14,}" for label, key in ROWS]
    megabytes = counts["dump_bytes"] / 1e6
    lines += [f"  {'dump bytes read':<18}{counts['dump_bytes']:>14,}",
              f"  {'bytes stored':<18}{counts['raw_bytes']:>14,}",
              f"  {'elapsed (s)':<18}{elapsed:>14.1f}",
              f"  {'MB/s (dump)':<18}{megabytes / elapsed if elapsed > 0 else 0.0:>14.2f}",
              f"  {'articles/s':<18}{counts['read'] / elapsed if elapsed > 0 else 0.0:>14.1f}"]
    if counts["recovered"]:
        lines.append(f"  (salvaged {counts['recovered']:,} records a stopped run left in an open shard)")
    lines += [f"  ({note})" for note in notes]
    if missing and not counts["stopped_at_limit"]:
        lines.append(f"titles not found ({len(missing)}): " + "; ".join(missing))
    return "\n".join(lines)


def preflight(cfg: config.Section, agent: str | None = None) -> dict:
    """The dump's row of the sources check: the newest run, its size, its STATS file and room on
    disk (at most six small requests, ``crawl.download_delay`` apart; nothing downloaded or written).

    Keys: source, tried, result (ok / blocked / moved / changed / unreachable), evidence, fix.
    """
    agent = agent or cfg.crawl.user_agent
    downloads, raw = config.data_dir(cfg, "downloads"), config.data_dir(cfg, "raw", SOURCE)
    source = cfg.crawl.bgwiki.dump
    row = {"source": "bgwiki dump", "tried": source, "result": "ok", "evidence": "", "fix": ""}
    delay, older = cfg.crawl.download_delay, []
    if not source.startswith(("http://", "https://")):
        path = Path(cfg.source).parent / Path(source).expanduser()
        if not path.is_file():
            return {**row, "result": "unreachable", "evidence": f"no file {path}",
                    "fix": "set crawl.bgwiki.dump to the runs listing, a dump URL or an existing .tar.gz"}
        name, size, missing = path.name, path.stat().st_size, 0
        found = f"local file {name}, {size:,} bytes"
    else:
        row["tried"] = f"{source} (runs listing or file), HEAD of the dump, its STATS file"
        unreachable = {"result": "unreachable", "fix": "check the network and crawl.bgwiki.dump; try again later"}
        try:
            info = (download.newest(source, dumpruns.DUMP_NAME, agent, delay=delay)
                    if urlsplit(source).path.endswith("/") else download.remote(source, agent))
        except download.DownloadError as exc:
            on_disk = dumpruns.newest_on_disk(downloads)
            kept = f"; checked download on disk: {on_disk.name} (make wikidump uses it)" if on_disk else ""
            return {**row, **unreachable, "evidence": f"{exc}{kept}"}
        except UserError as exc:
            return {**row, **_refused(str(exc))}
        time.sleep(delay)
        name, size = Path(urlsplit(info.url).path).name, info.size
        found = (f"newest run {dumpruns.run_date(Path(name)) or '?'}: {name}, "
                 + (f"{size:,} bytes" if size is not None else "size unknown"))
        stats = dumpruns.stats_url(info.url)
        try:
            md5, why = dumpruns.fetch_stats(stats, agent) if stats else (None, dumpruns.NO_STATS)
        except download.DownloadError as exc:
            return {**row, **unreachable, "evidence": f"{found}; STATS file: {exc}"}
        except UserError as exc:
            return {**row, **_refused(str(exc)), "evidence": f"{found}; STATS file: {exc}"}
        found += f", STATS md5 {md5}" if md5 else f"; {why}: make wikidump imports it without an md5 check"
        if size is None:
            return {**row, "evidence": f"{found}; size unknown (no Content-Length): disk room not checked"}
        missing, older = download.missing_bytes(downloads, info), dumpruns.older_partials(downloads, name)
    try:
        free, need = dumpruns.check_room(missing, dumpruns.to_import(raw, name, size), downloads, raw,
                                         cfg.crawl.bgwiki.dump_keep_free, freed=sum(p.stat().st_size for p in older))
    except UserError as exc:
        return {**row, "result": "blocked", "evidence": f"{found}; {exc}",
                "fix": "free disk space, or set paths.data on a larger disk"}
    return {**row, "evidence": f"{found}; disk: {free:,} bytes free, {need:,} needed"}


def _refused(error: str) -> dict:
    """The result, evidence and fix of a dump server's refusal (``error``: its one line)."""
    code = re.search(r"HTTP (\d{3})", error)
    if code and int(code.group(1)) in BLOCK_STATUSES:
        return {"result": "blocked", "evidence": error,
                "fix": "set crawl.user_agent to name you and a contact (Wikimedia's User-Agent policy)"}
    if code and code.group(1) == "404" or "not a dump file" in error:
        return {"result": "moved", "evidence": error,
                "fix": "set crawl.bgwiki.dump to the runs listing, https://dumps.wikimedia.org/other/enterprise_html/runs/"}
    return {"result": "changed", "evidence": error,
            "fix": "the runs listing no longer looks as expected: check it in a browser and crawl.bgwiki.dump"}


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {value!r}")
    return number


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m crawler.wikidump",
                                     description=__doc__.split("\n\n")[0])
    config.add_config_args(parser)
    parser.add_argument("--dump", metavar="URL|PATH",
                        help="dump URL, runs listing URL (ending in /) or local .tar.gz "
                             "(default: crawl.bgwiki.dump)")
    parser.add_argument("--titles", metavar="FILE",
                        help="titles file: only these articles (names or redirects)")
    parser.add_argument("--category", metavar="NAME", help="only the articles in this category")
    parser.add_argument("--limit", metavar="N", type=_count, default=0,
                        help="stop after N selected articles (0: all)")
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = config.from_args(args)
    agent = user_agent.checked(cfg.crawl.user_agent, [args.dump or cfg.crawl.bgwiki.dump],
                               user_agent.URLLIB)  # before anything is fetched or written
    api = urlsplit(cfg.crawl.bgwiki.api)
    names, skipped, category = titles_file.choose(args.titles, args.category, api.hostname, "--{} ")  # as the spider
    selection = Selection(names, category.removeprefix(CATEGORY_PREFIX))
    for number, line, why in skipped:
        print(f"titles file line {number} skipped ({why}): {line!r}", file=sys.stderr)
    source = args.dump or cfg.crawl.bgwiki.dump
    if not args.dump and not source.startswith(("http://", "https://")):
        source = str(Path(cfg.source).parent / Path(source).expanduser())  # relative to the config file
    dump = resolve_dump(source, cfg, agent)
    dumpruns.begin_import(config.data_dir(cfg, "raw", SOURCE), dump.path)
    started = time.monotonic()
    counts: Counter = Counter()
    try:
        import_dump(dump.path, config.data_dir(cfg, "raw", SOURCE), f"{api.scheme}://{api.netloc}",
                    selection, cfg.crawl.shard_bytes, args.limit, counts=counts)
    finally:
        print(summary(counts, dump.path.name, time.monotonic() - started, selection.missing, dump.notes),
              flush=True)


if __name__ == "__main__":
    main()
