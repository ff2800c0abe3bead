"""Helpers the tests share: free loopback ports, a test config writer, running the CLIs."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from common import config

ROOT = Path(__file__).resolve().parent.parent


def free_port(count: int = 1) -> int:
    """The first of ``count`` consecutive free TCP ports on 127.0.0.1.

    Drawn below Linux's ephemeral range (32768-60999), where the kernel picks the local ports of
    outgoing connections: a port found free there can be taken by any client socket before the
    server under test binds it (the demo's news port, wiki port + 1, once was)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 32768 - count)
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + count):
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port))
            except OSError:
                continue
        return base
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1 in 20000-32767")


def unavailable(what: str, hint: str) -> None:
    """A piece the test needs is missing: a failure under CI (``make test`` installs everything,
    so it is a defect there), a skip on a user's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing under CI")
    pytest.skip(f"{what} is missing ({hint})")


# the tests' own agent (they talk to 127.0.0.1 only); a test may set another
TEST_AGENT = "bg-gpt2-tests/0.1 (+https://github.com/bg-gpt2/bg-gpt2; test run on 127.0.0.1)"


def write_config(folder: Path, sections: dict, news: list[dict] | None = None) -> Path:
    """Write ``folder/pipelines.toml`` from ``{"section" or "a.b": {key: value}}`` tables
    (``crawl.user_agent`` is ``TEST_AGENT`` unless given)."""
    sections = {**sections, "crawl": {"user_agent": TEST_AGENT, **sections.get("crawl", {})}}
    return config.write(folder / "pipelines.toml", sections, news or ())


def run_module(module: str, *args: str, config: Path | None = None, env: dict | None = None,
               timeout: float = 600, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` as a user would; returns the completed process."""
    full_env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    if config is not None:
        full_env["BG_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
