"""Work packages: numbered within their feature, moved through :data:`WP_STATES`,
edited, and audited on their feature's chain.

A package lives in its feature's partition (``wp#<sequence>``) with a pointer
``work.wp#<id>`` (immutable, cached) and an entry in its graph shard, which
every state change updates in the same transaction (see
docs/decisions/0015-work-tracking.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ... import _time
from ..._cache import BoundedCache
from ...errors import NotFound
from ...ports.table import Item, KeyRange, NotExists, Op, Put, TablePort, Update
from ...primitives.ledger import LEDGER_TAGS
from .core import (
    KEEP,
    TITLE,
    Keep,
    WorkCore,
    check_actor,
    check_sequence,
    check_type,
)
from .features import CREATOR
from .layout import (
    SEQUENCE_TAG,
    SHARD_TAG,
    WP_PREFIX,
    WP_TAG,
    conflict,
    feature_exists,
    feature_pk,
    missing_shard,
    node,
    shard_of,
    shard_sk,
    wp_of,
    wp_ptr,
    wp_sk,
)
from .models import (
    MAX_NAME,
    WP_ORDER,
    WP_STATES,
    WorkPackage,
    WpState,
    check_enum,
    check_id,
    check_optional_text,
    check_strings,
    check_text,
    move_text,
)
from .writer import entry_fields

__all__ = ["WorkPackages"]

_SHARD_CACHE: Final = 4096


def _label(seq: int) -> str:
    return f"WP{seq:02d}: "


class WorkPackages(WorkCore):
    """Create, look up, move, edit and list work packages."""

    def __init__(self, table: TablePort) -> None:
        super().__init__(table)
        # graph shards known to exist ((feature id, shard number)); shards are never deleted
        self._shards: BoundedCache[tuple[int, int], bool] = BoundedCache(_SHARD_CACHE)

    async def create_work_package(self, wp: WorkPackage, *, actor: str = CREATOR) -> int:
        """Store a new work package; return its id.

        Sequences are unique per feature. The package starts in ``wp.state``;
        created in a later state than PLANNED, its creation is the next entry of
        its feature's audit chain, by ``actor`` (``"WP03: created in DOING
        (skipped PLANNED)"``), in the same transaction.

        Raises :class:`NotFound` for an unknown feature, :class:`Conflict` if
        the sequence is taken, :class:`ValidationError` for a malformed package.
        """
        check_type(wp, WorkPackage, "work package")
        fid = check_id(wp.feature_id, "feature_id")
        seq = check_sequence(wp.sequence)
        title = check_text(wp.title, "title", limit=TITLE)
        state = check_enum(WpState, wp.state, "state")
        fields = {
            "agent_id": check_optional_text(wp.agent_id, "agent_id"),
            "pr_url": check_optional_text(wp.pr_url, "pr_url"),
            "pr_state": _check_pr_state(wp.pr_state),
            "file_scope": list(check_strings(wp.file_scope, "file_scope")),
            "worktree_path": check_optional_text(wp.worktree_path, "worktree_path"),
        }
        criteria = check_text(wp.acceptance_criteria, "acceptance_criteria", empty=True)
        who = check_actor(actor)
        await self._feature_item(fid)  # NotFound before an id is taken
        pk = feature_pk(fid)
        now = _time.to_text(_time.now())

        async def build(wid: int) -> list[Op]:
            attrs = {
                "id": wid,
                "feature_id": fid,
                "sequence": seq,
                "title": title,
                "state": state.value,
                **fields,
                "acceptance_criteria": criteria,
                "created_at": now,
                "updated_at": now,
                "deps": [],
            }
            ops = [
                Put(pk, wp_sk(seq), attrs, NotExists(), tag=SEQUENCE_TAG),
                Put(wp_ptr(wid), "wp", {"feature_id": fid, "sequence": seq}, NotExists()),
                await self._shard_op(fid, seq, node(state.value, [])),
                feature_exists(fid),
            ]
            if state is not WpState.PLANNED:
                entry = entry_fields(
                    timestamp=now,
                    actor=who,
                    transition=_label(seq) + move_text(WP_ORDER, None, state),
                    wp=(wid, seq),
                )
                ops += await self._chain.entry_ops(fid, entry)
            return ops

        taken = conflict(f"feature {fid} already has a work package with sequence {seq}")
        wid = await self._create(
            "wp",
            build,
            retry_on=(SHARD_TAG, *LEDGER_TAGS),
            explain={SEQUENCE_TAG: taken, **self._no_feature(fid)},
        )
        self._where.put(wid, (fid, seq))
        self._shards.put((fid, shard_of(seq)), True)
        return wid

    async def _shard_op(self, fid: int, seq: int, entry: list[str] | str) -> Op:
        """The operation setting ``entry`` for ``seq`` in its graph shard: an update
        if the shard exists, else its creation (both tagged :data:`SHARD_TAG`: if
        another writer created the shard meanwhile, read it and try again)."""
        pk, sk = feature_pk(fid), shard_sk(seq)
        value = {str(seq): entry}
        if (fid, shard_of(seq)) in self._shards or await self.table.get(pk, sk) is not None:
            return Update(pk, sk, value, tag=SHARD_TAG)
        return Put(pk, sk, value, NotExists(), tag=SHARD_TAG)

    async def get_work_package(self, id: int) -> WorkPackage | None:
        """The work package with this id, or None. :class:`ValidationError` for a
        malformed id."""
        check_id(id, "work package id")
        try:
            item = await self._wp_item(id)
        except NotFound:
            return None
        return wp_of(item.attrs)

    async def update_wp_state(
        self,
        id: int,
        state: WpState | str,
        *,
        actor: str,
        evidence_refs: Sequence[str] = (),
    ) -> None:
        """Move a work package to ``state``, writing its audit entry (on its feature's
        chain) in the same transaction.

        Raises :class:`InvalidTransition` unless :data:`WP_STATES` allows the
        move, :class:`NotFound` for an unknown package or an evidence reference
        that names no evidence of its feature, and :class:`ValidationError` for
        malformed input.
        """
        wid = check_id(id, "work package id")
        target = check_enum(WpState, state, "state")
        who = check_actor(actor)
        refs = check_strings(evidence_refs, "evidence_refs")
        fid, seq = await self._locate(wid)
        pk = feature_pk(fid)

        def decide(item: Item) -> tuple[dict[str, Any], str]:
            current = WpState(item.attrs["state"])
            WP_STATES.check(current, target, subject=f"work package {wid} (WP{seq:02d})")
            return {"state": target.value}, _label(seq) + move_text(WP_ORDER, current, target)

        def shard(item: Item, changes: dict[str, Any]) -> list[Op]:
            entry = node(target.value, item.attrs["deps"])
            return [Update(pk, shard_sk(seq), {str(seq): entry}, tag=SHARD_TAG)]

        await self._audited_update(
            fid,
            (pk, wp_sk(seq)),
            lambda: self._wp_item(wid),
            decide,
            actor=who,
            evidence_refs=refs,
            tag=WP_TAG,
            wp=(wid, seq),
            also=shard,
            explain=missing_shard(seq),
        )

    async def update_work_package(
        self,
        id: int,
        *,
        actor: str,
        agent_id: str | Keep | None = KEEP,
        pr_url: str | Keep | None = KEEP,
        pr_state: str | Keep | None = KEEP,
        file_scope: Sequence[str] | Keep = KEEP,
        worktree_path: str | Keep | None = KEEP,
        evidence_refs: Sequence[str] = (),
    ) -> WorkPackage:
        """Change who works on a package, where, and how its pull request stands;
        return the package as stored.

        Fields left out keep their value; None clears one. The change and its
        audit entry (``'WP01: set pr_state="merged"'``) are one transaction;
        values equal to the stored ones write nothing. Raises :class:`NotFound`
        for an unknown package (or evidence reference) and
        :class:`ValidationError` for malformed input.
        """
        wid = check_id(id, "work package id")
        who = check_actor(actor)
        refs = check_strings(evidence_refs, "evidence_refs")
        wanted: dict[str, Any] = {}
        for name, value in (
            ("agent_id", agent_id),
            ("pr_url", pr_url),
            ("worktree_path", worktree_path),
        ):
            if value is not KEEP:
                wanted[name] = check_optional_text(value, name)
        if pr_state is not KEEP:
            wanted["pr_state"] = _check_pr_state(pr_state)
        if file_scope is not KEEP:
            wanted["file_scope"] = list(check_strings(file_scope, "file_scope"))
        fid, seq = await self._locate(wid)
        await self._audited_update(
            fid,
            (feature_pk(fid), wp_sk(seq)),
            lambda: self._wp_item(wid),
            self._edits(wanted, _label(seq)),
            actor=who,
            evidence_refs=refs,
            tag=WP_TAG,
            wp=(wid, seq),
        )
        return wp_of((await self._wp_item(wid)).attrs)

    async def list_wps_by_feature(self, feature_id: int) -> list[WorkPackage]:
        """The feature's work packages, by sequence (none for an unknown feature).
        :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        return [
            wp_of(i.attrs)
            async for i in self.table.query_all(feature_pk(fid), KeyRange.prefix(WP_PREFIX))
        ]


def _check_pr_state(value: Any) -> str | None:
    if value is None:
        return None
    return check_text(value, "pr_state", limit=MAX_NAME)
