"""Run the stateport benchmarks, each beside its baseline, and print a table.

    .venv/bin/python bench/run.py                 # full run (over a minute)
    .venv/bin/python bench/run.py --quick         # short smoke run
    .venv/bin/python bench/run.py --only item_put # one benchmark (repeatable)

Speed benchmarks run ``--rounds`` rounds (default 7), alternating which side goes
first, and compare the best round of each side: ratio = ours speed / baseline
speed, so above 1 means stateport is faster. The memory benchmark compares the
peak RSS of a fresh process against a fixed budget: ratio = budget / peak, so
above 1 means under budget. Progress goes to stderr, the table (Markdown) to
stdout. Work files live in bench/.work/<process id>/ and are deleted at the end.
The exit status is 1 if any target is missed; a stretch goal not reached is
reported as SHORT and does not count as a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import math
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cases import (  # bench/ is the script's directory, so it is on sys.path
    SPEED_CASES,
    STREAM_BACKENDS,
    STREAM_BUDGET_MIB,
    STREAM_MIB,
    STREAM_MIN_FREE,
    STREAM_NAME,
    STREAM_QUICK_MIB,
    WORK,
    SpeedCase,
    stream_memory,
)
from copy_cases import (
    COPY_MIN_FREE,
    COPY_NAME,
    COPY_RSS_BUDGET_MIB,
    COPY_TARGET,
    run_copy,
)
from knowledge_cases import KNOWLEDGE_CASES
from ledger_cases import LEDGER_CASES
from pg_cases import PG_CASES, server_problem
from work_cases import WORK_CASES

REPO = Path(__file__).resolve().parent.parent
Status = Literal["PASS", "MISS", "SKIP", "SHORT"]  # SHORT: a stretch goal not reached
ALL_SPEED_CASES = (*SPEED_CASES, *LEDGER_CASES, *WORK_CASES, *KNOWLEDGE_CASES, *PG_CASES)
NAMES = (*(c.name for c in ALL_SPEED_CASES), STREAM_NAME, COPY_NAME)

_STARTED = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Result:
    name: str
    ours: str
    baseline: str
    ratio: float | None
    target: str
    status: Status
    note: str = ""


def fmt_time(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_rate(per_second: float) -> str:
    if per_second >= 1e6:
        return f"{per_second / 1e6:.2f}M"
    if per_second >= 1e3:
        return f"{per_second / 1e3:.1f}k"
    return f"{per_second:.0f}"


def fmt_ratio(ratio: float) -> str:
    """Two decimals, truncated: a ratio shown as meeting its target does meet it."""
    if math.isinf(ratio):
        return "inf"
    return f"{math.floor(ratio * 100) / 100:.2f}"


def run_speed(case: SpeedCase, rounds: int) -> Result:
    n = case.quick_ops if case.quick else case.ops
    log(f"{case.name}: {rounds} rounds of {n} {case.unit}s per side")
    # start from a quiet disk: the previous benchmark's dirty pages would
    # otherwise be written back during this one's fsyncs, on both sides
    os.sync()
    case.setup()
    try:
        times: dict[str, list[float]] = {"ours": [], "baseline": []}
        for r in range(rounds):
            order = ["ours", "baseline"] if r % 2 == 0 else ["baseline", "ours"]
            for side in order:
                seconds = case.ours(n) if side == "ours" else case.baseline(n)
                times[side].append(seconds)
                log(
                    f"{case.name}: round {r + 1}/{rounds} {side:<8} "
                    f"{fmt_time(seconds / n)}/{case.unit}"
                )
    finally:
        case.teardown()
    ours = min(times["ours"]) / n
    base = min(times["baseline"]) / n
    ratio = base / ours

    def show(per_op: float) -> str:
        text = f"{fmt_time(per_op)}/{case.unit}"
        if case.items_per_op > 1:
            return f"{text} ({fmt_rate(case.items_per_op / per_op)} items/s)"
        return f"{text} ({fmt_rate(1 / per_op)}/s)"

    mean_ours = sum(times["ours"]) / (rounds * n)
    mean_base = sum(times["baseline"]) / (rounds * n)
    note = (
        f"best of {rounds} rounds of {n}; mean of all rounds: ours "
        f"{fmt_time(mean_ours)}, baseline {fmt_time(mean_base)}, ratio {mean_base / mean_ours:.2f}"
    )
    status: Status = "PASS" if ratio >= case.target else "SHORT" if case.stretch else "MISS"
    target = f"{'stretch ' if case.stretch else ''}>= {case.target}"
    limit: float | None = getattr(case, "max_seconds_per_op", None)  # an absolute bound too
    # a case may time each of its operations: then the bound is on their median
    latencies: list[float] = list(getattr(case, "latencies", None) or ())
    checked = statistics.median(latencies) if latencies else ours
    if latencies:
        p95 = statistics.quantiles(latencies, n=20)[-1] if len(latencies) > 1 else latencies[0]
        note += (
            f"; each {case.unit} of ours timed: median {fmt_time(checked)}, "
            f"p95 {fmt_time(p95)} over {len(latencies)}"
        )
    if limit is not None:
        target += f", {'median ' if latencies else ''}< {fmt_time(limit)}"
        if checked >= limit:
            status = "MISS"
    log(f"{case.name}: ratio {ratio:.3f} (target {target}) {status}")
    return Result(case.name, show(ours), show(base), ratio, target, status, note)


def run_stream(quick: bool) -> list[Result]:
    mib = STREAM_QUICK_MIB if quick else STREAM_MIB
    target = f"<= {STREAM_BUDGET_MIB} MiB"
    budget = f"{STREAM_BUDGET_MIB} MiB budget"
    free = shutil.disk_usage(WORK).free
    results: list[Result] = []
    for backend, url in STREAM_BACKENDS:
        name = f"{STREAM_NAME} [{backend}]"
        if free < STREAM_MIN_FREE:
            message = (
                f"skipped: {free / 1024**3:.1f} GiB free under {WORK}, "
                f"need {STREAM_MIN_FREE / 1024**3:.0f} GiB"
            )
            log(f"{name}: {message}")
            results.append(Result(name, "-", budget, None, target, "SKIP", message))
            continue
        log(f"{name}: streaming {mib} MiB through {url} in a fresh process")
        r = stream_memory(url, mib, backend)
        used = r.above_base_mib
        status: Status = "PASS" if used <= STREAM_BUDGET_MIB else "MISS"
        note = (
            f"{mib} MiB blob; put {mib / r.put_s:.0f} MiB/s, read {mib / r.read_s:.0f} MiB/s; "
            f"RSS after open {r.base_mib:.1f} MiB, peak {r.peak_mib:.1f} MiB"
        )
        if not r.peak_reset:
            note += " (peak not resettable: includes start-up)"
        log(f"{name}: peak {used:.1f} MiB above base {status}; {note}")
        ratio = STREAM_BUDGET_MIB / used if used > 0 else float("inf")
        results.append(
            Result(name, f"+{used:.1f} MiB peak RSS", budget, ratio, target, status, note)
        )
    return results


def run_copy_case(quick: bool, rounds: int) -> list[Result]:
    """``stateport copy`` of a SQLite store to PostgreSQL beside a raw transfer
    (bench/copy_cases.py): the speed ratio, and the peak RSS growth of the copy."""
    target = f">= {COPY_TARGET}"
    budget = f"<= {COPY_RSS_BUDGET_MIB} MiB"
    problem = server_problem()
    free = shutil.disk_usage(WORK).free
    if problem is None and free < COPY_MIN_FREE and not quick:
        problem = f"{free / 1024**3:.1f} GiB free under {WORK}, need {COPY_MIN_FREE // 1024**3}"
    if problem is not None:
        log(f"{COPY_NAME}: skipped: {problem}")
        return [
            Result(COPY_NAME, "-", "-", None, target, "SKIP", problem),
            Result(f"{COPY_NAME} [rss]", "-", "-", None, budget, "SKIP", problem),
        ]
    run = run_copy(quick, rounds, log)
    ours, raw = min(run.ours_s), min(run.raw_s)
    mib = run.blob_mib
    ratio = raw / ours

    def show(seconds: float) -> str:
        return f"{seconds:.2f} s ({fmt_rate(run.items / seconds)} items/s + {mib} MiB)"

    status: Status = "PASS" if ratio >= COPY_TARGET else "MISS"
    note = (
        f"{run.items} items and {mib} MiB of 64 KiB blobs, SQLite to PostgreSQL; best of "
        f"{rounds} rounds (ours {', '.join(f'{t:.2f}' for t in run.ours_s)} s; raw "
        f"{', '.join(f'{t:.2f}' for t in run.raw_s)} s); export {run.export_s:.2f} s "
        f"({fmt_rate(run.items / run.export_s)} items/s, "
        f"{run.file_bytes / 2**20 / run.export_s:.0f} MiB/s of file), import "
        f"{run.import_s:.2f} s ({fmt_rate(run.items / run.import_s)} items/s, "
        f"{run.file_bytes / 2**20 / run.import_s:.0f} MiB/s); building the source took "
        f"{run.build_s:.0f} s"
    )
    peak = max(run.ours_rss_kib) / 1024
    raw_peak = max(run.raw_rss_kib) / 1024
    rss_status: Status = "PASS" if peak <= COPY_RSS_BUDGET_MIB else "MISS"
    rss_note = f"peak RSS growth of the copying process; the raw transfer's: +{raw_peak:.1f} MiB"
    log(f"{COPY_NAME}: ratio {ratio:.3f} {status}; peak RSS +{peak:.1f} MiB {rss_status}")
    return [
        Result(COPY_NAME, show(ours), show(raw), ratio, target, status, note),
        Result(
            f"{COPY_NAME} [rss]",
            f"+{peak:.1f} MiB peak RSS",
            f"{COPY_RSS_BUDGET_MIB} MiB budget",
            COPY_RSS_BUDGET_MIB / peak if peak > 0 else float("inf"),
            budget,
            rss_status,
            rss_note,
        ),
    ]


def revision() -> str:
    """The checked-out commit, marked ``-dirty`` when the tree has changes."""
    try:
        proc = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return proc.stdout.strip()


def environment() -> str:
    today = datetime.date.today().isoformat()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{today}; {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
        f"(load average {load}); Python {platform.python_version()}; "
        f"SQLite {sqlite3.sqlite_version}; stateport {revision()}"
    )


def report(results: Sequence[Result], quick: bool) -> str:
    header = ("benchmark", "ours", "baseline", "ratio", "target", "result")
    rows = [
        (
            r.name,
            r.ours,
            r.baseline,
            "-" if r.ratio is None else fmt_ratio(r.ratio),
            r.target,
            r.status,
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [
        f"stateport benchmarks{' (quick run)' if quick else ''}: {environment()}",
        "",
        line(header),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(row) for row in rows),
        "",
    ]
    out.extend(f"- {r.name}: {r.note}" for r in results if r.note)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the stateport benchmarks beside their baselines."
    )
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument(
        "--only", action="append", choices=NAMES, metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(NAMES)}",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=int, help="rounds per speed benchmark (default 7, 2 quick)"
    )
    parser.add_argument(
        "--copy-rounds", type=int, default=2, help=f"rounds of {COPY_NAME} (default 2)"
    )
    args = parser.parse_args(argv)
    selected = set(args.only or NAMES)
    rounds = args.rounds or (2 if args.quick else 7)
    if rounds < 1:
        parser.error("--rounds must be at least 1")

    os.chdir(REPO)  # store URLs and work paths are relative to the repository root
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    results: list[Result] = []
    try:
        with asyncio.Runner() as runner:
            for case_type in ALL_SPEED_CASES:
                if case_type.name in selected:
                    skip = case_type.skip_reason()  # e.g. no server
                    if skip is not None:
                        log(f"{case_type.name}: skipped: {skip}")
                        target = f">= {case_type.target}"
                        results.append(Result(case_type.name, "-", "-", None, target, "SKIP", skip))
                        continue
                    case = case_type(runner, log, quick=args.quick)
                    results.append(run_speed(case, rounds))
        if STREAM_NAME in selected:
            results.extend(run_stream(args.quick))
        if COPY_NAME in selected:
            results.extend(run_copy_case(args.quick, args.copy_rounds))
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        with contextlib.suppress(OSError):
            WORK.parent.rmdir()  # bench/.work, unless another run is using it
    print(report(results, args.quick))
    return 1 if any(r.status == "MISS" for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
