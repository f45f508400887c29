"""The ``stateport`` command.

::

    stateport [--url URL] [--version]
    ├── db
    │   ├── migrate [--stop-before N]   apply pending schema migrations
    │   ├── version                     schema version and applied migrations
    │   └── info                        URL, engine, schema, table capabilities
    ├── blobs
    │   ├── put FILE...                 store files (- for stdin), print digests
    │   ├── get DIGEST [-o FILE]        write a blob to stdout or a file
    │   ├── ls                          digests and sizes
    │   └── verify [DIGEST...]          check blobs against their digests
    ├── runs
    │   ├── list [--spec D] [--status S]  runs, newest first
    │   ├── show RUN_ID                 a run's record and summary
    │   └── events RUN_ID [--follow]    a run's events in order (or tail them)
    ├── releases
    │   ├── list                        every name and its live release
    │   ├── history NAME                a name's releases, newest first
    │   ├── promote NAME DIGEST         make a spec digest live
    │   └── rollback NAME               back to the release live before
    ├── cas
    │   ├── put FILE...                 store files, print digests
    │   └── get DIGEST [-o FILE]        write verified content
    ├── work
    │   ├── features [--state S]        features by id
    │   ├── wps SLUG                    a feature's work packages and dependencies
    │   ├── ready SLUG                  work packages ready to start
    │   └── audit SLUG                  a feature's audit trail, in chain order
    ├── audit
    │   ├── verify [--feature SLUG] [--head FILE]  recompute chains; 1 if tampered
    │   └── head --feature SLUG [-o FILE]          export a verified chain head
    └── demo                            a guided tour on real data

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
from . import _audit, _blobs, _db, _demo, _runs, _work
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
    _runs.register(commands, common)
    _work.register(commands, common)
    _audit.register(commands, common)
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
