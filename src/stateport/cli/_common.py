"""What the commands share: the store URL, opening an engine, output helpers."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import fields, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any, TextIO, TypeAlias, TypeVar

from .. import _time
from ..backends import open_engine
from ..config import resolve_url
from ..digest import ContentDigest
from ..errors import ValidationError
from ..ports.engine import Engine
from ..store import Stateport
from ..store import open as open_store

__all__ = [
    "DONE",
    "PROGRESS_INTERVAL",
    "CommandError",
    "Commands",
    "Handler",
    "Progress",
    "StatusLine",
    "command_group",
    "counted",
    "engine_at",
    "human_size",
    "human_time",
    "json_arg",
    "json_flag",
    "print_listing",
    "print_record",
    "record_json",
    "report",
    "store_of",
    "store_url",
    "subcommand",
]

T = TypeVar("T")

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


def json_flag(parser: argparse.ArgumentParser, *, what: str = "one object per line") -> None:
    """Give a command ``--json``: listings print one JSON object per line, write
    commands one object saying what they did (``what`` says which)."""
    parser.add_argument("--json", action="store_true", help=f"print JSON, {what}")


DONE = "one object saying what was done"
"""``json_flag(parser, what=DONE)``: the ``--json`` of a write command."""


def report(args: argparse.Namespace, line: str, data: Mapping[str, Any]) -> None:
    """What a write command did: ``line`` for people, or ``data`` as one JSON object
    with ``--json``."""
    print(json.dumps(data) if args.json else line, flush=True)


def record_json(value: Any) -> Any:
    """A record of a store (a dataclass) as JSON, field by field under the fields'
    names: times as stored (ISO 8601 UTC), enums by value, digests as hex, tuples
    as lists, mappings (vector clocks too) as objects, nested records alike."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: record_json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return _time.to_text(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, ContentDigest):
        return value.as_str()
    if isinstance(value, (list, tuple)):
        return [record_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: record_json(v) for k, v in value.items()}
    return value


def print_listing(records: Iterable[T], as_json: bool, line: Callable[[T], str]) -> None:
    """A listing: a ``line`` per record for people, or one JSON object per line
    (:func:`record_json`)."""
    for r in records:
        print(json.dumps(record_json(r)) if as_json else line(r))


def print_record(data: Mapping[str, Any], as_json: bool) -> None:
    """One record: a JSON object, or for people a ``<field>  <value>`` line per field."""
    if as_json:
        print(json.dumps(data))
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        shown = value if isinstance(value, str) or value is None else json.dumps(value)
        print(f"{key:{width}}  {'-' if shown is None else shown}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large a number")
    return value


def json_arg(text: str, what: str) -> Any:
    """The JSON value of the command-line argument ``what`` (``-``: read it from stdin).

    Text that is not JSON (NaN, Infinity and numbers too large for a float
    included) is a :class:`ValidationError`.
    """
    if text == "-":
        try:
            text = sys.stdin.read()
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"cannot read {what} from stdin: {e}") from e
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as e:  # not JSON, a NaN, nested too deeply
        raise ValidationError(f"{what} is not JSON: {e}") from None


def store_of(args: argparse.Namespace, *, create: bool) -> AbstractAsyncContextManager[Stateport]:
    """The store the command's URL names (see :func:`store_url`), opened and migrated.

    ``create=False`` for commands that only look, and for writes to records that
    must exist already: a store that does not exist yet is an error instead of
    being created (a typo in a URL must not leave an empty database).
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


def counted(n: int, noun: str) -> str:
    """``1 event``, ``3 events``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def human_time(value: datetime | None) -> str:
    """A stored time for people: ``2026-11-22 01:02:03`` (UTC), or ``-`` for none."""
    return "-" if value is None else _time.to_text(value)[:19].replace("T", " ")


class StatusLine:
    """A status line on stderr: rewritten in place on a terminal, otherwise written
    as a line of its own; :meth:`due` says whether ``interval`` seconds have passed
    since the last one. What the progress displays share."""

    def __init__(self, stream: TextIO | None = None, *, interval: float | None = None):
        self._stream = stream if stream is not None else sys.stderr
        try:
            self.tty = self._stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.interval = PROGRESS_INTERVAL if interval is None else interval
        self._last = time.monotonic()
        self._pending_line = False
        self.shown = False

    def due(self) -> bool:
        """Whether the last line is old enough for a new one (then it counts as shown)."""
        now = time.monotonic()
        if now - self._last < self.interval:
            return False
        self._last = now
        return True

    def show(self, text: str) -> None:
        if self.tty:
            self._stream.write(f"\r{text}\x1b[K")
            self._pending_line = True
        else:
            self._stream.write(text + "\n")
        self._stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Take a rewritten line off the terminal (before other output)."""
        if self._pending_line:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._pending_line = False

    def end(self) -> None:
        """End a rewritten line, leaving it on the terminal."""
        if self._pending_line:
            self._stream.write("\n")
            self._stream.flush()
            self._pending_line = False


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
        self._line = StatusLine(stream)

    @property
    def shown(self) -> bool:
        return self._line.shown

    def update(self, done: int) -> None:
        """Report ``done`` if the last report is old enough."""
        if self._line.due():
            self._emit(done)

    def clear(self) -> None:
        """Take a rewritten progress line off the terminal (before other output)."""
        self._line.clear()

    def finish(self, done: int, *, force: bool = False) -> None:
        """Show the final count if anything was shown (or ``force``), and end the line."""
        if self.shown or force:
            self._emit(done)
        self._line.end()

    def _emit(self, done: int) -> None:
        text = f"{self._label}: {self._fmt(done)}"
        if self._total:
            text += f" of {self._fmt(self._total)} ({100 * done // self._total}%)"
        self._line.show(text)
