"""The User-Agent check every command that fetches from the web runs before anything else.

Wikimedia's User-Agent policy (and the news sites, which see the same agent) asks for
``<client>/<version> (<contact>) <library>/<version>`` with a contact that reaches the operator;
clients without one "may be blocked without notice". So a command whose targets include a host
that is not loopback refuses to start (one line naming ``crawl.user_agent``, exit 2, nothing
fetched or written) while the agent is the shipped placeholder, names no contact (an e-mail
address or a URL in parentheses), or names one that reaches nobody: a reserved domain
(example.org/.com/.net, .invalid, .test, .example, .localhost, .local, localhost) or an IP address
that is not global (127.0.0.1, 10.x, 192.168.x, link-local, ::1). Loopback targets (127.0.0.0/8,
::1, localhost: the demo and the tests) are exempt; a URL's scheme is read case-blind. The library
token (``Scrapy/<version>``) is appended when the agent has no ``name/version`` token after its
contact.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Iterable
from urllib.parse import urlsplit

import scrapy

from common.config import SCHEMA
from common.errors import UserError

FORM = "<client>/<version> (<contact>) <library>/<version>"
PLACEHOLDER = SCHEMA["crawl"]["user_agent"].default
SCRAPY = f"Scrapy/{scrapy.__version__}"
URLLIB = f"Python-urllib/{sys.version_info.major}.{sys.version_info.minor}"

_RESERVED = {"example.org", "example.com", "example.net", "localhost"}
_RESERVED_TLDS = ("invalid", "test", "example", "localhost", "local")
_EMAIL = re.compile(r"[\w.+-]+@([\w-]+(?:\.[\w-]+)+)")
_TOKEN = re.compile(r"[A-Za-z][\w.+-]*/\d[\w.+-]*")  # Scrapy/2.11.2, httpx/0.27
_URL = re.compile(r"https?://(\[[^\]\s]*\]|[^/\s;:,)]+)", re.I)


def loopback(url: str) -> bool:
    """``url`` names a loopback host (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _reserved(host: str) -> bool:
    """``host`` (a name or an IP literal) reaches nobody on the public web."""
    host = host.lower().rstrip(".").strip("[]")
    try:
        return not ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return (host in _RESERVED or any(host.endswith("." + d) for d in _RESERVED)
            or host.rsplit(".", 1)[-1] in _RESERVED_TLDS)


def problem(agent: str) -> str | None:
    """What is wrong with ``agent`` for the public web; None when it names a real contact."""
    if agent.strip().startswith(PLACEHOLDER):  # (a library token may follow)
        return "is the shipped placeholder"
    contact = " ".join(re.findall(r"\(([^)]*)\)", agent))
    hosts = _EMAIL.findall(contact) + _URL.findall(contact)
    if not hosts:
        return "names no contact (an e-mail address or URL in parentheses)"
    reserved = [h for h in hosts if _reserved(h)]
    if reserved:
        return f"names the reserved domain {reserved[0]}, which reaches nobody"
    return None


def with_library(agent: str, library: str = SCRAPY) -> str:
    """``agent`` with ``library`` appended unless a ``name/version`` token other than the client
    stands outside its parentheses (before or after the contact)."""
    outside = re.sub(r"\([^)]*\)", " ", agent).split()
    return agent if any(_TOKEN.fullmatch(t) for t in outside[1:]) else f"{agent.rstrip()} {library}"


def checked(agent: str, urls: Iterable[str], library: str = SCRAPY) -> str:
    """The agent to send to ``urls`` (its library token appended); a UserError when one of them
    is on the public web and the agent does not name a contact that reaches its operator."""
    remote = [u for u in urls
              if urlsplit(u).scheme.lower() in ("http", "https") and not loopback(u)]
    why = problem(agent) if remote else None
    if why:
        host = urlsplit(remote[0]).hostname
        raise UserError(f"crawl.user_agent {why}: set it to {FORM} with a contact that reaches "
                        f"you (needed for {host} and any public host)")
    return with_library(agent, library)
