"""A small pool of headless Chromium drivers (Selenium 4, Debian's chromedriver by explicit path).

Every method here blocks: call ``RenderPool.render`` from worker threads, never the reactor thread.
A driver starts on first use with a fresh temporary profile (and TMPDIR, so Chromium's own
``org.chromium.Chromium.*`` folders land there too), which is removed when the driver quits.
A crashed driver is replaced and the page tried once more; a page that does not finish loading
within ``timeout`` seconds raises ``RenderTimeout`` and its (possibly hung) driver is replaced.

Late content: real sites insert the article after ``load`` (timers, ``fetch``/XHR). A rendered
page is returned once its article text (paragraphs outside nav/header/footer/aside/form) reaches
``min_chars``, or once it has loaded, no ``fetch``/XHR it started is in flight and its text has
not changed for ``settle`` seconds, or when ``timeout`` seconds have passed since the request
(then as it is). The wait after loading is ``Rendered.waited``, part of ``Rendered.seconds``.

No orphans: every chromedriver starts in a new session, so it and its Chromium processes form one
process group. With a ``registry`` folder (the crawl's job folder) each driver is recorded there
(``browser-<pid>.json``: the group, its temporary folder, the owning process) until it quits;
``reap_orphans`` ends the groups whose owner is gone (a crawl killed with ``kill -9``) once a member
names that driver's folder (command line or TMPDIR), and removes the folder when the group is empty.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shutil
import signal
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait
from urllib3.exceptions import HTTPError as Urllib3Error

from common.atomic import atomic_write

log = logging.getLogger(__name__)

# Headless, and no background traffic: this machine's closed network refuses it, and a crawler
# should fetch only the pages it was asked for.
CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
    "--blink-settings=imagesEnabled=false", "--window-size=1280,2000",
)

# Installed before any page script runs: counts the page's fetch() and XHR requests in flight.
_TRACK_NETWORK_JS = """(() => {
  let pending = 0;
  Object.defineProperty(window, '__bgPendingRequests', {get: () => pending});
  const fetch = window.fetch;
  if (fetch) {
    window.fetch = function (...args) {
      pending++;
      return fetch.apply(this, args).finally(() => { pending--; });
    };
  }
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (...args) {
    pending++;
    this.addEventListener('loadend', () => { pending--; }, {once: true});
    return send.apply(this, args);
  };
})();"""

# [readyState, article text length, whole text length, fetch/XHR in flight]
_STATE_JS = """const body = document.body;
let article = 0;
if (body) {
  for (const p of body.querySelectorAll('p')) {
    if (p.closest('nav, header, footer, aside, form')) continue;
    const n = p.textContent.trim().length;
    if (n >= 40) article += n;
  }
}
return [document.readyState, article, body ? body.textContent.length : 0,
        window.__bgPendingRequests || 0];"""
_POLL_SECONDS = 0.05


class RenderError(Exception):
    """A page could not be rendered."""


class RenderTimeout(RenderError):
    """A page did not finish loading in time."""


@dataclass(frozen=True)
class Rendered:
    url: str    # the URL the browser ended on (after redirects)
    html: str   # the DOM after scripts ran
    seconds: float  # from the request to the returned DOM, the late-content wait included
    waited: float = 0.0  # of which after the page had loaded, waiting for late content


def _stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the process name (state first), None when there
    is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot), None when there is no such process."""
    stat = _stat(pid)
    return int(stat[19]) if stat else None


def group_members(pgid: int) -> list[int]:
    """The processes of process group ``pgid`` that have not exited (a zombie has)."""
    pids = []
    for entry in Path("/proc").iterdir():
        stat = _stat(int(entry.name)) if entry.name.isdigit() else None
        if stat is not None and stat[0] != "Z" and int(stat[2]) == pgid:
            pids.append(int(entry.name))
    return pids


def _names_folder(pid: int, tmp: str) -> bool:
    """Whether ``pid``'s command line or environment names the driver folder ``tmp``.

    Chromium's browser and helper processes carry it in their command line (profile, caches);
    chromedriver only in its environment (``TMPDIR``). The folder name is random, so a group with
    such a member is that driver's, not one that reused its number."""
    proc = Path(f"/proc/{pid}")
    try:
        return (tmp.encode() in (proc / "cmdline").read_bytes()
                or f"TMPDIR={tmp}".encode() in (proc / "environ").read_bytes().split(b"\0"))
    except OSError:  # gone meanwhile, or not ours to read
        return False


def _wait_empty(pgid: int, timeout: float) -> bool:
    """Wait until group ``pgid`` has no live process, at most ``timeout`` seconds; whether it has none."""
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def reap_orphans(registry: Path) -> list[int]:
    """End the browsers recorded in ``registry`` whose owning process is gone; their PIDs."""
    ended = []
    for record_path in sorted(registry.glob("browser-*.json")) if registry.is_dir() else []:
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            record_path.unlink(missing_ok=True)
            continue
        if start_time(record["owner"]) == record["owner_start"]:
            continue  # a live crawl's browser (another worker sharing the job folder)
        pgid, tmp = record["pgid"], record["tmp"]
        members = group_members(pgid)
        if any(_names_folder(pid, tmp) for pid in members):
            # the whole group at once (a fork during the kill is killed too), and the folder only
            # once every member has exited: a dying helper can still write into it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            ended.extend(members)
            if not _wait_empty(pgid, timeout=30.0):
                log.warning("browser process group %d did not exit within 30 s; its folder %s "
                            "is left in place", pgid, tmp)
                continue
        shutil.rmtree(tmp, ignore_errors=True)
        record_path.unlink(missing_ok=True)
    if ended:
        log.warning("ended %d browser process(es) a stopped crawl left running (pids %s)",
                    len(ended), " ".join(map(str, ended)))
    return ended


class _Driver:
    """One Chromium + chromedriver pair (one process group) with its own temporary folder."""

    def __init__(self, chromium: str, chromedriver: str, timeout: float, user_agent: str,
                 registry: Path | None = None):
        self.tmp = tempfile.mkdtemp(prefix="bg-chromium-")
        self.record: Path | None = None
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.tmp}/profile")
        if user_agent:
            options.add_argument(f"--user-agent={user_agent}")
        options.page_load_strategy = "eager"
        service = Service(chromedriver, env={**os.environ, "TMPDIR": self.tmp},
                          popen_kw={"start_new_session": True})
        try:
            self.driver = webdriver.Chrome(options=options, service=service)
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        try:
            if registry is not None:
                self._register(registry, service.process.pid)
            # a hung chromedriver must not block a worker thread forever
            self.driver.command_executor._client_config.timeout = timeout + 10
            # the first navigation of a new browser is slow to leave (seconds): take it here, so
            # a page fetch starts when the caller's per-domain wait ends
            self.driver.get("about:blank")
            self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument",
                                        {"source": _TRACK_NETWORK_JS})
            self.driver.set_page_load_timeout(timeout)
            self.driver.set_script_timeout(timeout)
        except BaseException:
            self.quit()
            raise

    def _register(self, registry: Path, pgid: int) -> None:
        """Record this driver's process group for ``reap_orphans`` of a later run."""
        self.record = registry / f"browser-{pgid}.json"
        with atomic_write(self.record) as fh:
            json.dump({"pgid": pgid, "tmp": self.tmp, "owner": os.getpid(),
                       "owner_start": start_time(os.getpid())}, fh)

    def quit(self) -> None:
        try:
            self.driver.quit()
        except Exception as exc:  # already dead: its processes are gone or being reaped
            log.debug("driver quit: %s", exc)
            self.driver.service.stop()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
            if self.record is not None:
                self.record.unlink(missing_ok=True)


@dataclass
class Lease:
    """A place in the pool, held between ``acquire`` and ``release``; its driver may be replaced."""

    driver: _Driver | None


class RenderPool:
    """Up to ``size`` drivers shared by worker threads; ``close()`` quits them all. With a
    ``registry`` folder the drivers are recorded there while they run (see ``reap_orphans``)."""

    def __init__(self, size: int = 2, *, chromium: str = "/usr/bin/chromium",
                 chromedriver: str = "/usr/bin/chromedriver", timeout: float = 30,
                 user_agent: str = "", min_chars: int = 400, settle: float = 0.5,
                 registry: Path | None = None):
        for path in (chromium, chromedriver):
            if not os.access(path, os.X_OK):
                raise RenderError(f"not an executable: {path} (install Debian's chromium and "
                                  "chromium-driver, or set crawl.chromium / crawl.chromedriver)")
        self.size = size
        self.chromium, self.chromedriver = chromium, chromedriver
        self.timeout, self.user_agent, self.min_chars = timeout, user_agent, min_chars
        self.settle = settle
        self.registry = registry
        self._idle: queue.Queue[_Driver | None] = queue.Queue()
        for _ in range(size):
            self._idle.put(None)  # a free place; its driver starts on first use
        self._all: set[_Driver] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.restarts = 0

    def _start(self) -> _Driver:
        if self._closed:
            raise RenderError("render pool is closed")
        try:
            drv = _Driver(self.chromium, self.chromedriver, self.timeout, self.user_agent,
                          self.registry)
        except (WebDriverException, Urllib3Error, OSError) as exc:
            raise RenderError(f"cannot start Chromium: {str(exc).splitlines()[0]}") from exc
        with self._lock:
            self._all.add(drv)
        return drv

    def _discard(self, drv: _Driver) -> None:
        with self._lock:
            self._all.discard(drv)
        drv.quit()

    def acquire(self) -> Lease:
        """Wait for a free place in the pool and return it with a started driver."""
        drv = self._idle.get()
        try:
            return Lease(drv or self._start())
        except BaseException:
            self._idle.put(drv)
            raise

    def release(self, lease: Lease) -> None:
        self._idle.put(lease.driver)

    def render(self, url: str, lease: Lease | None = None) -> Rendered:
        """Load ``url`` in a pooled browser (``lease``'s, or one acquired for this call) and
        return the DOM once scripts have run."""
        if lease is None:
            lease = self.acquire()
            try:
                return self.render(url, lease)
            finally:
                self.release(lease)
        for attempt in (1, 2):
            if lease.driver is None:
                lease.driver = self._start()
            try:
                return self._load(lease.driver, url)
            except TimeoutException as exc:
                self._discard(lease.driver)
                lease.driver = None
                raise RenderTimeout(f"{url}: no page after {self.timeout:g} s") from exc
            except (WebDriverException, Urllib3Error, OSError) as exc:
                # a crashed browser or driver: replace it and try the page once more
                log.warning("browser failed on %s (%s); restarting it", url,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                self._discard(lease.driver)
                lease.driver = None
                with self._lock:
                    self.restarts += 1
                if attempt == 2:
                    raise RenderError(f"{url}: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")

    def _load(self, drv: _Driver, url: str) -> Rendered:
        start = time.perf_counter()
        driver = drv.driver
        driver.get(url)
        state = WebDriverWait(driver, self.timeout, poll_frequency=_POLL_SECONDS).until(
            lambda d: self._loaded(d.execute_script(_STATE_JS)))
        loaded = time.perf_counter()
        self._wait_for_late_content(driver, state, start + self.timeout)
        end = time.perf_counter()
        return Rendered(driver.current_url, driver.page_source, end - start, end - loaded)

    def _loaded(self, state: list) -> list | None:
        """``state`` once the DOM is parsed and the page has loaded or already has its article."""
        ready, article = state[0], state[1]
        done = ready == "complete" or (ready == "interactive" and article >= self.min_chars)
        return state if done else None

    def _wait_for_late_content(self, driver, state: list, deadline: float) -> None:
        """Poll until the article text reaches ``min_chars``, or the page is loaded, quiet (no
        fetch/XHR in flight) and its text unchanged for ``settle`` seconds, or ``deadline``."""
        changed = time.perf_counter()
        while True:
            ready, article, _, pending = state
            now = time.perf_counter()
            if article >= self.min_chars or now >= deadline:
                return
            if ready == "complete" and not pending and now - changed >= self.settle:
                return
            time.sleep(_POLL_SECONDS)
            previous, state = state, driver.execute_script(_STATE_JS)
            if state[1:3] != previous[1:3] or state[3]:
                changed = time.perf_counter()

    def close(self) -> None:
        """Quit every driver and remove their temporary folders."""
        self._closed = True
        with self._lock:
            drivers, self._all = list(self._all), set()
        for drv in drivers:
            drv.quit()


def selenium_seconds_per_page(url: str, renders: int = 10, pool: RenderPool | None = None,
                              **pool_options) -> dict:
    """Median seconds to render ``url`` (after one warm-up render) through ``pool``, or through a
    new one-driver pool built with ``pool_options`` and closed afterwards."""
    own = pool is None
    pool = pool or RenderPool(1, **pool_options)
    try:
        started = time.perf_counter()
        pool.render(url)
        first = time.perf_counter() - started
        times = [pool.render(url).seconds for _ in range(renders)]
    finally:
        if own:
            pool.close()
    return {"renders": renders, "median_s": statistics.median(times), "min_s": min(times),
            "max_s": max(times), "first_render_s": first}
