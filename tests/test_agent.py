"""The User-Agent check (``crawler.agent``): every command that fetches from a public host refuses
a placeholder, contact-less or reserved-domain agent before it fetches or writes anything; loopback
targets are exempt; the library token is appended when the agent has none."""

from __future__ import annotations

import subprocess

import pytest
import scrapy

from common.config import SCHEMA
from common.errors import UserError
from crawler import agent
from demo.replay.pages import synthetic_pages
from demo.replay.wiki import WikiReplay
from tests.crawl_util import crawl_config, scrapy_crawl
from tests.util import ROOT, TEST_AGENT, run_module, write_config

PUBLIC = "https://bg.wikipedia.org/w/api.php"
REFUSED = {
    "placeholder": SCHEMA["crawl"]["user_agent"].default,
    "no contact": "MyCorpus/1.0 (Bulgarian research corpus)",
    "example.com": "MyCorpus/1.0 (https://github.com/me/corpus; me@example.com)",
    "invalid TLD": "MyCorpus/1.0 (ops@corpus.invalid)",
    "test TLD": "MyCorpus/1.0 (https://corpus.test/about)",
    "localhost": "MyCorpus/1.0 (http://localhost/contact)",
    "example TLD": "MyCorpus/1.0 (me@lab.example)",
    "uppercase example.org": "MyCorpus/1.0 (ME@EXAMPLE.ORG)",
    "subdomain of example.org": "MyCorpus/1.0 (ops@mail.example.org)",
    ".localhost": "MyCorpus/1.0 (https://corpus.localhost/)",
    ".local": "MyCorpus/1.0 (ops@printer.local)",
    "loopback IP": "MyCorpus/1.0 (http://127.0.0.1/contact)",
    "private IP": "MyCorpus/1.0 (ops@192.168.1.10)",
    "link-local IP": "MyCorpus/1.0 (http://169.254.1.1/)",
    "IPv6 loopback": "MyCorpus/1.0 (http://[::1]/contact)",
}
GOOD = "MyCorpus/1.0 (https://lab.uni-sofia.bg/corpus; ops@lab.uni-sofia.bg)"


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_public_host_needs_a_real_contact(name):
    with pytest.raises(UserError) as caught:
        agent.checked(REFUSED[name], [PUBLIC])
    message = str(caught.value)
    assert message.startswith("crawl.user_agent ") and agent.FORM in message and "\n" not in message


def test_loopback_targets_and_local_files_are_exempt():
    for url in ("http://127.0.0.1:8080/w/api.php", "http://127.3.4.5/", "http://localhost:9/",
                "http://[::1]:80/", "/data/bgwiki.tar.gz"):
        assert agent.checked(REFUSED["placeholder"], [url]).startswith(REFUSED["placeholder"])
    with pytest.raises(UserError):  # one public target is enough to need a contact
        agent.checked(REFUSED["placeholder"], ["http://127.0.0.1/", PUBLIC])


def test_an_uppercase_scheme_is_a_public_target():
    for url in ("HTTPS://bg.wikipedia.org/w/api.php", "Http://www.bta.bg/rss"):
        with pytest.raises(UserError):
            agent.checked(REFUSED["placeholder"], [url])


def test_a_public_ip_contact_is_accepted():
    assert agent.problem("MyCorpus/1.0 (http://8.8.8.8/contact)") is None


def test_the_library_token_is_appended_only_when_missing():
    assert agent.checked(GOOD, [PUBLIC]) == f"{GOOD} Scrapy/{scrapy.__version__}"
    assert agent.with_library(GOOD, agent.URLLIB).endswith(" Python-urllib/3.11")
    own = f"{GOOD} httpx/0.27"
    assert agent.checked(own, [PUBLIC]) == own
    before = "MyCorpus/1.0 httpx/0.27 (ops@lab.uni-sofia.bg)"  # the token before the contact
    assert agent.checked(before, [PUBLIC]) == before
    remark = f"{GOOD} see https://lab.uni-sofia.bg/why"  # text after the contact is no token
    assert agent.checked(remark, [PUBLIC]) == f"{remark} Scrapy/{scrapy.__version__}"


def _refused_in_one_line(proc: subprocess.CompletedProcess, data) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("make")]
    assert len(lines) == 1 and lines[0].startswith("error: crawl.user_agent is the shipped "
                                                   "placeholder"), proc.stderr
    assert agent.FORM in lines[0]
    assert not data.exists()  # no job folder, no shard, no download


@pytest.fixture
def placeholder_config(tmp_path):
    """The shipped placeholder agent, the public wiki and a public news site (unreachable from
    here: a fetch would end in a DNS error and exit 1, not 2)."""
    titles = tmp_path / "titles.txt"
    titles.write_text("София\n", encoding="utf-8")
    return write_config(tmp_path, {
        "paths": {"data": str(tmp_path / "data")},
        "crawl": {"user_agent": REFUSED["placeholder"]},
        "crawl.bgwiki": {"api": PUBLIC, "titles": titles},
    }, news=[{"name": "bta", "allowed_domains": ["bta.bg"],
              "start_urls": ["https://www.bta.bg/bg/rss/free"]}])


@pytest.mark.parametrize("spider", ["bgwiki", "news"])
def test_scrapy_crawl_refuses_the_placeholder(placeholder_config, tmp_path, spider):
    _refused_in_one_line(scrapy_crawl(placeholder_config, spider), tmp_path / "data")


@pytest.mark.parametrize("module", ["crawler.wikidump", "crawler.check"])
def test_python_commands_refuse_the_placeholder(placeholder_config, tmp_path, module):
    proc = run_module(module, "--config", str(placeholder_config), timeout=120)
    _refused_in_one_line(proc, tmp_path / "data")


@pytest.mark.parametrize("override", [("-a", "api=HTTPS://bg.wikipedia.org/w/api.php"),
                                      ("-s", "BGWIKI_API=HTTPS://bg.wikipedia.org/w/api.php")])
def test_an_overridden_api_is_checked_too(tmp_path, override):
    """The placeholder agent with a loopback wiki in the config, but ``-a api=`` or
    ``-s BGWIKI_API=`` naming the public one (its scheme in capitals): refused, nothing written."""
    titles = tmp_path / "titles.txt"
    titles.write_text("София\n", encoding="utf-8")
    with WikiReplay(synthetic_pages(1)) as server:
        cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")},
                                      "crawl": {"user_agent": REFUSED["placeholder"]},
                                      "crawl.bgwiki": {"api": server.api, "titles": titles}})
        proc = scrapy_crawl(cfg, "bgwiki", *override)
    _refused_in_one_line(proc, tmp_path / "data")


@pytest.mark.parametrize("target", ["crawl", "wikidump", "check-sources"])
def test_make_targets_refuse_the_placeholder(placeholder_config, tmp_path, target):
    proc = subprocess.run(["make", "--no-print-directory", target, f"CONFIG={placeholder_config}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    _refused_in_one_line(proc, tmp_path / "data")
    assert "crawl bgwiki" not in proc.stdout  # make crawl stopped at the first command


def test_a_loopback_crawl_sends_the_agent_with_the_library_token(tmp_path):
    pages = synthetic_pages(2)
    titles = tmp_path / "titles.txt"
    titles.write_text("\n".join(p.title for p in pages) + "\n", encoding="utf-8")
    with WikiReplay(pages) as server:
        proc = scrapy_crawl(crawl_config(tmp_path, server.api, titles), "bgwiki")
        agents = server.wiki.agents
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert agents == {f"{TEST_AGENT} Scrapy/{scrapy.__version__}"}


def test_an_agent_given_with_s_gets_the_library_token_too(tmp_path):
    pages = synthetic_pages(1)
    titles = tmp_path / "titles.txt"
    titles.write_text(pages[0].title + "\n", encoding="utf-8")
    with WikiReplay(pages) as server:
        proc = scrapy_crawl(crawl_config(tmp_path, server.api, titles), "bgwiki", "-s", f"USER_AGENT={GOOD}")
        agents = server.wiki.agents
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert agents == {f"{GOOD} Scrapy/{scrapy.__version__}"}
