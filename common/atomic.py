"""Write files and folders so a reader never sees them half-written: temp name, then rename."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from common.errors import UserError


def read_record(path: Path) -> dict:
    """A JSON record a stage wrote earlier; {} when missing or unreadable (then not reused)."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename over ``path``.

    On any exception the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        with open(tmp, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` whole.

    The old folder is set aside as ``.NAME.old-*`` for the instant between the two renames; a
    run killed in that instant leaves it there, and the next ``atomic_dir`` on ``path`` puts it
    back, so a reader always finds the old folder or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in sorted(path.parent.glob(f".{path.name}.old-*")):
        if path.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, path)
    tmp = _temp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(folder: str | os.PathLike, name: str = "*") -> int:
    """Delete temp files/folders a killed run left in ``folder`` (names ``.X.tmp-*``).

    ``name`` limits it to the temps of one target (``.name.tmp-*``).
    """
    count = 0
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    for entry in folder.glob(f".{name}.tmp-*"):
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        count += 1
    return count


@contextlib.contextmanager
def stage_lock(path: str | os.PathLike, stage: str) -> Iterator[None]:
    """Hold the lock file ``path`` for the block; a UserError when another run of ``stage`` holds it.

    Two runs of one stage would each clear the other's temp files and race to rename their
    output; the second one stops at once instead. The kernel drops the lock when its holder
    dies, so a killed run leaves nothing to clean up (the file itself stays, unlocked)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            raise UserError(f"another {stage} run (pid {holder}) is working on {path.parent}; "
                            f"wait for it to end (lock {path})") from None
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        yield
