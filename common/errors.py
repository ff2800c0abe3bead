"""One-line user errors: every stage exits 2 with a single line that says what and where."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])


class UserError(Exception):
    """Bad input (config, files, arguments): reported in one line, exit code 2."""


def cli_main(func: F) -> F:
    """Wrap a command's ``main`` so a UserError prints one line and exits 2, Ctrl-C exits 130."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("interrupted: re-run the same command to resume (finished files are whole; "
                  "a download continues from its .partial file)", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper  # type: ignore[return-value]
