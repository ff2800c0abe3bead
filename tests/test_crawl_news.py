"""The news spider against the news replay server on 127.0.0.1: one real ``scrapy crawl news``.

The replay serves our own articles (one only JavaScript shows), the real legacy-encoded Bulgarian
feeds (windows-1251 under a wrong header, ISO-8859-5 with none) and the real article pages from
../shared/fixtures; the crawl runs through the real reactor, robots.txt, the Selenium fallback in
real Chromium, and the raw-shard pipeline.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from lxml import etree

from common.errors import UserError
from crawler.feeds import decode, guess_encoding, parse_xml_links
from crawler.pipelines import iter_records
from crawler.spiders.news import clean_url
from demo.replay.articles import parse_article, slugify
from demo.replay.news import NewsReplay
from tests.util import run_module, write_config

LEGACY_FEEDS = ("windows-1251-bulgarian/debian.gabrovo.com.xml", "iso-8859-5-bulgarian/ide.li.xml")
LICENSE = "All rights reserved (Демо новини); test use"

ARTICLES = {
    "01-most": ("Новият мост над Янтра отваря врати", "Петър Петров", "2026-10-12", "Общество",
                False),
    "02-teatar": ("Театърът в Габрово показва нова постановка", "Мария Стоянова", "2026-10-13",
                  "Култура", False),
    "03-skrita": ("Статия, която само браузърът вижда", "Анна Иванова", "2026-10-14", "Култура",
                  True),
}
PARAGRAPHS = [
    "Общинският съвет одобри проекта след дълги обсъждания с жителите на квартала. Според "
    "кмета новото съоръжение ще облекчи движението в центъра и ще скъси пътя до болницата.",
    "Строителството продължи малко повече от година. През това време движението беше "
    "пренасочено по обходни маршрути, а местните търговци се оплакваха от по-малко клиенти.",
    "Експертите очакват, че през следващите месеци трафикът ще се нормализира. Те съветват "
    "шофьорите да следят информацията на общината за временни промени в организацията.",
    "Жителите, с които разговаряхме, са доволни от резултата, макар че според някои "
    "осветлението по моста трябва да бъде подобрено преди настъпването на зимата.",
]


def write_articles(folder: Path) -> dict[str, list[str]]:
    """Our own article files; returns each slug's paragraphs (the JS one gets a marked one)."""
    folder.mkdir()
    paragraphs = {}
    for slug, (title, author, published, section, js) in ARTICLES.items():
        paras = PARAGRAPHS + ([f"Този абзац вмъква скриптът на страницата {slug}."] if js else [])
        paragraphs[slug] = paras
        (folder / f"{slug}.txt").write_text(
            f"title: {title}\nauthor: {author}\npublished: {published}\nsection: {section}\n"
            f"js: {'true' if js else 'false'}\n\n" + "\n\n".join(paras) + "\n", encoding="utf-8")
    return paragraphs


@pytest.fixture(scope="module")
def crawl(tmp_path_factory, fixtures):
    """Serve the site, run ``scrapy crawl news`` over both configured sites once."""
    tmp = tmp_path_factory.mktemp("news")
    paragraphs = write_articles(tmp / "site")
    with NewsReplay(tmp / "site", fixtures=fixtures) as replay:
        cfg = write_config(tmp, {
            "paths": {"data": str(tmp / "data")},
            "crawl": {"download_delay": 0.0, "autothrottle": False, "selenium_pool": 1,
                      "selenium_timeout": 20, "render_min_chars": 400},
        }, news=[
            {"name": "demo", "allowed_domains": ["127.0.0.1"], "render": "fallback",
             "article_pattern": r"/(news|real)/.+\.html$", "license": LICENSE,
             "start_urls": [replay.url("/rss.xml"), replay.url("/sitemap.xml"),
                            replay.url("/section/%D0%9A%D1%83%D0%BB%D1%82%D1%83%D1%80%D0%B0")]},
            {"name": "legacy", "allowed_domains": ["127.0.0.1"], "render": "never",
             "article_pattern": "/legacy/item/",
             "start_urls": [replay.url(f"/legacy/{f}") for f in LEGACY_FEEDS]},
        ])
        proc = run_module("scrapy", "crawl", "news", config=cfg, timeout=150,
                          env={"SCRAPY_LOG_LEVEL": "INFO"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        records = list(iter_records(tmp / "data" / "raw" / "news"))
        plain_js_page = urllib.request.urlopen(replay.url("/news/03-skrita.html")).read()
        return {"records": records, "replay": replay, "paragraphs": paragraphs,
                "log": proc.stderr, "plain_js_page": plain_js_page.decode("utf-8")}


def by_source(crawl, source: str) -> list[dict]:
    return [r for r in crawl["records"] if r["source"] == source]


def test_legacy_feeds_decode_to_the_right_cyrillic_titles_and_urls(crawl):
    legacy = by_source(crawl, "legacy")
    site = crawl["replay"].site
    # the server's own reading of each feed (lxml, from the XML prolog) is the reference
    expected = {item.title for f in LEGACY_FEEDS for item in site.legacy[f].items}
    assert any(re.search("[а-я]", t) for t in expected)
    assert {r["title"] for r in legacy} == expected
    for record in legacy:
        slug = unquote(urlsplit(record["url"]).path).rsplit("/", 1)[-1]
        assert slugify(record["title"]) == slug
        assert record["via"] == "http" and record["license"]


@pytest.mark.parametrize("folder", ["windows-1251-bulgarian", "iso-8859-5-bulgarian"])
def test_every_fixture_feed_decodes_even_without_prolog_or_with_a_wrong_header(fixtures, folder):
    for path in sorted((fixtures / "rss_legacy_encodings" / folder).glob("*.xml")):
        raw = path.read_bytes()
        expect = re.search(rb"Expect:\s*([\w-]+)", raw).group(1).decode()
        truth = raw.decode(expect)
        assert decode(raw, "application/rss+xml; charset=utf-8")[0] == truth, path.name
        bare = re.sub(rb"^<\?xml[^>]*\?>", b"", raw)  # nothing declared: the bytes decide
        assert guess_encoding(bare) == guess_encoding(raw), path.name
        links = parse_xml_links(raw, "http://example.bg/", "text/xml; charset=utf-8")
        assert links.kind == "feed" and links.entries, path.name
        # reference: lxml reading the raw bytes through their own XML prolog
        root = etree.fromstring(raw, etree.XMLParser(recover=True, resolve_entities=False))
        titles = [" ".join((el.findtext("{*}title") or "").split()) for el in root.iter()
                  if isinstance(el.tag, str) and etree.QName(el).localname in ("item", "entry")
                  and el.find("{*}link") is not None]  # (one fixture ends mid-item)
        assert [e.title for e in links.entries] == titles, path.name


def test_only_allowed_article_urls_are_followed(crawl):
    replay = crawl["replay"]
    assert all(urlsplit(r["url"]).hostname == "127.0.0.1" for r in crawl["records"])
    assert replay.paths("localhost") == []                     # off-domain links never fetched
    paths = replay.paths()
    assert "/robots.txt" in paths
    assert not [p for p in paths if p.startswith("/news/drafts/")]  # robots.txt obeyed
    assert not [p for p in paths if p.startswith(("/about", "/cookies", "/authors/"))]
    demo = by_source(crawl, "demo")
    urls = sorted(clean_url(r["url"]) for r in demo)
    assert len(urls) == len(set(urls))                         # RSS + sitemap + section: once
    expected = {replay.url(f"/news/{slug}.html") for slug in ARTICLES}
    expected |= {replay.url(f"/real/{name}") for name in replay.site.real}
    assert set(urls) == expected


def test_metadata_kept(crawl, fixtures):
    replay = crawl["replay"]
    demo = {urlsplit(r["url"]).path: r for r in by_source(crawl, "demo")}
    for slug, (title, author, published, _, _) in ARTICLES.items():
        record = demo[f"/news/{slug}.html"]
        assert record["title"] == title
        assert record["author"] == author
        assert record["published"].startswith(published)
        assert record["canonical_url"] == replay.url(f"/news/{slug}.html")
        assert record["lang"] == "bg" and record["license"] == LICENSE
        assert record["http_status"] == 200 and record["fetched_at"]
    truth = json.loads((fixtures / "news_html/htmldate_test_set/ground_truth_dates.json")
                       .read_text(encoding="utf-8"))
    for canonical, fact in truth.items():
        record = demo[f"/real/{fact['file']}"]
        assert record["canonical_url"] == canonical
        assert record["published"][:10] == fact["date"]
        assert record["lang"].startswith("bg")


def test_js_only_article_rendered_by_chromium_plain_pages_stay_http(crawl):
    demo = {urlsplit(r["url"]).path: r for r in by_source(crawl, "demo")}
    js = demo["/news/03-skrita.html"]
    inserted = crawl["paragraphs"]["03-skrita"][-1]
    assert inserted not in crawl["plain_js_page"]              # only a browser sees it
    assert js["via"] == "selenium"
    assert inserted in js["html"] and PARAGRAPHS[0] in js["html"]
    for slug in ("01-most", "02-teatar"):
        assert demo[f"/news/{slug}.html"]["via"] == "http"
        assert PARAGRAPHS[1] in demo[f"/news/{slug}.html"]["html"]
    assert demo["/real/1740081165.html"]["via"] == "http"


def test_unknown_site_is_one_line_error(tmp_path):
    cfg = write_config(tmp_path, {"paths": {"data": str(tmp_path / "data")}}, news=[
        {"name": "alpha", "start_urls": ["http://127.0.0.1:9/rss"],
         "allowed_domains": ["127.0.0.1"]},
        {"name": "beta", "start_urls": ["http://127.0.0.1:9/rss"],
         "allowed_domains": ["127.0.0.1"]}])
    proc = run_module("scrapy", "crawl", "news", "-a", "site=gamma", config=cfg, timeout=60)
    assert proc.returncode == 2
    # checked before Scrapy starts: the error is the only line
    assert proc.stderr.strip() == ("error: unknown news site 'gamma' (configured: alpha, beta)"), \
        proc.stderr


def test_article_files_are_checked(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("title: Без дата\nauthor: А\nsection: Б\n\nТекст.\n", encoding="utf-8")
    with pytest.raises(UserError, match="missing published"):
        parse_article(bad)
