"""What the commands share: the store URL, opening an engine, output helpers."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TextIO, TypeAlias

from ..backends import open_engine
from ..config import resolve_url
from ..ports.engine import Engine
from ..store import Stateport
from ..store import open as open_store

__all__ = [
    "PROGRESS_INTERVAL",
    "CommandError",
    "Commands",
    "Handler",
    "Progress",
    "command_group",
    "engine_at",
    "human_size",
    "json_flag",
    "store_of",
    "store_url",
    "subcommand",
]

Handler = Callable[[argparse.Namespace], Coroutine[Any, Any, int]]
"""A command: takes the parsed arguments, returns the exit status."""

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""Where a command group registers its subcommands."""

PROGRESS_INTERVAL = 1.0
"""Seconds between two progress lines on stderr."""


class CommandError(Exception):
    """A failure of the command itself (a file it cannot read, ...): ``error: <message>``."""


def store_url(args: argparse.Namespace) -> tuple[str, str]:
    """The store URL and where it came from (``--url``, the environment, a file, default)."""
    explicit: str | None = getattr(args, "url", None)
    if explicit is not None and not explicit.strip():
        # an empty --url (say, from an unset shell variable) must not fall back to the default
        raise CommandError("--url is empty: give a store URL, e.g. sqlite:///./state.db")
    return resolve_url(explicit)


def command_group(
    commands: Commands, common: argparse.ArgumentParser, name: str, *, help: str, description: str
) -> Commands:
    """``stateport <name> COMMAND``: the group's parser; returns where its commands go."""
    group = commands.add_parser(name, parents=[common], help=help, description=description)
    return group.add_subparsers(
        title="commands", dest=f"{name}_command", required=True, metavar="COMMAND"
    )


def subcommand(
    commands: Commands,
    common: argparse.ArgumentParser,
    name: str,
    handler: Handler,
    *,
    help: str,
    description: str,
) -> argparse.ArgumentParser:
    """A command that runs ``handler``; add its arguments to the parser returned."""
    parser = commands.add_parser(name, parents=[common], help=help, description=description)
    parser.set_defaults(handler=handler)
    return parser


def json_flag(parser: argparse.ArgumentParser) -> None:
    """Give a listing command ``--json`` (one JSON object per line)."""
    parser.add_argument("--json", action="store_true", help="print JSON, one object per line")


def store_of(args: argparse.Namespace, *, create: bool) -> AbstractAsyncContextManager[Stateport]:
    """The store the command's URL names (see :func:`store_url`), opened and migrated.

    ``create=False`` for commands that only look: a store that does not exist
    yet is an error instead of being created.
    """
    url, _ = store_url(args)
    return open_store(url, create=create)


@asynccontextmanager
async def engine_at(url: str, *, create: bool = True) -> AsyncIterator[Engine]:
    """The engine at ``url``, opened without applying migrations, closed on exit.

    ``create=False`` refuses to create a store that does not exist (a typo in a
    URL given to a command that only looks must not leave an empty database).
    """
    engine = await open_engine(url, create=create)
    try:
        yield engine
    finally:
        await engine.aclose()


def human_size(n: int) -> str:
    """``n`` bytes for people: ``512 B``, ``3.0 MiB``."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


class Progress:
    """Progress lines on stderr, at most one per :data:`PROGRESS_INTERVAL` seconds.

    On a terminal the line is rewritten in place; otherwise each report is a
    line of its own. Nothing is shown before the first interval has passed, so a
    quick operation stays quiet. Safe to call from a worker thread.
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        *,
        fmt: Callable[[int], str] = human_size,
        stream: TextIO | None = None,
    ) -> None:
        self._label = label
        self._total = total
        self._fmt = fmt
        self._stream = stream if stream is not None else sys.stderr
        try:
            self._tty = self._stream.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self._interval = PROGRESS_INTERVAL
        self._last = time.monotonic()
        self._pending_line = False
        self.shown = False

    def update(self, done: int) -> None:
        """Report ``done`` if the last report is old enough."""
        now = time.monotonic()
        if now - self._last < self._interval:
            return
        self._last = now
        self._emit(done)

    def clear(self) -> None:
        """Take a rewritten progress line off the terminal (before other output)."""
        if self._pending_line:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._pending_line = False

    def finish(self, done: int, *, force: bool = False) -> None:
        """Show the final count if anything was shown (or ``force``), and end the line."""
        if self.shown or force:
            self._emit(done)
        if self._pending_line:
            self._stream.write("\n")
            self._stream.flush()
            self._pending_line = False

    def _emit(self, done: int) -> None:
        text = f"{self._label}: {self._fmt(done)}"
        if self._total:
            text += f" of {self._fmt(self._total)} ({100 * done // self._total}%)"
        if self._tty:
            self._stream.write(f"\r{text}\x1b[K")
            self._pending_line = True
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self.shown = True
