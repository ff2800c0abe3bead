"""Sites that turn a crawler away, as the public reports of 2026 saw Bulgarian news sites do.

``Refusing(402)`` answers every path, robots.txt included, with that status and a short page
(dnevnik.bg answered HTTP 402 to a non-browser client on its feed); ``Refusing(403,
challenge=True)`` answers with a bot-challenge interstitial instead: ``cf-mitigated: challenge``
and a small "Just a moment..." page that loads a challenge script and holds no article (the
markup is ours, shaped after what such services serve).
"""

from __future__ import annotations

from demo.replay.core import HTML, Request, Response, Tally

CHALLENGE_PAGE = b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta name="robots" content="noindex,nofollow"><meta http-equiv="refresh" content="360"></head>
<body><div class="main-wrapper" role="main"><div class="main-content">
<h1>Verifying you are human. This may take a few seconds.</h1>
<noscript>Enable JavaScript and cookies to continue</noscript></div></div>
<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray=replay"></script>
</body></html>"""


class Refusing:
    """A site that refuses every request: ``status`` and a short page, or a challenge page."""

    def __init__(self, status: int = 402, challenge: bool = False):
        self.status, self.challenge = status, challenge
        self.counts = Tally()

    def __call__(self, request: Request) -> Response:
        self.counts.add(f"{request.method} {request.path}")
        if self.challenge:
            return Response(self.status, CHALLENGE_PAGE, HTML, {"cf-mitigated": "challenge"})
        return Response(self.status, f"<html><body><h1>{self.status}</h1><p>Access to this "
                        "resource requires a subscription.</p></body></html>".encode(), HTML)
