"""The news site's HTML pages, with real boilerplate: listings (section, tag, day) and articles.

Every page has a menu, "most read", a cookie notice, a newsletter box and a footer; articles add
tags, comments, rel=canonical, og:/article: meta tags and JSON-LD. ``js`` articles are inserted by
inline JavaScript (``js: timeout``/``fetch``: after the load event, by a timer or from
``/news/<slug>.json``), so only a browser sees them. Pages also link to another host (``other``)
and listings to a draft under ``/news/drafts/``.
"""

from __future__ import annotations

import base64
import html
import json
from datetime import datetime, timedelta
from urllib.parse import quote

from demo.replay.articles import Article

SITE_NAME = "Демо новини"
_BG_MONTHS = ("януари", "февруари", "март", "април", "май", "юни", "юли", "август",
              "септември", "октомври", "ноември", "декември")


def _bg_date(day: str) -> str:
    """``YYYY-MM-DD`` as a Bulgarian date: „5 март 2026 г.“."""
    y, m, d = (int(x) for x in day.split("-"))
    return f"{d} {_BG_MONTHS[m - 1]} {y} г."


class NewsPages:
    """The HTML pages of ``articles`` (newest first) in ``sections``; ``base`` is this site's
    address, ``other`` another host's."""

    def __init__(self, articles: list[Article], sections: list[str]):
        self.articles = articles
        self.sections = sections

    def _chrome(self, base: str, other: str, title: str, main: str, head: str = "",
                current: Article | None = None) -> bytes:
        menu = "".join(f'<li><a href="{base}/section/{quote(s)}">{html.escape(s)}</a></li>'
                       for s in self.sections)
        most_read = "".join(
            f'<li><a href="{base}/news/{quote(a.slug)}.html">{html.escape(a.title)}</a></li>'
            for a in self.articles[:5] if a is not current)
        page = f"""<!DOCTYPE html>
<html lang="bg">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} | {SITE_NAME}</title>
{head}
</head>
<body>
<header class="site-header">
  <a class="logo" href="{base}/">{SITE_NAME}</a>
  <nav class="main-menu"><ul><li><a href="{base}/">Начало</a></li>{menu}</ul></nav>
  <form class="search" action="{base}/search"><input name="q" placeholder="Търсене"></form>
</header>
<div id="cookie-notice" class="cookie-notice">Този сайт използва бисквитки, за да подобри
вашето преживяване. Продължавайки, вие се съгласявате с <a href="{base}/cookies">политиката
за бисквитки</a>. <button>Приемам</button></div>
<div class="layout">
<main>{main}</main>
<aside class="sidebar">
  <section class="most-read"><h3>Най-четени</h3><ol>{most_read}</ol></section>
  <section class="partners"><h3>От партньорите</h3><ul>
    <li><a href="{other}/news/{quote(self.articles[-1].slug)}.html">Още новини от мрежата</a></li>
  </ul></section>
  <section class="newsletter"><h3>Бюлетин</h3><p>Абонирайте се за нашия бюлетин и получавайте
  най-важното всяка сутрин.</p></section>
</aside>
</div>
<footer class="site-footer"><p>© 2026 {SITE_NAME}. Всички права запазени.</p>
<ul><li><a href="{base}/about">За нас</a></li><li><a href="{base}/contacts">Контакти</a></li>
<li><a href="{base}/rss.xml">RSS</a></li><li><a href="{base}/cookies">Бисквитки</a></li></ul>
</footer>
</body>
</html>
"""
        return page.encode("utf-8")

    def listing_page(self, base: str, other: str, heading: str, shown: list[Article],
                     more: str = "") -> bytes:
        """A section, tag or day listing: article cards (and a draft preview link)."""
        cards = "".join(
            f'<article class="card"><h2><a href="{base}/news/{quote(a.slug)}.html">'
            f'{html.escape(a.title)}</a></h2><p class="lead">{html.escape(a.paragraphs[0][:160])}'
            f'…</p><span class="date">{_bg_date(a.published)}</span>'
            + "".join(f' <a class="tag" href="{base}/tag/{quote(t)}">#{html.escape(t)}</a>'
                      for t in a.tags) + "</article>" for a in shown)
        draft = (f'<p class="preview"><a href="{base}/news/drafts/{quote(shown[0].slug)}.html">'
                 "Предварителен преглед</a></p>" if shown else "")
        return self._chrome(base, other, heading, f'<h1>{html.escape(heading)}</h1><div '
                            f'class="cards">{cards or "<p>Няма новини.</p>"}</div>{draft}{more}')

    def day_page(self, base: str, other: str, day: str) -> bytes:
        """The daily "all news" page, with a link to the day before."""
        before = (datetime.fromisoformat(day) - timedelta(days=1)).date().isoformat()
        return self.listing_page(base, other, f"Всички новини от {_bg_date(day)}",
                                 [a for a in self.articles if a.published == day],
                                 f'<p class="older"><a href="{base}/archive/{before}">По-стари '
                                 "новини</a></p>")

    def article_page(self, base: str, other: str, a: Article, draft: bool = False) -> bytes:
        url = f"{base}/news/{quote(a.slug)}.html"
        published = f"{a.published}T09:00:00+03:00"
        ld = {"@context": "https://schema.org", "@graph": [
            {"@type": "Organization", "@id": f"{base}/#org", "name": SITE_NAME},
            {"@type": "NewsArticle", "headline": a.title, "datePublished": published,
             "author": {"@type": "Person", "name": a.author}, "mainEntityOfPage": url,
             "articleSection": a.section, "inLanguage": "bg",
             "publisher": {"@id": f"{base}/#org"}}]}
        head = (f'<link rel="canonical" href="{url}">\n'
                f'<meta property="og:type" content="article">\n'
                f'<meta property="og:title" content="{html.escape(a.title)}">\n'
                f'<meta property="og:url" content="{url}">\n'
                f'<meta name="author" content="{html.escape(a.author)}">\n'
                f'<meta property="article:published_time" content="{published}">\n'
                f'<meta property="article:section" content="{html.escape(a.section)}">\n'
                '<script type="application/ld+json">'
                f"{json.dumps(ld, ensure_ascii=False)}</script>")
        if a.modified:
            head += f'\n<meta property="article:modified_time" content="{a.modified}T12:00:00+03:00">'
        if draft:
            head += '\n<meta name="robots" content="noindex">'
        if a.late:
            blob = base64.b64encode(json.dumps(a.paragraphs, ensure_ascii=False).encode()).decode()
            source = (f"fetch('/news/{quote(a.slug)}.json').then(function (r) {{ return r.json(); }})"
                      if a.late == "fetch" else  # the text, base64 in the page, after a timer
                      "new Promise(function (done) { setTimeout(done, 150, JSON.parse(new "
                      f"TextDecoder('utf-8').decode(Uint8Array.from(atob('{blob}'), function (c) "
                      "{ return c.charCodeAt(0); })))); })")
            body = ('<div class="article-body" id="article-body"></div>\n<script>\n'
                    "window.addEventListener('load', function () {\n"
                    f"  {source}.then(function (paras) {{\n"
                    "    var box = document.getElementById('article-body');\n"
                    "    paras.forEach(function (t) { var p = document.createElement('p');"
                    " p.textContent = t; box.appendChild(p); });\n"
                    "  });\n});\n</script>")
        elif a.js:
            blob = base64.b64encode(json.dumps(a.paragraphs, ensure_ascii=False).encode()).decode()
            body = ('<div class="article-body" id="article-body"></div>\n<script>\n'
                    "(function () {\n"
                    f'  var data = "{blob}";\n'
                    "  var bytes = Uint8Array.from(atob(data), function (c) "
                    "{ return c.charCodeAt(0); });\n"
                    "  var paras = JSON.parse(new TextDecoder('utf-8').decode(bytes));\n"
                    "  var box = document.getElementById('article-body');\n"
                    "  paras.forEach(function (t) { var p = document.createElement('p');"
                    " p.textContent = t; box.appendChild(p); });\n"
                    "})();\n</script>")
        else:
            body = ('<div class="article-body" id="article-body">'
                    + "".join(f"<p>{html.escape(p)}</p>" for p in a.paragraphs) + "</div>")
        comments = "".join(
            f'<li class="comment"><span class="user">{u}</span><p>{t}</p></li>' for u, t in (
                ("Иван", "Много интересно, благодаря за статията!"),
                ("Мария_72", "А кога ще има продължение? Чакам с нетърпение."),
                ("гост", "Всичко това го знаехме и преди, нищо ново.")))
        tags = "".join(f'<li><a href="{base}/tag/{quote(t)}">{html.escape(t)}</a></li>'
                       for t in a.tags)
        main = f"""<article class="article">
<nav class="breadcrumbs"><a href="{base}/">Начало</a> › <a href="{base}/section/{quote(a.section)}">{html.escape(a.section)}</a></nav>
<h1 class="article-title">{html.escape(a.title)}</h1>
<div class="byline">Автор: <a rel="author" href="{base}/authors/{quote(a.author)}">{html.escape(a.author)}</a>
<time datetime="{published}">{_bg_date(a.published)}</time></div>
{body}
<ul class="tags">{tags}</ul>
<div class="share">Сподели: <a href="#">Facebook</a> <a href="#">X</a> <a href="#">Viber</a></div>
</article>
<section class="comments"><h3>Коментари (3)</h3><ul>{comments}</ul>
<p>Влезте в профила си, за да коментирате.</p></section>"""
        return self._chrome(base, other, a.title, main, head, current=a)
