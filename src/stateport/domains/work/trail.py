"""The audit trail: free entries, reading a feature's chain, verifying it, and
exporting its head.

How entries are encoded, hashed, appended and verified is in
:mod:`~stateport.domains.work.audit` and docs/decisions/0016-audit-chain.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any, Final

from ... import _time
from ...errors import IntegrityError, ValidationError
from ...ports.table import KeyRange, Op
from ...primitives.chain import ChainHead, ChainVerification
from . import audit as _audit
from .core import TITLE, WorkCore, check_actor, check_hash, check_sequence, check_type, check_when
from .layout import feature_exists
from .models import AuditEntry, check_id, check_strings, check_text
from .writer import entry_fields

__all__ = ["AuditTrail"]

_VERIFY_PAGE: Final = 5000
_ENTRIES: Final = KeyRange.prefix("e#")


class AuditTrail(WorkCore):
    """Append to, read, verify and export the features' audit chains."""

    async def append_audit_entry(self, entry: AuditEntry) -> int:
        """Append an entry to its feature's chain; return its id.

        ``prev_hash``, when given, must be the chain's head (else
        :class:`Conflict`); when empty the store links to the head itself.
        ``hash``, when given, must equal the hash the store computes.
        ``timestamp`` defaults to now. ``wp_id``, when given, must belong to the
        feature; ``wp_sequence`` is then filled in. Raises :class:`NotFound`
        for an unknown feature, package or evidence reference and
        :class:`ValidationError` for a malformed entry.
        """
        check_type(entry, AuditEntry, "audit entry")
        fid = check_id(entry.feature_id, "feature_id")
        who = check_actor(entry.actor)
        what = check_text(entry.transition, "transition", limit=TITLE)
        refs = check_strings(entry.evidence_refs, "evidence_refs")
        when = check_when(entry.timestamp, "timestamp")
        wp_seq = entry.wp_sequence
        if wp_seq is not None:
            check_sequence(wp_seq)
        prev = check_hash(entry.prev_hash, "prev_hash")
        expect = check_hash(entry.hash, "hash")
        wp_id = entry.wp_id
        if wp_id is not None:
            check_id(wp_id, "wp_id")
            owner, seq = await self._locate(wp_id)
            if owner != fid:
                raise ValidationError(f"work package {wp_id} belongs to feature {owner}, not {fid}")
            if wp_seq is not None and wp_seq != seq:
                raise ValidationError(f"work package {wp_id} has sequence {seq}, not {wp_seq}")
            wp_seq = seq
        # an unknown feature is NotFound in the append, which reads the chain head anyway

        async def prepare() -> tuple[dict[str, Any], Sequence[Op]]:
            fields = entry_fields(
                timestamp=_time.to_text(when or _time.now()),
                actor=who,
                transition=what,
                evidence_refs=refs,
                wp=(wp_id, wp_seq),
            )
            return fields, [feature_exists(fid)]

        attrs = await self._chain.append(
            fid, prepare, explain=self._no_feature(fid), prev_hash=prev, expect_hash=expect
        )
        assert attrs is not None  # prepare always has an entry
        return _audit.audit_id(fid, attrs["seq"])

    async def get_audit_trail(self, feature_id: int) -> list[AuditEntry]:
        """Every entry of the feature's chain, in chain order (none for an unknown
        feature). :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        return [_audit.entry_of(fid, e.seq, e.attrs) for e in await self._ledger.entries(str(fid))]

    async def iter_audit_trail(self, feature_id: int) -> AsyncIterator[AuditEntry]:
        """The feature's chain entry by entry, page by page (for long chains); none for
        an unknown feature. :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        async for e in self._ledger.iter_entries(str(fid)):
            yield _audit.entry_of(fid, e.seq, e.attrs)

    async def get_latest_audit_entry(self, feature_id: int) -> AuditEntry | None:
        """The last entry of the feature's chain, or None (also for an unknown
        feature). :class:`ValidationError` for a malformed id."""
        fid = check_id(feature_id, "feature_id")
        latest = await self._ledger.latest(str(fid))
        return None if latest is None else _audit.entry_of(fid, latest.seq, latest.attrs)

    async def verify_audit_chain(
        self, feature_id: int, *, expected_head: ChainHead | None = None
    ) -> ChainVerification:
        """Recompute the feature's chain end to end; return success or the first break.

        Detects a change to any stored field of any entry, a deleted, inserted
        or reordered entry, and a truncated tail (the head is stored apart from
        the entries). With ``expected_head`` (an :meth:`audit_head` exported
        earlier) it also detects a chain rewritten or truncated together with
        its stored head. Raises :class:`NotFound` for an unknown feature and
        :class:`ValidationError` for a malformed id or head.
        """
        fid = check_id(feature_id, "feature_id")
        if expected_head is not None:
            check_type(expected_head, ChainHead, "expected_head")
        await self._feature_item(fid)
        stream = str(fid)
        head_item = await self._ledger.head(stream)
        stored = None if head_item is None else _audit.head_of(head_item.attrs)
        pages = self.table.query_pages(self._ledger.pk(stream), _ENTRIES, page_size=_VERIFY_PAGE)
        return await _audit.verify_pages(fid, pages, stored, expected_head)

    async def audit_head(self, feature_id: int) -> ChainHead:
        """The verified head of the feature's chain, to export and sign off.

        Raises :class:`IntegrityError` if the chain does not verify and
        :class:`NotFound` for an unknown feature.
        """
        result = await self.verify_audit_chain(feature_id)
        if not result.ok:
            raise IntegrityError(f"feature {feature_id}: audit chain {result.describe()}")
        return result.head
