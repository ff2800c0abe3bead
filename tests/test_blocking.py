"""Bot-challenge pages and refusals (``crawler.blocking``): what counts as a block, on challenge
pages written here after the services' public behaviour and on real article pages from the
fixtures, which must never count."""

from __future__ import annotations

import gzip

import pytest

from crawler.blocking import HINT, blocked_sites, challenge, everything_blocked, refusal

# Small pages shaped like the interstitials the services serve (our own text and markup).
CHALLENGES = {
    "Cloudflare": b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="390"></head><body><div class="main-wrapper">
<h1>www.dnevnik.bg</h1><p>Verifying you are human. This may take a few seconds.</p>
<noscript>Enable JavaScript and cookies to continue</noscript>
<script src="/cdn-cgi/challenge-platform/h/b/orchestrate/chl_page/v1?ray=1"></script>
</div></body></html>""",
    "DDoS-Guard": b"""<html><head><title>DDoS-Guard</title></head><body>
<p>Checking your browser before accessing the site.</p>
<script src="/.well-known/ddos-guard/check?context=free_splash"></script></body></html>""",
    "reCAPTCHA": b"""<html><head><title>Access check</title></head><body><form method="post">
<p>Please confirm you are not a robot.</p><div class="g-recaptcha" data-sitekey="x"></div>
</form></body></html>""",
    "a browser check": b"""<html><head><title>Captcha</title></head><body>
<p>Please solve the puzzle to continue.</p></body></html>""",
}


@pytest.mark.parametrize("service", sorted(CHALLENGES))
def test_challenge_pages_are_recognised(service):
    assert challenge(CHALLENGES[service]) == service
    assert refusal(200, CHALLENGES[service]) == f"{service} challenge"
    assert refusal(503, CHALLENGES[service]) == f"{service} challenge"


def test_robots_txt_and_feeds_that_name_a_challenge_are_not_one():
    robots = b"User-agent: *\nDisallow: /*?__cf_chl_rt_tk=\nDisallow: /cdn-cgi/\nSitemap: https://x.bg/s.xml\n"
    feed = """<?xml version="1.0" encoding="utf-8"?>
<!-- generated -->
<rss version="2.0"><channel><title>Новини</title><link>https://x.bg/</link>
<item><title>Google смени reCAPTCHA: are you a robot?</title><link>https://x.bg/news/1</link>
<description>&lt;div class="g-recaptcha"&gt;&lt;/div&gt;</description></item>
</channel></rss>""".encode()
    sitemap = b"""<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
<url><loc>https://x.bg/news/just-a-moment-cf-chl-test</loc></url></urlset>"""
    atom = b"""<feed xmlns="http://www.w3.org/2005/Atom"><title>hCaptcha</title>
<entry><title>hcaptcha.com</title></entry></feed>"""
    for body in (robots, feed, sitemap, atom):
        assert challenge(body) is None, body
        assert refusal(200, body) is None


def test_cloudflare_header_alone_marks_a_challenge():
    assert challenge(b"<html><body></body></html>", {"cf-mitigated": "challenge"}) == "Cloudflare"
    assert challenge(b"<html><body></body></html>", {"cf-mitigated": ""}) is None


def test_refusal_statuses():
    page = b"<html><body>Payment Required</body></html>"
    assert [refusal(status, page) for status in (401, 402, 403, 429)] == [
        "HTTP 401", "HTTP 402", "HTTP 403", "HTTP 429"]
    assert refusal(404, page) is None and refusal(503, page) is None and refusal(200, page) is None


def test_real_article_pages_are_never_challenges(fixtures):
    """482 real pages of the extraction benchmark (some with captcha plug-ins in their comment
    forms) and the Bulgarian news pages."""
    pages = [gzip.decompress(p.read_bytes()) for p in sorted(
        (fixtures / "extraction_benchmarks/trafilatura_eval_half/html").glob("*.html.gz"))]
    pages += [p.read_bytes() for p in sorted((fixtures / "news_html/htmldate_test_set").glob("*.html"))]
    assert len(pages) > 400
    assert sum(b"captcha" in p.lower() for p in pages) >= 10  # the markers do occur in articles
    assert [i for i, page in enumerate(pages) if challenge(page)] == []


def test_a_site_is_blocked_only_when_every_listing_was():
    stats = {"news/listings/dnevnik": 3, "news/listings_blocked/dnevnik": 3,
             "news/blocked_evidence/dnevnik": "HTTP 402 on /rss/",
             "news/listings/bta": 2, "news/listings_blocked/bta": 1,
             "news/blocked_evidence/bta": "HTTP 429 on /bg/rss/free"}
    assert blocked_sites(stats) == ["dnevnik: blocked (HTTP 402 on /rss/, 3 of 3 listings)"]
    assert everything_blocked(stats) is None  # bta still answered a listing
    every = {**stats, "news/listings_blocked/bta": 2}
    assert everything_blocked(every) == ("nothing fetched: bta: blocked (HTTP 429 on /bg/rss/free, "
                                         f"2 of 2 listings) and 1 more; {HINT}")
    assert everything_blocked({**every, "pages/ok": 1}) is None


def test_a_site_whose_every_article_was_a_challenge_is_blocked():
    stats = {"news/listings/offnews": 1, "news/articles_blocked/offnews": 4,
             "news/blocked_evidence/offnews": "DDoS-Guard challenge on /news/1.html"}
    assert blocked_sites(stats) == [
        "offnews: blocked (DDoS-Guard challenge on /news/1.html, 4 of 4 articles)"]
    assert blocked_sites({**stats, "news/articles/offnews": 1}) == []  # some articles came through
