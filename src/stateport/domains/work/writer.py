"""Appending to a feature's audit chain: each entry in one transaction with the
change it records, its evidence references checked against stored evidence.

The entries' format (encoding, hash, verification) is :mod:`.audit`; the chain
is a :class:`~stateport.primitives.ledger.Ledger` stream per feature.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from ..._retry import Retry, retrying
from ...errors import Conflict, IntegrityError, NotFound, ValidationError
from ...ports.table import KeyRange, Op, Put
from ...primitives.chain import GENESIS, ChainHead
from ...primitives.ledger import LEDGER_TAGS, Ledger
from .audit import entry_attrs, head_of
from .layout import (
    EVIDENCE_INDEXED,
    FEATURE_SK,
    WP_PREFIX,
    Explain,
    evidence_by_wp,
    evidence_ref_key,
    evidence_ref_pk,
    explained,
    feature_pk,
)

__all__ = ["AuditWriter", "Prepare", "entry_fields"]

Prepare = Callable[[], Awaitable[tuple[dict[str, Any], Sequence[Op]] | None]]
"""Reads what a change needs; returns the fields of its audit entry (``wp_id``,
``wp_sequence``, ``timestamp``, ``actor``, ``transition``, ``evidence_refs``) and
the change's operations, conditioned on what it read and tagged, or None when
there is nothing to change."""

_INDEX_BATCH: Final = 50


def entry_fields(
    *,
    timestamp: str,
    actor: str,
    transition: str,
    evidence_refs: Sequence[str] = (),
    wp: tuple[int | None, int | None] = (None, None),
) -> dict[str, Any]:
    """The fields of a new entry (for :data:`Prepare`); ``wp`` is (id, sequence)."""
    return {
        "wp_id": wp[0],
        "wp_sequence": wp[1],
        "timestamp": timestamp,
        "actor": actor,
        "transition": transition,
        "evidence_refs": tuple(evidence_refs),
    }


class AuditWriter:
    """Appends entries to the features' audit chains (the ledger ``work.audit``).

    An entry is written in one transaction with the change it records: the
    entry, the chain head and the change's operations commit together or not
    at all. Its ``evidence_refs`` must each be the artifact URL of evidence
    stored for the same feature (:class:`NotFound` otherwise).
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.table = ledger.table

    def open_ops(self, fid: int, first: dict[str, Any] | None = None) -> list[Op]:
        """The operations that create feature ``fid``'s chain: empty, or holding
        ``first`` (the fields of an entry) as entry 1."""
        stream = str(fid)
        ops: list[Op] = [Put(evidence_ref_pk(fid), EVIDENCE_INDEXED, {})]
        if first is None:
            head = {"feature_id": fid, "count": 0, "hash": GENESIS.hex()}
            return [*ops, self.ledger.create_op(stream, head)]
        attrs = entry_attrs(feature_id=fid, seq=1, prev_hash=GENESIS, **first)
        head = {"feature_id": fid, "count": 1, "hash": attrs["hash"]}
        return [*ops, self.ledger.create_op(stream, head), self.ledger.entry_op(stream, 1, attrs)]

    async def head(self, fid: int) -> ChainHead:
        """The head of feature ``fid``'s chain.

        Raises :class:`NotFound` for an unknown feature and
        :class:`IntegrityError` when the head is missing or malformed.
        """
        item = await self.ledger.head(str(fid))
        if item is None:
            if await self.table.get(feature_pk(fid), FEATURE_SK) is None:
                raise NotFound(f"no feature {fid}")
            raise IntegrityError(f"the audit chain head of feature {fid} is missing")
        head = head_of(item.attrs)
        if head is None:
            raise IntegrityError(f"the audit chain head of feature {fid} is malformed")
        return head

    async def entry_ops(self, fid: int, fields: dict[str, Any]) -> list[Op]:
        """The operations that append ``fields`` as the next entry of ``fid``'s chain,
        for a transaction the caller runs (and runs again, with new operations,
        when one of these fails: their tags are in ``LEDGER_TAGS``)."""
        head = await self.head(fid)
        await self._check_position(fid, head.count)
        await self.require_evidence(fid, fields["evidence_refs"])
        return self._next(fid, head, fields)[1]

    def _next(
        self, fid: int, head: ChainHead, fields: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Op]]:
        """The stored attributes of the entry after ``head`` and the operations
        that append it (and move the head)."""
        seq = head.count + 1
        attrs = entry_attrs(feature_id=fid, seq=seq, prev_hash=head.hash, **fields)
        ops = self.ledger.append_ops(
            str(fid),
            seq,
            [attrs],
            head_set={"count": seq, "hash": attrs["hash"]},
            expect_prev={"hash": head.hash.hex()} if seq > 1 else None,
        )
        return {**attrs, "seq": seq}, ops

    async def append(
        self,
        fid: int,
        prepare: Prepare,
        *,
        retry_on: Sequence[str] = (),
        explain: Explain | None = None,
        prev_hash: bytes | None = None,
        expect_hash: bytes | None = None,
    ) -> dict[str, Any] | None:
        """Append the entry ``prepare()`` describes, with its operations; return the
        entry's stored attributes and ``seq`` (None if ``prepare`` found nothing to do).

        ``prepare`` runs again whenever the chain moved or one of its operations
        tagged with one of ``retry_on`` failed (its record changed since it was
        read), so a state machine it checks holds under any concurrency; a
        conflict of an operation whose tag ``explain`` maps raises the error it
        maps to, and any other conflict reaches the caller. With ``prev_hash`` the
        append is refused (:class:`Conflict`) unless that is the chain's head;
        with ``expect_hash`` (:class:`ValidationError`) unless it is the new
        entry's hash. :class:`IntegrityError` if the head and the entries
        disagree; :class:`NotFound` for an unknown feature or evidence.
        """
        stream = str(fid)

        async def attempt() -> dict[str, Any] | None:
            head = await self.head(fid)
            if prev_hash is not None and prev_hash != head.hash:
                raise Conflict(
                    f"prev_hash {prev_hash.hex()[:16]}... is not the head of feature {fid}'s "
                    f"audit chain ({head.hash.hex()[:16]}..., {head.count} entries)",
                    key=(self.ledger.pk(stream), "head"),
                    condition="prev_hash == head",
                )
            change = await prepare()
            if change is None:
                return None
            fields, ops = change
            await self.require_evidence(fid, fields["evidence_refs"])
            entry, chain = self._next(fid, head, fields)
            if expect_hash is not None and expect_hash.hex() != entry["hash"]:
                raise ValidationError(
                    "the entry's hash does not match its fields: leave hash empty and the "
                    "store computes it (see docs/decisions/0016-audit-chain.md)"
                )
            try:
                await self.table.transact([*chain, *ops])
            except Conflict as e:
                if e.tag in LEDGER_TAGS:
                    await self._check_position(fid, head.count)
                    raise Retry("another entry was appended first") from None
                if e.tag is not None and e.tag in retry_on:
                    raise Retry(e.tag) from None
                raise explained(e, explain) from None
            return entry

        return await retrying(attempt, what=f"the audit chain of feature {fid}")

    async def _check_position(self, fid: int, count: int) -> None:
        """IntegrityError if the head still records ``count`` entries but the stored
        entries end elsewhere (a damaged chain: no append can succeed)."""
        stream = str(fid)
        head = head_of((await self.ledger.require_head(stream)).attrs)
        if head is None or head.count != count:
            return  # the chain moved: try again
        latest = await self.ledger.latest(stream)
        if (0 if latest is None else latest.seq) != count:
            raise IntegrityError(
                f"the audit chain of feature {fid} is damaged: its head records {count} "
                "entries but the stored entries end elsewhere; run  stateport audit verify"
            )

    async def require_evidence(self, fid: int, refs: Sequence[str]) -> None:
        """:class:`NotFound` unless each of ``refs`` is the artifact URL of evidence
        stored for a work package of feature ``fid``."""
        if not refs:
            return
        missing = await self._unknown(fid, list(dict.fromkeys(refs)))
        if missing and await self._index_evidence(fid):
            missing = await self._unknown(fid, missing)
        if missing:
            raise NotFound(
                f"evidence reference {missing[0]!r} names no evidence of feature {fid}: an "
                "evidence reference is the artifact_url of evidence stored with "
                "create_evidence for one of the feature's work packages"
            )

    async def _unknown(self, fid: int, urls: list[str]) -> list[str]:
        found = await self.table.batch_get([evidence_ref_key(fid, u) for u in urls])
        return [u for u, item in zip(urls, found, strict=True) if item is None]

    async def _index_evidence(self, fid: int) -> bool:
        """Index the artifact URLs of evidence stored before references were indexed,
        once per feature; False if the feature's URLs were indexed already."""
        pk = evidence_ref_pk(fid)
        if await self.table.get(pk, EVIDENCE_INDEXED) is not None:
            return False
        keys: dict[tuple[str, str], str] = {}
        async for wp in self.table.query_all(feature_pk(fid), KeyRange.prefix(WP_PREFIX)):
            async for ev in self.table.query_all(evidence_by_wp(wp.attrs["id"]), index="gsi1"):
                keys[evidence_ref_key(fid, ev.attrs["artifact_url"])] = ev.attrs["artifact_url"]
        puts: list[Op] = [Put(k[0], k[1], {"artifact_url": u}) for k, u in keys.items()]
        for i in range(0, len(puts), _INDEX_BATCH):
            await self.table.transact(puts[i : i + _INDEX_BATCH])
        await self.table.put(pk, EVIDENCE_INDEXED, {})
        return True
