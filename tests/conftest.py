"""Shared test set-up: the real fixtures folder, and the legacy-Keras switch before any TF import."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.util import unavailable

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

ROOT = Path(__file__).resolve().parent.parent


def _fixtures_dir() -> Path:
    return Path(os.environ.get("BG_FIXTURES") or ROOT.parent / "shared" / "fixtures")


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """``../shared/fixtures`` (or $BG_FIXTURES). Missing: skip on a user's clone, fail under CI."""
    path = _fixtures_dir()
    if not path.is_dir():
        unavailable(f"fixtures folder {path}", "set BG_FIXTURES to run this test")
    return path
