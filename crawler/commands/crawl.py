"""``scrapy crawl`` that reports a bad spider argument (a ``UserError``) in one line, exit code 2.

Scrapy would log a traceback and exit 1 for an exception raised while the spider is created
(e.g. ``-a titles=missing.txt``); every other stage of this project prints ``error: ...`` and
exits 2, and so does this command. A spider with a ``check_arguments(settings, **args)`` has its
arguments checked before Scrapy starts (so the error is the only line; ``--check`` stops there),
and then the User-Agent against the hosts they name (``crawler.agent``: a placeholder or
contact-less agent stops a crawl of the public web before anything is fetched or written); for
the others a UserError raised while the crawl starts is caught. Other failures are logged as Scrapy logs them.
A crawl that stored nothing because every fetch failed (``crawler.extensions.nothing_fetched``)
ends with one ``error: <cause>`` line and exit code 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError
from scrapy.spiderloader import SpiderLoader
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from common.errors import UserError
from crawler import agent

logger = logging.getLogger(__name__)


class Command(ScrapyCrawlCommand):
    user_error = False

    def add_options(self, parser) -> None:
        super().add_options(parser)
        parser.add_argument("--check", action="store_true",
                            help="check the spider arguments and exit (make crawl checks the news "
                                 "spider's before the wiki crawl starts)")

    def process_options(self, args: list[str], opts) -> None:
        super().process_options(args, opts)
        if len(args) != 1:
            return
        try:
            spidercls = SpiderLoader.from_settings(self.settings).load(args[0])
        except KeyError:
            return  # Scrapy reports an unknown spider itself
        check = getattr(spidercls, "check_arguments", None)
        if check is not None:
            try:
                checked = check(self.settings, **opts.spargs)
                sent = agent.checked(self.settings["USER_AGENT"], checked.urls())
                self.settings.set("USER_AGENT", sent, priority="cmdline")  # -s: library token too
            except UserError as exc:
                print(f"error: {exc}", file=sys.stderr)
                raise SystemExit(2) from None
            except TypeError as exc:  # an argument the spider does not take
                raise UsageError(f"spider {args[0]}: {exc}") from None
        if opts.check:
            raise SystemExit(0)

    def run(self, args: list[str], opts) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name")
        assert self.crawler_process
        crawler = self._create_crawler(args[0])
        running = self.crawler_process.crawl(crawler, **opts.spargs)
        if isinstance(running, Deferred):
            running.addErrback(self._failed)
        else:
            running.add_done_callback(self._task_done)
        self.crawler_process.start()
        if self.user_error:
            self.exitcode = 2
        elif self.crawler_process.bootstrap_failed:
            self.exitcode = 1
        elif crawler.stats is not None and crawler.stats.get_value("crawl/failed"):
            print(f"error: {crawler.stats.get_value('crawl/failed')}", file=sys.stderr)
            self.exitcode = 1

    def _report(self, exc: BaseException) -> bool:
        if isinstance(exc, UserError):
            print(f"error: {exc}", file=sys.stderr)
            self.user_error = True
            return True
        return False

    def _failed(self, failure: Failure) -> Failure | None:
        return None if self._report(failure.value) else failure

    def _task_done(self, task: asyncio.Task) -> None:
        exc = None if task.cancelled() else task.exception()
        if exc is not None and not self._report(exc):
            logger.error("crawl failed", exc_info=exc)
