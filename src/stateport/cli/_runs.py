"""``stateport runs``: list runs and follow their events; create runs, append their
events and end them from a shell (for agents driven by scripts)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from .. import _time
from ..digest import ContentDigest
from ..domains.runs import RunEvent, RunMetadata, RunRecord, RunStatus, RunSummary
from ..errors import ValidationError
from ._common import (
    DONE,
    CommandError,
    Commands,
    Handler,
    command_group,
    counted,
    human_time,
    json_arg,
    json_flag,
    print_record,
    report,
    store_of,
    subcommand,
)

__all__ = ["register"]


def register(commands: Commands, common: argparse.ArgumentParser) -> None:
    sub = command_group(
        commands,
        common,
        "runs",
        help="list runs and their events; create, append to and end runs",
        description=(
            "Execution runs recorded through sp.runs, and their ordered events. A "
            "script drives a run with 'create', 'append' and 'complete', 'fail' or "
            "'cancel'."
        ),
    )
    _register_reads(sub, common)
    _register_writes(sub, common)


# --------------------------------------------------------------------------- reads


def _register_reads(sub: Commands, common: argparse.ArgumentParser) -> None:
    ls = subcommand(
        sub,
        common,
        "list",
        _runs_list,
        help="runs, newest first",
        description="List runs newest first, optionally of one spec digest and in one status.",
    )
    ls.add_argument("--spec", metavar="DIGEST", help="only runs of this spec digest")
    ls.add_argument(
        "--status", choices=[s.value for s in RunStatus], help="only runs in this status"
    )
    ls.add_argument(
        "--limit", type=int, default=20, metavar="N", help="at most N runs (default 20; 0: all)"
    )
    json_flag(ls)

    show = subcommand(
        sub,
        common,
        "show",
        _runs_show,
        help="one run's record and summary",
        description="Show a run: status, spec, metadata, summary and its last event.",
    )
    show.add_argument("run_id", metavar="RUN_ID")
    json_flag(show)

    events = subcommand(
        sub,
        common,
        "events",
        _runs_events,
        help="a run's events in order (--follow to tail it)",
        description=(
            "Print a run's events in sequence order as '<seq>  <time>  <kind>  "
            "<payload>'. With --follow, keep printing new events as they are "
            "appended, until the run ends (or Ctrl-C)."
        ),
    )
    events.add_argument("run_id", metavar="RUN_ID")
    events.add_argument("--after", type=int, default=0, metavar="SEQ", help="only events after SEQ")
    events.add_argument(
        "-f", "--follow", action="store_true", help="wait for new events until the run ends"
    )
    json_flag(events)


def _run_json(r: RunRecord) -> dict[str, Any]:
    summary = r.summary
    return {
        "run_id": str(r.run_id),
        "status": r.status.value,
        "spec_digest": r.spec_digest.as_str(),
        "agent_name": r.metadata.agent_name,
        "git_sha": r.metadata.git_sha,
        "tags": dict(r.metadata.tags),
        "created_at": _time.to_text(r.created_at),
        "completed_at": None if r.completed_at is None else _time.to_text(r.completed_at),
        "summary": None
        if summary is None
        else {
            "total_events": summary.total_events,
            "duration_ms": summary.duration_ms,
            "success": summary.success,
            "final_state_digest": None
            if summary.final_state_digest is None
            else summary.final_state_digest.as_str(),
        },
    }


def _event_json(e: RunEvent) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "kind": e.kind,
        "timestamp": None if e.timestamp is None else _time.to_text(e.timestamp),
        "payload": e.payload,
    }


async def _runs_list(args: argparse.Namespace) -> int:
    if args.limit < 0:
        raise CommandError("--limit must be >= 0")
    async with store_of(args, create=False) as sp:
        if args.limit == 0:
            runs = await sp.runs.list_runs(args.spec, status=args.status)
            more = False
        else:
            page = await sp.runs.list_runs_page(args.spec, status=args.status, limit=args.limit)
            runs, more = page.runs, page.cursor is not None
    if args.json:
        for r in runs:
            print(json.dumps(_run_json(r)))
        return 0
    if not runs:
        print("no runs")
        return 0
    print(f"{'RUN ID':36}  {'STATUS':9}  {'SPEC':12}  {'AGENT':16}  CREATED (UTC)")
    for r in runs:
        created = human_time(r.created_at)
        print(
            f"{r.run_id:36}  {r.status.value:9}  {r.spec_digest.short()}  "
            f"{r.metadata.agent_name[:16]:16}  {created}"
        )
    if more:
        print(f"(first {len(runs)} shown; --limit 0 for all)")
    return 0


async def _runs_show(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        record = await sp.runs.get_run(args.run_id)
        last = await sp.runs.latest_event(args.run_id)
    data = _run_json(record)
    data["last_event"] = None if last is None else _event_json(last)
    print_record(data, args.json)
    return 0


def _print_event(e: RunEvent, as_json: bool) -> None:
    if as_json:
        print(json.dumps(_event_json(e)), flush=True)
        return
    print(f"{e.seq:>6}  {human_time(e.timestamp)}  {e.kind}  {json.dumps(e.payload)}", flush=True)


async def _runs_events(args: argparse.Namespace) -> int:
    if args.after < 0:
        raise CommandError("--after must be >= 0")
    async with store_of(args, create=False) as sp:
        if args.follow:
            async for event in sp.runs.watch_events(args.run_id, args.after):
                _print_event(event, args.json)
            if not args.json:
                status = (await sp.runs.get_run(args.run_id)).status.value
                print(f"run {args.run_id} is {status}", file=sys.stderr)
        else:
            for event in await sp.runs.get_events_after(args.run_id, args.after):
                _print_event(event, args.json)
    return 0


# --------------------------------------------------------------------------- writes


def _register_writes(sub: Commands, common: argparse.ArgumentParser) -> None:
    create = subcommand(
        sub,
        common,
        "create",
        _runs_create,
        help="start a run of a spec",
        description=(
            "Start a RUNNING run of the spec SPEC_DIGEST for agent NAME and print its "
            "id. The id is a new UUID unless --run-id chooses it, which lets a script "
            "know the id before the run exists."
        ),
    )
    create.add_argument(
        "spec", metavar="SPEC_DIGEST", help="the spec's SHA-256 digest (see 'stateport cas put')"
    )
    create.add_argument("--agent", required=True, metavar="NAME", help="the agent running it")
    create.add_argument("--git-sha", metavar="SHA", help="the commit the agent runs at")
    create.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a tag of the run (repeat for more)",
    )
    create.add_argument("--run-id", metavar="ID", help="the run's id (default: a new UUID)")
    json_flag(create, what=DONE)

    append = subcommand(
        sub,
        common,
        "append",
        _runs_append,
        help="append an event to a running run",
        description=(
            "Append an event of kind KIND with the payload PAYLOAD_JSON (a JSON value; "
            "- reads it from stdin; none: null) to a RUNNING run and print its seq. "
            "With --seq N the event must be exactly the run's next one, else nothing "
            "is written: a script that retries an append with its --seq never "
            "records it twice."
        ),
    )
    append.add_argument("run_id", metavar="RUN_ID")
    append.add_argument("kind", metavar="KIND", help="what happened, e.g. tool_called")
    append.add_argument(
        "payload", nargs="?", metavar="PAYLOAD_JSON", help="the event's data as JSON (- for stdin)"
    )
    append.add_argument("--seq", type=int, metavar="N", help="the seq the event must get")
    json_flag(append, what=DONE)

    for name, status, verb in (
        ("complete", RunStatus.COMPLETED, "succeeded"),
        ("fail", RunStatus.FAILED, "failed"),
        ("cancel", RunStatus.CANCELLED, "was cancelled"),
    ):
        end = subcommand(
            sub,
            common,
            name,
            _ender(status),
            help=f"end a running run as {status.value}",
            description=(
                f"End a RUNNING run as {status.value} (the run {verb}), storing its "
                "summary: the number of events (default: the run's last seq), the "
                "duration (default: the time since the run was created) and "
                "optionally the digest of its final state. An ended run takes no "
                "more events."
            ),
        )
        end.add_argument("run_id", metavar="RUN_ID")
        end.add_argument(
            "--events", type=int, metavar="N", help="total events (default: the run's last seq)"
        )
        end.add_argument(
            "--duration-ms",
            type=int,
            metavar="N",
            help="how long it ran (default: milliseconds since it was created)",
        )
        end.add_argument(
            "--final-state", metavar="DIGEST", help="the SHA-256 digest of its final state"
        )
        json_flag(end, what=DONE)


def _tags(pairs: list[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"--tag takes KEY=VALUE, got {pair!r}")
        if key in tags:
            raise ValidationError(f"tag {key!r} is given twice")
        tags[key] = value
    return tags


async def _runs_create(args: argparse.Namespace) -> int:
    spec = ContentDigest(args.spec)
    metadata = RunMetadata(args.agent, args.git_sha, _tags(args.tag))
    async with store_of(args, create=True) as sp:
        run_id = await sp.runs.create_run(spec, metadata, run_id=args.run_id)
        record = await sp.runs.get_run(run_id)
    report(
        args,
        f"created run {run_id} of spec {spec.short()} for agent {args.agent}",
        _run_json(record),
    )
    return 0


async def _runs_append(args: argparse.Namespace) -> int:
    payload = None if args.payload is None else json_arg(args.payload, "the payload")
    async with store_of(args, create=False) as sp:
        event = await sp.runs.append_event(args.run_id, RunEvent(args.kind, payload, args.seq))
    report(
        args,
        f"appended event {event.seq} ({event.kind}) to run {args.run_id}",
        {"run_id": args.run_id, **_event_json(event)},
    )
    return 0


def _ender(status: RunStatus) -> Handler:
    async def end(args: argparse.Namespace) -> int:
        final = None if args.final_state is None else ContentDigest(args.final_state)
        async with store_of(args, create=False) as sp:
            run = await sp.runs.get_run(args.run_id)
            events: int | None = args.events
            if events is None:
                last = await sp.runs.latest_event(args.run_id)
                events = 0 if last is None or last.seq is None else last.seq
            duration: int | None = args.duration_ms
            if duration is None:
                duration = max(0, (_time.now() - run.created_at) // timedelta(milliseconds=1))
            summary = RunSummary(events, duration, status is RunStatus.COMPLETED, final)
            finish = {
                RunStatus.COMPLETED: sp.runs.complete_run,
                RunStatus.FAILED: sp.runs.fail_run,
                RunStatus.CANCELLED: sp.runs.cancel_run,
            }[status]
            await finish(args.run_id, summary)
            run = await sp.runs.get_run(args.run_id)
        report(
            args,
            f"ended run {args.run_id} as {status.value} "
            f"({counted(events, 'event')}, {duration} ms)",
            _run_json(run),
        )
        return 0

    return end
