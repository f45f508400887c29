"""``stateport work``: features, work packages, the ready set and audit trails."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import _time
from ..domains.work import Feature, FeatureState, WorkPackage
from ._common import Commands, command_group, json_flag, store_of, subcommand

__all__ = ["feature_dict", "register", "wp_dict"]


def register(commands: Commands, common: argparse.ArgumentParser) -> Commands:
    """The ``work`` group and its listings; returns the group, for the commands that
    change work (:mod:`._work_changes`) and the other records (:mod:`._work_records`)."""
    sub = command_group(
        commands,
        common,
        "work",
        help="features, work packages, their moves, dependencies and records",
        description=(
            "Work tracking (sp.work): create features and work packages, move them "
            "through their states (each move audited), add dependencies, and list "
            "them with their audit trails, evidence, metrics, governance contracts, "
            "sync mappings and devices."
        ),
    )

    features = subcommand(
        sub,
        common,
        "features",
        _features,
        help="list features",
        description="List features by id: id, slug, state and name.",
    )
    features.add_argument(
        "--state", choices=[s.value for s in FeatureState], help="only features in this state"
    )
    json_flag(features)

    wps = subcommand(
        sub,
        common,
        "wps",
        _wps,
        help="list the work packages of a feature",
        description="List a feature's work packages by sequence, with their dependencies.",
    )
    wps.add_argument("feature", metavar="SLUG", help="the feature's slug")
    json_flag(wps)

    ready = subcommand(
        sub,
        common,
        "ready",
        _ready,
        help="work packages ready to start",
        description="PLANNED work packages of a feature whose dependencies are all DONE.",
    )
    ready.add_argument("feature", metavar="SLUG", help="the feature's slug")
    json_flag(ready)

    audit = subcommand(
        sub,
        common,
        "audit",
        _audit,
        help="the audit trail of a feature",
        description=(
            "A feature's audit trail in chain order: seq, time, actor, transition and "
            "the first digits of each entry's hash. Check it with 'stateport audit verify'."
        ),
    )
    audit.add_argument("feature", metavar="SLUG", help="the feature's slug")
    json_flag(audit)
    return sub


def _when(value: Any) -> str | None:
    return None if value is None else _time.to_text(value)


def feature_dict(f: Feature) -> dict[str, Any]:
    """A feature as JSON."""
    return {
        "id": f.id,
        "slug": f.slug,
        "friendly_name": f.friendly_name,
        "state": f.state.value,
        "target_branch": f.target_branch,
        "spec_hash": None if f.spec_hash is None else f.spec_hash.hex(),
        "created_at": _when(f.created_at),
        "updated_at": _when(f.updated_at),
    }


def wp_dict(wp: WorkPackage, deps: list[int] | None = None) -> dict[str, Any]:
    out = {
        "id": wp.id,
        "sequence": wp.sequence,
        "title": wp.title,
        "state": wp.state.value,
        "agent_id": wp.agent_id,
        "pr_url": wp.pr_url,
        "pr_state": wp.pr_state,
        "file_scope": list(wp.file_scope),
        "worktree_path": wp.worktree_path,
    }
    if deps is not None:
        out["depends_on"] = deps
    return out


async def _features(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        found = (
            await sp.work.list_features_by_state(args.state)
            if args.state
            else await sp.work.list_all_features()
        )
        for f in found:
            if args.json:
                print(json.dumps(feature_dict(f), sort_keys=True))
            else:
                print(f"{f.id:>5}  {f.slug:<24} {f.state.value:<10} {f.friendly_name}")
    return 0


async def _wps(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        for wp in await sp.work.list_wps_by_feature(feature.id):
            deps = [d.depends_on for d in await sp.work.get_wp_dependencies(wp.id)]
            if args.json:
                print(json.dumps(wp_dict(wp, deps), sort_keys=True))
            else:
                after = f"  (after {', '.join(map(str, deps))})" if deps else ""
                print(f"WP{wp.sequence:02d}  id {wp.id:<5} {wp.state.value:<10} {wp.title}{after}")
    return 0


async def _ready(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        for wp in await sp.work.get_ready_wps(feature.id):
            if args.json:
                print(json.dumps(wp_dict(wp), sort_keys=True))
            else:
                print(f"WP{wp.sequence:02d}  id {wp.id:<5} {wp.title}")
    return 0


async def _audit(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        async for e in sp.work.iter_audit_trail(feature.id):
            if args.json:
                row = {
                    "id": e.id,
                    "seq": e.seq,
                    "feature_id": e.feature_id,
                    "wp_id": e.wp_id,
                    "wp_sequence": e.wp_sequence,
                    "timestamp": _when(e.timestamp),
                    "actor": e.actor,
                    "transition": e.transition,
                    "evidence_refs": list(e.evidence_refs),
                    "prev_hash": e.prev_hash.hex(),
                    "hash": e.hash.hex(),
                }
                print(json.dumps(row, sort_keys=True))
            else:
                refs = f"  [{', '.join(e.evidence_refs)}]" if e.evidence_refs else ""
                print(
                    f"{e.seq:>5}  {_when(e.timestamp)}  {e.actor:<16} "
                    f"{e.transition}{refs}  {e.hash.hex()[:16]}"
                )
    return 0
