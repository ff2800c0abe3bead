"""Bad config and bad spider arguments stop ``scrapy crawl`` with one line and exit code 2."""

from __future__ import annotations

import pytest

from tests.crawl_util import crawl_config, scrapy_crawl
from tests.util import write_config


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-2000:]
    assert lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("table, key, message", [
    ({"crawl": {"shard_byts": 10}}, "crawl.shard_byts", "unknown key"),
    ({"crawl": {"shard_bytes": "big"}}, "crawl.shard_bytes", "must be an integer"),
    ({"crawl.bgwiki": {"titles": "no/such/titles.txt"}}, "crawl.bgwiki.titles", "file not found"),
    ({"crawl": {"user_agent": "Scrapy"}}, "crawl.user_agent", "contact details"),
])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, table, key, message):
    config = write_config(tmp_path, table)
    line = one_error_line(scrapy_crawl(config, "bgwiki"))
    assert str(config) in line and key in line and message in line


def test_bad_spider_arguments_are_one_line(tmp_path):
    config = crawl_config(tmp_path, "http://127.0.0.1:9/w/api.php")
    missing = tmp_path / "missing.txt"
    line = one_error_line(scrapy_crawl(config, "bgwiki", "-a", f"titles={missing}"))
    assert "titles file not found" in line and str(missing) in line

    latin = tmp_path / "cp1251.txt"
    latin.write_bytes("София\n".encode("cp1251"))
    assert "not UTF-8" in one_error_line(scrapy_crawl(config, "bgwiki", "-a", f"titles={latin}"))

    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing but a comment\n", encoding="utf-8")
    assert "no valid title" in one_error_line(scrapy_crawl(config, "bgwiki", "-a", f"titles={empty}"))

    line = one_error_line(scrapy_crawl(config, "bgwiki", "-a", "category=Категория:Планини", "-a", "depth=-1"))
    assert "depth=-1" in line


def test_written_config_loads_back_value_for_value(tmp_path):
    """``common.config.write`` (demo, tests, benchmarks): quotes, backslashes, Cyrillic, paths,
    lists, small floats and booleans survive the trip through TOML."""
    from common import config

    agent = 'bg-gpt2 "тест" \\ (+mailto:x@example.bg)'
    path = config.write(tmp_path / "pipelines.toml", {
        "paths": {"data": tmp_path / "data"},
        "crawl": {"user_agent": agent, "autothrottle": False},
        "train": {"lr": 1e-05, "prompts": ["България е", 'кавички "и" \\'], "max_steps": 7},
    }, [{"name": "alpha", "start_urls": ["http://127.0.0.1:9/rss"], "allowed_domains": ["127.0.0.1"]}],
        header="a header line")
    assert path.read_text(encoding="utf-8").startswith("# a header line\n")
    cfg = config.load(path)
    assert cfg.paths.data == tmp_path / "data" and cfg.crawl.user_agent == agent
    assert cfg.crawl.autothrottle is False and cfg.train.lr == 1e-05 and cfg.train.max_steps == 7
    assert cfg.train.prompts == ["България е", 'кавички "и" \\']
    assert [site.name for site in cfg.crawl.news] == ["alpha"]
