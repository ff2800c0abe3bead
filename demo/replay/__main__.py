"""Serve a replay in the foreground: the MediaWiki API of a folder of page files, or a news site.

    python -m demo.replay wiki --site demo/site/wiki --port 8765
    python -m demo.replay news --site demo/site/news --port 8766 [--fixtures ../shared/fixtures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import UserError, cli_main
from demo.replay.news import NewsReplay
from demo.replay.pages import load_site
from demo.replay.wiki import WikiReplay

SITE = Path(__file__).parent.parent / "site"



@cli_main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    shapes = parser.add_subparsers(dest="shape", required=True)
    wiki = shapes.add_parser("wiki", help="the MediaWiki Action API of a folder of page files")
    wiki.add_argument("--site", type=Path, default=SITE / "wiki",
                      help="folder of page *.txt files (default: the bundled demo wiki)")
    wiki.add_argument("--port", type=int, default=8765)
    wiki.add_argument("--maxlag-faults", type=int, default=0, help="answer maxlag this many times")
    wiki.add_argument("--ratelimit-faults", type=int, default=0, help="answer 429 this many times")
    news = shapes.add_parser("news", help="a news site of a folder of article files")
    news.add_argument("--site", type=Path, default=SITE / "news",
                      help="folder of article *.txt files (default: the bundled demo site)")
    news.add_argument("--port", type=int, default=8766)
    news.add_argument("--fixtures", type=Path, default=None,
                      help="shared fixtures folder: also serve the legacy feeds and real pages")
    args = parser.parse_args(argv)
    try:
        if args.shape == "wiki":
            pages = load_site(args.site)
            server = WikiReplay(pages, args.port, maxlag_faults=args.maxlag_faults,
                                ratelimit_faults=args.ratelimit_faults)
            banner = f"MediaWiki replay: {len(pages)} pages, API at {server.api}"
        else:
            if args.fixtures is not None and not args.fixtures.is_dir():
                raise UserError(f"fixtures folder not found: {args.fixtures}")
            server = NewsReplay(args.site, args.port, args.fixtures)
            banner = (f"news replay of {args.site} on {server.url()} (rss.xml, sitemap.xml, "
                      f"{len(server.site.articles)} articles"
                      + (f", {len(server.site.legacy)} legacy feeds" if server.site.legacy else "")
                      + ")")
    except OSError as exc:
        raise UserError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    server.serve_until_interrupted(banner)


if __name__ == "__main__":
    main()
