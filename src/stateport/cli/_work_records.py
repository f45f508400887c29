"""``stateport work evidence|metrics|governance|sync|devices``: the records kept beside
features and work packages."""

from __future__ import annotations

import argparse
import json
import re
from datetime import UTC, datetime, timedelta

from .. import _time
from ..domains.work import DeviceNode, Evidence, GovernanceContract, Metric, SyncMapping
from ..errors import NotFound
from ._common import Commands, human_time, json_flag, print_listing, store_of, subcommand

__all__ = ["register"]

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_DURATION = re.compile(r"(\d{1,12})([smhdw])")


def register(sub: Commands, common: argparse.ArgumentParser) -> None:
    """The listings of evidence, metrics, contracts, sync mappings and devices in the
    ``work`` group ``sub``."""
    evidence = subcommand(
        sub,
        common,
        "evidence",
        _evidence,
        help="evidence of a work package or a requirement",
        description=(
            "List the evidence stored for one work package (--wp) or one functional "
            "requirement (--fr), by id: id, work package, requirement, confidence, "
            "type and artifact URL."
        ),
    )
    which = evidence.add_mutually_exclusive_group(required=True)
    which.add_argument("--wp", type=int, metavar="WP_ID", help="the work package's id")
    which.add_argument("--fr", metavar="FR_ID", help="the requirement's id")
    json_flag(evidence)

    metrics = subcommand(
        sub,
        common,
        "metrics",
        _metrics,
        help="the metrics of a feature",
        description="List a feature's metrics in the order they were recorded.",
    )
    metrics.add_argument("feature", metavar="SLUG", help="the feature's slug")
    json_flag(metrics)

    governance = subcommand(
        sub,
        common,
        "governance",
        _governance,
        help="a feature's governance contract and its rules",
        description=(
            "Show the latest version of a feature's governance contract (or the "
            "version --version) with its policy rules. Versions are immutable."
        ),
    )
    governance.add_argument("feature", metavar="SLUG", help="the feature's slug")
    governance.add_argument("--version", type=int, metavar="N", help="this version")
    json_flag(governance)

    sync = subcommand(
        sub,
        common,
        "sync",
        _sync,
        help="mappings to issues on external platforms",
        description=(
            "List the mappings of features and work packages to issues on external "
            "platforms, least recently synced first; --older-than lists only those "
            "due for a sync."
        ),
    )
    sync.add_argument("--feature", metavar="SLUG", help="only this feature's mappings")
    sync.add_argument("--platform", metavar="NAME", help="only mappings to this platform")
    sync.add_argument(
        "--older-than",
        type=_duration,
        metavar="AGE",
        help="only mappings last synced longer ago than AGE, e.g. 30m, 12h, 7d",
    )
    json_flag(sync)

    devices = subcommand(
        sub,
        common,
        "devices",
        _devices,
        help="devices and their vector clocks",
        description=(
            "List the devices that sync work, least recently seen first, with their "
            "vector clocks; --active-within lists only those seen lately."
        ),
    )
    devices.add_argument(
        "--active-within",
        type=_duration,
        metavar="AGE",
        help="only devices seen within AGE of now, e.g. 15m, 1h, 2d",
    )
    json_flag(devices)


def _duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``12h``, ``7d``, ``2w`` as a timedelta (an argparse type)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a number and a unit (s, m, h, d or w), e.g. 12h; got {text!r}"
        )
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise argparse.ArgumentTypeError(f"{text!r} is too long a time") from None


def _at_most_all_time(age: timedelta | None) -> timedelta:
    """``age``, or for None or an age reaching back before the year 1, the age of
    everything: the store subtracts it from its clock, which must not underflow."""
    everything = _time.now() - datetime(1, 1, 1, tzinfo=UTC)
    return everything if age is None else min(age, everything)


async def _evidence(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        found = (
            await sp.work.get_evidence_by_wp(args.wp)
            if args.wp is not None
            else await sp.work.get_evidence_by_fr(args.fr)
        )
    print_listing(found, args.json, _evidence_line)
    return 0


def _evidence_line(e: Evidence) -> str:
    return (
        f"{e.id:>5}  wp {e.wp_id:<5} {e.fr_id:<12} {e.confidence:.2f}  "
        f"{e.evidence_type or '-':<12} {e.artifact_url}"
    )


async def _metrics(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        found = await sp.work.get_metrics_by_feature(feature.id)
    print_listing(found, args.json, _metric_line)
    return 0


def _metric_line(m: Metric) -> str:
    wp = "" if m.wp_id is None else f"  (wp {m.wp_id})"
    return f"{human_time(m.recorded_at)}  {m.metric_type:<20} {m.value:g} {m.unit}".rstrip() + wp


async def _governance(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        if args.version is None:
            contract = await sp.work.get_latest_governance_contract(feature.id)
        else:
            contract = await sp.work.get_governance_contract(feature.id, args.version)
            if contract is None:
                raise NotFound(
                    f"feature {feature.slug!r} has no governance contract version {args.version}"
                )
    if contract is None:
        if not args.json:
            print(f"feature {feature.slug!r} has no governance contract")
        return 0
    print_listing([contract], args.json, lambda c: _contract_lines(c, feature.slug))
    return 0


def _contract_lines(c: GovernanceContract, slug: str) -> str:
    head = (
        f"governance contract version {c.version} of {slug!r} "
        f"(id {c.id}, created {human_time(c.created_at)} UTC)"
    )
    rules = (
        f"\n  {r.rule_id:<20} {'active' if r.is_active else 'inactive':<8}  {r.description}"
        for r in c.rules
    )
    return head + "".join(rules)


async def _sync(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature_id = None
        if args.feature is not None:
            feature_id = (await sp.work.require_feature(args.feature)).id
        age = timedelta(0) if args.older_than is None else _at_most_all_time(args.older_than)
        found = [
            m
            for m in await sp.work.list_stale_sync_mappings(age)
            if (feature_id is None or m.feature_id == feature_id)
            and (args.platform is None or m.platform == args.platform)
        ]
    print_listing(found, args.json, _mapping_line)
    return 0


def _mapping_line(m: SyncMapping) -> str:
    wp = "" if m.wp_id is None else f" wp {m.wp_id}"
    return (
        f"{m.id:>5}  {m.platform:<12} feature {m.feature_id}{wp}  {m.external_id}  "
        f"{m.external_state or '-'}  {m.sync_direction.value}  {human_time(m.last_synced_at)}"
    )


async def _devices(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        found = await sp.work.list_active_devices(_at_most_all_time(args.active_within))
    print_listing(found, args.json, _device_line)
    return 0


def _device_line(d: DeviceNode) -> str:
    return (
        f"{d.device_id:<24} {d.name or '-':<20} {human_time(d.last_seen)}  "
        f"{json.dumps(d.clock.to_dict())}"
    )
