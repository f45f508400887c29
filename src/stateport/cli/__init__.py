"""The ``stateport`` command.

::

    stateport [--url URL] [--version]
    ├── db
    │   ├── migrate [--stop-before N]   apply pending schema migrations
    │   ├── version                     schema version and applied migrations
    │   └── info                        URL, engine, capabilities, schema, table limits
    ├── blobs
    │   ├── put FILE...                 store files (- for stdin), print digests
    │   ├── get DIGEST [-o FILE]        write a blob to stdout or a file
    │   ├── ls                          digests and sizes
    │   └── verify [DIGEST...]          check blobs against their digests
    ├── items
    │   ├── get PK SK                   one item as JSON
    │   ├── put PK SK JSON              create or replace an item
    │   ├── query PK [SK_PREFIX]        a partition's items by sort key
    │   └── delete PK SK                delete an item
    ├── runs
    │   ├── list [--spec D] [--status S]  runs, newest first
    │   ├── show RUN_ID                 a run's record and summary
    │   ├── events RUN_ID [--follow]    a run's events in order (or tail them)
    │   ├── create SPEC_DIGEST --agent NAME  start a run, print its id
    │   ├── append RUN_ID KIND [PAYLOAD_JSON] [--seq N]  append an event
    │   └── complete | fail | cancel RUN_ID [--events N] [--duration-ms N]  end a run
    ├── releases
    │   ├── list                        every name and its live release
    │   ├── history NAME                a name's releases, newest first
    │   ├── promote NAME DIGEST         make a spec digest live
    │   └── rollback NAME               back to the release live before
    ├── cas
    │   ├── put FILE...                 store files, print digests
    │   ├── get DIGEST [-o FILE]        write verified content
    │   ├── contains DIGEST             exit 0 if stored, 1 if not
    │   └── delete DIGEST               remove content
    ├── council
    │   ├── ls [--status S]             orchestrator runs, most recent first
    │   ├── show ID                     a run's record and graph
    │   └── events ID                   a run's events in order
    ├── work
    │   ├── features [--state S]        features by id
    │   ├── wps SLUG                    a feature's work packages and dependencies
    │   ├── ready SLUG                  work packages ready to start
    │   ├── audit SLUG                  a feature's audit trail, in chain order
    │   ├── create feature SLUG NAME | wp SLUG SEQUENCE TITLE
    │   ├── move feature SLUG STATE | wp WP_ID STATE  --actor WHO (audited)
    │   ├── edit feature SLUG | wp WP_ID  --actor WHO  fields (audited)
    │   ├── depend WP_ID ON_ID          WP_ID waits for ON_ID
    │   ├── evidence --wp WP_ID | --fr FR_ID   evidence records
    │   ├── metrics SLUG                a feature's metrics
    │   ├── governance SLUG [--version N]  a governance contract and its rules
    │   ├── sync [--feature SLUG] [--older-than AGE]  external issue mappings
    │   └── devices [--active-within AGE]  devices and their vector clocks
    ├── audit
    │   ├── verify [--feature SLUG] [--head FILE]  recompute chains; 1 if tampered
    │   └── head --feature SLUG [-o FILE]          export a verified chain head
    ├── knowledge
    │   ├── collections                 every collection, by name
    │   ├── ls COLLECTION               a collection's artifacts, by name
    │   ├── show ID                     one artifact at its current revision
    │   ├── history ID [--changes]      its revisions (or change records), oldest first
    │   ├── related ID [--depth N]      its relationships (or neighbours within N hops)
    │   └── changes [--after SEQ] [--follow]  the change feed in commit order
    ├── digest [--only D,...]           the content digest of the store
    ├── copy SRC DST [--only D,...] [--resume]  copy a store to another engine
    ├── export FILE [--only D,...]      write a snapshot file
    ├── import FILE [--resume]          load a snapshot file (checked before writing)
    └── demo                            a guided tour on real data

Every write command prints one line saying what it did, or with ``--json`` one
JSON object; listings print one JSON object per line with ``--json``.

``--url`` is accepted before or after any command; without it the URL comes
from :func:`stateport.config.resolve_url`. Exit status: 0 on success, 1 on a
stateport error (printed as ``error: <message>``), 2 on a usage error, 130 on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys

from .. import __version__
from ..config import DEFAULT_URL, ENV_VAR
from ..errors import StateportError
from . import (
    _audit,
    _blobs,
    _cas,
    _council,
    _db,
    _demo,
    _items,
    _knowledge,
    _moving,
    _releases,
    _runs,
    _work,
    _work_changes,
    _work_records,
)
from ._common import CommandError, Handler

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``stateport`` command, with every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help=(
            f"the store, e.g. sqlite:///./state.db or memory:// (default: ${ENV_VAR}, "
            f"else [storage] url in ./stateport.toml, else {DEFAULT_URL})"
        ),
    )
    parser = argparse.ArgumentParser(
        prog="stateport",
        parents=[common],
        description=(
            "Durable, backend-agnostic state for agent, workflow and knowledge "
            "systems: manage the schema, blobs and data of a store."
        ),
        epilog="Run 'stateport COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"stateport {__version__}")
    commands = parser.add_subparsers(
        title="commands", dest="command", required=True, metavar="COMMAND"
    )
    _db.register(commands, common)
    _blobs.register(commands, common)
    _items.register(commands, common)
    _runs.register(commands, common)
    _releases.register(commands, common)
    _cas.register(commands, common)
    _council.register(commands, common)
    work = _work.register(commands, common)
    _work_changes.register(work, common)
    _work_records.register(work, common)
    _audit.register(commands, common)
    _knowledge.register(commands, common)
    _moving.register(commands, common)
    _demo.register(commands, common)
    return parser


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _silence_stdout() -> None:
    """After a broken pipe: send what is left of stdout nowhere, so exit stays quiet."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    """Run the ``stateport`` command with ``argv`` (default: ``sys.argv[1:]``); return the
    exit status."""
    try:
        parser = build_parser()
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help, --version, usage errors
            return _exit_status(e.code)
        handler: Handler = args.handler
        status: int = asyncio.run(handler(args))
        return status
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130
    except (StateportError, CommandError) as e:
        print(f"error: {str(e) or type(e).__name__}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _silence_stdout()
        return 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
