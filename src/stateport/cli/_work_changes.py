"""``stateport work create|move|edit|depend``: create features and work packages,
move them through their states and edit their fields (each change audited), and
add dependencies."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..domains.work import (
    DependencyType,
    Feature,
    FeatureState,
    WorkPackage,
    WorkStore,
    WpDependency,
    WpState,
)
from ..errors import NotFound
from ._common import (
    DONE,
    CommandError,
    Commands,
    command_group,
    json_flag,
    report,
    store_of,
    subcommand,
)
from ._work import feature_dict, wp_dict

__all__ = ["register"]


def register(sub: Commands, common: argparse.ArgumentParser) -> None:
    """``create``, ``move`` and ``depend`` in the ``work`` group ``sub``."""
    create = command_group(
        sub,
        common,
        "create",
        help="create a feature or a work package",
        description=(
            "Create a feature (in SPECIFY) or a work package of a feature (in "
            "PLANNED), or in a later --state, and print its id."
        ),
    )
    feature = subcommand(
        create,
        common,
        "feature",
        _create_feature,
        help="create a feature",
        description=(
            "Create the feature SLUG named NAME, in state SPECIFY (or --state), and print "
            "its id. Created in a later state, its audit trail starts with an entry by "
            "--actor saying which states were skipped."
        ),
    )
    feature.add_argument("slug", metavar="SLUG", help="its unique short name, e.g. 001-login")
    feature.add_argument("name", metavar="NAME", help="its friendly name")
    feature.add_argument(
        "--branch", default="main", metavar="BRANCH", help="the branch it targets (default: main)"
    )
    _initial_state(feature, FeatureState)
    json_flag(feature, what=DONE)

    wp = subcommand(
        create,
        common,
        "wp",
        _create_wp,
        help="create a work package of a feature",
        description=(
            "Create work package number SEQUENCE of the feature SLUG, titled TITLE, in "
            "state PLANNED (or --state), and print its id: the other commands name a "
            "work package by this id. Sequences are unique within a feature."
        ),
    )
    wp.add_argument("feature", metavar="SLUG", help="the feature's slug")
    wp.add_argument("sequence", type=int, metavar="SEQUENCE", help="its number: 1, 2, ...")
    wp.add_argument("title", metavar="TITLE", help="what it delivers")
    wp.add_argument("--agent-id", metavar="ID", help="the agent assigned to it")
    wp.add_argument("--pr-url", metavar="URL", help="its pull request")
    wp.add_argument(
        "--file-scope",
        action="append",
        default=[],
        metavar="PATH",
        help="a file it touches (repeat for more)",
    )
    wp.add_argument("--acceptance-criteria", default="", metavar="TEXT", help="when it is done")
    _initial_state(wp, WpState)
    json_flag(wp, what=DONE)

    move = command_group(
        sub,
        common,
        "move",
        help="move a feature or a work package to another state",
        description=(
            "Move a feature or a work package to another state. The store refuses a "
            "move its state machine does not allow, and records each move in the "
            "feature's audit trail with --actor as the one who made it."
        ),
    )
    states = ", ".join(FeatureState)
    move_feature = subcommand(
        move,
        common,
        "feature",
        _move_feature,
        help="move a feature to another state",
        description=f"Move the feature SLUG to STATE ({states}), recorded in its audit trail.",
    )
    move_feature.add_argument("feature", metavar="SLUG", help="the feature's slug")
    move_feature.add_argument(
        "state", choices=[s.value for s in FeatureState], metavar="STATE", help=states
    )
    _audit_options(move_feature)

    states = ", ".join(WpState)
    move_wp = subcommand(
        move,
        common,
        "wp",
        _move_wp,
        help="move a work package to another state",
        description=(
            f"Move the work package WP_ID to STATE ({states}), recorded in its "
            "feature's audit trail."
        ),
    )
    move_wp.add_argument("wp_id", type=int, metavar="WP_ID", help="the work package's id")
    move_wp.add_argument("state", choices=[s.value for s in WpState], metavar="STATE", help=states)
    _audit_options(move_wp)

    _register_edit(sub, common)

    depend = subcommand(
        sub,
        common,
        "depend",
        _depend,
        help="make a work package depend on another",
        description=(
            "Record that the work package WP_ID depends on ON_ID (both ids, of one "
            "feature): WP_ID is not ready to start before ON_ID is DONE. A dependency "
            "that would close a cycle is refused, naming the cycle."
        ),
    )
    depend.add_argument("wp_id", type=int, metavar="WP_ID", help="the work package that waits")
    depend.add_argument("on", type=int, metavar="ON_ID", help="the work package it waits for")
    depend.add_argument(
        "--type",
        dest="dep_type",
        choices=[t.value for t in DependencyType],
        default=DependencyType.EXPLICIT.value,
        help="why it depends (default: explicit)",
    )
    json_flag(depend, what=DONE)


def _register_edit(sub: Commands, common: argparse.ArgumentParser) -> None:
    edit = command_group(
        sub,
        common,
        "edit",
        help="change fields of a work package or a feature (audited)",
        description=(
            "Change who works on a work package, where, and how its pull request "
            "stands, or a feature's spec hash. Each change is written with an audit "
            "entry by --actor in the same transaction; an empty value clears a "
            "field; values already stored change nothing."
        ),
    )
    wp = subcommand(
        edit,
        common,
        "wp",
        _edit_wp,
        help="change a work package's agent, PR, file scope or worktree",
        description="Change fields of the work package WP_ID; the others keep their values.",
    )
    wp.add_argument("wp_id", type=int, metavar="WP_ID", help="the work package's id")
    wp.add_argument("--agent-id", metavar="ID", help="the agent working on it")
    wp.add_argument("--pr-url", metavar="URL", help="its pull request")
    wp.add_argument("--pr-state", metavar="STATE", help="its pull request's state, e.g. merged")
    wp.add_argument("--worktree-path", metavar="PATH", help="the worktree it is worked on in")
    wp.add_argument(
        "--file-scope",
        action="append",
        metavar="PATH",
        help="a file it touches (repeat for more; replaces the list; '' empties it)",
    )
    _audit_options(wp)
    feature = subcommand(
        edit,
        common,
        "feature",
        _edit_feature,
        help="change a feature's spec hash",
        description="Set the spec hash of the feature SLUG (hexadecimal; '' clears it).",
    )
    feature.add_argument("feature", metavar="SLUG", help="the feature's slug")
    feature.add_argument("--spec-hash", required=True, metavar="HEX", help="the hash, in hex")
    _audit_options(feature)


_WP_FIELDS = ("agent_id", "pr_url", "pr_state", "worktree_path")


async def _edit_wp(args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {
        name: getattr(args, name) or None for name in _WP_FIELDS if getattr(args, name) is not None
    }
    if args.file_scope is not None:
        fields["file_scope"] = [path for path in args.file_scope if path]
    if not fields:
        raise CommandError("nothing to change: give a field to set, e.g. --pr-state merged")
    async with store_of(args, create=False) as sp:
        before = await _read_wp(sp.work, args.wp_id)
        wp = await sp.work.update_work_package(
            args.wp_id, actor=args.actor, evidence_refs=args.evidence, **fields
        )
    _report_edit(args, f"work package {wp.id} (WP{wp.sequence:02d})", wp_dict(before), wp_dict(wp))
    return 0


async def _edit_feature(args: argparse.Namespace) -> int:
    try:
        spec_hash = bytes.fromhex(args.spec_hash) or None
    except ValueError:
        raise CommandError(f"--spec-hash is not hexadecimal: {args.spec_hash!r}") from None
    async with store_of(args, create=False) as sp:
        before = await sp.work.require_feature(args.feature)
        feature = await sp.work.update_feature(
            before.id, actor=args.actor, spec_hash=spec_hash, evidence_refs=args.evidence
        )
    _report_edit(args, f"feature {feature.slug!r}", feature_dict(before), feature_dict(feature))
    return 0


def _report_edit(
    args: argparse.Namespace, what: str, before: dict[str, Any], after: dict[str, Any]
) -> None:
    changed = {k: v for k, v in after.items() if k != "updated_at" and before.get(k) != v}
    shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in changed.items())
    line = f"{what}: set {shown} (actor {args.actor})" if changed else f"{what}: nothing to change"
    report(args, line, after)


def _audit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor", required=True, metavar="WHO", help="who makes the change (in the audit trail)"
    )
    parser.add_argument(
        "--evidence",
        action="append",
        default=[],
        metavar="REF",
        help="the artifact URL of stored evidence for the change (repeat for more)",
    )
    json_flag(parser, what=DONE)


def _initial_state(parser: argparse.ArgumentParser, states: type[FeatureState | WpState]) -> None:
    first = next(iter(states))
    parser.add_argument(
        "--state",
        default=first.value,
        choices=[s.value for s in states],
        metavar="STATE",
        help=f"the state it starts in: {', '.join(states)} (default: {first.value})",
    )
    parser.add_argument(
        "--actor",
        metavar="WHO",
        help="who created it, recorded when it starts in a later state (default: the store's)",
    )


def _creator(args: argparse.Namespace) -> dict[str, str]:
    return {} if args.actor is None else {"actor": args.actor}


async def _create_feature(args: argparse.Namespace) -> int:
    new = Feature(
        slug=args.slug,
        friendly_name=args.name,
        target_branch=args.branch,
        state=FeatureState(args.state),
    )
    async with store_of(args, create=True) as sp:
        fid = await sp.work.create_feature(new, **_creator(args))
        feature = await sp.work.require_feature(fid)
    report(
        args,
        f"created feature {feature.id} {feature.slug!r} ({feature.state}): {feature.friendly_name}",
        feature_dict(feature),
    )
    return 0


async def _create_wp(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        wid = await sp.work.create_work_package(
            WorkPackage(
                feature_id=feature.id,
                sequence=args.sequence,
                title=args.title,
                agent_id=args.agent_id,
                pr_url=args.pr_url,
                file_scope=tuple(args.file_scope),
                acceptance_criteria=args.acceptance_criteria,
                state=WpState(args.state),
            ),
            **_creator(args),
        )
        wp = await _read_wp(sp.work, wid)
    report(
        args,
        f"created work package {wp.id}: WP{wp.sequence:02d} of {feature.slug!r} "
        f"({wp.state}): {wp.title}",
        wp_dict(wp),
    )
    return 0


async def _move_feature(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        feature = await sp.work.require_feature(args.feature)
        await sp.work.update_feature_state(
            feature.id, args.state, actor=args.actor, evidence_refs=args.evidence
        )
        feature = await sp.work.require_feature(feature.id)
    report(
        args,
        f"moved feature {feature.slug!r} to {args.state} (actor {args.actor})",
        feature_dict(feature),
    )
    return 0


async def _move_wp(args: argparse.Namespace) -> int:
    async with store_of(args, create=False) as sp:
        await sp.work.update_wp_state(
            args.wp_id, args.state, actor=args.actor, evidence_refs=args.evidence
        )
        wp = await _read_wp(sp.work, args.wp_id)
    report(
        args,
        f"moved work package {wp.id} (WP{wp.sequence:02d}) to {args.state} (actor {args.actor})",
        wp_dict(wp),
    )
    return 0


async def _depend(args: argparse.Namespace) -> int:
    dep = WpDependency(wp_id=args.wp_id, depends_on=args.on, dep_type=args.dep_type)
    async with store_of(args, create=False) as sp:
        await sp.work.add_wp_dependency(dep)
    report(
        args,
        f"work package {dep.wp_id} now depends on {dep.depends_on} ({dep.dep_type})",
        {"wp_id": dep.wp_id, "depends_on": dep.depends_on, "dep_type": str(dep.dep_type)},
    )
    return 0


async def _read_wp(work: WorkStore, wid: int) -> WorkPackage:
    wp = await work.get_work_package(wid)
    if wp is None:
        raise NotFound(f"no work package {wid}")
    return wp
