"""``stateport digest``, ``copy``, ``export`` and ``import``: moving state between stores."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from typing import Any, TextIO

from ..domains.registry import DOMAINS, Scope
from ..snapshot import MoveSummary, Progress
from ..store import copy
from ..store import open as open_store
from ..url import redact
from ._common import (
    DONE,
    CommandError,
    Commands,
    StatusLine,
    human_size,
    json_flag,
    print_record,
    report,
    store_of,
    store_url,
    subcommand,
)

__all__ = ["TransferDisplay", "register"]

_DOMAIN_NAMES = ", ".join(d.name for d in DOMAINS)


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    digest = subcommand(
        commands,
        common,
        "digest",
        _digest,
        help="the content digest of a store (equal for equal content on any engine)",
        description=(
            "Print the content digest of the store: one SHA-256 over every item "
            "(keys, attributes and version, in key order) and every blob's digest, "
            "with counts per domain. Two stores with the same content have the "
            "same digest whatever their engines; engine bookkeeping (schema "
            "tables, uploads in progress) is not content. Writes nothing."
        ),
    )
    _only(digest)
    json_flag(digest, what="one object")

    cp = subcommand(
        commands,
        common,
        "copy",
        _copy,
        help="copy every item and blob from one store to another",
        description=(
            "Copy the store at SRC into the store at DST, any engine to any engine "
            "(e.g. sqlite:///./.stateport/state.db to postgresql://...), streaming "
            "in bounded memory and keeping every item's version. DST must hold "
            "nothing in scope, unless --resume continues an interrupted copy (it "
            "writes only what differs; running it twice changes nothing). The copy "
            "ends by comparing the content digests of both sides and fails if they "
            "differ. Shows progress on a terminal."
        ),
    )
    cp.add_argument("source", metavar="SRC", help="the store to copy from (it must exist)")
    cp.add_argument("target", metavar="DST", help="the store to copy into")
    _only(cp)
    _resume(cp, "copy")
    _quiet(cp)
    json_flag(cp, what=DONE)

    export = subcommand(
        commands,
        common,
        "export",
        _export,
        help="write the store to a snapshot file",
        description=(
            "Write every item and blob of the store (--url) to FILE, a snapshot in "
            "stateport's documented format: streamed, with a checksum per record, a "
            "manifest (counts and content digest) and the file's SHA-256; the same "
            "content always gives the same bytes. FILE is written as FILE.partial "
            "and renamed when complete; '-' writes to standard output."
        ),
    )
    export.add_argument("file", metavar="FILE", help="the snapshot to write ('-': stdout)")
    _only(export)
    _quiet(export)
    json_flag(export, what=DONE)

    imp = subcommand(
        commands,
        common,
        "import",
        _import,
        help="load a snapshot file into the store",
        description=(
            "Load the snapshot FILE into the store (--url). The whole file is "
            "checked first (checksums, order, blob digests, manifest, file SHA-256, "
            "and every item against the store's limits) and nothing is written "
            "unless all of it is sound; a damaged file is refused. The store must "
            "hold nothing in the snapshot's scope, unless --resume continues an "
            "interrupted import. Ends by checking the content digest."
        ),
    )
    imp.add_argument("file", metavar="FILE", help="the snapshot to read")
    _resume(imp, "import")
    _quiet(imp)
    json_flag(imp, what=DONE)


def _only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        metavar="DOMAINS",
        help=(
            f"only these domains, comma-separated ({_DOMAIN_NAMES}; cas is the blobs, "
            "items every partition no other domain claims)"
        ),
    )


def _resume(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help=f"continue an interrupted {what}: write only what the target lacks or has differently",
    )


def _quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress display")


# --------------------------------------------------------------------------- display


def _count(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e4:
        return f"{n / 1e3:.1f}k"
    return f"{n:,.0f}"


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class TransferDisplay:
    """The progress of a move on stderr (:class:`StatusLine`): items, bytes, rate and
    time left, rewritten in place on a terminal a few times a second, a line every
    ``plain_interval`` seconds otherwise, nothing when ``quiet``."""

    def __init__(
        self, *, quiet: bool, stream: TextIO | None = None, plain_interval: float = 10.0
    ) -> None:
        self._quiet = quiet
        self._line = StatusLine(stream)
        self._line.interval = 0.2 if self._line.tty else plain_interval

    def __call__(self, state: Progress) -> None:
        if not self._quiet and self._line.due():
            self._line.show(self.line(state, time.monotonic()))

    @staticmethod
    def line(state: Progress, now: float) -> str:
        """The progress line for ``state`` at time ``now``."""
        elapsed = max(now - state.started, 1e-9)
        parts = [f"{state.action} ({state.phase})"]
        if state.phase == "check":
            total = f" of {human_size(state.bytes_total)}" if state.bytes_total else ""
            parts.append(f"{human_size(state.bytes)}{total} checked")
            left = _left(state.bytes, state.bytes_total, elapsed)
        else:
            total = f"/{_count(state.items_total)}" if state.items_total is not None else ""
            parts.append(f"{_count(state.items)}{total} items")
            if state.blobs or state.phase == "blobs":
                parts.append(f"{_count(state.blobs)} blobs, {human_size(state.bytes)}")
            if state.phase == "blobs":
                rate = state.bytes / elapsed
                parts.append(f"{human_size(int(rate))}/s")
                left = _left(state.bytes, state.bytes_total, elapsed)
            else:
                parts.append(f"{_count(state.items / elapsed)} items/s")
                left = _left(state.items, state.items_total, elapsed)
        parts.append(f"{_clock(elapsed)} elapsed" if left is None else f"{_clock(left)} left")
        return " · ".join(parts)

    def close(self) -> None:
        """Take the rewritten line off the terminal, before other output."""
        self._line.clear()


def _left(done: int, total: int | None, elapsed: float) -> float | None:
    if not total or done <= 0 or done > total:
        return None
    return (total - done) * elapsed / done


# --------------------------------------------------------------------------- commands


def _scope(args: argparse.Namespace) -> Scope:
    only: str | None = getattr(args, "only", None)
    return Scope.of(only)


async def _digest(args: argparse.Namespace) -> int:
    scope = _scope(args)
    async with store_of(args, create=False) as sp:
        digest = await sp.digest(scope)
    counts = ", ".join(f"{k} {v}" for k, v in digest.by_domain.items() if k != "cas" and v)
    record = {
        "digest": f"sha256:{digest.digest}",
        "scope": str(digest.scope),
        "items": f"{digest.items}" + (f" ({counts})" if counts else ""),
        "blobs": str(digest.blobs),
    }
    if args.json:
        record = {"url": redact(sp.url), **digest.to_dict()}
    print_record(record, args.json)
    return 0


def _report(summary: MoveSummary, args: argparse.Namespace) -> None:
    """One line saying what the move did (or its summary as JSON, with --json)."""
    d = summary.digest
    verb = {"copy": "copied", "export": "exported", "import": "imported"}[summary.action]
    if summary.action == "export":
        moved = f"{d.items} items, {d.blobs} blobs ({human_size(summary.bytes_written)} file)"
    else:
        moved = (
            f"{d.items} items ({summary.items_written} written), {d.blobs} blobs "
            f"({summary.blobs_written} written, {human_size(summary.bytes_written)})"
        )
    line = (
        f"{verb} {summary.source} -> {summary.target}: {moved} in {summary.seconds:.1f} s; "
        f"digest sha256:{d.digest} ({d.scope}), the same on both sides"
    )
    report(args, line, summary.to_dict())


async def _run(display: TransferDisplay, what: str, work: Any) -> MoveSummary:
    try:
        summary: MoveSummary = await work
    except BaseException as e:
        display.close()
        if isinstance(e, (KeyboardInterrupt, asyncio.CancelledError)):
            print(
                f"the {what} was interrupted: run the same command with --resume to continue",
                file=sys.stderr,
            )
        raise
    display.close()
    return summary


async def _copy(args: argparse.Namespace) -> int:
    if getattr(args, "url", None) is not None:
        raise CommandError("copy takes its stores as SRC and DST: --url does not apply")
    for name, value in (("SRC", args.source), ("DST", args.target)):
        if not value.strip():
            raise CommandError(f"{name} is empty: give a store URL, e.g. sqlite:///./state.db")
    display = TransferDisplay(quiet=args.quiet or args.json)
    summary = await _run(
        display,
        "copy",
        copy(args.source, args.target, only=_scope(args), resume=args.resume, progress=display),
    )
    _report(summary, args)
    return 0


async def _export(args: argparse.Namespace) -> int:
    scope = _scope(args)
    to_stdout = args.file == "-"
    display = TransferDisplay(quiet=args.quiet or args.json)
    async with store_of(args, create=False) as sp:
        target: Any = sys.stdout.buffer if to_stdout else args.file
        summary = await _run(
            display, "export", sp.export_snapshot(target, only=scope, progress=display)
        )
    if to_stdout:  # the snapshot went to stdout: what was done goes to stderr
        sys.stdout.buffer.flush()
        with contextlib.redirect_stdout(sys.stderr):
            _report(summary, args)
    else:
        _report(summary, args)
    return 0


async def _import(args: argparse.Namespace) -> int:
    if args.file == "-":
        raise CommandError(
            "import reads its file twice (it checks all of it before writing anything): "
            "give a file, not '-'"
        )
    url, _ = store_url(args)
    display = TransferDisplay(quiet=args.quiet or args.json)
    async with open_store(url) as sp:
        summary = await _run(
            display,
            "import",
            sp.import_snapshot(args.file, resume=args.resume, progress=display),
        )
    _report(summary, args)
    return 0
