"""The shipped ``[[crawl.news]]`` sites against what public code and reports (2026-12) say, and the
config shape of an archive reached by a form POST."""

from __future__ import annotations

from datetime import date

import pytest
from scrapy.http import HtmlResponse
from scrapy.settings import Settings

from common import config
from common.errors import UserError
from crawler.arguments import Site
from crawler.metadata import article_metadata
from crawler.spiders import news
from tests.util import ROOT, write_config

SHIPPED = config.load(ROOT / "pipelines.toml")
SITES = {t["name"]: Site(t) for t in SHIPPED.crawl.news}


def test_bnt_feed_is_on_news_bnt_bg():
    bnt = SITES["bnt"]
    assert bnt.start_urls == ["https://news.bnt.bg/bg/rss/news.xml"]
    assert bnt.is_article("https://news.bnt.bg/bg/a/primer-statiya")
    assert bnt.is_article("https://bntnews.bg/bg/a/primer")  # the old host, should the feed link it
    assert not bnt.is_article("https://bntnews.example/bg/a/primer")


def test_the_news_spider_reads_its_sites_from_the_settings(tmp_path):
    """The sites come from the ``NEWS_SITES`` setting (the config loaded once, by the settings),
    not from a config file loaded again."""
    tables = config.load(write_config(tmp_path, {}, news=[{
        "name": "only-here", "allowed_domains": ["127.0.0.1"], "start_urls": ["http://127.0.0.1:9/rss"]}])).crawl.news
    settings = Settings({"NEWS_SITES": tables, "CONFIG_SOURCE": "here.toml"})
    assert [s.name for s in news.options(settings, site="only-here").sites] == ["only-here"]
    with pytest.raises(UserError, match=r"^here\.toml: no \[\[crawl\.news\]\] site configured$"):
        news.options(Settings({"NEWS_SITES": [], "CONFIG_SOURCE": "here.toml"}))


def test_dnevnik_articles_match_but_their_comment_pages_do_not():
    dnevnik = SITES["dnevnik"]
    article = "https://www.dnevnik.bg/bulgaria/2026/07/14/4700001_zaglavie_na_statiyata/"
    assert dnevnik.is_article(article) and dnevnik.is_article(article.rstrip("/"))
    assert not dnevnik.is_article(article + "comments/")
    assert not dnevnik.is_article(article + "comments")
    assert not dnevnik.is_article("https://www.dnevnik.bg/allnews/2026/07/14/")


def test_mediapool_daily_archive_is_a_post_with_rdate():
    (form,) = SITES["mediapool"].archive_forms
    assert form.url == "https://www.mediapool.bg/today.html"
    assert form.fields(date(2026, 7, 14)) == {"rdate": "2026-07-14"}


def test_every_shipped_site_says_what_is_confirmed_and_what_is_not():
    text = (ROOT / "pipelines.toml").read_text(encoding="utf-8")
    before = text.split("[[crawl.news]]")[:-1]  # the text above each site's table
    assert len(before) == len(SITES)
    for chunk in before:
        lines = chunk.rstrip("\n").splitlines()
        comment = []
        while lines and lines[-1].startswith("#"):  # the comment right above the table
            comment.insert(0, lines.pop())
        assert any("UNVERIFIED" in line for line in comment), chunk[-300:]
        assert all("2026-12" in line for line in comment if "Confirmed" in line), comment


def test_date_published_read_from_the_content_attribute():
    page = HtmlResponse("https://www.dnevnik.bg/x/2026/07/14/1_a/", encoding="utf-8", body="""
<html lang="bg"><head><title>Заглавие</title></head><body><article>
<time itemprop="datePublished" content="2026-07-14T09:30:00+03:00">14 юли 2026, 09:30</time>
<p>Текст.</p></article></body></html>""".encode())
    assert article_metadata(page)["published"] == "2026-07-14T09:30:00+03:00"


@pytest.mark.parametrize("forms", [
    [{"url": "https://x.bg/today.html", "form": {"rdate": "today"}}],  # no {date}
    [{"url": "ftp://x.bg/today.html", "form": {"rdate": "{date}"}}],
    [{"url": "https://x.bg/today.html"}],
    ["https://x.bg/today.html"],
])
def test_a_bad_archive_form_is_a_config_error(tmp_path, forms):
    cfg = write_config(tmp_path, {}, news=[{"name": "x", "start_urls": [], "allowed_domains": ["x.bg"],
                                            "archive_forms": forms}])
    with pytest.raises(UserError, match=r"crawl\.news\[0\]\.archive_forms"):
        config.load(cfg)
