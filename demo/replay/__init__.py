"""Replay servers on 127.0.0.1 for the tests, the demo and the benchmarks: real sites' shapes, offline.

- ``core``: the server (``ReplayServer``: sites and files, gzip, Range/ETag/416), its ``Faults``
  (slow, stall, truncate) and ``route``, the table every site routes through;
- ``pages`` and ``wikitext``: the wiki's pages (files or generated) and the wikitext converter;
- ``wiki``: the MediaWiki Action API (``WikiReplay``);
- ``articles``, ``news_pages``, ``legacy`` and ``news``: a news site with feeds, sitemaps and
  archives (``NewsReplay``);
- ``dump``: Wikimedia Enterprise HTML dumps (the generator) and their download mirror;
- ``__main__``: the command line, ``python -m demo.replay wiki|news``.

Site files (both shapes) are a header of ``key: value`` lines, a blank line, then the body.
A new shape takes a few lines; e.g. a dump mirror with a runs listing and a resumable, slow file::

    def listing(req: Request) -> Response | None:
        if req.path == "/runs/":
            return Response(200, b'<a href="20261101/">20261101/</a>', "text/html")
        return None                                        # not mine: the next site, then 404

    with ReplayServer(listing, files={"/runs/20261101/dump.tar.gz": tar_path},
                      faults=Faults(rate=2_000_000, only=r"\\.tar\\.gz$")) as srv:
        url = srv.url("/runs/20261101/dump.tar.gz")         # Range, ETag, 206 and 416 included
        srv.faults.stall_after = 100_000                   # later bodies stop after 100 kB
"""
