"""Sites that turn the crawler away: refusal statuses and bot-challenge pages.

A listing (feed, robots.txt, sitemap, daily archive page) is *blocked* when, after the retries,
it answers 401, 402, 403 or 429, or a challenge page instead of a feed or an article. A
*challenge page* is what bot protection serves in place of the content: Cloudflare's
``cf-mitigated: challenge`` header, or a small HTML page (under ``CHALLENGE_MAX_BYTES``; not a
robots.txt or other text without HTML tags, nor a feed or sitemap, whose text may name them) with no
article text (under ``ARTICLE_WORDS`` words outside scripts and styles) that carries one of the markers of the
common services (Cloudflare's "Just a moment..." and ``/cdn-cgi/challenge-platform/``, DDoS-Guard,
Sucuri, Imperva/Incapsula, DataDome, PerimeterX, reCAPTCHA, hCaptcha, Turnstile, "enable
JavaScript and cookies to continue"). A real article that merely embeds a captcha in its comment
form is long and keeps its paragraphs, so it is not one.

The news spider counts, per site, in the crawl stats: ``news/listings/<site>`` (listings
answered or failed), ``news/listings_blocked/<site>``, ``news/articles/<site>`` (stored),
``news/articles_blocked/<site>`` (challenge pages instead of articles) and
``news/blocked_evidence/<site>`` (the first refusal, e.g. ``HTTP 402 on /rss/``); a site whose
every listing was blocked, or that stored no article because each was a challenge page, is
reported in the summary. A challenge page answered 200 counts as a failed fetch
(``fetch/failed/challenge/<host>``), and is never rendered in Chromium (that would run its
script: posing as a browser). This project never poses as a browser: the fix is to ask the site.
"""

from __future__ import annotations

import re

from scrapy.http import Response

BLOCK_STATUSES = frozenset({401, 402, 403, 429})
CHALLENGE_MAX_BYTES = 64 * 1024
ARTICLE_WORDS = 150
HINT = "ask the site for access; this project never poses as a browser"
# a 401/403 may also be a CDN turning away agents that name nobody
AGENT_HINT = "set crawl.user_agent to name you and a contact, or "

_MARKERS = [(name, re.compile(pattern, re.I)) for name, pattern in (
    ("Cloudflare", r"<title>\s*(just a moment|attention required)|/cdn-cgi/challenge-platform/"
                   r"|cf[-_]chl[-_]|cf-browser-verification"),
    ("Turnstile", r"cf-turnstile|challenges\.cloudflare\.com/turnstile"),
    ("DDoS-Guard", r"ddos-guard"),
    ("Sucuri", r"sucuri website firewall|sucuri_cloudproxy"),
    ("Imperva", r"_incapsula_resource|incapsula incident"),
    ("DataDome", r"captcha-delivery\.com|datadome"),
    ("PerimeterX", r"px-captcha|perimeterx"),
    ("reCAPTCHA", r"g-recaptcha|google\.com/recaptcha"),
    ("hCaptcha", r"h-captcha|hcaptcha\.com"),
    ("a browser check", r"checking (if the site connection is secure|your browser)"
                        r"|enable javascript and cookies to continue|are you a robot"
                        r"|<title>[^<]*captcha"),
)]
_HTML = re.compile(r"<(html|head|body|title|meta|script|div|noscript|iframe|form)\b", re.I)
_FIRST_ELEMENT = re.compile(r"<([A-Za-z][\w.-]*:)?([A-Za-z][\w.-]*)")  # after <?xml ?>, <!-- -->
_XML_LISTINGS = {"rss", "rdf", "feed", "urlset", "sitemapindex"}
_INVISIBLE = re.compile(r"<(script|style|noscript)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")


def challenge(body: bytes, headers: dict[str, str] | None = None) -> str | None:
    """The bot-protection service whose challenge page ``body`` is; None for any other page."""
    if (headers or {}).get("cf-mitigated", "").lower() == "challenge":
        return "Cloudflare"
    if len(body) > CHALLENGE_MAX_BYTES:
        return None
    text = body.decode("utf-8", "replace")
    first = _FIRST_ELEMENT.search(text)
    if not _HTML.search(text) or (first and first.group(2).lower() in _XML_LISTINGS):
        return None  # robots.txt, a feed or a sitemap: its text may name a challenge, not be one
    words = _TAG.sub(" ", _INVISIBLE.sub(" ", text)).split()
    if len(words) >= ARTICLE_WORDS:  # an article (with a captcha in its comment form, say)
        return None
    return next((name for name, marker in _MARKERS if marker.search(text)), None)


def headers_of(response: Response) -> dict[str, str]:
    """The one header of a Scrapy ``response`` that ``challenge`` reads, decoded."""
    return {"cf-mitigated": response.headers.get("cf-mitigated", b"").decode("latin-1")}


def refusal(status: int, body: bytes, headers: dict[str, str] | None = None) -> str | None:
    """Why an answer turns the crawler away (``HTTP 402``, ``Cloudflare challenge``); else None."""
    service = challenge(body, headers)
    if service:
        return f"{service} challenge"
    return f"HTTP {status}" if status in BLOCK_STATUSES else None


def blocked_sites(stats: dict) -> list[str]:
    """``<site>: blocked (<evidence>, N of N listings)`` for every site whose listings all were
    blocked, or whose articles all were challenge pages (``N of N articles``)."""
    lines = []
    for key, tried in sorted(stats.items()):
        if not key.startswith("news/listings/"):
            continue
        site = key.removeprefix("news/listings/")
        evidence = stats.get(f"news/blocked_evidence/{site}")
        blocked = stats.get(f"news/listings_blocked/{site}", 0)
        challenged = stats.get(f"news/articles_blocked/{site}", 0)
        if tried and blocked == tried:
            lines.append(f"{site}: blocked ({evidence}, {blocked} of {tried} listings)")
        elif challenged and not stats.get(f"news/articles/{site}", 0):
            lines.append(f"{site}: blocked ({evidence}, {challenged} of {challenged} articles)")
    return lines


def everything_blocked(stats: dict) -> str | None:
    """The one line of a crawl that stored nothing because every site turned it away; else None."""
    blocked = blocked_sites(stats)
    sites = [k for k in stats if k.startswith("news/listings/")]
    if not blocked or len(blocked) < len(sites) or stats.get("pages/ok", 0):
        return None
    more = f" and {len(blocked) - 1} more" if len(blocked) > 1 else ""
    agent = AGENT_HINT if re.search(r"\(HTTP 40[13] ", blocked[0]) else ""
    return f"nothing fetched: {blocked[0]}{more}; {agent}{HINT}"
